//! A lower bound on one iteration's pipeline phase from the schedule's programs alone:
//! every pass at its compute (and blocking collective) time, every transfer free, passes
//! in program order on their stage (relaxed where the schedule lets neighbours overlap)
//! and after the passes they need on other stages. Used by the plan search's cheap bound
//! for schedules whose bubble has no closed form here (zero-bubble, DualPipe).

use crate::parallel::schedule::{Pass, PassKind, PipelineShape};
use crate::parallel::Schedule;

/// What one pass costs at pass level, s.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PassCost {
    /// Time the pass keeps its GPU busy (compute and blocking collectives; the expert
    /// lanes' GEMMs, which run on other GPUs or at an unknown load here, not counted).
    pub gpu_s: f64,
    /// Length of its serial chain (`gpu_s` plus the wait for the busiest expert rank at
    /// each MoE layer), which the pass's queue is held for from its first operation to
    /// its last.
    pub chain_s: f64,
}

impl PassCost {
    /// A pass whose chain is its GPU time (no expert waits).
    #[cfg(test)]
    pub fn same(s: f64) -> PassCost {
        PassCost { gpu_s: s, chain_s: s }
    }
}

/// What the bound found: the pipeline phase's length with every stage starting at zero,
/// and each stage's busy time.
pub struct PassBound {
    /// End of the last pass, s.
    pub end_s: f64,
    /// Sum of each stage's pass times, s.
    pub busy_s: Vec<f64>,
    /// Per stage, the longest path from its first pass to the end of its last when only
    /// the first pass is anchored (every pass not downstream of it free to run at any
    /// earlier time): a lower bound on the stage's span whatever the other stages did
    /// before (computed on request, else empty).
    pub span_s: Vec<f64>,
}

/// Pass `i` of a stage's program at pass level: (its duration, what it adds to the
/// stage's busy time), per [`pass_bound`]'s rules. `overlapping`: neighbours overlap (the
/// all-to-all overlap without pairs).
pub fn pass_duration(prog: &[Pass], i: usize, cost: impl Fn(&Pass) -> PassCost, overlapping: bool) -> (f64, f64) {
    let c = cost(&prog[i]);
    if prog[i].with_previous && i > 0 {
        let a = cost(&prog[i - 1]);
        let rest = (a.gpu_s + c.gpu_s).max(a.chain_s).max(c.chain_s) - a.gpu_s;
        (rest, rest)
    } else if prog.get(i + 1).is_some_and(|q| q.with_previous) {
        (c.gpu_s, c.gpu_s)
    } else if overlapping {
        (c.chain_s, c.gpu_s)
    } else {
        (c.chain_s, c.chain_s)
    }
}

