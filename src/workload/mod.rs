//! The workload: the per-rank graph of operations of a few training iterations, built
//! from the model, the plan and the pipeline schedule.
//!
//! Symmetry: every data-parallel replica and every tensor-parallel rank of a pipeline
//! stage runs the same operations at the same times on symmetric links, so the graph holds
//! one representative rank per pipeline stage, each standing for `tp * dp` GPUs. Flows of a
//! representative load only its own ports, which is exact while the ranks stay symmetric.
//!
//! Each operation runs on one stream of its rank (compute, TP, PP or DP communication);
//! a stream runs its operations in program order, and an operation also waits for its
//! explicit dependencies (which may be on other ranks).
//!
//! Mixture-of-Experts: routing breaks the symmetry between the expert-parallel ranks of a
//! stage, so each stage also has `ep - 1` *expert lanes*: ranks that run only the routed
//! experts' GEMMs of their share of the load. The combine all-to-all after the experts
//! waits for every lane, so the slowest rank sets the pace through the dependency graph.
//! Lanes stand for no extra GPUs (multiplicity 0); with balanced routing all ranks are
//! identical and no lanes are built.

pub mod costs;
pub mod memory;
pub mod routing;
pub mod schedule;

use crate::hardware::{GpuSpec, Precision};
use crate::model::TransformerSpec;
use crate::network::collective::CollectiveKind;
use crate::parallel::{ParallelPlan, Placement};
use crate::units::SimTime;
use costs::{ExpertTimes, LayerSteps, MoeCost, Overlap, Phase, Step};
use routing::{DrawKey, RoutingSpec};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Index of an operation in [`Workload::ops`].
pub type OpId = u32;

/// Streams of a rank; each runs its operations one at a time, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Kernels, and collectives the compute must wait for.
    Compute,
    /// Tensor-parallel collectives overlapped with compute.
    Tp,
    /// Pipeline sends.
    Pp,
    /// Data-parallel gradient and parameter collectives.
    Dp,
    /// ZeRO-3 / FSDP parameter all-gathers, prefetched ahead of the compute on their own
    /// stream (so they never queue behind gradient reductions).
    DpGather,
    /// A second compute queue: the backward passes when MoE all-to-alls overlap with
    /// another micro-batch's compute. It shares the GPU with [`Stream::Compute`]: one
    /// compute op at a time per rank.
    Compute2,
    /// MoE all-to-alls of forward passes when they overlap with compute.
    Ep,
    /// MoE all-to-alls of backward passes when they overlap with compute (a queue of its
    /// own, so the two passes' all-to-alls do not wait for each other in program order;
    /// on the wire they share the links).
    Ep2,
}

impl Stream {
    /// Number of streams per rank.
    pub const COUNT: usize = 8;

    /// Whether ops of this stream occupy the GPU's compute units (one at a time per rank).
    pub fn is_compute(self) -> bool {
        matches!(self, Stream::Compute | Stream::Compute2)
    }

    /// Dense index.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A process group of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Tensor-parallel group.
    Tp,
    /// Data-parallel group.
    Dp,
    /// Expert-data-parallel group (replicas of the same experts).
    ExpertDp,
}

/// What an operation does.
#[derive(Clone, Debug, PartialEq)]
pub enum OpKind {
    /// Kernels on the GPU.
    Compute {
        /// Duration.
        duration: SimTime,
        /// FLOPs executed (for HFU).
        flops: f64,
        /// Phase for the breakdown.
        phase: Phase,
    },
    /// A collective over a group.
    Collective {
        /// Group.
        group: Group,
        /// Operation.
        kind: CollectiveKind,
        /// Buffer size, bytes.
        bytes: f64,
        /// What the bytes are (gradients, parameters, activations).
        purpose: CommPurpose,
    },
    /// Point-to-point activation or gradient transfer to another pipeline rank.
    Send {
        /// Destination representative.
        to: u32,
        /// Bytes.
        bytes: f64,
    },
    /// Synchronisation of all ranks (gradient-norm all-reduce before the optimizer).
    Barrier {
        /// Iteration it closes.
        iteration: u32,
    },
    /// A MoE token all-to-all over the expert-parallel group: [`Workload::all_to_alls`].
    AllToAll {
        /// Index into [`Workload::all_to_alls`].
        table: u32,
    },
}

/// Bytes one MoE all-to-all moves through the ports of the representative rank, and what
/// the other expert-parallel ranks need.
#[derive(Clone, Debug, PartialEq)]
pub struct AllToAllSpec {
    /// Bytes the representative sends to peers in its node (scale-up).
    pub up_send_bytes: f64,
    /// Bytes it receives from peers in its node.
    pub up_recv_bytes: f64,
    /// Bytes it sends to peers in other nodes (NIC).
    pub out_send_bytes: f64,
    /// Bytes it receives from other nodes.
    pub out_recv_bytes: f64,
    /// Largest (bytes / port bandwidth) over the other lanes' ports, as
    /// `[scale-up bytes, NIC bytes]` of the busiest lane: those ports carry nothing but
    /// this all-to-all, so their drain time on idle ports is exact.
    pub other_lanes_max_bytes: [f64; 2],
    /// Whether the group spans nodes (latency of the NIC path) or stays in one.
    pub crosses_nodes: bool,
    /// The op after which the compute stream waits for the slowest lane (combine
    /// direction only), for the breakdown.
    pub wait_from: Option<OpId>,
}

