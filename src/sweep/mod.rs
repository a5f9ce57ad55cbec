//! Parameter sweeps: a grid over any scenario field, run in parallel across points with
//! results streamed in point order (identical for any thread count), resumable and
//! shardable across machines.
//!
//! Owns: sweep files ([`spec`]), filter expressions ([`expr`]) and execution and output
//! ([`run`]). Parallelism lives here only, across points; each simulation is sequential.

pub mod charts;
pub mod columns;
mod draw_bound;
pub mod expr;
pub mod merge;
pub mod pareto;
mod pass_bound;
pub mod run;
pub mod search;
mod search_bounds;
mod search_hetero;
pub mod search_table;
pub mod spec;
pub mod table;

pub use merge::merge_csv;
pub use run::{run_sweep, SweepOptions, SweepOutcome};
pub use spec::{SweepError, SweepSpec, DEFAULT_MAX_POINTS};
