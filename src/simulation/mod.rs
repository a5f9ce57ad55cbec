//! Runs a [`Workload`] on a cluster with the event engine and the flow network, and
//! measures what happened: iteration times, per-rank busy intervals, the time breakdown.
//!
//! Owns: [`simulate`] and [`SimOutput`]. The step time, the pipeline bubble and the exposed
//! communication are never computed by formula here: they are read off the event trace.

pub mod breakdown;
pub mod stragglers;
pub mod trace;

use crate::engine::EventQueue;
use crate::hardware::ClusterSpec;
use crate::network::collective::{ring_cost, GroupLayout, LinkClass};
use crate::network::{FlowNetwork, LinkId};
use crate::units::SimTime;
use crate::workload::costs::Phase;
use crate::workload::{Group, OpId, OpKind, Stream, Workload};
use thiserror::Error;

/// A simulation that could not finish.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum SimError {
    /// Operations waited forever: a cyclic dependency in the workload (a bug in the
    /// workload builder, reported instead of hanging).
    #[error("the simulation stalled with {stuck} of {total} operations unfinished (first stuck: {first})")]
    Stalled {
        /// Unfinished operations.
        stuck: usize,
        /// All operations.
        total: usize,
        /// Description of the first unfinished one.
        first: String,
    },
}

/// Process-group layouts the network needs.
#[derive(Clone, Copy, Debug)]
pub struct Layouts {
    /// TP group.
    pub tp: GroupLayout,
    /// DP group.
    pub dp: GroupLayout,
    /// Whether adjacent pipeline stages share a node.
    pub pp_same_node: bool,
}

#[derive(Clone, Copy, Debug)]
enum Event {
    OpDone(OpId),
    NetTick(u64),
}

/// Raw result of a simulation.
#[derive(Clone, Debug)]
pub struct SimOutput {
    /// Start and end of every op.
    pub op_times: Vec<(SimTime, SimTime)>,
    /// End of each iteration (all ranks' optimizer steps done).
    pub iteration_ends: Vec<SimTime>,
    /// Events processed.
    pub events: u64,
    /// Bytes carried per link class, summed over representative ranks.
    pub bytes_scale_up: f64,
    /// Bytes carried over NICs, summed over representative ranks.
    pub bytes_scale_out: f64,
    /// Of those, bytes that crossed the spine (leaf to leaf), summed over representative ranks.
    pub bytes_spine: f64,
}

struct RankLinks {
    up_tx: LinkId,
    up_rx: LinkId,
    out_tx: LinkId,
    out_rx: LinkId,
    /// Leaf-to-spine and spine-to-leaf share of this rank (only with oversubscription > 1).
    spine_tx: LinkId,
    spine_rx: LinkId,
}

