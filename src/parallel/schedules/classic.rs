//! GPipe and 1F1B: one model chunk per stage, fused backward passes.

use super::single_chunk;
use crate::parallel::schedule::{one_f_one_b, Pass, PassKind, PipelineSchedule, PipelineShape};

/// GPipe: all forwards, then all backwards.
pub(super) struct Gpipe;

impl PipelineSchedule for Gpipe {
    fn name(&self) -> &'static str {
        "gpipe"
    }

    fn check(&self, shape: &PipelineShape) -> Result<(), String> {
        single_chunk(self.name(), shape)
    }

    fn passes(&self, _stage: u32, shape: &PipelineShape) -> Vec<Pass> {
        let m = shape.microbatches;
        (0..m)
            .map(|i| Pass::new(PassKind::Forward, i, 0))
            .chain((0..m).map(|i| Pass::new(PassKind::Backward, i, 0)))
            .collect()
    }
}

/// 1F1B: `pp - stage - 1` warm-up forwards, then one forward and one backward in turn.
pub(super) struct OneFOneB;

impl PipelineSchedule for OneFOneB {
    fn name(&self) -> &'static str {
        "1f1b"
    }

    fn check(&self, shape: &PipelineShape) -> Result<(), String> {
        single_chunk(self.name(), shape)
    }

    fn passes(&self, stage: u32, shape: &PipelineShape) -> Vec<Pass> {
        let m = shape.microbatches;
        let warmup = (shape.pp - stage - 1 + shape.extra_warmup).min(m);
        one_f_one_b(
            m,
            warmup,
            |k| Pass::new(PassKind::Forward, k, 0),
            |k| Pass::new(PassKind::Backward, k, 0),
        )
    }
}
