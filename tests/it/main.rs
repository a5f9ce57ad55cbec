//! Integration tests: one binary, one module per concern.

/// The layering: no import against it, no cycles between files, no oversized files.
mod architecture;
/// The explorer in headless Chromium (WebDriver).
#[cfg(feature = "serve")]
mod browser;
/// Command-line behaviour: bad inputs give located errors and non-zero exits.
mod cli;
/// Closed forms the simulation must reproduce exactly or within stated tolerance.
mod closed_forms;
/// Wire element types, gradient compression and offloading: closed-form bytes and times,
/// memory, time to target, located errors, the two example scenarios.
mod compression;
/// Context parallelism: ring overlap and bytes, DP x CP gradients, the NeMo CP table,
/// load balancing, located errors, the Llama-3 405B 128K example, search with CP.
mod context_parallel;
/// Same scenario and seed give byte-identical results, on any thread count.
mod determinism;
/// Expert tensor parallelism: its collectives, expert memory, FLOPs and located errors.
mod expert_tp;
/// results.json byte-for-byte against a committed golden file.
mod golden;
/// Heterogeneous clusters: GPU groups, per-stage GPUs, the cross-group fabric.
mod hetero;
/// A blocking HTTP client for the explorer tests.
#[cfg(feature = "serve")]
mod http;
/// Mixture-of-Experts: routing, all-to-all bytes, imbalance, published MoE runs.
mod moe;
/// Published nccl-tests bus bandwidths, calibration provenance, fitting nccl-tests logs.
mod nccl;
/// The NCCL model against the round-2 nccl-tests data (in-sample, leave-one-system-out) and its shape.
mod nccl_model;
/// Collective algorithms, topologies, max-min fairness, and `trainsim collective` (nccl-tests style).
mod network;
/// Properties that must hold as inputs change (monotonicity, conservation).
mod properties;
/// The README's printed figures match the simulation.
mod readme;
/// Micro-batches split unevenly among data-parallel replicas (`parallel.replica_micro_batches`).
mod replica_batches;
/// Every-replica mode: equal to the representative when symmetric, stragglers per replica.
mod replicas;
/// Hostile input: limits, checked plan arithmetic, resource guards, finite results, fuzzing.
mod robust;
/// Every shipped scenario loads and the examples run.
mod scenarios;
/// Pipeline schedules against Zero Bubble's and DeepSeek-V3's formulas; uneven splits.
mod schedules;
/// The explorer's HTTP API against a real `trainsim serve`.
#[cfg(feature = "serve")]
mod serve;
/// Sweeps: grid order, thread-count independence, resume, shards.
mod sweep;
/// Sweep robustness: merge checks, resume after a change or a kill, oversized inputs.
mod sweep_robust;
/// Chrome trace export and Markdown report.
mod trace;
/// Training to a target: convergence laws, failures and checkpoints, energy, their errors.
mod training;
/// Published measurements: the validation set's error bars.
mod validation;

use std::path::Path;
use trainsim::scenario::Scenario;

/// Parses a scenario from text (test helper).
pub fn scenario(src: &str) -> Scenario {
    Scenario::from_source(src, Path::new("test.toml")).unwrap_or_else(|e| panic!("test scenario invalid: {e}"))
}

/// Path inside the repository.
pub fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
