//! Runs a [`Workload`] on a cluster with the event engine and the flow network, and
//! measures what happened: iteration times, per-rank busy intervals, the time breakdown.
//!
//! Owns: [`simulate`] and [`SimOutput`]. The step time, the pipeline bubble and the exposed
//! communication are never computed by formula here: they are read off the event trace.

pub mod breakdown;
pub mod phases;
pub mod stragglers;
pub mod trace;

use crate::engine::EventQueue;
use crate::hardware::ClusterSpec;
use crate::network::{AlgorithmChoice, ClusterNetwork, CollectiveRequest, SendRequest, SendRoute, Tier};
use crate::parallel::Placement;
use crate::units::SimTime;
use crate::workload::{CommKind, OpId, OpKind, Phase, Stream, Workload};
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
    /// The workload would be too large to build (see [`budget`]).
    #[error(
        "the simulation would build about {operations} operations (about {gbyte:.1} GB), over the limit of {limit}: \
         use fewer micro-batches per step (a larger parallel.micro_batch_size or a smaller training.global_batch_size), \
         fewer simulation.iterations or fewer layers, or raise the limit with --set simulation.max_operations=N"
    )]
    TooLarge {
        /// Estimated operations.
        operations: u64,
        /// The limit in force.
        limit: u64,
        /// Estimated memory, GB.
        gbyte: f64,
    },
    /// A step outlasts the simulated clock.
    #[error(
        "a training step would last longer than the simulated clock can count ({max_days:.0} days in picoseconds): \
         check the GPU's peak TFLOP/s and efficiencies, the link rates and the sequence length"
    )]
    ClockRange {
        /// The clock's span, days.
        max_days: f64,
    },
    /// A result is not a finite, non-negative number.
    #[error(
        "the run produced no meaningful value for `{field}` ({value}): {}",
        finite::why(field)
    )]
    NotFinite {
        /// Dotted path of the result field.
        field: String,
        /// The value.
        value: f64,
    },
}

/// Where the plan's groups sit, as the network needs it.
#[derive(Clone, Copy, Debug)]
pub struct Layouts {
    /// Every group's layout.
    pub placement: Placement,
    /// Where adjacent pipeline stages sit: one node, one leaf, or across the spine.
    pub pp_route: SendRoute,
    /// Collective algorithm per kind.
    pub algorithms: AlgorithmChoice,
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
    /// Bytes sent per communication kind ([`CommKind`] index), summed over representative
    /// ranks and all link classes.
    pub bytes_by_kind: [f64; CommKind::COUNT],
}

/// The state of one simulation run: the operation graph's bookkeeping, the streams, the
/// network and the event queue.
struct Sim<'a> {
    w: &'a Workload,
    layouts: Layouts,
    /// `[iteration][rank]` compute-time factors (stragglers).
    compute_factor: &'a [Vec<f64>],
    /// Unfinished dependencies per op.
    remaining: Vec<u32>,
    /// Successors of op `i`: `succ[succ_start[i]..succ_start[i + 1]]`.
    succ_start: Vec<u32>,
    succ: Vec<OpId>,
    /// Program order per (rank, stream), the next op's position, and whether one runs.
    /// (CSR: queue `q` is `queue_ops[queue_start[q]..queue_start[q + 1]]`; `head[q]` is an
    /// absolute position in `queue_ops`.)
    queue_ops: Vec<OpId>,
    queue_start: Vec<u32>,
    head: Vec<usize>,
    busy: Vec<bool>,
    /// Per rank: a compute op (of either compute queue) is running.
    compute_busy: Vec<bool>,
    net: ClusterNetwork,
    /// Generation of the pending network tick (older ticks are stale).
    net_gen: u64,
    net_changed: bool,
    q: EventQueue<Event>,
    op_times: Vec<(SimTime, SimTime)>,
    finished: usize,
    barrier_waiting: Vec<Vec<OpId>>,
    barrier_latency: SimTime,
    iteration_ends: Vec<SimTime>,
    bytes_by_kind: [f64; CommKind::COUNT],
}

/// Groups `(row, value)` pairs into rows `0..rows`, compressed: row `r` holds
/// `values[start[r]..start[r + 1]]`, in the order the pairs come. `pairs` is called twice
/// (to count, then to fill).
fn csr<I: Iterator<Item = (usize, u32)>>(rows: usize, pairs: impl Fn() -> I) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; rows + 1];
    for (r, _) in pairs() {
        start[r + 1] += 1;
    }
    for r in 0..rows {
        start[r + 1] += start[r];
    }
    let mut values = vec![0u32; start[rows] as usize];
    let mut fill = start.clone();
    for (r, v) in pairs() {
        values[fill[r] as usize] = v;
        fill[r] += 1;
    }
    (start, values)
}

fn queue_index(op: &crate::workload::Op) -> usize {
    op.rank as usize * Stream::COUNT + op.stream.index()
}

