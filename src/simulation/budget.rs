//! The resource guard: before a workload is built, an estimate of the operations it will
//! hold (and so of its memory and run time); past `simulation.max_operations` the run is
//! refused with what to change, instead of allocating gigabytes or running for minutes.
//!
//! The estimate counts, per iteration, every layer's passes of every micro-batch (with
//! the extra operations tensor, context and expert parallelism add per layer), pipeline
//! sends, gradient buckets and the per-GPU straggler draws. A test holds it within 3x of
//! the operations actually built for every shipped scenario.

use super::{RunInput, SimError};
use crate::parallel::cp::CpCommType;

/// Operations a run may build unless `simulation.max_operations` raises it: about
/// 1.2 GB and 10 s of simulation on one core.
pub const DEFAULT_MAX_OPERATIONS: u64 = 8_000_000;

/// Memory per operation of a built and simulated workload, bytes (peak RSS over operations
/// of the shipped scenarios: DeepSeek-V3 2,048 GPUs, 302 MB for 2.07 M operations).
pub const BYTES_PER_OPERATION: f64 = 150.0;

/// The operations the workload of `input` will hold, estimated from its shape.
pub fn estimated_operations(input: &RunInput) -> u64 {
    let p = &input.plan;
    let m = &input.model;
    let iterations = u64::from(input.iterations.max(input.warmup_iterations + 1));
    let per_step = (u64::from(p.dp) * u64::from(p.micro_batch_size)).max(1);
    let microbatches = (u64::from(input.training.global_batch_size) / per_step).max(1);
    let layers = u64::from(m.num_layers) + u64::from(m.mtp_modules);
    let mut per_layer_pass = 3;
    if p.tp > 1 {
        per_layer_pass += 4;
    }
    if p.cp > 1 {
        // a ring sends once per peer and pass; the others are one collective or two
        per_layer_pass += match p.cp_comm_type {
            CpCommType::P2p => 2 * u64::from(p.cp),
            CpCommType::A2aP2p => 2 * u64::from(p.cp / p.cp_a2a_size.max(1)) + 2,
            CpCommType::AllGather | CpCommType::A2a => 4,
        };
    }
    // MoE layers: dispatch and combine, and one expert operation per expert lane when
    // routing is not balanced (each rank of an EP group then runs its own expert time)
    let moe_layers_ops = match &m.moe {
        Some(moe) => {
            let lanes = if input.routing.is_balanced() {
                0
            } else {
                u64::from(p.ep)
            };
            u64::from(m.num_layers.saturating_sub(moe.first_dense_layers)) * (8 + lanes)
        }
        None => 0,
    };
    let stages = u64::from(p.pp) * u64::from(p.virtual_stages);
    let passes = 2 * microbatches * (layers * per_layer_pass + moe_layers_ops + 2 * stages);
    let buckets = (m.total_params() / p.grad_bucket_params.max(1.0)).min(1e15) as u64 + stages;
    let jitter_draws = if input.stragglers.step_jitter_fraction > 0.0 {
        u64::from(input.cluster.num_gpus) / 16
    } else {
        0
    };
    iterations.saturating_mul(passes + 4 * buckets + jitter_draws)
}

/// Refuses `input` when its workload, simulated `replicas` times, would exceed `limit`
/// operations (or the simulation's 32-bit operation ids).
pub fn check(input: &RunInput, replicas: u32, limit: u64) -> Result<(), SimError> {
    let operations = estimated_operations(input).saturating_mul(u64::from(replicas.max(1)));
    let limit = limit.min(u64::from(u32::MAX) / 4);
    if operations <= limit {
        return Ok(());
    }
    Err(SimError::TooLarge {
        replicas: replicas.max(1),
        operations,
        limit,
        gbyte: operations as f64 * BYTES_PER_OPERATION / 1e9,
    })
}
