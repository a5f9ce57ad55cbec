//! Building the operation graph: a [`Builder`] that appends ops with symbolic dependencies
//! (on ops, or on the send that delivers a pass's input) and a [`Cursor`] that emits one
//! pass's [`Step`]s on a rank's streams, threading the dependencies that overlapped
//! collectives create.

use super::layer::{Overlap, Step};
use super::moe::MoeInstance;
use super::op::{AllToAllSpec, CommKind, CommPurpose, NameId, Op, OpId, OpKind, Stream, EXPERTS_OP};
use crate::engine::hash::FastMap;
use crate::parallel::Dim;
use crate::units::SimTime;

/// The send that delivers a pass's input: (iteration, micro-batch, receiving global chunk,
/// direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SendKey {
    pub iteration: u32,
    pub microbatch: u32,
    pub chunk: u32,
    pub forward: bool,
}

/// A dependency, resolved when the graph is finished.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dep {
    Op(OpId),
    Recv(SendKey),
}

/// Ops with pending (symbolic) dependencies.
#[derive(Default)]
pub(crate) struct Builder {
    /// Ops so far; until [`Builder::finish`], `op.deps` is a range of `pending`.
    pub ops: Vec<Op>,
    /// Every op's symbolic dependencies, one flat list (one allocation for the graph, not
    /// one per op).
    pending: Vec<Dep>,
    /// Dependencies added to an op after it was pushed ([`Builder::add_dep`]), in order.
    late: Vec<(OpId, Dep)>,
    /// Labels so far, and the index of each by its address (a literal's address is
    /// stable; two copies of one text just get two entries).
    pub names: Vec<&'static str>,
    name_ids: FastMap<(usize, usize), NameId>,
    pub sends: FastMap<SendKey, OpId>,
    pub all_to_alls: Vec<AllToAllSpec>,
    /// Factor on the 16-bit bytes of each communication kind: its wire element type
    /// ([`super::wire::CommSpec::factor`]); empty: 1 for every kind.
    pub wire: Vec<f64>,
}

impl Builder {
    /// A builder whose communication carries the element types of `comm`.
    pub fn with_wire(comm: &super::wire::CommSpec) -> Builder {
        Builder {
            wire: CommKind::ALL.iter().map(|&k| comm.factor(k)).collect(),
            ..Builder::default()
        }
    }

    fn factor(&self, k: CommKind) -> f64 {
        self.wire.get(k.index()).copied().unwrap_or(1.0)
    }

    /// Appends an op; the bytes of a collective or send are 16-bit bytes, scaled here to
    /// the wire type of its kind.
    pub fn push(
        &mut self,
        rank: u32,
        stream: Stream,
        mut kind: OpKind,
        name: &'static str,
        (it, mb): (u32, u32),
        deps: impl IntoIterator<Item = Dep>,
    ) -> OpId {
        let f = kind.comm_kind().map_or(1.0, |k| self.factor(k));
        if let OpKind::Collective { bytes, .. } | OpKind::Send { bytes, .. } = &mut kind {
            *bytes *= f;
        }
        self.push_exact(rank, stream, kind, name, (it, mb), deps)
    }

    /// Appends an op whose bytes are already the wire's (gradient and parameter exchanges,
    /// [`super::wire`]).
    pub fn push_exact(
        &mut self,
        rank: u32,
        stream: Stream,
        kind: OpKind,
        name: &'static str,
        (it, mb): (u32, u32),
        deps: impl IntoIterator<Item = Dep>,
    ) -> OpId {
        let start = self.pending.len() as u32;
        self.pending.extend(deps);
        let name = self.intern(name);
        self.ops.push(Op {
            rank,
            stream,
            kind,
            name,
            iteration: it,
            microbatch: mb,
            deps: (start, self.pending.len() as u32),
        });
        (self.ops.len() - 1) as OpId
    }

    /// Reserves room for `n` more iterations as large as those built so far.
    pub fn reserve_iterations(&mut self, n: u32) {
        let n = n as usize;
        self.ops.reserve(self.ops.len().saturating_mul(n));
        self.pending.reserve(self.pending.len().saturating_mul(n));
        self.late.reserve(self.late.len().saturating_mul(n));
        self.all_to_alls.reserve(self.all_to_alls.len().saturating_mul(n));
    }

    /// The index of label `name` in [`Builder::names`], added if new.
    fn intern(&mut self, name: &'static str) -> NameId {
        let names = &mut self.names;
        *self
            .name_ids
            .entry((name.as_ptr() as usize, name.len()))
            .or_insert_with(|| {
                names.push(name);
                NameId::try_from(names.len() - 1).expect("workload invariant broken: over 65,535 distinct op labels")
            })
    }

