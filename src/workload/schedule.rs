//! Pipeline schedules: the order in which one pipeline rank runs its forward and backward
//! passes over micro-batches and model chunks (GPipe, 1F1B, Megatron's interleaved 1F1B).

use crate::parallel::Schedule;

/// One pass of one micro-batch through one model chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    /// Micro-batch index.
    pub microbatch: u32,
    /// Model chunk held by this rank (0..virtual_stages).
    pub chunk: u32,
    /// Forward (true) or backward.
    pub forward: bool,
}

/// The pass order of pipeline rank `stage` of `pp`, with `m` micro-batches and `v` chunks.
pub fn pass_order(schedule: Schedule, stage: u32, pp: u32, m: u32, v: u32) -> Vec<Pass> {
    pass_order_with_warmup(schedule, stage, pp, m, v, 0)
}

/// [`pass_order`] with `extra` more warm-up forwards for 1F1B and interleaved schedules
/// (one more micro-batch in flight per extra forward).
pub fn pass_order_with_warmup(schedule: Schedule, stage: u32, pp: u32, m: u32, v: u32, extra: u32) -> Vec<Pass> {
    match schedule {
        Schedule::Gpipe => {
            let mut out: Vec<Pass> = (0..m)
                .map(|i| Pass {
                    microbatch: i,
                    chunk: 0,
                    forward: true,
                })
                .collect();
            out.extend((0..m).map(|i| Pass {
                microbatch: i,
                chunk: 0,
                forward: false,
            }));
            out
        }
        Schedule::OneFOneB => {
            let warmup = (pp - stage - 1 + extra).min(m);
            let mut out = Vec::with_capacity(2 * m as usize);
            let (mut f, mut b) = (0, 0);
            for _ in 0..warmup {
                out.push(Pass {
                    microbatch: f,
                    chunk: 0,
                    forward: true,
                });
                f += 1;
            }
            while f < m {
                out.push(Pass {
                    microbatch: f,
                    chunk: 0,
                    forward: true,
                });
                f += 1;
                out.push(Pass {
                    microbatch: b,
                    chunk: 0,
                    forward: false,
                });
                b += 1;
            }
            while b < m {
                out.push(Pass {
                    microbatch: b,
                    chunk: 0,
                    forward: false,
                });
                b += 1;
            }
            out
        }
        Schedule::Interleaved => interleaved(stage, pp, m, v, extra),
    }
}

/// Megatron's interleaved schedule (Narayanan et al. 2021): virtual micro-batch `k` runs
/// chunk `(k / pp) % v` on micro-batch `(k / (pp v)) pp + k % pp`; backward chunks run in
/// reverse. Warm-up is `2 (pp - stage - 1) + (v - 1) pp` forwards.
fn interleaved(stage: u32, pp: u32, m: u32, v: u32, extra: u32) -> Vec<Pass> {
    let total = m * v;
    let warmup = ((pp - stage - 1) * 2 + (v - 1) * pp + extra).min(total);
    let fwd = |k: u32| Pass {
        microbatch: (k / (pp * v)) * pp + k % pp,
        chunk: (k / pp) % v,
        forward: true,
    };
    let bwd = |k: u32| Pass {
        microbatch: (k / (pp * v)) * pp + k % pp,
        chunk: v - 1 - (k / pp) % v,
        forward: false,
    };
    let mut out = Vec::with_capacity(2 * total as usize);
    let (mut f, mut b) = (0, 0);
    for _ in 0..warmup {
        out.push(fwd(f));
        f += 1;
    }
    while f < total {
        out.push(fwd(f));
        f += 1;
        out.push(bwd(b));
        b += 1;
    }
    while b < total {
        out.push(bwd(b));
        b += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_complete(order: &[Pass], m: u32, v: u32) {
        for fwd in [true, false] {
            let mut seen: Vec<(u32, u32)> = order
                .iter()
                .filter(|p| p.forward == fwd)
                .map(|p| (p.microbatch, p.chunk))
                .collect();
            seen.sort_unstable();
            let want: Vec<(u32, u32)> = (0..m).flat_map(|i| (0..v).map(move |c| (i, c))).collect();
            assert_eq!(seen, want);
        }
        // a backward never precedes its own forward
        for (i, p) in order.iter().enumerate().filter(|(_, p)| !p.forward) {
            assert!(order[..i]
                .iter()
                .any(|q| q.forward && q.microbatch == p.microbatch && q.chunk == p.chunk));
        }
    }

    #[test]
    fn every_schedule_runs_each_pass_exactly_once() {
        for pp in [1, 2, 4, 8] {
            for stage in 0..pp {
                for m in [pp, 2 * pp, 3 * pp] {
                    check_complete(&pass_order(Schedule::Gpipe, stage, pp, m, 1), m, 1);
                    check_complete(&pass_order(Schedule::OneFOneB, stage, pp, m, 1), m, 1);
                    if pp > 1 {
                        check_complete(&pass_order(Schedule::Interleaved, stage, pp, m, 3), m, 3);
                    }
                }
            }
        }
    }

    #[test]
    fn one_f_one_b_warmup_depth_is_pp_minus_stage_minus_one() {
        let o = pass_order(Schedule::OneFOneB, 1, 4, 8, 1);
        let first_b = o.iter().position(|p| !p.forward).unwrap();
        assert_eq!(first_b, (4 - 1 - 1) + 1);
        assert!(o[..first_b].iter().all(|p| p.forward));
    }
}