/// Runs the workload to completion.
/// `compute_factor[iteration][rank]` scales compute durations (stragglers; all 1 for none).
pub fn simulate(
    w: &Workload,
    cluster: &ClusterSpec,
    layouts: Layouts,
    compute_factor: &[Vec<f64>],
) -> Result<SimOutput, SimError> {
    let n_ops = w.ops.len();
    let n_ranks = w.ranks.len();
    // successors (CSR) and remaining dependency counts
    let mut remaining = vec![0u32; n_ops];
    let mut succ_count = vec![0u32; n_ops + 1];
    for (i, op) in w.ops.iter().enumerate() {
        remaining[i] = op.deps.1 - op.deps.0;
        for &d in &w.deps[op.deps.0 as usize..op.deps.1 as usize] {
            succ_count[d as usize + 1] += 1;
        }
    }
    for i in 0..n_ops {
        succ_count[i + 1] += succ_count[i];
    }
    let mut succ = vec![0 as OpId; w.deps.len()];
    let mut fill = succ_count.clone();
    for (i, op) in w.ops.iter().enumerate() {
        for &d in &w.deps[op.deps.0 as usize..op.deps.1 as usize] {
            succ[fill[d as usize] as usize] = i as OpId;
            fill[d as usize] += 1;
        }
    }
    // per (rank, stream) program order
    let mut queues: Vec<Vec<OpId>> = vec![Vec::new(); n_ranks * Stream::COUNT];
    for (i, op) in w.ops.iter().enumerate() {
        queues[op.rank as usize * Stream::COUNT + op.stream.index()].push(i as OpId);
    }
    let mut head = vec![0usize; queues.len()];
    let mut busy = vec![false; queues.len()];

    let mut net = FlowNetwork::new();
    let up_bw =
        crate::units::gbyte_per_s_to_bytes_per_s(cluster.gpu.scale_up_gbyte_per_s) * cluster.scale_up_efficiency;
    let out_bw = cluster.nic_bytes_per_s_per_gpu() * cluster.scale_out_efficiency;
    let spine_bw = out_bw / cluster.oversubscription.max(1.0);
    let links: Vec<RankLinks> = (0..n_ranks)
        .map(|_| RankLinks {
            up_tx: net.add_link(up_bw),
            up_rx: net.add_link(up_bw),
            out_tx: net.add_link(out_bw),
            out_rx: net.add_link(out_bw),
            spine_tx: net.add_link(spine_bw),
            spine_rx: net.add_link(spine_bw),
        })
        .collect();
    let barrier_latency =
        SimTime::from_secs(2.0 * (n_ranks as f64).log2().ceil().max(1.0) * cluster.scale_out_latency_us * 1e-6);

    let mut q: EventQueue<Event> = EventQueue::new();
    let mut op_times = vec![(SimTime::ZERO, SimTime::ZERO); n_ops];
    let mut done = vec![false; n_ops];
    let mut net_gen: u64 = 0;
    let mut barrier_waiting: Vec<Vec<OpId>> = vec![Vec::new(); w.iterations as usize];
    let mut iteration_ends = vec![SimTime::ZERO; w.iterations as usize];
    let mut finished = 0usize;

    // Starts whatever can start on queue `qi`.
    #[allow(clippy::too_many_arguments)]
    fn try_start(
        qi: usize,
        w: &Workload,
        queues: &[Vec<OpId>],
        head: &[usize],
        busy: &mut [bool],
        remaining: &[u32],
        q: &mut EventQueue<Event>,
        net: &mut FlowNetwork,
        links: &[RankLinks],
        cluster: &ClusterSpec,
        layouts: &Layouts,
        op_times: &mut [(SimTime, SimTime)],
        barrier_waiting: &mut [Vec<OpId>],
        barrier_latency: SimTime,
        net_changed: &mut bool,
        compute_factor: &[Vec<f64>],
    ) {
        if busy[qi] || head[qi] >= queues[qi].len() {
            return;
        }
        let id = queues[qi][head[qi]];
        if remaining[id as usize] != 0 {
            return;
        }
        busy[qi] = true;
        let now = q.now();
        op_times[id as usize].0 = now;
        let op = &w.ops[id as usize];
        let r = &links[op.rank as usize];
        match &op.kind {
            OpKind::Compute { duration, .. } => {
                let f = compute_factor
                    .get(op.iteration as usize)
                    .and_then(|v| v.get(op.rank as usize))
                    .copied()
                    .unwrap_or(1.0);
                let d = if f == 1.0 {
                    *duration
                } else {
                    SimTime((duration.as_ps() as f64 * f).round() as u64)
                };
                q.schedule(now + d, Event::OpDone(id))
            }
            OpKind::Collective { group, kind, bytes, .. } => {
                let layout = match group {
                    Group::Tp => layouts.tp,
                    Group::Dp => layouts.dp,
                };
                let cost = ring_cost(*kind, layout, *bytes, cluster);
                let flows: Vec<([LinkId; 4], usize, f64)> = cost
                    .loads
                    .iter()
                    .map(|(class, b)| match class {
                        LinkClass::ScaleUp => ([r.up_tx, r.up_rx, 0, 0], 2, *b),
                        LinkClass::ScaleOut => ([r.out_tx, r.out_rx, 0, 0], 2, *b),
                        LinkClass::CrossLeaf => ([r.out_tx, r.out_rx, r.spine_tx, r.spine_rx], 4, *b),
                    })
                    .collect();
                let refs: Vec<(&[LinkId], f64)> = flows.iter().map(|(l, n, b)| (&l[..*n], *b)).collect();
                if let Some(c) = net.start_transfer(now, &refs, SimTime::from_secs(cost.latency_s), id as u64) {
                    q.schedule(c.ready_at, Event::OpDone(id));
                }
                *net_changed = true;
            }
            OpKind::Send { to, bytes } => {
                let dst = &links[*to as usize];
                let (tx, rx, lat_us) = if layouts.pp_same_node {
                    (r.up_tx, dst.up_rx, cluster.scale_up_latency_us)
                } else {
                    (r.out_tx, dst.out_rx, cluster.scale_out_latency_us)
                };
                if let Some(c) = net.start_transfer(
                    now,
                    &[(&[tx, rx], *bytes)],
                    SimTime::from_secs(lat_us * 1e-6),
                    id as u64,
                ) {
                    q.schedule(c.ready_at, Event::OpDone(id));
                }
                *net_changed = true;
            }
            OpKind::Barrier { iteration } => {
                let waiting = &mut barrier_waiting[*iteration as usize];
                waiting.push(id);
                if waiting.len() == w.ranks.len() {
                    // the synchronisation itself starts when the last rank arrives; the
                    // wait before that is idle time (pipeline drain), not communication
                    for &o in waiting.iter() {
                        op_times[o as usize].0 = now;
                        q.schedule(now + barrier_latency, Event::OpDone(o));
                    }
                }
            }
        }
    }

    macro_rules! start {
        ($qi:expr, $changed:expr) => {
            try_start(
                $qi,
                w,
                &queues,
                &head,
                &mut busy,
                &remaining,
                &mut q,
                &mut net,
                &links,
                cluster,
                &layouts,
                &mut op_times,
                &mut barrier_waiting,
                barrier_latency,
                $changed,
                compute_factor,
            )
        };
    }

    let mut changed = false;
    for qi in 0..queues.len() {
        start!(qi, &mut changed);
    }
    let reschedule_net = |net: &mut FlowNetwork, q: &mut EventQueue<Event>, gen: &mut u64| {
        *gen += 1;
        if let Some(t) = net.next_completion() {
            q.schedule(t.max(q.now()), Event::NetTick(*gen));
        }
    };
    if changed {
        reschedule_net(&mut net, &mut q, &mut net_gen);
    }

    while let Some((now, ev)) = q.pop() {
        let mut changed = false;
        match ev {
            Event::NetTick(g) => {
                if g != net_gen {
                    continue;
                }
                for c in net.advance(now) {
                    q.schedule(c.ready_at, Event::OpDone(c.tag as OpId));
                }
                changed = true;
            }
            Event::OpDone(id) => {
                let op = &w.ops[id as usize];
                op_times[id as usize].1 = now;
                done[id as usize] = true;
                finished += 1;
                if let OpKind::Compute {
                    phase: Phase::Optimizer,
                    ..
                } = op.kind
                {
                    let e = &mut iteration_ends[op.iteration as usize];
                    *e = (*e).max(now);
                }
                let qi = op.rank as usize * Stream::COUNT + op.stream.index();
                busy[qi] = false;
                head[qi] += 1;
                for k in succ_count[id as usize]..succ_count[id as usize + 1] {
                    let s = succ[k as usize] as usize;
                    remaining[s] -= 1;
                    if remaining[s] == 0 {
                        let sq = w.ops[s].rank as usize * Stream::COUNT + w.ops[s].stream.index();
                        start!(sq, &mut changed);
                    }
                }
                start!(qi, &mut changed);
            }
        }
        if changed {
            reschedule_net(&mut net, &mut q, &mut net_gen);
        }
    }

    if finished != n_ops {
        let first = (0..n_ops).find(|&i| !done[i]).unwrap_or(0);
        let op = &w.ops[first];
        return Err(SimError::Stalled {
            stuck: n_ops - finished,
            total: n_ops,
            first: format!(
                "'{}' on rank {} stream {:?}, iteration {}",
                op.name, op.rank, op.stream, op.iteration
            ),
        });
    }
    let bytes_scale_up = links.iter().map(|l| net.bytes_carried(l.up_tx)).sum();
    let bytes_scale_out = links.iter().map(|l| net.bytes_carried(l.out_tx)).sum();
    let bytes_spine = links.iter().map(|l| net.bytes_carried(l.spine_tx)).sum();
    Ok(SimOutput {
        op_times,
        iteration_ends,
        events: q.events_processed(),
        bytes_scale_up,
        bytes_scale_out,
        bytes_spine,
    })
}

pub mod run;
pub use run::{run, RunInput, RunResult};
