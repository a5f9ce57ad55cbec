//! Zero Bubble's ZB-V (Qi et al., ICLR 2024, and the sail-sg/zero-bubble-pipeline-parallelism
//! repository, `scheduler/zbv.py`): every stage holds two model chunks in a V (chunk `i`
//! going down and chunk `2p - 1 - i` coming back, so the first stage holds the first and
//! the last chunk), backward split into B and W.
//!
//! The program is the repository's greedy V scheduler run on equal pass times (F = B = W,
//! the case where ZB-V has no bubble, with its activation limit of `2p` chunk activations,
//! i.e. 1F1B's `p M_B`): it places forwards and backwards as early as their inputs allow
//! and fills waits with pending W passes, retrying while the worst stage's bubble shrinks.
//! The order it finds is then run by the simulation with the real costs.

use super::{v_global, v_locate, v_shape};
use crate::parallel::schedule::{Pass, PassKind, PipelineSchedule, PipelineShape};
use std::collections::VecDeque;

/// ZB-V.
pub(super) struct ZeroBubbleV;

impl PipelineSchedule for ZeroBubbleV {
    fn name(&self) -> &'static str {
        "zero_bubble_v"
    }

    fn check(&self, shape: &PipelineShape) -> Result<(), String> {
        v_shape(self.name(), shape)
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
        self.programs(shape).swap_remove(stage as usize)
    }

    fn programs(&self, shape: &PipelineShape) -> Vec<Vec<Pass>> {
        greedy(shape.pp as usize, shape.microbatches as usize)
    }
}

/// Per stage, the scheduled (kind, chunk, micro-batch) triples.
type Timetable = Vec<Vec<(u8, u8, u32)>>;

/// Pass costs (F, B, W) and the stage-to-stage send of the scheduler, in its units.
const COST: [i64; 3] = [1000, 1000, 1000];
const COMM: i64 = 1;
/// Activation of a forward (M_B = 34 s b h), what a B releases (M_B - M_W, M_W = 32 s b h
/// kept for W) and what a W releases, per chunk (Zero Bubble Table 1, flash attention).
const MEM: [i64; 3] = [34, -2, -32];

/// The scheduler's state for one attempt. Passes are (category: 0 F, 1 B, 2 W; chunk in
/// the scheduler's numbering: forwards 0 down / 1 up, backwards 0 for the up chunk (which
/// runs first) and 1 for the down chunk; micro-batch).
struct Attempt {
    n_stage: usize,
    n_micro: usize,
    count: Vec<[usize; 6]>,
    end_time: Vec<i64>,
    cur_time: Vec<i64>,
    mem: Vec<i64>,
    stage_bubble: Vec<i64>,
    pending_w: Vec<VecDeque<usize>>,
    schedule: Timetable,
    approved: Vec<i64>,
    max_approved: i64,
}

impl Attempt {
    fn id(&self, cat: usize, chunk: usize, stage: usize, micro: usize) -> usize {
        ((cat * 2 + chunk) * self.n_stage + stage) * self.n_micro + micro
    }

    fn max_stage_bubble(&self, stage: Option<usize>) -> i64 {
        let m = self.stage_bubble.iter().copied().fold(0, i64::max);
        match stage {
            Some(s) => m.max(self.max_approved - self.approved[s]),
            None => m,
        }
    }

    fn end(&self, cat: usize, chunk: usize, stage: usize, micro: usize) -> i64 {
        self.end_time[self.id(cat, chunk, stage, micro)]
    }

    fn put_w(&mut self, stage: usize) {
        let chunk = self.pending_w[stage].pop_front().expect("a pending W pass");
        self.put(2, chunk, stage);
    }