/// Why a collective runs, for the breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommPurpose {
    /// Tensor-parallel activations.
    Activations,
    /// Gradient reduction.
    Gradients,
    /// Parameter all-gather (ZeRO / distributed optimizer).
    Parameters,
}

/// One operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// Representative rank.
    pub rank: u32,
    /// Stream it runs on.
    pub stream: Stream,
    /// What it does.
    pub kind: OpKind,
    /// Short label.
    pub name: &'static str,
    /// Training iteration.
    pub iteration: u32,
    /// Micro-batch, or `u32::MAX` when not tied to one.
    pub microbatch: u32,
    /// Dependencies: a range of [`Workload::deps`].
    pub deps: (u32, u32),
}

/// A representative rank.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankInfo {
    /// Pipeline stage.
    pub stage: u32,
    /// GPUs it stands for (0 for expert lanes).
    pub multiplicity: u32,
    /// Expert lane (0: the stage's representative).
    #[serde(default)]
    pub lane: u32,
}

/// Routed-load statistics of the run, from the routing draws.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MoeLoads {
    /// Token-expert assignments routed per iteration (all MoE layers, all micro-batches).
    pub assignments_per_iteration: f64,
    /// Assignments dropped per iteration (capacity factor).
    pub dropped_per_iteration: f64,
    /// Kept assignments per MoE layer and expert, summed over micro-batches and iterations.
    pub per_layer_expert: Vec<Vec<f64>>,
    /// Kept assignments per iteration and expert, summed over layers and micro-batches.
    pub per_iteration_expert: Vec<Vec<f64>>,
    /// Mean over draws of (max / mean) expert load.
    pub expert_max_over_mean: f64,
    /// Mean over draws of the expert-load Gini coefficient.
    pub expert_gini: f64,
    /// Mean over draws of (max / mean) load of the expert-parallel ranks.
    pub rank_max_over_mean: f64,
    /// Mean over draws of the rank-load Gini coefficient.
    pub rank_gini: f64,
    /// Draws made.
    pub draws: u64,
}

/// The operation graph of a run.
#[derive(Clone, Debug, Default)]
pub struct Workload {
    /// All operations.
    pub ops: Vec<Op>,
    /// Flattened dependency lists.
    pub deps: Vec<OpId>,
    /// Representatives (ranks `0..stages`), then expert lanes.
    pub ranks: Vec<RankInfo>,
    /// Pipeline stages: the representative ranks.
    pub stages: u32,
    /// Iterations in the graph.
    pub iterations: u32,
    /// MoE all-to-alls referenced by [`OpKind::AllToAll`].
    pub all_to_alls: Vec<AllToAllSpec>,
    /// Routed loads (MoE models only).
    pub moe: Option<MoeLoads>,
}

/// Everything the builder needs.
pub struct WorkloadSpec<'a> {
    /// GPU.
    pub gpu: &'a GpuSpec,
    /// Model.
    pub model: &'a TransformerSpec,
    /// Plan.
    pub plan: &'a ParallelPlan,
    /// GEMM precision.
    pub precision: Precision,
    /// Sequence length, tokens.
    pub seq_length: u32,
    /// Global batch, sequences.
    pub global_batch_size: u32,
    /// Fused (flash) attention.
    pub flash_attention: bool,
    /// Iterations to build.
    pub iterations: u32,
    /// GPUs per node (where expert-parallel peers sit).
    pub gpus_per_node: u32,
    /// MoE routing.
    pub routing: &'a RoutingSpec,
    /// Seed of the routing draws.
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SendKey {
    iteration: u32,
    microbatch: u32,
    chunk: u32,
    forward: bool,
}

#[derive(Clone, Copy, Debug)]
enum Dep {
    Op(OpId),
    Recv(SendKey),
}

struct Builder {
    ops: Vec<Op>,
    pending_deps: Vec<Vec<Dep>>,
    sends: HashMap<SendKey, OpId>,
    all_to_alls: Vec<AllToAllSpec>,
}

/// One drawn MoE layer instance (layer, micro-batch): per-lane expert times and the two
/// all-to-alls' port loads.
#[derive(Clone)]
struct MoeInstance {
    /// Expert time per lane (lane 0: the representative).
    lanes: Vec<ExpertTimes>,
    to_experts: AllToAllSpec,
    from_experts: AllToAllSpec,
}