/// Runs the programs of `schedule` on `shape` with `time(kind, global chunk, micro-batch)`
/// per pass.
/// Every pass lasts at least its chain; a stage's busy time counts chains where its
/// passes hold one queue one after the other, GPU time where they may overlap.
/// `overlap_neighbours`: the MoE all-to-all overlap (a pass waits only for the passes two
/// and three before it and its queue's previous one; the stage is busy for the passes'
/// GPU time). The two passes of an overlapped pair (DualPipe) both wait for both inputs,
/// share the GPU, and the next group waits for both: run here one after the other, the
/// first for its GPU time and the second for the rest of `max(GPU A + GPU B, chain A,
/// chain B)`, the pair ends when the simulation's can at the earliest, and what it sends
/// leaves no later than the simulation's (which sends when both are done).
pub fn pass_bound(
    sched: Schedule,
    shape: &PipelineShape,
    overlap_neighbours: bool,
    spans: bool,
    time: impl Fn(PassKind, u32, u32) -> PassCost,
) -> PassBound {
    let pp = shape.pp as usize;
    let schedule = sched.get();
    let programs = sched.programs(shape);
    let n_chunks = schedule.model_chunks(shape);
    let m = shape.microbatches as usize;
    let mut offset = vec![0usize; pp + 1];
    for s in 0..pp {
        offset[s + 1] = offset[s] + programs[s].len();
    }
    let n = offset[pp];
    // node of the forward and of the input-gradient-carrying backward of (mb, chunk)
    let slot = |mb: u32, g: u32| mb as usize * n_chunks as usize + g as usize;
    let mut fwd = vec![u32::MAX; m * n_chunks as usize];
    let mut bwd = vec![u32::MAX; m * n_chunks as usize];
    let mut dur = vec![0.0f64; n];
    let mut busy = vec![0.0f64; pp];
    let paired = programs.iter().flatten().any(|p| p.with_previous);
    for (s, prog) in programs.iter().enumerate() {
        let cost = |p: &Pass| time(p.kind, schedule.global_chunk(s as u32, p.chunk, shape), p.microbatch);
        for (i, p) in prog.iter().enumerate() {
            let g = schedule.global_chunk(s as u32, p.chunk, shape);
            let id = (offset[s] + i) as u32;
            let (d, b) = pass_duration(prog, i, cost, overlap_neighbours && !paired);
            dur[id as usize] = d;
            busy[s] += b;
            if (p.microbatch as usize) < m && g < n_chunks {
                match p.kind {
                    PassKind::Forward => fwd[slot(p.microbatch, g)] = id,
                    PassKind::Backward | PassKind::BackwardInput => bwd[slot(p.microbatch, g)] = id,
                    PassKind::BackwardWeight => {}
                }
            }
        }
    }
    // edges (from, to)
    let mut edges: Vec<(u32, u32)> = Vec::with_capacity(3 * n);
    for (s, prog) in programs.iter().enumerate() {
        let id = |i: usize| (offset[s] + i) as u32;
        for (i, p) in prog.iter().enumerate() {
            if overlap_neighbours && !paired {
                for back in [2, 3] {
                    if i >= back {
                        edges.push((id(i - back), id(i)));
                    }
                }
                if let Some(j) = (0..i).rev().find(|&j| prog[j].kind.is_forward() == p.kind.is_forward()) {
                    edges.push((id(j), id(i)));
                }
            } else if i > 0 {
                edges.push((id(i - 1), id(i)));
            }
            // the pass it needs from another stage; a pair waits for both its inputs
            let input = |q: &Pass| {
                let g = schedule.global_chunk(s as u32, q.chunk, shape);
                let from = match q.kind {
                    PassKind::Forward if g > 0 => fwd.get(slot(q.microbatch, g - 1)),
                    PassKind::Backward | PassKind::BackwardInput if g + 1 < n_chunks => {
                        bwd.get(slot(q.microbatch, g + 1))
                    }
                    PassKind::Backward | PassKind::BackwardInput => fwd.get(slot(q.microbatch, g)),
                    PassKind::BackwardWeight => bwd.get(slot(q.microbatch, g)),
                    PassKind::Forward => None,
                };
                from.copied().filter(|&f| f != u32::MAX)
            };
            edges.extend(input(p).map(|f| (f, id(i))));
            let partner = if p.with_previous {
                i.checked_sub(1).map(|j| &prog[j])
            } else {
                prog.get(i + 1).filter(|q| q.with_previous)
            };
            if let Some(q) = partner.filter(|q| q.kind != PassKind::BackwardWeight) {
                edges.extend(input(q).filter(|&f| f != id(i)).map(|f| (f, id(i))));
            }
        }
    }
    // longest path (Kahn)
    let mut start_of = vec![0u32; n + 1];
    for &(a, _) in &edges {
        start_of[a as usize + 1] += 1;
    }
    for i in 0..n {
        start_of[i + 1] += start_of[i];
    }
    let mut succ = vec![0u32; edges.len()];
    let mut fill = start_of.clone();
    let mut indeg = vec![0u32; n];
    for &(a, b) in &edges {
        succ[fill[a as usize] as usize] = b;
        fill[a as usize] += 1;
        indeg[b as usize] += 1;
    }
    let mut ready: Vec<u32> = (0..n as u32).filter(|&i| indeg[i as usize] == 0).collect();
    let mut begin = vec![0.0f64; n];
    let mut end_s = 0.0f64;
    let mut order: Vec<u32> = Vec::with_capacity(n);
    while let Some(i) = ready.pop() {
        order.push(i);
        let e = begin[i as usize] + dur[i as usize];
        end_s = end_s.max(e);
        for k in start_of[i as usize]..start_of[i as usize + 1] {
            let j = succ[k as usize] as usize;
            begin[j] = begin[j].max(e);
            indeg[j] -= 1;
            if indeg[j] == 0 {
                ready.push(j as u32);
            }
        }
    }
    let span_s = if spans {
        // one longest-path sweep per stage, in topological order, from its first pass
        let mut pos = vec![0usize; n];
        for (k, &i) in order.iter().enumerate() {
            pos[i as usize] = k;
        }
        let mut reach = vec![f64::NEG_INFINITY; n];
        (0..pp)
            .map(|s| {
                if offset[s + 1] == offset[s] {
                    return 0.0;
                }
                let (first, last) = (offset[s], offset[s + 1] - 1);
                reach.iter_mut().for_each(|x| *x = f64::NEG_INFINITY);
                reach[first] = 0.0;
                for &i in &order[pos[first]..] {
                    let b = reach[i as usize];
                    if b == f64::NEG_INFINITY {
                        continue;
                    }
                    let e = b + dur[i as usize];
                    for k in start_of[i as usize]..start_of[i as usize + 1] {
                        let j = succ[k as usize] as usize;
                        reach[j] = reach[j].max(e);
                    }
                }
                (first..=last).map(|i| reach[i] + dur[i]).fold(busy[s], f64::max)
            })
            .collect()
    } else {
        Vec::new()
    };
    PassBound {
        end_s,
        busy_s: busy,
        span_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(pp: u32, m: u32) -> PipelineShape {
        PipelineShape {
            pp,
            microbatches: m,
            virtual_stages: 1,
            extra_warmup: 0,
        }
    }

    /// The pass-level closed forms: 1F1B `(m + p - 1)(F + B + W)`, ZB-H1's bubble
    /// `(p - 1)(F + B - W)`, DualPipe's `(PP/2 - 1)(F&B + B - 3W)`.
    #[test]
    fn pass_level_runs_match_the_closed_forms() {
        let (f, b, w) = (1.0, 1.0, 1.0);
        let t = |k: PassKind, _g: u32, _mb: u32| {
            PassCost::same(match k {
                PassKind::Forward => f,
                PassKind::Backward => b + w,
                PassKind::BackwardInput => b,
                PassKind::BackwardWeight => w,
            })
        };
        let (p, m) = (4u32, 8u32);
        let r = pass_bound(Schedule::ONE_F_ONE_B, &shape(p, m), false, true, t);
        // 1F1B's first stage waits for the first gradient: its span is the whole phase
        assert!((r.span_s[0] - r.end_s).abs() < 1e-9);
        assert!((r.end_s - ((m + p - 1) as f64) * (f + b + w)).abs() < 1e-9);
        let r = pass_bound(Schedule::ZERO_BUBBLE_H1, &shape(p, m), false, true, t);
        assert!(
            (r.end_s - m as f64 * (f + b + w) - (p - 1) as f64 * (f + b - w)).abs() < 1e-9,
            "{}",
            r.end_s
        );
        let (p, m) = (8u32, 20u32);
        let r = pass_bound(Schedule::DUALPIPE, &shape(p, m), false, false, t);
        let busy = r.busy_s[0];
        let bubble = (p as f64 / 2.0 - 1.0) * ((f + b + w) + (b + w) - 3.0 * w);
        assert!(r.busy_s.iter().all(|&x| (x - busy).abs() < 1e-9));
        // what a pair sends leaves here when its own pass is done: at most the formula
        assert!(r.end_s - busy <= bubble + 1e-9, "{} vs {}", r.end_s - busy, bubble);
        assert!(r.end_s - busy > 0.5 * bubble, "{} vs {}", r.end_s - busy, bubble);
    }
}