    /// The label of op `id`.
    pub fn name_of(&self, id: OpId) -> &'static str {
        self.names[self.ops[id as usize].name as usize]
    }

    /// Makes the already pushed op `op` wait for `dep` too.
    pub fn add_dep(&mut self, op: OpId, dep: Dep) {
        self.late.push((op, dep));
    }

    /// Resolves symbolic receive dependencies into a flat list: (ops, deps).
    pub fn finish(self) -> (Vec<Op>, Vec<OpId>, Vec<AllToAllSpec>, Vec<&'static str>) {
        let f = self.factor(CommKind::Ep);
        let Builder {
            mut ops,
            pending,
            mut late,
            sends,
            mut all_to_alls,
            names,
            ..
        } = self;
        if f != 1.0 {
            // MoE dispatch and combine: every port's bytes in the EP wire type
            for a in &mut all_to_alls {
                let l = &mut a.loads;
                l.ports.up_send_bytes *= f;
                l.ports.up_recv_bytes *= f;
                l.ports.nic_send_bytes *= f;
                l.ports.nic_recv_bytes *= f;
                l.others_max_up_bytes *= f;
                l.others_max_nic_bytes *= f;
            }
        }
        let resolve = |d: Dep| match d {
            Dep::Op(o) => o,
            Dep::Recv(k) => *sends
                .get(&k)
                .expect("workload invariant broken: a pass receives from a send that was never built"),
        };
        // an op's own dependencies, then those added later, in the order they were added
        late.sort_by_key(|&(op, _)| op);
        let mut late = late.into_iter().peekable();
        let mut deps = Vec::with_capacity(pending.len() + late.len());
        for (i, op) in ops.iter_mut().enumerate() {
            let start = deps.len() as u32;
            deps.extend(
                pending[op.deps.0 as usize..op.deps.1 as usize]
                    .iter()
                    .map(|&d| resolve(d)),
            );
            while let Some((_, d)) = late.next_if(|&(o, _)| o as usize == i) {
                deps.push(resolve(d));
            }
            op.deps = (start, deps.len() as u32);
        }
        (ops, deps, all_to_alls, names)
    }
}

/// Label of a layer collective of `dim`'s group.
fn collective_name(dim: Dim) -> &'static str {
    match dim {
        Dim::Tp => "tp collective",
        Dim::Cp => "cp collective",
        Dim::CpA2a => "cp all-to-all",
        Dim::DpCp => "dp-cp collective",
        Dim::DpNode => "dp-node collective",
        Dim::Dp => "dp collective",
        Dim::Ep => "ep collective",
        Dim::Etp => "etp collective",
        Dim::ExpertDp => "expert-dp collective",
        Dim::Pp => "pp collective",
    }
}

/// Where a pass's dependencies stand while its steps are emitted.
pub(crate) struct Cursor {
    /// The compute stream this pass runs on.
    pub stream: Stream,
    /// All-to-alls go to [`Stream::Ep`] instead of blocking the compute stream.
    pub overlap_a2a: bool,
    /// Dependencies the next compute-stream op must wait for.
    pub extra: Vec<Dep>,
    /// Overlapped collectives to join after the next compute step.
    pub join: Vec<Dep>,
    /// Last op on the compute stream.
    pub last: Option<OpId>,
    /// What the last compute-stream op waited for (its explicit deps and its predecessor).
    pub before_last: Vec<Dep>,
    /// The other expert lanes of the last routed-experts step: the combine all-to-all waits
    /// for them, an expert-tensor-parallel collective between the two does not.
    lanes: Vec<OpId>,
    /// The dependencies [`Cursor::take_for_compute`] hands out (kept to reuse its buffer:
    /// no allocation per op).
    taken: Vec<Dep>,
}

impl Cursor {
    pub fn new(extra: Vec<Dep>, stream: Stream, overlap_a2a: bool) -> Self {
        Cursor {
            stream,
            overlap_a2a,
            extra,
            join: Vec::new(),
            last: None,
            before_last: Vec::new(),
            lanes: Vec::new(),
            taken: Vec::new(),
        }
    }

    /// Takes the dependencies of the next op on the compute stream (into `taken`, whose
    /// buffer `extra` reuses).
    fn take_for_compute(&mut self) {
        self.taken.clear();
        std::mem::swap(&mut self.taken, &mut self.extra);
        self.before_last.clear();
        self.before_last.extend_from_slice(&self.taken);
        self.before_last.extend(self.last.map(Dep::Op));
    }

    /// After an op on the compute stream: overlapped collectives waiting to join do so now.
    fn joined(&mut self, id: OpId) {
        self.last = Some(id);
        self.extra.append(&mut self.join);
    }

