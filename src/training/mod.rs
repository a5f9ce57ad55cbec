//! What is being trained: global batch, sequence length and numeric precision.
//!
//! Training to a target builds on the simulated step: [`convergence`] (tokens and steps
//! to a loss), [`reliability`] (failures and checkpoints), [`energy`] (power, CO2e, cost),
//! combined by [`outcome()`].

pub mod convergence;
pub mod energy;
pub mod montecarlo;
pub mod outcome;
pub mod reliability;

pub use outcome::{outcome, Target, TrainingGoal, TrainingOutcome};

use crate::hardware::Precision;
use serde::{Deserialize, Serialize};

/// Training-step parameters that do not depend on the parallel plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingSpec {
    /// Sequences per optimizer step.
    pub global_batch_size: u32,
    /// Tokens per sequence.
    pub seq_length: u32,
    /// GEMM precision.
    pub precision: Precision,
    /// Fused (flash) attention kernels; false models the unfused attention of 2022-era
    /// Megatron (score matrix materialised in HBM).
    pub flash_attention: bool,
}

/// A simulated step, as training to a target needs it (stage means, s per step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimulatedStep {
    /// Step time, s.
    pub step_time_s: f64,
    /// Tokens per step.
    pub tokens_per_step: f64,
    /// GPU compute of every phase, s.
    pub compute_s: f64,
    /// Communication not hidden behind compute, synchronisation included, s (the rest of
    /// the step is idle).
    pub exposed_comm_s: f64,
    /// Extra optimizer steps to a target loss, fraction (gradient compression's
    /// convergence penalty; 0 without one).
    pub extra_steps_fraction: f64,
}

impl TrainingSpec {
    /// Tokens per optimizer step.
    pub fn tokens_per_step(&self) -> f64 {
        self.global_batch_size as f64 * self.seq_length as f64
    }
}
