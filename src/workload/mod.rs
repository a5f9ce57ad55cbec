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

pub mod costs;
pub mod memory;
pub mod schedule;

use crate::hardware::{GpuSpec, Precision};
use crate::model::TransformerSpec;
use crate::network::collective::CollectiveKind;
use crate::parallel::ParallelPlan;
use crate::units::SimTime;
use costs::{LayerSteps, Overlap, Phase, Step};
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
}

impl Stream {
    /// Number of streams per rank.
    pub const COUNT: usize = 5;

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
    /// GPUs it stands for.
    pub multiplicity: u32,
}

/// The operation graph of a run.
#[derive(Clone, Debug, Default)]
pub struct Workload {
    /// All operations.
    pub ops: Vec<Op>,
    /// Flattened dependency lists.
    pub deps: Vec<OpId>,
    /// Representatives.
    pub ranks: Vec<RankInfo>,
    /// Iterations in the graph.
    pub iterations: u32,
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
    fn new(extra: Vec<Dep>) -> Self {
        Cursor {
            extra,
            join: Vec::new(),
            last: None,
            before_last: Vec::new(),
        }
    }
}

fn emit_steps(b: &mut Builder, rank: u32, it: u32, mb: u32, steps: &[Step], cur: &mut Cursor) {
    for s in steps {
        match s {
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
                    Stream::Compute,
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
                        cur.last = Some(b.push(rank, Stream::Compute, op, "tp collective", (it, mb), deps));
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
    let layer = costs::layer_steps(spec.gpu, m, p, spec.precision, spec.seq_length, spec.flash_attention);
    let (emb, head) = costs::embedding_and_head_steps(spec.gpu, m, p, spec.seq_length);
    let layers_per_chunk = p.layers_per_chunk(m.num_layers);
    let n_chunks = pp * v;
    let act_p2p_bytes = 2.0 * p.micro_batch_size as f64 * spec.seq_length as f64 * m.hidden_size as f64 / p.tp as f64;
    let layer_params_local = m.params_per_layer() / p.tp as f64;
    let emb_params_local = m.vocab_size as f64 * m.hidden_size as f64 / p.tp as f64;
    let dp_grad_kind = if p.zero_stage >= 1 {
        CollectiveKind::ReduceScatter
    } else {
        CollectiveKind::AllReduce
    };
    const GRAD_BYTES: f64 = 2.0; // 16-bit gradient reduction
    const PARAM_BYTES: f64 = 2.0;

    let mut b = Builder {
        ops: Vec::new(),
        pending_deps: Vec::new(),
        sends: HashMap::new(),
    };
    let ranks: Vec<RankInfo> = (0..pp)
        .map(|s| RankInfo {
            stage: s,
            multiplicity: p.tp * p.dp,
        })
        .collect();

    // parameter all-gather ops of the previous iteration, per (rank, chunk)
    let mut param_gathers: Vec<Vec<Vec<OpId>>> = vec![vec![Vec::new(); v as usize]; pp as usize];

    for it in 0..spec.iterations {
        for stage in 0..pp {
            let rank = stage;
            let order = schedule::pass_order(p.schedule, stage, pp, nmb, v);
            let mut grad_ops: Vec<OpId> = Vec::new();
            let mut chunk_started = vec![false; v as usize];
            let local_params: f64 = (0..v)
                .map(|c| {
                    let g = (c * pp + stage) as usize;
                    let mut x = layers_per_chunk[g] as f64 * layer_params_local;
                    if g == 0 || (g == n_chunks as usize - 1 && (pp > 1 || !m.tied_embeddings)) {
                        x += emb_params_local;
                    }
                    x
                })
                .sum();
            for pass in order {
                let g = pass.chunk * pp + stage; // global model chunk
                let mut deps = Vec::new();
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
                let mut cur = Cursor::new(deps);
                let mb = pass.microbatch;
                let nl = layers_per_chunk[g as usize];
                // gradients of a chunk are final after its last micro-batch's backward
                let reduce_now = p.zero_stage >= 2 || mb == nmb - 1;
                let zero3 = p.zero_stage >= 3 && p.dp > 1;
                let gather = |b: &mut Builder, cur: &mut Cursor| {
                    let op = OpKind::Collective {
                        group: Group::Dp,
                        kind: CollectiveKind::AllGather,
                        bytes: PARAM_BYTES * layer_params_local,
                        purpose: CommPurpose::Parameters,
                    };
                    let id = b.push(rank, Stream::DpGather, op, "zero-3 param gather", (it, mb), vec![]);
                    cur.extra.push(Dep::Op(id));
                };
                if pass.forward {
                    if g == 0 {
                        emit_steps(&mut b, rank, it, mb, &emb.forward, &mut cur);
                    }
                    for _ in 0..nl {
                        if zero3 {
                            gather(&mut b, &mut cur);
                        }
                        emit_steps(&mut b, rank, it, mb, &layer.forward, &mut cur);
                    }
                    if g == n_chunks - 1 {
                        emit_steps(&mut b, rank, it, mb, &head.forward, &mut cur);
                    }
                } else {
                    let mut bucket = 0.0;
                    let flush = |b: &mut Builder, cur: &Cursor, bucket: &mut f64, grad_ops: &mut Vec<OpId>| {
                        if *bucket > 0.0 && p.dp > 1 {
                            let mut deps = cur.extra.clone();
                            deps.extend(cur.last.map(Dep::Op));
                            let op = OpKind::Collective {
                                group: Group::Dp,
                                kind: dp_grad_kind,
                                bytes: GRAD_BYTES * *bucket,
                                purpose: CommPurpose::Gradients,
                            };
                            grad_ops.push(b.push(rank, Stream::Dp, op, "gradient reduce", (it, mb), deps));
                        }
                        *bucket = 0.0;
                    };
                    if g == n_chunks - 1 {
                        emit_steps(&mut b, rank, it, mb, &head.backward, &mut cur);
                        if pp > 1 || !m.tied_embeddings {
                            bucket += emb_params_local;
                        }
                    }
                    for _ in 0..nl {
                        if zero3 {
                            gather(&mut b, &mut cur);
                        }
                        emit_steps(&mut b, rank, it, mb, &layer.backward, &mut cur);
                        if reduce_now {
                            bucket += layer_params_local;
                            if p.overlap_grad_reduce && bucket >= p.grad_bucket_params {
                                flush(&mut b, &cur, &mut bucket, &mut grad_ops);
                            }
                        }
                    }
                    if g == 0 {
                        emit_steps(&mut b, rank, it, mb, &emb.backward, &mut cur);
                        if reduce_now {
                            bucket += emb_params_local;
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
                    b.push(
                        rank,
                        Stream::Compute,
                        OpKind::Compute {
                            duration: SimTime::ZERO,
                            flops: 0.0,
                            phase: if pass.forward { Phase::Forward } else { Phase::Backward },
                        },
                        "join",
                        (it, mb),
                        deps,
                    );
                }
            }
            // every gradient reduced, then all ranks agree on the gradient norm
            let barrier = b.push(
                rank,
                Stream::Compute,
                OpKind::Barrier { iteration: it },
                "gradient-norm sync",
                (it, u32::MAX),
                grad_ops.iter().map(|&o| Dep::Op(o)).collect(),
            );
            let local_opt_params = if p.zero_stage >= 1 {
                local_params / p.dp as f64
            } else {
                local_params
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
                if p.zero_stage >= 1 && p.zero_stage < 3 && p.dp > 1 {
                    let gch = (c * pp + stage) as usize;
                    let params = layers_per_chunk[gch] as f64 * layer_params_local
                        + if gch == 0 { emb_params_local } else { 0.0 };
                    let op = OpKind::Collective {
                        group: Group::Dp,
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
        iterations: spec.iterations,
    }
}

/// Steps of one layer, exposed for reports and tests.
pub fn layer_steps_for(spec: &WorkloadSpec) -> LayerSteps {
    costs::layer_steps(
        spec.gpu,
        spec.model,
        spec.plan,
        spec.precision,
        spec.seq_length,
        spec.flash_attention,
    )
}