    /// Emits `steps` of micro-batch `(it, mb)` on `rank`; `moe` carries the drawn MoE
    /// instance and the expert lanes' ranks for MoE layers.
    pub fn emit(
        &mut self,
        b: &mut Builder,
        rank: u32,
        (it, mb): (u32, u32),
        steps: &[Step],
        moe: Option<(&MoeInstance, &[u32])>,
    ) {
        for s in steps {
            match s {
                Step::AllToAll { to_experts } => {
                    let Some((inst, _)) = moe else { continue };
                    let mut spec = if *to_experts {
                        inst.to_experts.clone()
                    } else {
                        inst.from_experts.clone()
                    };
                    self.take_for_compute();
                    // after the experts (the op before is lane 0's), the wait for slower lanes
                    // is the cost of imbalance
                    // (or after the expert-tensor-parallel reduce-scatter that follows them)
                    let after_experts = self.last.is_some_and(|l| {
                        let name = b.name_of(l);
                        (name == EXPERTS_OP || name == collective_name(Dim::Etp)) && b.ops[l as usize].rank == rank
                    });
                    self.lanes.clear();
                    spec.wait_from = if after_experts { self.last } else { None };
                    let table = b.all_to_alls.len() as u32;
                    b.all_to_alls.push(spec);
                    let name = if *to_experts {
                        "all-to-all to experts"
                    } else {
                        "all-to-all from experts"
                    };
                    if self.overlap_a2a {
                        // on its own stream: the GPU may run another micro-batch's compute
                        // meanwhile; this pass's next compute waits for it
                        self.taken.extend(self.last.map(Dep::Op));
                        let a2a_stream = if self.stream == Stream::Compute2 {
                            Stream::Ep2
                        } else {
                            Stream::Ep
                        };
                        let deps = self.taken.drain(..);
                        let id = b.push(rank, a2a_stream, OpKind::AllToAll { table }, name, (it, mb), deps);
                        self.last = Some(id);
                        self.extra.push(Dep::Op(id));
                        self.extra.append(&mut self.join);
                    } else {
                        let stream = self.stream;
                        let deps = self.taken.drain(..);
                        let id = b.push(rank, stream, OpKind::AllToAll { table }, name, (it, mb), deps);
                        self.joined(id);
                    }
                }
                Step::Experts { phase, part } => {
                    let Some((inst, lane_ranks)) = moe else { continue };
                    let pick = |t: &super::costs::ExpertTimes| t.of(*part);
                    let dispatch = self.last;
                    self.take_for_compute();
                    let (d, f) = pick(&inst.lanes[0]);
                    let kind = |d: f64, f: f64| OpKind::Compute {
                        duration: SimTime::from_secs(d),
                        flops: f,
                        phase: *phase,
                    };
                    let stream = self.stream;
                    let lane0 = b.push(rank, stream, kind(d, f), EXPERTS_OP, (it, mb), self.taken.drain(..));
                    self.last = Some(lane0);
                    self.lanes.clear();
                    for (t, &lane_rank) in inst.lanes.iter().zip(lane_ranks).skip(1) {
                        let (d, f) = pick(t);
                        // the lane's queue matches the pass's, so overlapped passes do not
                        // wait for each other in program order on the lanes either
                        let id = b.push(
                            lane_rank,
                            self.stream,
                            kind(d, f),
                            EXPERTS_OP,
                            (it, mb),
                            dispatch.map(Dep::Op),
                        );
                        self.extra.push(Dep::Op(id));
                        self.lanes.push(id);
                    }
                    self.extra.append(&mut self.join);
                }
                Step::Compute {
                    time_s,
                    flops,
                    phase,
                    name,
                } => {
                    self.take_for_compute();
                    let op = OpKind::Compute {
                        duration: SimTime::from_secs(*time_s),
                        flops: *flops,
                        phase: *phase,
                    };
                    let stream = self.stream;
                    let id = b.push(rank, stream, op, name, (it, mb), self.taken.drain(..));
                    self.joined(id);
                }
                Step::Comm {
                    dim,
                    kind,
                    bytes,
                    overlap,
                } => {
                    let op = OpKind::Collective {
                        dim: *dim,
                        kind: *kind,
                        bytes: *bytes,
                        purpose: CommPurpose::Activations,
                    };
                    let name = collective_name(*dim);
                    let side = Stream::overlapping(*dim);
                    match overlap {
                        Overlap::Blocking if *dim == Dim::Etp && !self.lanes.is_empty() => {
                            // the ETP group syncs on its own ranks; the other EP lanes are
                            // waited for by the combine all-to-all that follows
                            self.take_for_compute();
                            let lanes = &self.lanes;
                            self.taken.retain(|d| !matches!(d, Dep::Op(id) if lanes.contains(id)));
                            let stream = self.stream;
                            let id = b.push(rank, stream, op, name, (it, mb), self.taken.drain(..));
                            self.joined(id);
                            self.extra.extend(self.lanes.iter().map(|&id| Dep::Op(id)));
                        }
                        Overlap::Blocking => {
                            self.take_for_compute();
                            let stream = self.stream;
                            let id = b.push(rank, stream, op, name, (it, mb), self.taken.drain(..));
                            self.joined(id);
                        }
                        Overlap::WithNext => {
                            let deps = self.extra.iter().copied().chain(self.last.map(Dep::Op));
                            let id = b.push(rank, side, op, name, (it, mb), deps);
                            self.join.push(Dep::Op(id));
                        }
                        Overlap::WithPrev => {
                            let deps = self.before_last.iter().copied();
                            let id = b.push(rank, side, op, name, (it, mb), deps);
                            self.extra.push(Dep::Op(id));
                        }
                    }
                }
            }
        }
    }
}