impl<'a> Sim<'a> {
    fn new(w: &'a Workload, cluster: &'a ClusterSpec, layouts: Layouts, compute_factor: &'a [Vec<f64>]) -> Self {
        let n_ops = w.ops.len();
        let n_ranks = w.ranks.len();
        let deps_of = |op: &crate::workload::Op| &w.deps[op.deps.0 as usize..op.deps.1 as usize];
        let remaining = w.ops.iter().map(|op| deps_of(op).len() as u32).collect();
        // successors of each op, in op order
        let (succ_start, succ) = csr(n_ops, || {
            (w.ops.iter().enumerate()).flat_map(|(i, op)| deps_of(op).iter().map(move |&d| (d as usize, i as OpId)))
        });
        // each (rank, stream)'s ops in program order
        let n_queues = n_ranks * Stream::COUNT;
        let (queue_start, queue_ops) = csr(n_queues, || {
            (w.ops.iter().enumerate()).map(|(i, op)| (queue_index(op), i as OpId))
        });
        // each rank's ports are its stage's GPU group's (stage `s` starts at GPU `s * stride`)
        let stride = layouts.placement.stride_gpus[crate::parallel::Dim::Pp];
        let rank_groups: Vec<u8> = (w.ranks.iter())
            .map(|r| cluster.group_of_gpu(r.stage.saturating_mul(stride)) as u8)
            .collect();
        let net = ClusterNetwork::with_groups(cluster, &rank_groups);
        let barrier_latency =
            SimTime::from_secs(2.0 * (w.stages as f64).log2().ceil().max(1.0) * cluster.scale_out_latency_us * 1e-6);
        Sim {
            w,
            layouts,
            compute_factor,
            remaining,
            succ_start,
            succ,
            head: queue_start[..n_queues].iter().map(|&q| q as usize).collect(),
            queue_ops,
            queue_start,
            busy: vec![false; n_queues],
            compute_busy: vec![false; n_ranks],
            net,
            net_gen: 0,
            net_changed: false,
            q: EventQueue::new(),
            op_times: vec![(SimTime::ZERO, SimTime::ZERO); n_ops],
            finished: 0,
            barrier_waiting: vec![Vec::new(); w.iterations as usize],
            barrier_latency,
            iteration_ends: vec![SimTime::ZERO; w.iterations as usize],
            bytes_by_kind: [0.0; CommKind::COUNT],
        }
    }

    /// Starts the next op of queue `qi` if the stream is idle and the op's dependencies
    /// are done.
    fn try_start(&mut self, qi: usize) {
        if self.busy[qi] || self.head[qi] >= self.queue_start[qi + 1] as usize {
            return;
        }
        let id = self.queue_ops[self.head[qi]];
        if self.remaining[id as usize] != 0 {
            return;
        }
        let op = &self.w.ops[id as usize];
        if op.stream.is_compute() {
            // the GPU runs one compute op at a time, whichever compute queue it is on
            if self.compute_busy[op.rank as usize] {
                return;
            }
            // paired passes (DualPipe): with both compute queues ready, the critical-path
            // pass's queue (Compute) takes the GPU; this op waits for it to free again
            if self.w.compute_priority && op.stream == Stream::Compute2 {
                let first = op.rank as usize * Stream::COUNT + Stream::Compute.index();
                let head =
                    (self.head[first] < self.queue_start[first + 1] as usize).then(|| self.queue_ops[self.head[first]]);
                if !self.busy[first] && head.is_some_and(|h| self.remaining[h as usize] == 0) {
                    self.try_start(first);
                    return;
                }
            }
            self.compute_busy[op.rank as usize] = true;
        }
        self.busy[qi] = true;
        let now = self.q.now();
        self.op_times[id as usize].0 = now;
        let op = &self.w.ops[id as usize];
        match &op.kind {
            OpKind::Compute { duration, .. } => {
                let f = self
                    .compute_factor
                    .get(op.iteration as usize)
                    .and_then(|v| v.get(op.rank as usize))
                    .copied()
                    .unwrap_or(1.0);
                let d = if f == 1.0 {
                    *duration
                } else {
                    SimTime((duration.as_ps() as f64 * f).round() as u64)
                };
                self.q.schedule(now + d, Event::OpDone(id))
            }
            OpKind::Collective {
                dim,
                kind,
                bytes,
                purpose,
            } => {
                let req = CollectiveRequest {
                    kind: *kind,
                    layout: self.layouts.placement.comm_layout(*dim, *kind),
                    algorithm: self.layouts.algorithms.for_kind(*kind),
                    size_bytes: *bytes,
                };
                let started = self.net.start_collective(now, op.rank, &req, id as u64);
                self.bytes_by_kind[CommKind::of(*dim, *purpose).index()] += started.sent_bytes;
                if let Some(c) = started.done {
                    self.q.schedule(c.ready_at, Event::OpDone(id));
                }
                self.net_changed = true;
            }
            OpKind::Send { to, bytes } => {
                self.bytes_by_kind[CommKind::Pp.index()] += *bytes;
                let req = SendRequest {
                    route: self.layouts.pp_route,
                    group: self.layouts.placement.layout(crate::parallel::Dim::Pp),
                    bytes: *bytes,
                };
                if let Some(c) = self.net.start_send(now, op.rank, *to, &req, id as u64) {
                    self.q.schedule(c.ready_at, Event::OpDone(id));
                }
                self.net_changed = true;
            }
            OpKind::AllToAll { table } => {
                // the representative's four ports as flows; the other lanes' ports carry
                // nothing else, so the network holds the op until they have drained
                let a = &self.w.all_to_alls[*table as usize];
                self.bytes_by_kind[CommKind::Ep.index()] += a.sent_bytes();
                let loads = a.loads;
                if let Some(c) = self.net.start_all_to_all(now, op.rank, &loads, id as u64) {
                    self.q.schedule(c.ready_at, Event::OpDone(id));
                }
                self.net_changed = true;
            }
            OpKind::HostCopy { duration, .. } => self.q.schedule(now + *duration, Event::OpDone(id)),
            OpKind::Barrier { iteration } => {
                let waiting = &mut self.barrier_waiting[*iteration as usize];
                waiting.push(id);
                if waiting.len() == self.w.stages as usize {
                    // the synchronisation itself starts when the last rank arrives; the
                    // wait before that is idle time (pipeline drain), not communication
                    for &o in waiting.iter() {
                        self.op_times[o as usize].0 = now;
                        self.q.schedule(now + self.barrier_latency, Event::OpDone(o));
                    }
                }
            }
        }
    }