impl Builder {
    fn push(
        &mut self,
        rank: u32,
        stream: Stream,
        kind: OpKind,
        name: &'static str,
        (it, mb): (u32, u32),
        deps: Vec<Dep>,
    ) -> OpId {
        self.ops.push(Op {
            rank,
            stream,
            kind,
            name,
            iteration: it,
            microbatch: mb,
            deps: (0, 0),
        });
        self.pending_deps.push(deps);
        (self.ops.len() - 1) as OpId
    }
}

/// Where a pass's dependencies stand while its steps are emitted.
struct Cursor {
    /// The compute stream this pass runs on.
    stream: Stream,
    /// All-to-alls go to [`Stream::Ep`] instead of blocking the compute stream.
    overlap_a2a: bool,
    /// Dependencies the next compute-stream op must wait for.
    extra: Vec<Dep>,
    /// Overlapped collectives to join after the next compute step.
    join: Vec<Dep>,
    /// Last op on the compute stream.
    last: Option<OpId>,
    /// What the last compute-stream op waited for (its explicit deps and its predecessor).
    before_last: Vec<Dep>,
}

impl Cursor {
    fn new(extra: Vec<Dep>, stream: Stream, overlap_a2a: bool) -> Self {
        Cursor {
            stream,
            overlap_a2a,
            extra,
            join: Vec::new(),
            last: None,
            before_last: Vec::new(),
        }
    }
}

fn emit_steps(
    b: &mut Builder,
    rank: u32,
    (it, mb): (u32, u32),
    steps: &[Step],
    cur: &mut Cursor,
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
                let deps = std::mem::take(&mut cur.extra);
                cur.before_last = deps.clone();
                cur.before_last.extend(cur.last.map(Dep::Op));
                // after the experts (the op before is lane 0's), the wait for slower lanes
                // is the cost of imbalance
                let after_experts = cur
                    .last
                    .is_some_and(|l| b.ops[l as usize].name == "experts" && b.ops[l as usize].rank == rank);
                spec.wait_from = if after_experts { cur.last } else { None };
                let table = b.all_to_alls.len() as u32;
                b.all_to_alls.push(spec);
                let name = if *to_experts {
                    "all-to-all to experts"
                } else {
                    "all-to-all from experts"
                };
                if cur.overlap_a2a {
                    // on its own stream: the GPU may run another micro-batch's compute
                    // meanwhile; this pass's next compute waits for it
                    let mut deps = deps;
                    deps.extend(cur.last.map(Dep::Op));
                    let a2a_stream = if cur.stream == Stream::Compute2 {
                        Stream::Ep2
                    } else {
                        Stream::Ep
                    };
                    let id = b.push(rank, a2a_stream, OpKind::AllToAll { table }, name, (it, mb), deps);
                    cur.last = Some(id);
                    cur.extra.push(Dep::Op(id));
                } else {
                    cur.last = Some(b.push(rank, cur.stream, OpKind::AllToAll { table }, name, (it, mb), deps));
                }
                cur.extra.append(&mut cur.join);
            }
            Step::Experts { phase } => {
                let Some((inst, lane_ranks)) = moe else { continue };
                let pick = |t: &ExpertTimes| {
                    if *phase == Phase::Backward {
                        (t.bwd_s, t.bwd_flops)
                    } else {
                        (t.fwd_s, t.fwd_flops)
                    }
                };
                let dispatch = cur.last;
                let deps = std::mem::take(&mut cur.extra);
                cur.before_last = deps.clone();
                cur.before_last.extend(cur.last.map(Dep::Op));
                let (d, f) = pick(&inst.lanes[0]);
                let lane0 = b.push(
                    rank,
                    cur.stream,
                    OpKind::Compute {
                        duration: SimTime::from_secs(d),
                        flops: f,
                        phase: *phase,
                    },
                    "experts",
                    (it, mb),
                    deps,
                );
                cur.last = Some(lane0);
                for (t, &lane_rank) in inst.lanes.iter().zip(lane_ranks).skip(1) {
                    let (d, f) = pick(t);
                    // the lane's queue matches the pass's, so overlapped passes do not
                    // wait for each other in program order on the lanes either
                    let id = b.push(
                        lane_rank,
                        cur.stream,
                        OpKind::Compute {
                            duration: SimTime::from_secs(d),
                            flops: f,
                            phase: *phase,
                        },
                        "experts",
                        (it, mb),
                        dispatch.map(Dep::Op).into_iter().collect(),
                    );
                    cur.extra.push(Dep::Op(id));
                }
                cur.extra.append(&mut cur.join);
            }
            Step::Compute {
                time_s,
                flops,
                phase,
                name,
            } => {
                let deps = std::mem::take(&mut cur.extra);
                cur.before_last = deps.clone();
                cur.before_last.extend(cur.last.map(Dep::Op));
                let id = b.push(
                    rank,
                    cur.stream,
                    OpKind::Compute {
                        duration: SimTime::from_secs(*time_s),
                        flops: *flops,
                        phase: *phase,
                    },
                    name,
                    (it, mb),
                    deps,
                );
                cur.last = Some(id);
                cur.extra.append(&mut cur.join);
            }
            Step::Tp { kind, bytes, overlap } => {
                let op = OpKind::Collective {
                    group: Group::Tp,
                    kind: *kind,
                    bytes: *bytes,
                    purpose: CommPurpose::Activations,
                };
                match overlap {
                    Overlap::Blocking => {
                        let deps = std::mem::take(&mut cur.extra);
                        cur.before_last = deps.clone();
                        cur.before_last.extend(cur.last.map(Dep::Op));
                        cur.last = Some(b.push(rank, cur.stream, op, "tp collective", (it, mb), deps));
                        cur.extra.append(&mut cur.join);
                    }
                    Overlap::WithNext => {
                        let mut deps = cur.extra.clone();
                        deps.extend(cur.last.map(Dep::Op));
                        let id = b.push(rank, Stream::Tp, op, "tp collective", (it, mb), deps);
                        cur.join.push(Dep::Op(id));
                    }
                    Overlap::WithPrev => {
                        let deps = cur.before_last.clone();
                        let id = b.push(rank, Stream::Tp, op, "tp collective", (it, mb), deps);
                        cur.extra.push(Dep::Op(id));
                    }
                }
            }
        }
    }
}