    fn put(&mut self, cat: usize, chunk: usize, stage: usize) {
        let no_bubble = self.cur_time[stage] + COST[cat];
        let mut t = no_bubble;
        let cnt = self.count[stage][cat * 2 + chunk];
        debug_assert!(cnt < self.n_micro && self.mem[stage] + MEM[cat] <= self.max_mem());
        if chunk == 1 && cat < 2 && stage + 1 < self.n_stage {
            t = t.max(self.end(cat, chunk, stage + 1, cnt) + COMM + COST[cat]);
        }
        if chunk == 0 && cat < 2 && stage > 0 {
            t = t.max(self.end(cat, chunk, stage - 1, cnt) + COMM + COST[cat]);
        }
        let id = self.id(cat, chunk, stage, cnt);
        if self.count[stage][0] > 0 {
            self.stage_bubble[stage] += t - no_bubble;
        }
        self.end_time[id] = t;
        self.cur_time[stage] = t;
        self.mem[stage] += MEM[cat];
        self.schedule[stage].push((cat as u8, chunk as u8, cnt as u32));
        if cat == 1 {
            self.pending_w[stage].push_back(chunk);
        }
        self.count[stage][cat * 2 + chunk] += 1;
    }

    fn max_mem(&self) -> i64 {
        MEM[0] * self.n_stage as i64 * 2
    }

    /// Fills bubbles with pending W passes before a pass waiting on `fa` (-1: none).
    fn fill_w(&mut self, i: usize, fa: Option<(usize, usize, usize, usize)>, fill: bool) {
        let e = match fa {
            Some((cat, chunk, st, mb)) => {
                let e = self.end(cat, chunk, st, mb);
                while !self.pending_w[i].is_empty() && e + COMM >= self.cur_time[i] + COST[2] {
                    self.put_w(i);
                }
                e
            }
            // no pass to wait for: the Python original reads `end_time[-1]`, the last node
            None => *self.end_time.last().expect("nodes"),
        };
        if fill
            && !self.pending_w[i].is_empty()
            && e + COMM - self.cur_time[i] > self.max_stage_bubble(Some(i)) - self.stage_bubble[i]
        {
            self.put_w(i);
        }
    }

    fn run(&mut self, fill_f: bool, fill_b: bool) {
        let (ns, nm) = (self.n_stage, self.n_micro);
        for i in 0..ns {
            self.put(0, 0, i);
        }
        for i in (0..ns).rev() {
            if i == ns - 1 {
                self.put(0, 1, i);
                continue;
            }
            let tmp = self.end(0, 1, i + 1, 0) + COMM;
            while self.mem[i] + MEM[0] * (2 + 2 * i as i64) <= self.max_mem()
                && self.cur_time[i] + COST[0] <= tmp
                && self.count[i][0] < nm
            {
                for j in 0..=i {
                    self.put(0, 0, j);
                }
            }
            self.put(0, 1, i);
        }
        let mut iter_chunk = 0;
        for i in 1..ns {
            while self.count[i][0] + self.count[i][1] < self.count[i - 1][0] + self.count[i - 1][1]
                || (self.count[i][1] <= self.count[i - 1][1] && self.count[i - 1][1] < nm)
            {
                for j in (i..ns).rev() {
                    if self.count[j][iter_chunk] < nm {
                        self.put(0, iter_chunk, j);
                    }
                }
                iter_chunk = 1 - iter_chunk;
            }
        }
        for _ in 0..2 * nm {
            for i in 0..ns {
                while self.mem[i] + MEM[1] > self.max_mem() {
                    self.put_w(i);
                }
            }
            let (mut b0, mut b1) = (Vec::new(), Vec::new());
            for i in 0..ns {
                if self.count[i][3] >= self.count[i][2] {
                    b0.push(i);
                } else if i == ns - 1 || self.end(1, 1, i + 1, self.count[i][3]) >= 0 || self.count[i][2] >= nm {
                    b1.push(i);
                } else {
                    b0.push(i);
                }
            }
            let order: Vec<(usize, usize)> = b1
                .iter()
                .rev()
                .map(|&i| (i, 1))
                .chain(b0.iter().map(|&i| (i, 0)))
                .collect();
            for (i, chunk) in order {
                let fa = if chunk == 1 && i + 1 < ns {
                    Some((1, 1, i + 1, self.count[i][3]))
                } else if chunk == 0 && i > 0 {
                    Some((1, 0, i - 1, self.count[i][2]))
                } else {
                    None
                };
                self.fill_w(i, fa, chunk == 1 || fill_b);
                self.put(1, chunk, i);
            }
            for i in 0..ns {
                if self.count[i][1] >= nm {
                    continue;
                }
                let item = if self.count[i][1] >= self.count[i][0] {
                    Some(0)
                } else if i == ns - 1 || self.end(0, 1, i + 1, self.count[i][1]) >= 0 {
                    Some(1)
                } else if self.count[i][0] < nm && (i == 0 || self.end(0, 0, i - 1, self.count[i][0]) >= 0) {
                    Some(0)
                } else {
                    None
                };
                let Some(item) = item else { continue };
                while self.mem[i] + MEM[0] > self.max_mem() {
                    self.put_w(i);
                }
                let fa = if item == 0 && i > 0 {
                    Some((0, 0, i - 1, self.count[i][0]))
                } else if item == 1 && i + 1 < ns {
                    Some((0, 1, i + 1, self.count[i][1]))
                } else {
                    None
                };
                self.fill_w(i, fa, fill_f);
                self.put(0, item, i);
            }
        }
        for i in 0..ns {
            while !self.pending_w[i].is_empty() {
                self.put_w(i);
            }
        }
    }
}

