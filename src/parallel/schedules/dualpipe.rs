//! DeepSeek's DualPipe and DualPipeV (deepseek-ai/DualPipe, `dualpipe.py` and
//! `dualpipev.py`; DeepSeek-V3 technical report, Section 3.2.1), transcribed step by step.
//!
//! * DualPipe: `pp` (even) stages; micro-batches enter from both ends, half of them
//!   through the model chunks on stages `0, 1, .., pp - 1` and half through the same
//!   chunks on stages `pp - 1, .., 0`, so every stage holds its own chunk (local chunk 0,
//!   forward direction) and its mirror stage's (local chunk 1): two copies of the
//!   parameters. In the steady state a forward chunk of one direction and a backward
//!   chunk of the other run as an overlapped pair ([`Pass::with_previous`]), so one's
//!   communication (MoE all-to-alls, pipeline sends) hides behind the other's compute.
//!   Part of the backward passes are split into B and W (zero-bubble style) to fill the
//!   warm-up and cool-down.
//! * DualPipeV: the same steps on a V (Sea AI Lab's cut-in-half variant): `pp` devices
//!   hold `2 pp` chunks, chunk `i` and `2 pp - 1 - i` each; all micro-batches go down and
//!   back up; one copy of the parameters.
//!
//! DeepSeek-V3 Table 2: bubble `(PP/2 - 1)(F&B + B - 3W)`, `PP + 1` chunk activations at
//! the peak, 2x parameters (DualPipe; DualPipeV the same on `PP/2` devices). The tests
//! compare the simulated runs with these.

use super::{v_global, v_locate, v_shape};
use crate::parallel::schedule::{Pass, PassKind, PipelineSchedule, PipelineShape};
use std::collections::VecDeque;

/// DualPipe.
pub(super) struct DualPipe;

/// DualPipeV.
pub(super) struct DualPipeV;

impl PipelineSchedule for DualPipe {
    fn name(&self) -> &'static str {
        "dualpipe"
    }

    fn check(&self, shape: &PipelineShape) -> Result<(), String> {
        if shape.virtual_stages != 1 && shape.virtual_stages != 2 {
            return Err(format!(
                "dualpipe holds two model chunks per stage (its own and its mirror stage's; virtual_stages = {} is not 2); leave parallel.virtual_stages unset",
                shape.virtual_stages
            ));
        }
        if shape.pp < 2 || shape.pp % 2 != 0 {
            return Err(format!("dualpipe needs an even pp of at least 2 (pp = {})", shape.pp));
        }
        let m = shape.microbatches;
        if m % 2 != 0 || m < 2 * shape.pp {
            return Err(format!(
                "dualpipe needs an even micro-batch count of at least 2 pp = {} (there are {m}; DualPipe feeds half from each end)",
                2 * shape.pp
            ));
        }
        Ok(())
    }

    fn chunks_per_stage(&self, _shape: &PipelineShape) -> u32 {
        2
    }

    fn model_chunks(&self, shape: &PipelineShape) -> u32 {
        shape.pp
    }

    fn global_chunk(&self, stage: u32, chunk: u32, shape: &PipelineShape) -> u32 {
        if chunk == 0 {
            stage
        } else {
            shape.pp - 1 - stage
        }
    }

    fn locate(&self, g: u32, microbatch: u32, shape: &PipelineShape) -> (u32, u32) {
        if microbatch < shape.microbatches / 2 || shape.microbatches < 2 {
            (g, 0)
        } else {
            (shape.pp - 1 - g, 1)
        }
    }

    fn parameter_copies(&self) -> u32 {
        2
    }

    fn passes(&self, stage: u32, shape: &PipelineShape) -> Vec<Pass> {
        let pp = shape.pp;
        let second_half = stage >= pp / 2;
        let half_rank = stage.min(pp - 1 - stage);
        let middle = stage == pp / 2 - 1 || stage == pp / 2;
        let half_m = shape.microbatches / 2;
        Steps {
            phase_to_chunk: u32::from(second_half),
            // direction `c` runs micro-batches c*m/2 .. (c+1)*m/2
            direction_offset: half_m,
            ..Steps::default()
        }
        .run(pp / 2, half_rank, middle, (half_m + half_rank + 1).saturating_sub(pp))
    }
}

