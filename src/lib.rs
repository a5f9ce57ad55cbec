//! # trainsim
//!
//! A discrete-event simulator of distributed training for large neural networks: given a
//! model, a cluster and a parallelism plan, it simulates every operation of a few training
//! steps on GPU compute and communication streams, with flows sharing network links, and
//! reports step time, throughput, MFU, memory per GPU and where the time goes.
//!
//! Layers (docs/architecture.md; `tests/it/architecture.rs` enforces them): a module
//! imports only modules below it.
//!
//! ```text
//! cli ─▶ sweep ─▶ scenario ─▶ simulation ─▶ workload ─▶ parallel ─▶ model
//!  │       │                    │   │            │           └────▶ network ─▶ hardware ─▶ units
//!  ├─▶ runner ─▶ report ────────┘   ├─▶ training ┘                    │
//!  └─▶ serve                        └─▶ engine ◀───────────────────────┘
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`units`] | the clock ([`units::SimTime`], integer ps) and unit conversions |
//! | [`engine`] | event queue ordered by (time, sequence); seeded random streams |
//! | [`hardware`] | GPU specs and presets, kernel-time model, cluster shape |
//! | [`model`] | transformer architectures, parameter and FLOP counts |
//! | [`network`] | links, max-min fair flows, collectives as flows, topologies, algorithms |
//! | [`parallel`] | the plan and its dimensions ([`parallel::Dim`]), placement, pipeline schedules as programs |
//! | [`training`] | batch, sequence, precision; convergence to a target, failures, energy |
//! | [`workload`] | the operation graph: layers built by one pass per dimension, the pipeline program as ops, memory |
//! | [`simulation`] | runs a workload on the engine and network; measures the result |
//! | [`scenario`] | TOML scenario files → validated inputs, with located errors |
//! | [`report`] | summary, results JSON, Markdown, charts, traces |
//! | [`runner`] | the run pipeline as a library call (scenario → result → files) |
//! | [`sweep`] | parameter sweeps (parallel, resumable, shardable) and plan search |
//! | [`cli`] | the command line (the only module that prints) |
//! | `serve` | the local web explorer, `trainsim serve` (cargo feature `serve`, on by default) |

#![warn(missing_docs)]

pub mod cli;
pub mod engine;
pub mod hardware;
pub mod model;
pub mod network;
pub mod parallel;
pub mod report;
pub mod runner;
pub mod scenario;
#[cfg(feature = "serve")]
pub mod serve;
pub mod simulation;
pub mod sweep;
pub mod training;
pub mod units;
pub mod workload;
