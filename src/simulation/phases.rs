//! Runs whose steps differ: gradient compression with an uncompressed warm-up (1-bit
//! Adam/LAMB) or steps without any exchange (0/1 Adam's local steps). The main run
//! simulates the compressed steps (its `step_time_s` and breakdown are theirs); each other
//! phase is simulated on its own, and the run's mean step time weighs every phase by its
//! fraction of the steps. Time to a target uses that mean and the method's convergence
//! penalty.

use super::SimError;
use crate::workload::wire::{CommSpec, GradPhase, Method, WireDtype};
use crate::workload::CommKind;
use serde::{Deserialize, Serialize};

/// One phase of a compressed run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseResult {
    /// What its steps do with the gradients.
    pub phase: GradPhase,
    /// Fraction of the run's steps.
    pub steps_fraction: f64,
    /// Mean step time, s.
    pub step_time_s: f64,
    /// Gradient bytes per GPU per step.
    pub dp_grad_bytes_per_step_per_gpu: f64,
}

/// What the wire's element types and gradient compression did to a run (absent when every
/// kind is BF16 and nothing is compressed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommResult {
    /// Compression method (`none`, `onebit_adam`, ...).
    pub method: String,
    /// Element type on the wire per communication kind, e.g. `dp_grad = "fp8"`.
    pub wire_dtype: std::collections::BTreeMap<String, String>,
    /// Phases of the run, the compressed one first.
    pub phases: Vec<PhaseResult>,
    /// Step time averaged over the run's phases, s.
    pub mean_step_time_s: f64,
    /// Extra optimizer steps to a target loss, fraction (convergence penalty).
    pub extra_steps_fraction: f64,
}

/// The compression summary of a run under `comm` whose compressed steps took
/// `step_time_s` and moved `dp_grad_bytes` per GPU and step; `simulate_phase` gives the
/// mean step time and gradient bytes of the steps of another phase.
pub fn comm_result(
    comm: &CommSpec,
    step_time_s: f64,
    dp_grad_bytes: f64,
    mut simulate_phase: impl FnMut(GradPhase) -> Result<(f64, f64), SimError>,
) -> Result<Option<CommResult>, SimError> {
    let plain = comm.compression.method == Method::None;
    if plain && comm.dtype.iter().all(|d| *d == WireDtype::Bf16) {
        return Ok(None);
    }
    let mut phases = Vec::new();
    for (phase, f) in comm.phases() {
        let (t, bytes) = if phase == GradPhase::Compressed {
            (step_time_s, dp_grad_bytes)
        } else {
            simulate_phase(phase)?
        };
        phases.push(PhaseResult {
            phase,
            steps_fraction: f,
            step_time_s: t,
            dp_grad_bytes_per_step_per_gpu: bytes,
        });
    }
    Ok(Some(CommResult {
        method: comm.compression.method.info().name.into(),
        wire_dtype: CommKind::ALL
            .iter()
            .map(|&k| (k.name().to_string(), comm.dtype[k.index()].name().to_string()))
            .collect(),
        mean_step_time_s: phases.iter().map(|p| p.steps_fraction * p.step_time_s).sum(),
        phases,
        extra_steps_fraction: comm.compression.extra_steps_fraction,
    }))
}