    /// Re-arms the single pending network tick after the flow set changed.
    fn reschedule_net(&mut self) {
        self.net_gen += 1;
        if let Some(t) = self.net.next_completion() {
            self.q.schedule(t.max(self.q.now()), Event::NetTick(self.net_gen));
        }
        self.net_changed = false;
    }

    fn finish_op(&mut self, id: OpId, now: SimTime) {
        let op = &self.w.ops[id as usize];
        self.op_times[id as usize].1 = now;
        self.finished += 1;
        if let OpKind::Compute {
            phase: Phase::Optimizer,
            ..
        } = op.kind
        {
            let e = &mut self.iteration_ends[op.iteration as usize];
            *e = (*e).max(now);
        }
        let qi = queue_index(op);
        self.busy[qi] = false;
        self.head[qi] += 1;
        let freed_compute = op.stream.is_compute().then_some(op.rank as usize);
        if let Some(r) = freed_compute {
            self.compute_busy[r] = false;
        }
        for k in self.succ_start[id as usize]..self.succ_start[id as usize + 1] {
            let s = self.succ[k as usize] as usize;
            self.remaining[s] -= 1;
            if self.remaining[s] == 0 {
                self.try_start(queue_index(&self.w.ops[s]));
            }
        }
        self.try_start(qi);
        if let Some(r) = freed_compute {
            // the other compute queue may have been waiting for the GPU
            for s in [Stream::Compute, Stream::Compute2] {
                self.try_start(r * Stream::COUNT + s.index());
            }
        }
    }

    fn run(mut self) -> Result<SimOutput, SimError> {
        for qi in 0..self.head.len() {
            self.try_start(qi);
        }
        if self.net_changed {
            self.reschedule_net();
        }
        let mut done = Vec::new();
        while let Some((now, ev)) = self.q.pop() {
            match ev {
                Event::NetTick(g) => {
                    if g != self.net_gen {
                        continue;
                    }
                    self.net.advance_into(now, &mut done);
                    for c in &done {
                        self.q.schedule(c.ready_at, Event::OpDone(c.tag as OpId));
                    }
                    self.net_changed = true;
                }
                Event::OpDone(id) => self.finish_op(id, now),
            }
            if self.net_changed {
                self.reschedule_net();
            }
        }
        let n_ops = self.w.ops.len();
        if self.finished != n_ops {
            // an op is done when its queue's head has passed it
            let first = (self.head.iter().enumerate())
                .filter(|&(q, &h)| h < self.queue_start[q + 1] as usize)
                .map(|(_, &h)| self.queue_ops[h])
                .min()
                .unwrap_or(0) as usize;
            let op = &self.w.ops[first];
            return Err(SimError::Stalled {
                stuck: n_ops - self.finished,
                total: n_ops,
                first: format!(
                    "'{}' on rank {} stream {:?}, iteration {}",
                    self.w.name(op),
                    op.rank,
                    op.stream,
                    op.iteration
                ),
            });
        }
        Ok(SimOutput {
            bytes_scale_up: self.net.bytes_sent(Tier::ScaleUp),
            bytes_scale_out: self.net.bytes_sent(Tier::Leaf),
            bytes_spine: self.net.bytes_sent(Tier::Spine),
            bytes_by_kind: self.bytes_by_kind,
            events: self.q.events_processed(),
            op_times: self.op_times,
            iteration_ends: self.iteration_ends,
        })
    }
}

/// Runs the workload to completion.
/// `compute_factor[iteration][rank]` scales compute durations (stragglers; all 1 for none).
pub fn simulate(
    w: &Workload,
    cluster: &ClusterSpec,
    layouts: Layouts,
    compute_factor: &[Vec<f64>],
) -> Result<SimOutput, SimError> {
    Sim::new(w, cluster, layouts, compute_factor).run()
}

pub mod budget;
pub mod finite;
pub mod run;
pub use run::{run, run_summary, RunInput, RunResult};