/// Builds the operation graph.
pub fn build(spec: &WorkloadSpec) -> Workload {
    let p = spec.plan;
    let m = spec.model;
    let pp = p.pp;
    let v = p.virtual_stages;
    let nmb = p.num_microbatches(spec.global_batch_size);
    let layer = costs::layer_steps(
        spec.gpu,
        m,
        p,
        spec.precision,
        spec.seq_length,
        spec.flash_attention,
        false,
    );
    let moe_layer = costs::layer_steps(
        spec.gpu,
        m,
        p,
        spec.precision,
        spec.seq_length,
        spec.flash_attention,
        true,
    );
    let moe_cost = MoeCost::new(spec.gpu, m, p, spec.precision, spec.seq_length);
    let (emb, head) = costs::embedding_and_head_steps(spec.gpu, m, p, spec.seq_length);
    let layers_per_chunk = p.layers_per_chunk(m.num_layers);
    let n_chunks = pp * v;
    let first_layer_of_chunk: Vec<u32> = layers_per_chunk
        .iter()
        .scan(0u32, |acc, &n| {
            let first = *acc;
            *acc += n;
            Some(first)
        })
        .collect();
    let act_p2p_bytes = 2.0 * p.micro_batch_size as f64 * spec.seq_length as f64 * m.hidden_size as f64 / p.tp as f64;
    // parameters one GPU holds of layer `l`: dense part split over TP, routed experts over EP
    let dense_local = |l: u32| m.layer_dense_params(l) / p.tp as f64;
    let expert_local = |l: u32| m.layer_expert_params(l) / (p.ep * p.expert_tp).max(1) as f64;
    let emb_params_local = m.vocab_size as f64 * m.hidden_size as f64 / p.tp as f64;
    let edp = p.expert_dp();
    let dp_grad_kind = if p.zero_stage >= 1 {
        CollectiveKind::ReduceScatter
    } else {
        CollectiveKind::AllReduce
    };
    const GRAD_BYTES: f64 = 2.0; // 16-bit gradient reduction
    const PARAM_BYTES: f64 = 2.0;

    // expert lanes: one per expert-parallel rank when routing makes them differ
    let lanes = match (&moe_cost, spec.routing.is_balanced()) {
        (Some(_), false) if p.ep > 1 => p.ep,
        _ => 1,
    };
    let mut b = Builder {
        ops: Vec::new(),
        pending_deps: Vec::new(),
        sends: HashMap::new(),
        all_to_alls: Vec::new(),
    };
    let mut ranks: Vec<RankInfo> = (0..pp)
        .map(|s| RankInfo {
            stage: s,
            multiplicity: p.tp * p.dp,
            lane: 0,
        })
        .collect();
    let mut lane_ranks: Vec<Vec<u32>> = (0..pp).map(|s| vec![s]).collect();
    for s in 0..pp {
        for lane in 1..lanes {
            lane_ranks[s as usize].push(ranks.len() as u32);
            ranks.push(RankInfo {
                stage: s,
                multiplicity: 0,
                lane,
            });
        }
    }
    let placement = Placement::megatron(p, spec.gpus_per_node);
    let mut moe_router = moe_cost
        .as_ref()
        .map(|c| MoeRouter::new(c, m, p, &placement, spec, lanes));
    let overlap_a2a = moe_cost.is_some() && p.moe_overlap;

    // parameter all-gather ops of the previous iteration, per (rank, chunk)
    let mut param_gathers: Vec<Vec<Vec<OpId>>> = vec![vec![Vec::new(); v as usize]; pp as usize];

    for it in 0..spec.iterations {
        for stage in 0..pp {
            let rank = stage;
            // overlap: one more warm-up forward, so that in the steady state the next
            // forward's input has arrived while the backward runs (Megatron's combined 1F1B)
            let order = schedule::pass_order_with_warmup(p.schedule, stage, pp, nmb, v, u32::from(overlap_a2a));
            let mut grad_ops: Vec<OpId> = Vec::new();
            let mut chunk_started = vec![false; v as usize];
            let chunk_layers = |g: usize| first_layer_of_chunk[g]..first_layer_of_chunk[g] + layers_per_chunk[g];
            let local_params: f64 = (0..v)
                .map(|c| {
                    let g = (c * pp + stage) as usize;
                    let mut x: f64 = chunk_layers(g).map(dense_local).sum();
                    if g == 0 || (g == n_chunks as usize - 1 && (pp > 1 || !m.tied_embeddings)) {
                        x += emb_params_local;
                    }
                    x
                })
                .sum();
            let local_expert_params: f64 = (0..v)
                .map(|c| chunk_layers((c * pp + stage) as usize).map(expert_local).sum::<f64>())
                .sum();
            // with overlapped all-to-alls, backward passes run on a second compute queue and
            // each pass may overlap only its neighbour in the schedule: it waits for the
            // passes two and three before it
            let mut pass_ends: Vec<OpId> = Vec::new();
            for pass in order {
                let g = pass.chunk * pp + stage; // global model chunk
                let mut deps = Vec::new();
                if overlap_a2a {
                    let k = pass_ends.len();
                    deps.extend(
                        [k.checked_sub(2), k.checked_sub(3)]
                            .into_iter()
                            .flatten()
                            .map(|i| Dep::Op(pass_ends[i])),
                    );
                }
                let pass_stream = if overlap_a2a && !pass.forward {
                    Stream::Compute2
                } else {
                    Stream::Compute
                };
                let upstream = if pass.forward { g > 0 } else { g + 1 < n_chunks };
                if upstream {
                    deps.push(Dep::Recv(SendKey {
                        iteration: it,
                        microbatch: pass.microbatch,
                        chunk: g,
                        forward: pass.forward,
                    }));
                }
                if pass.forward && !chunk_started[pass.chunk as usize] {
                    chunk_started[pass.chunk as usize] = true;
                    // the first forward of a chunk needs its parameters gathered
                    deps.extend(
                        param_gathers[rank as usize][pass.chunk as usize]
                            .iter()
                            .map(|&o| Dep::Op(o)),
                    );
                    if !p.overlap_param_gather {
                        deps.extend(param_gathers[rank as usize].iter().flatten().map(|&o| Dep::Op(o)));
                    }
                }
                let mut cur = Cursor::new(deps, pass_stream, overlap_a2a);
                let mb = pass.microbatch;
                let nl = layers_per_chunk[g as usize];
                // gradients of a chunk are final after its last micro-batch's backward
                let reduce_now = p.zero_stage >= 2 || mb == nmb - 1;
                let zero3 = p.zero_stage >= 3 && p.dp > 1;
                let gather = |b: &mut Builder, cur: &mut Cursor, l: u32| {
                    for (group, bytes) in [(Group::Dp, dense_local(l)), (Group::ExpertDp, expert_local(l))] {
                        if bytes <= 0.0 || (group == Group::ExpertDp && edp <= 1) {
                            continue;
                        }
                        let op = OpKind::Collective {
                            group,
                            kind: CollectiveKind::AllGather,
                            bytes: PARAM_BYTES * bytes,
                            purpose: CommPurpose::Parameters,
                        };
                        let id = b.push(rank, Stream::DpGather, op, "zero-3 param gather", (it, mb), vec![]);
                        cur.extra.push(Dep::Op(id));
                    }
                };
                let first_layer = first_layer_of_chunk[g as usize];
                if pass.forward {
                    if g == 0 {
                        emit_steps(&mut b, rank, (it, mb), &emb.forward, &mut cur, None);
                    }
                    for l in first_layer..first_layer + nl {
                        if zero3 {
                            gather(&mut b, &mut cur, l);
                        }
                        match moe_router.as_mut().filter(|_| m.is_moe_layer(l)) {
                            Some(r) => {
                                let inst = r.instance(it, l, mb);
                                emit_steps(
                                    &mut b,
                                    rank,
                                    (it, mb),
                                    &moe_layer.forward,
                                    &mut cur,
                                    Some((&inst, &lane_ranks[stage as usize])),
                                );
                            }
                            None => emit_steps(&mut b, rank, (it, mb), &layer.forward, &mut cur, None),
                        }
                    }
                    if g == n_chunks - 1 {
                        emit_steps(&mut b, rank, (it, mb), &head.forward, &mut cur, None);
                    }
                } else {
                    // gradient buckets: dense parameters over DP, routed experts over expert-DP
                    let mut bucket = [0.0f64; 2];
                    let flush = |b: &mut Builder, cur: &Cursor, bucket: &mut [f64; 2], grad_ops: &mut Vec<OpId>| {
                        for (i, group, size) in [(0, Group::Dp, p.dp), (1, Group::ExpertDp, edp)] {
                            if bucket[i] > 0.0 && size > 1 {
                                let mut deps = cur.extra.clone();
                                deps.extend(cur.last.map(Dep::Op));
                                let op = OpKind::Collective {
                                    group,
                                    kind: dp_grad_kind,
                                    bytes: GRAD_BYTES * bucket[i],
                                    purpose: CommPurpose::Gradients,
                                };
                                grad_ops.push(b.push(rank, Stream::Dp, op, "gradient reduce", (it, mb), deps));
                            }
                            bucket[i] = 0.0;
                        }
                    };
                    if g == n_chunks - 1 {
                        emit_steps(&mut b, rank, (it, mb), &head.backward, &mut cur, None);
                        if pp > 1 || !m.tied_embeddings {
                            bucket[0] += emb_params_local;
                        }
                    }
                    for l in (first_layer..first_layer + nl).rev() {
                        if zero3 {
                            gather(&mut b, &mut cur, l);
                        }
                        match moe_router.as_mut().filter(|_| m.is_moe_layer(l)) {
                            Some(r) => {
                                let inst = r.instance(it, l, mb);
                                emit_steps(
                                    &mut b,
                                    rank,
                                    (it, mb),
                                    &moe_layer.backward,
                                    &mut cur,
                                    Some((&inst, &lane_ranks[stage as usize])),
                                );
                            }
                            None => emit_steps(&mut b, rank, (it, mb), &layer.backward, &mut cur, None),
                        }
                        if reduce_now {
                            bucket[0] += dense_local(l);
                            bucket[1] += expert_local(l);
                            if p.overlap_grad_reduce && bucket[0] + bucket[1] >= p.grad_bucket_params {
                                flush(&mut b, &cur, &mut bucket, &mut grad_ops);
                            }
                        }
                    }
                    if g == 0 {
                        emit_steps(&mut b, rank, (it, mb), &emb.backward, &mut cur, None);
                        if reduce_now {
                            bucket[0] += emb_params_local;
                        }
                    }
                    if reduce_now {
                        flush(&mut b, &cur, &mut bucket, &mut grad_ops);
                    }
                }
                // hand the activation (or its gradient) to the next chunk in the pipeline
                let downstream = if pass.forward {
                    (g + 1 < n_chunks).then(|| g + 1)
                } else {
                    g.checked_sub(1)
                };
                if let Some(to_chunk) = downstream {
                    let mut deps = std::mem::take(&mut cur.extra);
                    deps.append(&mut cur.join);
                    deps.extend(cur.last.map(Dep::Op));
                    let to = to_chunk % pp;
                    let id = b.push(
                        rank,
                        Stream::Pp,
                        OpKind::Send {
                            to,
                            bytes: act_p2p_bytes,
                        },
                        if pass.forward {
                            "send activations"
                        } else {
                            "send gradients"
                        },
                        (it, mb),
                        deps,
                    );
                    b.sends.insert(
                        SendKey {
                            iteration: it,
                            microbatch: mb,
                            chunk: to_chunk,
                            forward: pass.forward,
                        },
                        id,
                    );
                } else if !cur.extra.is_empty() || !cur.join.is_empty() {
                    // nothing downstream: the next op on the compute stream must still wait
                    // for overlapped collectives; a zero-time marker carries the join
                    let mut deps = std::mem::take(&mut cur.extra);
                    deps.append(&mut cur.join);
                    cur.last = Some(b.push(
                        rank,
                        cur.stream,
                        OpKind::Compute {
                            duration: SimTime::ZERO,
                            flops: 0.0,
                            phase: if pass.forward { Phase::Forward } else { Phase::Backward },
                        },
                        "join",
                        (it, mb),
                        deps,
                    ));
                }
                if let Some(last) = cur.last {
                    pass_ends.push(last);
                }
            }
            // every gradient reduced, then all ranks agree on the gradient norm
            let barrier = b.push(
                rank,
                Stream::Compute,
                OpKind::Barrier { iteration: it },
                "gradient-norm sync",
                (it, u32::MAX),
                // the last pass may run on the second compute queue
                grad_ops.iter().chain(pass_ends.last()).map(|&o| Dep::Op(o)).collect(),
            );
            let local_opt_params = if p.zero_stage >= 1 {
                local_params / p.dp as f64 + local_expert_params / edp as f64
            } else {
                local_params + local_expert_params
            };
            let opt = b.push(
                rank,
                Stream::Compute,
                OpKind::Compute {
                    duration: SimTime::from_secs(costs::optimizer_time_s(spec.gpu, local_opt_params)),
                    flops: 0.0,
                    phase: Phase::Optimizer,
                },
                "optimizer step",
                (it, u32::MAX),
                vec![Dep::Op(barrier)],
            );
            // sharded optimizer: gather the updated parameters, one collective per chunk
            for c in 0..v {
                param_gathers[rank as usize][c as usize].clear();
                if p.zero_stage >= 1 && p.zero_stage < 3 {
                    let gch = c * pp + stage;
                    let dense: f64 = chunk_layers(gch as usize).map(dense_local).sum::<f64>()
                        + if gch == 0 { emb_params_local } else { 0.0 };
                    let experts: f64 = chunk_layers(gch as usize).map(expert_local).sum();
                    for (group, size, params) in [(Group::Dp, p.dp, dense), (Group::ExpertDp, edp, experts)] {
                        if size <= 1 || params <= 0.0 {
                            continue;
                        }
                        let op = OpKind::Collective {
                            group,
                            kind: CollectiveKind::AllGather,
                            bytes: PARAM_BYTES * params,
                            purpose: CommPurpose::Parameters,
                        };
                        let id = b.push(
                            rank,
                            Stream::Dp,
                            op,
                            "parameter all-gather",
                            (it, u32::MAX),
                            vec![Dep::Op(opt)],
                        );
                        param_gathers[rank as usize][c as usize].push(id);
                    }
                }
            }
        }
    }

    // resolve symbolic receive dependencies into a flat list
    let mut deps = Vec::new();
    let pending = std::mem::take(&mut b.pending_deps);
    for (op, list) in b.ops.iter_mut().zip(pending) {
        let start = deps.len() as u32;
        for d in list {
            match d {
                Dep::Op(o) => deps.push(o),
                Dep::Recv(k) => deps.push(
                    *b.sends
                        .get(&k)
                        .expect("workload invariant broken: a pass receives from a send that was never built"),
                ),
            }
        }
        op.deps = (start, deps.len() as u32);
    }
    Workload {
        ops: b.ops,
        deps,
        ranks,
        stages: pp,
        iterations: spec.iterations,
        all_to_alls: b.all_to_alls,
        moe: moe_router.map(|r| r.loads),
    }
}

