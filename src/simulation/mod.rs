//! Runs a [`Workload`] on a cluster with the event engine and the flow network, and
//! measures what happened: iteration times, per-rank busy intervals, the time breakdown.
//!
//! Owns: [`simulate`] and [`SimOutput`]. The step time, the pipeline bubble and the exposed
//! communication are never computed by formula here: they are read off the event trace.

pub mod breakdown;
mod graph;
pub mod phases;
pub mod replicas;
pub mod stragglers;
pub mod timeline;
pub mod trace;

use crate::engine::EventQueue;
use crate::hardware::ClusterSpec;
use crate::network::{AlgorithmChoice, ClusterNetwork, CollectiveRequest, SendRequest, SendRoute, Tier};
use crate::parallel::Placement;
use crate::units::SimTime;
use crate::workload::{CommKind, OpId, OpKind, Phase, Stream, Workload};
use graph::{queue_index, Graph};
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
        "the simulation would build about {operations} operations{} (about {gbyte:.1} GB), over the limit of {limit}: \
         use fewer micro-batches per step (a larger parallel.micro_batch_size or a smaller training.global_batch_size), \
         fewer simulation.iterations or fewer layers{}, or raise the limit with --set simulation.max_operations=N",
        replicas_note(*replicas).0, replicas_note(*replicas).1
    )]
    TooLarge {
        /// Data-parallel replicas simulated (every-replica mode; 1 otherwise).
        replicas: u32,
        /// Estimated operations (over every replica simulated).
        operations: u64,
        /// The limit in force.
        limit: u64,
        /// Estimated memory, GB.
        gbyte: f64,
    },
    /// A plan the simulation cannot run as described.
    #[error("not supported: {what}")]
    Unsupported {
        /// What.
        what: String,
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

/// The parts of [`SimError::TooLarge`]'s message that name the replicas simulated.
fn replicas_note(replicas: u32) -> (String, &'static str) {
    if replicas > 1 {
        (
            format!(" over {replicas} data-parallel replicas"),
            ", one representative per stage (--set simulation.ranks=representative)",
        )
    } else {
        (String::new(), "")
    }
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
    /// Data-parallel replicas simulated ([`replicas`]): `op_times` holds each replica's
    /// copy of its workload's operations in turn (replica `r`'s op `i` at
    /// `replica_ops[r] + i`); the byte counts are per replica (the replicas' mean).
    pub replicas: u32,
    /// Where each replica's ops start in `op_times` (`replicas + 1` entries).
    pub replica_ops: Vec<u32>,
    /// Operations that waited for the other replicas of a cross-replica collective:
    /// (index into `op_times`, arrival time); the wait ends at the op's start.
    pub replica_waits: Vec<(u32, SimTime)>,
}

/// The state of one simulation run: the operation graph's bookkeeping, the streams, the
/// network and the event queue.
struct Sim<'a> {
    w: &'a Workload,
    layouts: Layouts,
    /// `[iteration][replica * stages + stage]` compute-time factors (stragglers).
    compute_factor: &'a [Vec<f64>],
    /// Replicas simulated, each a copy of its workload: replica `r`'s ops are ids
    /// `op_start[r]..op_start[r + 1]`, its ranks and queues are offset by `r` times one
    /// workload's counts (every replica's workload has the same ranks).
    replicas: u32,
    op_start: Vec<u32>,
    /// Ops per replica when every replica's workload has as many (the common case: a
    /// division finds an op's replica).
    uniform_ops: Option<u32>,
    base_ranks: u32,
    /// The replicas' workloads and where they meet ([`ReplicaSet`]).
    set: &'a ReplicaSet,
    /// Per workload of `set` (0: `w`, `k`: its `variants[k - 1]`), its graph.
    graphs: Vec<Graph>,
    cluster: &'a ClusterSpec,
    /// Per simulated rank, its first GPU; empty unless a cross-group fabric is set (the
    /// only use: which collectives cross it).
    rank_gpu: Vec<u32>,
    /// Per meeting ([`graph::meetings`]): the consecutive replicas meeting in it.
    meeting_size: Vec<u32>,
    /// Per (meeting, first replica of its group): replicas arrived so far, then `k` plus
    /// those whose part has completed (the op completes for all when the last one has).
    arrived: Vec<u32>,
    /// Ops that waited for the other replicas of a meeting: (op, arrival time).
    replica_waits: Vec<(u32, SimTime)>,
    /// Unfinished dependencies per op.
    remaining: Vec<u32>,
    /// Per (replica, rank, stream) queue: the next op's position in its graph's
    /// `queue_ops`, and whether one runs.
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

/// Replicas of a simulation and where they meet ([`replicas::replica_set`]).
#[derive(Clone, Debug, Default)]
pub struct ReplicaSet {
    /// Data-parallel replicas simulated (1: the representative mode).
    pub count: u32,
    /// Per workload op: the consecutive replicas that meet in it (1: none).
    pub sync_group: Vec<u32>,
    /// Workloads of replicas on other GPU types or with other micro-batch counts (the
    /// same ranks and meetings, [`ReplicaSet::add_variant`]).
    pub variants: Vec<Workload>,
    /// Per variant: its `sync_group`.
    pub variant_sync: Vec<Vec<u32>>,
    /// Per replica: 0 for the simulated workload, `k` for `variants[k - 1]` (empty: all 0).
    pub variant_of: Vec<u32>,
}

impl<'a> Sim<'a> {
    fn new(
        w: &'a Workload,
        cluster: &'a ClusterSpec,
        layouts: Layouts,
        compute_factor: &'a [Vec<f64>],
        replicas: &'a ReplicaSet,
    ) -> Self {
        let n_ranks = w.ranks.len();
        let r_count = replicas.count.max(1);
        let no_sync: &[u32] = &[];
        let sync = |s: &'a [u32]| if r_count > 1 { s } else { no_sync };
        let mut graphs = vec![Graph::of(w, sync(&replicas.sync_group))];
        for (v, s) in replicas.variants.iter().zip(&replicas.variant_sync) {
            graphs.push(Graph::of(v, sync(s)));
        }
        let graph_of = |r: u32| replicas.variant_of.get(r as usize).copied().unwrap_or(0) as usize;
        let mut op_start = vec![0u32];
        for r in 0..r_count {
            let n = graphs[graph_of(r)].deps.len() as u32;
            op_start.push(op_start[r as usize] + n);
        }
        let n_ops = graphs[0].deps.len() as u32;
        let uniform_ops = graphs.iter().all(|g| g.deps.len() as u32 == n_ops).then_some(n_ops);
        let remaining: Vec<u32> = (0..r_count)
            .flat_map(|r| graphs[graph_of(r)].deps.iter().copied())
            .collect();
        let n_queues = n_ranks * Stream::COUNT;
        let head: Vec<usize> = (0..r_count)
            .flat_map(|r| graphs[graph_of(r)].queue_start[..n_queues].iter().map(|&q| q as usize))
            .collect();
        // each rank's ports are its GPU group's: stage `s` of replica `r` starts at GPU
        // `s * stage_stride + r * replica_stride`
        let stride = layouts.placement.stride_gpus[crate::parallel::Dim::Pp];
        let replica_stride = stride / r_count;
        let rank_gpu: Vec<u32> = (0..r_count)
            .flat_map(|r| {
                (w.ranks.iter()).map(move |info| info.stage.saturating_mul(stride).saturating_add(r * replica_stride))
            })
            .collect();
        let rank_groups: Vec<u8> = rank_gpu.iter().map(|&g| cluster.group_of_gpu(g) as u8).collect();
        let net = ClusterNetwork::with_groups(cluster, &rank_groups);
        let barrier_latency =
            SimTime::from_secs(2.0 * (w.stages as f64).log2().ceil().max(1.0) * cluster.scale_out_latency_us * 1e-6);
        let meeting_size: Vec<u32> = graphs[0]
            .meeting_op
            .iter()
            .map(|&op| replicas.sync_group[op as usize])
            .collect();
        let total_ops = op_start[r_count as usize] as usize;
        Sim {
            w,
            layouts,
            compute_factor,
            replicas: r_count,
            op_start,
            uniform_ops,
            base_ranks: n_ranks as u32,
            arrived: vec![0; meeting_size.len() * r_count as usize],
            meeting_size,
            graphs,
            set: replicas,
            cluster,
            rank_gpu: if cluster.groups.len() > 1 && cluster.cross_group_gbit_per_s > 0.0 {
                rank_gpu
            } else {
                Vec::new()
            },
            replica_waits: Vec::new(),
            remaining,
            head,
            busy: vec![false; n_queues * r_count as usize],
            compute_busy: vec![false; n_ranks * r_count as usize],
            net,
            net_gen: 0,
            net_changed: false,
            q: EventQueue::new(),
            op_times: vec![(SimTime::ZERO, SimTime::ZERO); total_ops],
            finished: 0,
            barrier_waiting: vec![Vec::new(); w.iterations as usize],
            barrier_latency,
            iteration_ends: vec![SimTime::ZERO; w.iterations as usize],
            bytes_by_kind: [0.0; CommKind::COUNT],
        }
    }

    /// The index into `graphs` (and the workload) of replica `r`.
    #[inline]
    fn graph_of(&self, r: u32) -> usize {
        if self.graphs.len() == 1 {
            0
        } else {
            self.set.variant_of.get(r as usize).copied().unwrap_or(0) as usize
        }
    }

    /// The graph of replica `r`'s workload.
    #[inline]
    fn graph(&self, r: u32) -> &Graph {
        &self.graphs[self.graph_of(r)]
    }

    /// The workload replica `r` runs.
    #[inline]
    fn workload(&self, r: u32) -> &'a Workload {
        if self.graphs.len() == 1 {
            self.w
        } else {
            self.set.workload_of(r, self.w)
        }
    }

    /// The replica of simulated op `id` and the op of its workload it copies.
    #[inline]
    fn split(&self, id: OpId) -> (u32, usize) {
        if self.replicas == 1 {
            return (0, id as usize);
        }
        let r = match self.uniform_ops {
            Some(n) => id / n,
            None => self.op_start.partition_point(|&s| s <= id) as u32 - 1,
        };
        (r, (id - self.op_start[r as usize]) as usize)
    }

    /// The queue of replica `r`'s copy of workload op `op`.
    #[inline]
    fn queue_of(&self, r: u32, op: &crate::workload::Op) -> usize {
        (r * self.base_ranks) as usize * Stream::COUNT + queue_index(op)
    }

    /// The simulated rank of workload rank `rank` in replica `r`.
    #[inline]
    fn rank_of(&self, r: u32, rank: u32) -> u32 {
        r * self.base_ranks + rank
    }

    /// The simulated op at position `pos` of queue `bq` of replica `r`'s graph, if any.
    #[inline]
    fn queued(&self, r: u32, bq: usize, pos: usize) -> Option<OpId> {
        let g = self.graph(r);
        (pos < g.queue_start[bq + 1] as usize).then(|| g.queue_ops[pos] + self.op_start[r as usize])
    }

    /// Starts the next op of queue `qi` if the stream is idle and the op's dependencies
    /// are done.
    fn try_start(&mut self, qi: usize) {
        let n_queues = self.base_ranks as usize * Stream::COUNT;
        let (r, bq) = if self.replicas == 1 {
            (0, qi)
        } else {
            ((qi / n_queues) as u32, qi % n_queues)
        };
        if self.busy[qi] {
            return;
        }
        let Some(id) = self.queued(r, bq, self.head[qi]) else {
            return;
        };
        if self.remaining[id as usize] != 0 {
            return;
        }
        let base = id - self.op_start[r as usize];
        let op = &self.workload(r).ops[base as usize];
        let rank = self.rank_of(r, op.rank) as usize;
        if op.stream.is_compute() {
            // the GPU runs one compute op at a time, whichever compute queue it is on
            if self.compute_busy[rank] {
                return;
            }
            // with both compute queues ready, the critical-path pass's queue takes the GPU;
            // this op waits for it to free again
            if let Some(p) = self.w.compute_priority.filter(|&p| p != op.stream) {
                let first = rank * Stream::COUNT + p.index();
                let bfirst = op.rank as usize * Stream::COUNT + p.index();
                let head = self.queued(r, bfirst, self.head[first]);
                if !self.busy[first] && head.is_some_and(|h| self.remaining[h as usize] == 0) {
                    self.try_start(first);
                    return;
                }
            }
            self.compute_busy[rank] = true;
        }
        self.busy[qi] = true;
        let now = self.q.now();
        self.op_times[id as usize].0 = now;
        // a collective across replicas starts when the last of its replicas arrives; the
        // stream is held meanwhile (the kernel is queued, as NCCL's is)
        if let Some((m, first, k, slot)) = self.meeting(r, base as usize) {
            self.arrived[slot] += 1;
            if self.arrived[slot] < k {
                self.replica_waits.push((id, now));
                return;
            }
            for j in first..first + k {
                let other = self.member(m, j);
                self.op_times[other as usize].0 = now;
                self.launch(j, (other - self.op_start[j as usize]) as usize, other, now);
            }
            return;
        }
        self.launch(r, base as usize, id, now);
    }

    /// Where replica `r`'s copy of its workload's op `base` meets the other replicas: the
    /// meeting, the group's first replica, its size and the arrival slot (`None`: the op
    /// stays in its replica).
    #[inline]
    fn meeting(&self, r: u32, base: usize) -> Option<(u32, u32, u32, usize)> {
        let m = *self.graph(r).meeting.get(base)?;
        (m != u32::MAX).then(|| {
            let k = self.meeting_size[m as usize];
            let first = r / k * k;
            (m, first, k, m as usize * self.replicas as usize + first as usize)
        })
    }

    /// Replica `j`'s simulated op of meeting `m`.
    #[inline]
    fn member(&self, m: u32, j: u32) -> OpId {
        self.graph(j).meeting_op[m as usize] + self.op_start[j as usize]
    }

    /// Whether the `dim` group of simulated rank `rank` has members on more than one GPU
    /// group (which are runs of consecutive GPUs): its first and last member's groups
    /// differ. Always false on one fabric.
    fn across_groups(&self, rank: u32, dim: crate::parallel::Dim) -> bool {
        let Some(&gpu) = self.rank_gpu.get(rank as usize) else {
            return false;
        };
        let p = &self.layouts.placement;
        let (stride, size) = (p.stride_gpus[dim].max(1), p.layouts[dim].size.max(1));
        let first = gpu - (gpu / stride) % size * stride;
        let last = first.saturating_add((size - 1).saturating_mul(stride));
        self.cluster.group_of_gpu(first) != self.cluster.group_of_gpu(last)
    }

    /// Runs simulated op `id` (replica `r`'s copy of workload op `base`) from `now`.
    fn launch(&mut self, r: u32, base: usize, id: OpId, now: SimTime) {
        let w = self.workload(r);
        let op = &w.ops[base];
        let rank = self.rank_of(r, op.rank);
        match &op.kind {
            OpKind::Compute { duration, .. } => {
                let f = if op.rank < self.w.stages {
                    (self.compute_factor.get(op.iteration as usize))
                        .and_then(|v| v.get((r * self.w.stages + op.rank) as usize))
                        .copied()
                        .unwrap_or(1.0)
                } else {
                    1.0
                };
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
                let across = self.across_groups(rank, *dim);
                let started = self.net.start_collective(now, rank, &req, id as u64, across);
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
                let to = self.rank_of(r, *to);
                if let Some(c) = self.net.start_send(now, rank, to, &req, id as u64) {
                    self.q.schedule(c.ready_at, Event::OpDone(id));
                }
                self.net_changed = true;
            }
            OpKind::AllToAll { table } => {
                // the representative's four ports as flows; the other lanes' ports carry
                // nothing else, so the network holds the op until they have drained
                let a = &w.all_to_alls[*table as usize];
                self.bytes_by_kind[CommKind::Ep.index()] += a.sent_bytes();
                let loads = a.loads;
                if let Some(c) = self.net.start_all_to_all(now, rank, &loads, id as u64) {
                    self.q.schedule(c.ready_at, Event::OpDone(id));
                }
                self.net_changed = true;
            }
            OpKind::HostCopy { duration, .. } => self.q.schedule(now + *duration, Event::OpDone(id)),
            OpKind::Barrier { iteration } => {
                let waiting = &mut self.barrier_waiting[*iteration as usize];
                waiting.push(id);
                if waiting.len() == (self.w.stages * self.replicas) as usize {
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

    /// Op `id`'s own work is done at `now`. A collective across replicas completes for all
    /// of them when the last one's part has: each member receives from the others, so none
    /// finishes before the slowest (a ring runs at its slowest edge's rate).
    fn complete(&mut self, id: OpId, now: SimTime) {
        let (r, base) = self.split(id);
        if let Some((m, first, k, slot)) = self.meeting(r, base) {
            self.arrived[slot] += 1;
            if self.arrived[slot] < 2 * k {
                return;
            }
            for j in first..first + k {
                self.finish_op(self.member(m, j), now);
            }
            return;
        }
        self.finish_op(id, now);
    }

    fn finish_op(&mut self, id: OpId, now: SimTime) {
        let (r, base) = self.split(id);
        let w = self.workload(r);
        let op = &w.ops[base];
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
        let qi = self.queue_of(r, op);
        self.busy[qi] = false;
        self.head[qi] += 1;
        let freed_compute = op.stream.is_compute().then_some(self.rank_of(r, op.rank) as usize);
        if let Some(rank) = freed_compute {
            self.compute_busy[rank] = false;
        }
        let offset = self.op_start[r as usize] as usize;
        let g = self.graph_of(r);
        let (from, to) = (self.graphs[g].succ_start[base], self.graphs[g].succ_start[base + 1]);
        for k in from..to {
            let s = self.graphs[g].succ[k as usize] as usize;
            self.remaining[s + offset] -= 1;
            if self.remaining[s + offset] == 0 {
                self.try_start(self.queue_of(r, &w.ops[s]));
            }
        }
        self.try_start(qi);
        if let Some(rank) = freed_compute {
            // the other compute queue may have been waiting for the GPU
            for s in [Stream::Compute, Stream::Compute2] {
                self.try_start(rank * Stream::COUNT + s.index());
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
                Event::OpDone(id) => self.complete(id, now),
            }
            if self.net_changed {
                self.reschedule_net();
            }
        }
        let n_ops = self.op_times.len();
        if self.finished != n_ops {
            // an op is done when its queue's head has passed it
            let n_queues = self.base_ranks as usize * Stream::COUNT;
            let first = (self.head.iter().enumerate())
                .filter_map(|(q, &h)| self.queued((q / n_queues) as u32, q % n_queues, h))
                .min()
                .unwrap_or(0);
            let (r, base) = self.split(first);
            let w = self.workload(r);
            let op = &w.ops[base];
            return Err(SimError::Stalled {
                stuck: n_ops - self.finished,
                total: n_ops,
                first: format!(
                    "'{}' on rank {} stream {:?}, iteration {}",
                    w.name(op),
                    op.rank,
                    op.stream,
                    op.iteration
                ),
            });
        }
        let per_replica = 1.0 / self.replicas as f64;
        Ok(SimOutput {
            bytes_scale_up: self.net.bytes_sent(Tier::ScaleUp) * per_replica,
            bytes_scale_out: self.net.bytes_sent(Tier::Leaf) * per_replica,
            bytes_spine: self.net.bytes_sent(Tier::Spine) * per_replica,
            bytes_by_kind: self.bytes_by_kind.map(|b| b * per_replica),
            events: self.q.events_processed(),
            op_times: self.op_times,
            iteration_ends: self.iteration_ends,
            replicas: self.replicas,
            replica_ops: self.op_start,
            replica_waits: self.replica_waits,
        })
    }
}

/// Runs the workload to completion, once per replica of `replicas` (its
/// [`ReplicaSet::default`]: one).
/// `compute_factor[iteration][replica * stages + stage]` scales compute durations
/// (stragglers; all 1 for none).
pub fn simulate(
    w: &Workload,
    cluster: &ClusterSpec,
    layouts: Layouts,
    compute_factor: &[Vec<f64>],
    replicas: &ReplicaSet,
) -> Result<SimOutput, SimError> {
    Sim::new(w, cluster, layouts, compute_factor, replicas).run()
}

pub mod budget;
pub mod finite;
pub mod input;
pub mod run;
pub use run::{run, run_summary, RunInput, RunResult};
