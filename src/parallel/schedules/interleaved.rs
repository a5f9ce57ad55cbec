//! Megatron's interleaved 1F1B (Narayanan et al. 2021) with its current micro-batch rule:
//! micro-batches run in groups of `N` per model chunk (Megatron-Core's
//! `microbatch_group_size_per_vp_stage`, `pp` by default), so the micro-batch count need
//! not be a multiple of `pp`.

use crate::parallel::schedule::{one_f_one_b, Pass, PassKind, PipelineSchedule, PipelineShape};

/// Megatron's interleaved schedule over `virtual_stages` model chunks per stage.
pub(super) struct Interleaved;

/// The micro-batch group size `N`: `pp` when it divides the micro-batch count, else the
/// smallest `N` in `[pp, m]` whose last group is empty or holds at least `pp` micro-batches
/// (Megatron-Core's condition against dependency bubbles).
pub(super) fn group_size(pp: u32, m: u32) -> u32 {
    (pp..=m.max(pp)).find(|n| m % n == 0 || m % n >= pp).unwrap_or(m)
}

/// Megatron-Core's `get_schedule_table`: (micro-batch, chunk) of every virtual
/// micro-batch, groups of `n` micro-batches through every chunk in turn.
fn table(m: u32, v: u32, n: u32) -> Vec<(u32, u32)> {
    let mut t = Vec::with_capacity((m * v) as usize);
    let mut first = 0;
    while first < m {
        let end = if first + n >= m { m } else { first + n };
        for c in 0..v {
            t.extend((first..end).map(|mb| (mb, c)));
        }
        first = end;
    }
    t
}

impl PipelineSchedule for Interleaved {
    fn name(&self) -> &'static str {
        "interleaved"
    }

    fn check(&self, shape: &PipelineShape) -> Result<(), String> {
        if shape.virtual_stages < 2 {
            return Err("the interleaved schedule needs parallel.virtual_stages >= 2".into());
        }
        if shape.pp < 2 {
            return Err("the interleaved schedule needs pp >= 2".into());
        }
        if shape.microbatches < shape.pp {
            return Err(format!(
                "the interleaved schedule needs at least pp = {} micro-batches (there are {})",
                shape.pp, shape.microbatches
            ));
        }
        Ok(())
    }

    fn passes(&self, stage: u32, shape: &PipelineShape) -> Vec<Pass> {
        let (pp, v, m) = (shape.pp, shape.virtual_stages, shape.microbatches);
        let n = group_size(pp, m);
        let t = table(m, v, n);
        let total = m * v;
        let warmup = ((pp - stage - 1) * 2 + (v - 1) * n + shape.extra_warmup).min(total);
        one_f_one_b(
            total,
            warmup,
            |k| {
                let (mb, c) = t[k as usize];
                Pass::new(PassKind::Forward, mb, c)
            },
            |k| {
                let (mb, c) = t[k as usize];
                Pass::new(PassKind::Backward, mb, v - 1 - c)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{check_complete, shape};
    use super::super::Schedule;
    use super::*;

    /// With `m` a multiple of `pp` the table is the classic one: virtual micro-batch `k`
    /// runs chunk `(k / pp) % v` of micro-batch `(k / (pp v)) pp + k % pp`.
    #[test]
    fn multiples_of_pp_give_the_classic_order() {
        let (pp, v, m) = (4, 3, 12);
        assert_eq!(group_size(pp, m), pp);
        for (k, &(mb, c)) in table(m, v, pp).iter().enumerate() {
            let k = k as u32;
            assert_eq!((mb, c), ((k / (pp * v)) * pp + k % pp, (k / pp) % v));
        }
    }

    #[test]
    fn any_micro_batch_count_of_at_least_pp_runs() {
        // Megatron-Core's example: PP2, N3, M5, VP2
        assert_eq!(
            table(5, 2, 3),
            [
                (0, 0),
                (1, 0),
                (2, 0),
                (0, 1),
                (1, 1),
                (2, 1),
                (3, 0),
                (4, 0),
                (3, 1),
                (4, 1)
            ]
        );
        for (pp, m) in [(4, 10), (4, 6), (8, 9), (3, 7)] {
            let n = group_size(pp, m);
            assert!(m % n == 0 || m % n >= pp, "pp={pp} m={m} n={n}");
            let sh = shape(pp, m, 2);
            Schedule::INTERLEAVED.get().check(&sh).unwrap();
            for s in 0..pp {
                check_complete(Schedule::INTERLEAVED, s, &sh);
            }
        }
        assert!(Schedule::INTERLEAVED.get().check(&shape(4, 3, 2)).is_err());
    }
}