/// One attempt, retried with its per-stage bubbles as the approved ones while the worst
/// bubble shrinks: (schedule, worst stage bubble).
fn attempt(ns: usize, nm: usize, fill_f: bool, fill_b: bool, approved: Option<Vec<i64>>) -> (Timetable, i64) {
    let approved = approved.unwrap_or_else(|| vec![-1; ns]);
    let max_approved = approved.iter().copied().max().unwrap_or(-1);
    let mut a = Attempt {
        n_stage: ns,
        n_micro: nm,
        count: vec![[0; 6]; ns],
        end_time: vec![-1; 6 * ns * nm],
        cur_time: vec![0; ns],
        mem: vec![0; ns],
        stage_bubble: vec![0; ns],
        pending_w: vec![VecDeque::new(); ns],
        schedule: vec![Vec::with_capacity(6 * nm); ns],
        approved,
        max_approved,
    };
    a.run(fill_f, fill_b);
    let worst = a.max_stage_bubble(None);
    if max_approved < 0 || worst < max_approved {
        let (s2, w2) = attempt(ns, nm, fill_f, fill_b, Some(a.stage_bubble.clone()));
        if w2 < worst {
            return (s2, w2);
        }
    }
    (a.schedule, worst)
}

/// The best of the scheduler's four fill policies, as pass programs.
fn greedy(ns: usize, nm: usize) -> Vec<Vec<Pass>> {
    let mut best: Option<(Timetable, i64)> = None;
    for fill_b in [true, false] {
        for fill_f in [true, false] {
            let (s, w) = attempt(ns, nm, fill_f, fill_b, None);
            if best.as_ref().is_none_or(|b| w < b.1) {
                best = Some((s, w));
            }
        }
    }
    let (schedule, _) = best.expect("four attempts");
    schedule
        .into_iter()
        .map(|stage| {
            stage
                .into_iter()
                .map(|(cat, chunk, mb)| {
                    // forwards keep the scheduler's chunk; backwards count from the up chunk
                    let local = if cat == 0 { chunk } else { 1 - chunk } as u32;
                    let kind = [PassKind::Forward, PassKind::BackwardInput, PassKind::BackwardWeight][cat as usize];
                    Pass::new(kind, mb, local)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's scheduler on equal times: the first stage's program for p = 4,
    /// m = 8 starts with its seven warm-up forwards of the down chunk then the first
    /// forward of the up chunk; every stage has 2m forwards, 2m B and 2m W passes.
    #[test]
    fn greedy_v_programs_are_complete() {
        for (p, m) in [(2usize, 2usize), (4, 8), (8, 24), (3, 5)] {
            let progs = greedy(p, m);
            for prog in &progs {
                for kind in [PassKind::Forward, PassKind::BackwardInput, PassKind::BackwardWeight] {
                    assert_eq!(prog.iter().filter(|x| x.kind == kind).count(), 2 * m);
                }
            }
        }
        let first = &greedy(4, 8)[0];
        let f0 = first
            .iter()
            .take_while(|x| x.kind == PassKind::Forward && x.chunk == 0)
            .count();
        assert_eq!(f0, 7);
    }
}