/// Draws the routing of each MoE layer instance and turns it into lane times and
/// all-to-all port loads.
struct MoeRouter<'a> {
    cost: &'a MoeCost,
    routing: &'a RoutingSpec,
    seed: u64,
    experts: u32,
    ep: u32,
    lanes: u32,
    /// Assignments per EP group and micro-batch.
    assignments: f64,
    /// Bytes per token-expert assignment moved by the all-to-all.
    bytes_per_assignment: f64,
    /// EP peers per node.
    peers_per_node: u32,
    first_dense: u32,
    /// MoE layers in the model.
    moe_layers: u32,
    /// Hierarchical (node-deduplicated) dispatch.
    hierarchical: bool,
    /// Experts per token, as a float.
    top_k: f64,
    loads: MoeLoads,
    /// Draws of the current (iteration, layer, micro-batch), reused by the backward.
    cache: HashMap<(u32, u32, u32), MoeInstance>,
}

impl<'a> MoeRouter<'a> {
    fn new(
        cost: &'a MoeCost,
        m: &TransformerSpec,
        p: &ParallelPlan,
        placement: &Placement,
        spec: &'a WorkloadSpec,
        lanes: u32,
    ) -> Self {
        let moe = m.moe.as_ref().expect("MoeCost exists only for MoE models");
        let n_moe = m.num_moe_layers() as usize;
        MoeRouter {
            cost,
            routing: spec.routing,
            seed: spec.seed,
            experts: moe.num_experts,
            ep: p.ep.max(1),
            lanes,
            assignments: cost.tokens_per_rank * p.ep.max(1) as f64 * moe.top_k as f64,
            bytes_per_assignment: 2.0 * m.hidden_size as f64,
            peers_per_node: placement.ep_members_per_node.clamp(1, p.ep.max(1)),
            first_dense: moe.first_dense_layers,
            moe_layers: n_moe as u32,
            hierarchical: spec.routing.dispatcher == routing::Dispatcher::Hierarchical,
            top_k: moe.top_k as f64,
            loads: MoeLoads {
                per_layer_expert: vec![vec![0.0; moe.num_experts as usize]; n_moe],
                per_iteration_expert: vec![vec![0.0; moe.num_experts as usize]; spec.iterations as usize],
                ..MoeLoads::default()
            },
            cache: HashMap::new(),
        }
    }