impl PipelineSchedule for DualPipeV {
    fn name(&self) -> &'static str {
        "dualpipe_v"
    }

    fn check(&self, shape: &PipelineShape) -> Result<(), String> {
        v_shape(self.name(), shape)?;
        if shape.microbatches < 2 * shape.pp {
            return Err(format!(
                "dualpipe_v needs at least 2 pp = {} micro-batches (there are {})",
                2 * shape.pp,
                shape.microbatches
            ));
        }
        Ok(())
    }

    fn chunks_per_stage(&self, _shape: &PipelineShape) -> u32 {
        2
    }

    fn global_chunk(&self, stage: u32, chunk: u32, shape: &PipelineShape) -> u32 {
        v_global(stage, chunk, shape.pp)
    }

    fn locate(&self, g: u32, _microbatch: u32, shape: &PipelineShape) -> (u32, u32) {
        v_locate(g, shape.pp)
    }

    fn passes(&self, stage: u32, shape: &PipelineShape) -> Vec<Pass> {
        let pp = shape.pp;
        let m = shape.microbatches;
        Steps::default().run(pp, stage, stage == pp - 1, (m + stage + 1).saturating_sub(2 * pp))
    }
}

/// The program being written: DualPipe's `_forward_chunk`, `_backward_chunk`,
/// `_forward_backward_chunk` and `_weight_chunk` as passes.
#[derive(Default)]
struct Steps {
    out: Vec<Pass>,
    /// Phase-to-chunk flip (DualPipe's second half of the ranks sees the directions
    /// swapped); 0 for DualPipeV.
    phase_to_chunk: u32,
    /// Micro-batch offset of local chunk 1's direction (DualPipe), 0 when both chunks see
    /// the same micro-batches (DualPipeV).
    direction_offset: u32,
    forwards: [u32; 2],
    backwards: [u32; 2],
    /// Postponed W passes (DualPipe's `WeightGradStore`, FIFO).
    weights: VecDeque<(u32, u32)>,
}

impl Steps {
    fn chunk(&self, phase: u32) -> u32 {
        phase ^ self.phase_to_chunk
    }

    fn forward(&mut self, phase: u32) {
        let c = self.chunk(phase);
        let mb = c * self.direction_offset + self.forwards[c as usize];
        self.forwards[c as usize] += 1;
        self.out.push(Pass::new(PassKind::Forward, mb, c));
    }

    /// A backward chunk; with `zero_bubble` its W is postponed.
    fn backward(&mut self, phase: u32, zero_bubble: bool) {
        let c = self.chunk(phase);
        let mb = c * self.direction_offset + self.backwards[c as usize];
        self.backwards[c as usize] += 1;
        if zero_bubble {
            self.out.push(Pass::new(PassKind::BackwardInput, mb, c));
            self.weights.push_back((mb, c));
        } else {
            self.out.push(Pass::new(PassKind::Backward, mb, c));
        }
    }

    /// A forward of `f` overlapped with a (fused) backward of `b`.
    fn forward_backward(&mut self, f: u32, b: u32) {
        self.forward(f);
        self.backward(b, false);
        let last = self.out.last_mut().expect("just pushed");
        *last = last.overlapped();
    }

    fn weight(&mut self) {
        let (mb, c) = self.weights.pop_front().expect("a postponed W pass");
        self.out.push(Pass::new(PassKind::BackwardWeight, mb, c));
    }

    /// DualPipe's eight steps for a rank at `half_rank` of `half_ranks` (DualPipeV: its
    /// rank of `pp`), `middle` the ranks whose first main-step pair is not overlapped,
    /// `main` the main step's count.
    fn run(mut self, half_ranks: u32, half_rank: u32, middle: bool, main: u32) -> Vec<Pass> {
        let outer = half_ranks - half_rank - 1;
        // 1: nF0
        for _ in 0..2 * outer {
            self.forward(0);
        }
        // 2: nF0F1
        for _ in 0..=half_rank {
            self.forward(0);
            self.forward(1);
        }
        // 3: nB1W1F1 (zero bubble)
        for _ in 0..outer {
            self.backward(1, true);
            self.weight();
            self.forward(1);
        }
        // 4: nF0B1F1B0 (main step)
        for i in 0..main {
            if i == 0 && middle {
                // not overlapped, to shrink the bubble
                self.forward(0);
                self.backward(1, false);
            } else {
                self.forward_backward(0, 1);
            }
            self.forward_backward(1, 0);
        }
        // 5: nB1F1B0
        for _ in 0..outer {
            self.backward(1, false);
            self.forward_backward(1, 0);
        }
        // 6: nB1B0, the second half with zero bubble
        let steps = half_rank + 1;
        let mut zb = false;
        for i in 0..steps {
            if i == steps / 2 && half_rank % 2 == 1 {
                zb = true;
            }
            self.backward(1, zb);
            if i == steps / 2 && half_rank % 2 == 0 {
                zb = true;
            }
            self.backward(0, zb);
        }
        // 7: nWB0 (zero bubble)
        for _ in 0..outer {
            self.weight();
            self.backward(0, true);
        }
        // 8: nW
        for _ in 0..=half_rank {
            self.weight();
        }
        debug_assert!(self.weights.is_empty(), "every postponed W runs");
        self.out
    }
}
