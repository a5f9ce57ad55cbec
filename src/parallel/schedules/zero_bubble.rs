//! Zero Bubble's handcrafted schedules ZB-H1 and ZB-H2 (Qi et al., ICLR 2024, Section 3):
//! 1F1B's order of forwards and input-gradient passes (B), with every weight-gradient pass
//! (W) postponed while the stage may still receive a B from downstream, so that W fills
//! what would be bubbles.
//!
//! * ZB-H1: 1F1B's warm-up (`p - i` forwards on stage `i`, 1-based, counting the first
//!   steady one) and at most `i - 1` postponed W passes: peak activation `(p - i + 1) M_B +
//!   (i - 1) M_W` (1F1B's memory), bubble `(p - 1)(T_F + T_B - T_W)`.
//! * ZB-H2: `2 (p - i)` warm-up forwards and at most `2 i - 2` postponed W passes: peak
//!   `(2p - 2i + 1) M_B + (2i - 2) M_W`, bubble `(p - 1)(T_F + T_B - 2 T_W)` (none when the
//!   three passes take the same time).
//!
//! The paper runs them with its optimizer post-validation (`parallel.optimizer_post_validation`:
//! no gradient-norm barrier before the optimizer step, so that a stage moves on to the next
//! iteration when its own passes are done). The bubbles are the simulation's; the formulas
//! are what the tests compare with.

use super::single_chunk;
use crate::parallel::schedule::{Pass, PassKind, PipelineSchedule, PipelineShape};

/// ZB-H1.
pub(super) struct ZeroBubbleH1;

/// ZB-H2.
pub(super) struct ZeroBubbleH2;

/// The program of stage `stage`: `warmup` forwards, then F and B in turn (B alone once the
/// forwards are done), each B followed by the oldest pending W once more than `postponed`
/// are pending; the remaining W passes at the end.
fn program(shape: &PipelineShape, warmup: u32, postponed: u32) -> Vec<Pass> {
    let m = shape.microbatches;
    let warmup = warmup.min(m);
    let mut out = Vec::with_capacity(3 * m as usize);
    let mut pending = std::collections::VecDeque::new();
    let mut f = 0;
    while f < warmup {
        out.push(Pass::new(PassKind::Forward, f, 0));
        f += 1;
    }
    for b in 0..m {
        if f < m {
            out.push(Pass::new(PassKind::Forward, f, 0));
            f += 1;
        }
        out.push(Pass::new(PassKind::BackwardInput, b, 0));
        pending.push_back(b);
        if pending.len() as u32 > postponed {
            let w = pending.pop_front().expect("pending W");
            out.push(Pass::new(PassKind::BackwardWeight, w, 0));
        }
    }
    out.extend(pending.into_iter().map(|w| Pass::new(PassKind::BackwardWeight, w, 0)));
    out
}

fn check(name: &str, shape: &PipelineShape) -> Result<(), String> {
    single_chunk(name, shape)?;
    if shape.pp < 2 {
        return Err(format!("{name} needs pp >= 2 (it reorders a pipeline's passes)"));
    }
    Ok(())
}

impl PipelineSchedule for ZeroBubbleH1 {
    fn name(&self) -> &'static str {
        "zero_bubble_h1"
    }

    fn check(&self, shape: &PipelineShape) -> Result<(), String> {
        check(self.name(), shape)
    }

    fn passes(&self, stage: u32, shape: &PipelineShape) -> Vec<Pass> {
        program(shape, shape.pp - stage - 1 + shape.extra_warmup, stage)
    }
}

impl PipelineSchedule for ZeroBubbleH2 {
    fn name(&self) -> &'static str {
        "zero_bubble_h2"
    }

    fn check(&self, shape: &PipelineShape) -> Result<(), String> {
        check(self.name(), shape)
    }

    fn passes(&self, stage: u32, shape: &PipelineShape) -> Vec<Pass> {
        program(shape, 2 * (shape.pp - stage - 1) + shape.extra_warmup, 2 * stage)
    }
}