    /// The instance of MoE layer `layer` (model layer index) for micro-batch `mb`.
    fn instance(&mut self, it: u32, layer: u32, mb: u32) -> MoeInstance {
        let key = (it, layer, mb);
        if let Some(inst) = self.cache.remove(&key) {
            // second use (the backward): done with this draw
            return inst;
        }
        let moe_layer = layer - self.first_dense;
        let d = routing::draw(
            self.routing,
            self.experts,
            self.assignments,
            self.seed,
            DrawKey {
                iteration: it,
                moe_layer,
                microbatch: mb,
                moe_layers: self.moe_layers,
            },
        );
        let per_rank = (self.experts / self.ep).max(1) as usize;
        let rank_loads: Vec<f64> = d.kept.chunks(per_rank).map(|c| c.iter().sum()).collect();
        // statistics
        let l = &mut self.loads;
        l.assignments_per_iteration += self.assignments;
        l.dropped_per_iteration += d.dropped;
        for (e, &c) in d.kept.iter().enumerate() {
            l.per_layer_expert[moe_layer as usize][e] += c;
            l.per_iteration_expert[it as usize][e] += c;
        }
        let (em, eg) = routing::imbalance(&d.kept);
        let (rm, rg) = routing::imbalance(&rank_loads);
        l.expert_max_over_mean += em;
        l.expert_gini += eg;
        l.rank_max_over_mean += rm;
        l.rank_gini += rg;
        l.draws += 1;
        // lane times
        let lanes: Vec<ExpertTimes> = if self.lanes == 1 {
            vec![self.cost.experts(&d.kept[..per_rank])]
        } else {
            d.kept.chunks(per_rank).map(|c| self.cost.experts(c)).collect()
        };
        // all-to-all port loads of every EP rank; lane 0 is the representative
        let ep = self.ep as usize;
        let g = self.peers_per_node as usize;
        let total: f64 = rank_loads.iter().sum();
        let bpa = self.bytes_per_assignment;
        let port = |r: usize| -> [f64; 4] {
            let node = r / g;
            let same_node: f64 = rank_loads
                .iter()
                .enumerate()
                .filter(|&(q, _)| q != r && q / g == node)
                .map(|(_, x)| x)
                .sum();
            let peers_here = ((node + 1) * g).min(ep) - node * g;
            let other_nodes = total - same_node - rank_loads[r];
            let own = rank_loads[r];
            let direct = [
                same_node / ep as f64 * bpa,
                own * (peers_here - 1) as f64 / ep as f64 * bpa,
                other_nodes / ep as f64 * bpa,
                own * (ep - peers_here) as f64 / ep as f64 * bpa,
            ];
            if !self.hierarchical || ep <= g || total <= 0.0 {
                return direct;
            }
            // hierarchical (DeepEP/Tutel): a token crosses the NIC once per remote node
            // holding any of its experts, to the same-rail GPU there, which forwards the
            // copies to the experts' GPUs over NVLink
            let nodes = ep.div_ceil(g);
            let node_load = |j: usize| -> f64 { rank_loads[j * g..((j + 1) * g).min(ep)].iter().sum() };
            let hit = |j: usize| 1.0 - (1.0 - node_load(j) / total).max(0.0).powf(self.top_k);
            let t = self.cost.tokens_per_rank;
            let nic_send: f64 = (0..nodes).filter(|&j| j != node).map(|j| t * hit(j)).sum();
            let nic_recv = (ep - peers_here) as f64 * t * hit(node) / peers_here as f64;
            // remote copies for this node, shared over its GPUs, of which (g-1)/g move on
            let remote_in = node_load(node) * (ep - peers_here) as f64 / ep as f64;
            let forward = remote_in / peers_here as f64 * (peers_here - 1) as f64 / peers_here as f64;
            let forwarded_to_me =
                own * (ep - peers_here) as f64 / ep as f64 * (peers_here - 1) as f64 / peers_here as f64;
            [
                direct[0] + forward * bpa,
                direct[1] + forwarded_to_me * bpa,
                nic_send * bpa,
                nic_recv * bpa,
            ]
        };
        let ports: Vec<[f64; 4]> = (0..if self.lanes == 1 { 1 } else { ep }).map(port).collect();
        let busiest = |f: fn(&[f64; 4]) -> [f64; 2]| -> [f64; 2] {
            ports
                .iter()
                .skip(1)
                .map(f)
                .fold([0.0, 0.0], |a, x| [a[0].max(x[0]), a[1].max(x[1])])
        };
        let crosses_nodes = ep > g;
        let to = AllToAllSpec {
            up_send_bytes: ports[0][0],
            up_recv_bytes: ports[0][1],
            out_send_bytes: ports[0][2],
            out_recv_bytes: ports[0][3],
            other_lanes_max_bytes: busiest(|x| [x[0].max(x[1]), x[2].max(x[3])]),
            crosses_nodes,
            wait_from: None,
        };
        let from = AllToAllSpec {
            up_send_bytes: ports[0][1],
            up_recv_bytes: ports[0][0],
            out_send_bytes: ports[0][3],
            out_recv_bytes: ports[0][2],
            ..to.clone()
        };
        let inst = MoeInstance {
            lanes,
            to_experts: to,
            from_experts: from,
        };
        self.cache.insert(key, inst.clone());
        inst
    }
}

/// Steps of one (dense) layer, exposed for reports and tests.
pub fn layer_steps_for(spec: &WorkloadSpec) -> LayerSteps {
    costs::layer_steps(
        spec.gpu,
        spec.model,
        spec.plan,
        spec.precision,
        spec.seq_length,
        spec.flash_attention,
        false,
    )
}
