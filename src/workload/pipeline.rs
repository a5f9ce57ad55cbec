//! The pipeline program as operations: for every iteration and stage, the schedule's passes
//! (forward, fused backward, backward-input, backward-weight) over the stage's model
//! chunks, with the layers' steps, the pipeline sends between chunks, the gradient
//! reductions (bucketed, dense over DP and routed experts over expert-DP), the
//! gradient-norm barrier (unless the schedule validates the optimizer step afterwards),
//! the optimizer step and the ZeRO parameter gathers; gradient and parameter exchanges
//! in the wire's types and compression ([`super::wire`]), the host copies and CPU step of
//! offloading ([`super::offload`]).
//!
//! How passes share a stage's GPU: one after the other in program order; with the MoE
//! all-to-all overlap, each pass may overlap its neighbour (backwards on the second
//! compute queue); with a schedule that pairs passes (DualPipe's forward-backward chunks,
//! [`crate::parallel::schedule::Pass::with_previous`]), the two passes of a pair wait for
//! both their inputs, run on the two compute queues (the backward on the first, which has
//! priority), and send their outputs when both are done.

use super::graph::{Builder, Cursor, Dep, SendKey};
use super::memory::layer_activation_bytes;
use super::moe::MoeRouter;
use super::op::{CommKind, CommPurpose, OpId, OpKind, Phase, RankInfo, Stream};
use super::stage::{emit_layer, optimizer_step, pass_steps, StageCosts};
use super::wire::{layer_grad_elements, BucketElements};
use super::{Workload, WorkloadSpec};
use crate::hardware::kernel::memory_bound_time_s;
use crate::network::collective::CollectiveKind;
use crate::parallel::schedule::{PassKind, PipelineShape};
use crate::parallel::Dim;
use crate::units::SimTime;

/// 16-bit gradients (DualPipe's mirror exchange, the offloaded gradient shard), bytes per
/// parameter.
const GRAD_BYTES: f64 = 2.0;
/// 16-bit parameters (offloaded shards), bytes per parameter.
const PARAM_BYTES: f64 = 2.0;

/// Builds the operation graph.
pub fn build(spec: &WorkloadSpec) -> Workload {
    let p = spec.plan;
    let m = spec.model;
    let pp = p.pp;
    let schedule = p.schedule.get();
    let extra_warmup = p.extra_warmup(m);
    let shape: PipelineShape = p.pipeline_shape(spec.training.global_batch_size, extra_warmup);
    let v = schedule.chunks_per_stage(&shape);
    let n_chunks = schedule.model_chunks(&shape);
    // one set of layer costs per distinct GPU
    let mut costs: Vec<StageCosts> = Vec::new();
    let stage_costs: Vec<usize> = (0..pp)
        .map(|s| {
            let g = spec.gpu(s);
            match costs.iter().position(|c| c.gpu == *g) {
                Some(i) => i,
                None => {
                    costs.push(StageCosts::new(spec, g));
                    costs.len() - 1
                }
            }
        })
        .collect();
    let layers_per_chunk = p.layers_per_chunk(m.num_layers);
    let first_layer_of_chunk: Vec<u32> = layers_per_chunk
        .iter()
        .scan(0u32, |acc, &n| {
            let first = *acc;
            *acc += n;
            Some(first)
        })
        .collect();
    let seq = spec.training.seq_length;
    // the MTP modules' layers, numbered after the main ones, on the last chunk
    let mtp_layers = m.mtp_layer(0)..m.mtp_layer(m.mtp_modules);
    // the activation of this rank's sequence shard (context parallelism splits it too)
    let act_p2p_bytes =
        2.0 * p.micro_batch_size as f64 * seq as f64 * m.hidden_size as f64 / p.tp as f64 / p.cp.max(1) as f64;
    // gradients are reduced, and ZeRO shards, over DP (x CP with context parallelism)
    let (grad_dim, grad_group) = (p.grad_dim(), p.grad_group());
    // parameters one GPU holds of layer `l`: dense part split over TP, routed experts over EP
    let dense_local = |l: u32| m.layer_dense_params(l) / p.tp as f64;
    let expert_local = |l: u32| m.layer_expert_params(l) / (p.ep * p.expert_tp).max(1) as f64;
    let emb_params_local = m.vocab_size as f64 * m.hidden_size as f64 / p.tp as f64;
    let edp = p.expert_dp();
    let (comm, off, phase) = (spec.comm, spec.offload, spec.grad_phase);
    // gradient elements of every layer (dense, experts), as PowerSGD sees the matrices
    let rank_r = comm.compression.powersgd_rank;
    let layer_elems: Vec<[BucketElements; 2]> = (0..m.num_layers)
        .map(|l| layer_grad_elements(m, p, l, rank_r))
        .collect();
    let mut emb_elems = BucketElements::default();
    emb_elems.add_matrix(m.vocab_size as f64 / p.tp as f64, m.hidden_size as f64, 1.0, rank_r);
    let overlap_grad = p.overlap_grad_reduce && comm.bucketed(phase);
    let param_bytes = comm.bytes_per_element(CommKind::DpParam);
    let (gather_fwd_bytes, gather_bwd_bytes, hpz) = comm.zero3_gather();
    // activations one forward pass of a global chunk stores (activation offload)
    let chunk_act_bytes: Vec<f64> = layers_per_chunk
        .iter()
        .zip(&first_layer_of_chunk)
        .map(|(&n, &f)| (f..f + n).map(|l| layer_activation_bytes(m, p, spec.training, l)).sum())
        .collect();
    let mut act_copies: std::collections::HashMap<(u32, u32, u32), OpId> = std::collections::HashMap::new();

    let moe_shape = costs[0].moe.as_ref();
    // expert lanes: one per expert-parallel rank when routing makes them differ
    let lanes = match (moe_shape, spec.routing.is_balanced()) {
        (Some(_), false) if p.ep > 1 => p.ep,
        _ => 1,
    };
    let mut b = Builder::with_wire(comm);
    let stage_gpus = p.gpus_per_stage();
    let lane_gpus = if lanes > 1 { stage_gpus / lanes } else { stage_gpus };
    let mut ranks: Vec<RankInfo> = (0..pp)
        .map(|s| RankInfo {
            stage: s,
            multiplicity: stage_gpus,
            lane: 0,
            expert_multiplicity: lane_gpus,
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
                expert_multiplicity: lane_gpus,
            });
        }
    }
    let mut moe_router = moe_shape.map(|c| {
        MoeRouter::new(
            c,
            m,
            p,
            spec.placement,
            (spec.routing, spec.seed, spec.iterations),
            lanes,
        )
    });
    let programs = p.schedule.programs(&shape);
    // DualPipe-style pairs of overlapped passes
    let paired = programs.iter().flatten().any(|ps| ps.with_previous);
    let overlap_a2a = extra_warmup > 0 || paired;
    let post_validation = p.optimizer_post_validation;
    let copies = schedule.parameter_copies().max(1);

    // parameter all-gather ops of the previous iteration, per (rank, chunk)
    let mut param_gathers: Vec<Vec<Vec<OpId>>> = vec![vec![Vec::new(); v as usize]; pp as usize];
    // per stage and local chunk: the program index of the last pass that adds to the
    // chunk's gradients (after it they are final and reduced, unless ZeRO-2 reduces each)
    let last_grad_pass: Vec<Vec<usize>> = programs
        .iter()
        .map(|prog| {
            let mut last = vec![usize::MAX; v as usize];
            for (i, ps) in prog.iter().enumerate() {
                if matches!(ps.kind, PassKind::Backward | PassKind::BackwardWeight) {
                    last[ps.chunk as usize] = i;
                }
            }
            last
        })
        .collect();

    for it in 0..spec.iterations {
        if it == 1 {
            // every iteration builds as many ops as the first: one allocation for the rest
            b.reserve_iterations(spec.iterations - 1);
        }
        for stage in 0..pp {
            let rank = stage;
            let sc = &costs[stage_costs[stage as usize]];
            let global = |c: u32| schedule.global_chunk(stage, c, &shape);
            let mut grad_ops: Vec<OpId> = Vec::new();
            let mut chunk_started = vec![false; v as usize];
            let chunk_layers = |g: u32| {
                first_layer_of_chunk[g as usize]..first_layer_of_chunk[g as usize] + layers_per_chunk[g as usize]
            };
            let local_params: f64 = (0..v)
                .map(|c| {
                    let g = global(c);
                    let mut x: f64 = chunk_layers(g).map(dense_local).sum();
                    // the input embedding on the first chunk; the output layer on the last
                    // (its own copy unless one stage holds both tied matrices)
                    if g == 0 {
                        x += emb_params_local;
                    }
                    if g == n_chunks - 1 && (pp > 1 || !m.tied_embeddings) {
                        x += emb_params_local;
                    }
                    x
                })
                .sum();
            let local_expert_params: f64 = (0..v)
                .map(|c| chunk_layers(global(c)).map(expert_local).sum::<f64>())
                .sum::<f64>()
                + (0..v)
                    .filter(|&c| global(c) == n_chunks - 1)
                    .map(|_| mtp_layers.clone().map(expert_local).sum::<f64>())
                    .sum::<f64>();
            // the MTP modules (on the last chunk's stages)
            let local_params = local_params
                + (0..v)
                    .filter(|&c| global(c) == n_chunks - 1)
                    .map(|_| {
                        mtp_layers
                            .clone()
                            .map(|l| dense_local(l) + m.mtp_extra_params() / p.tp as f64)
                            .sum::<f64>()
                    })
                    .sum::<f64>();
            // with overlapped all-to-alls, backward passes run on a second compute queue and
            // each pass may overlap only its neighbour in the schedule: it waits for the
            // passes two and three before it. Paired passes wait for the previous group.
            let prog = &programs[stage as usize];
            let mut pass_ends: Vec<OpId> = Vec::new();
            let (mut group_ends, mut prev_group_ends): (Vec<OpId>, Vec<OpId>) = (Vec::new(), Vec::new());
            // the send of the open pair's first pass: it goes when both passes are done
            let mut pair_send: Option<OpId> = None;
            for (pi, pass) in prog.iter().enumerate() {
                let g = global(pass.chunk);
                let forward = pass.kind.is_forward();
                let starts_group = !pass.with_previous;
                let in_pair = pass.with_previous || prog.get(pi + 1).is_some_and(|n| n.with_previous);
                if paired && starts_group {
                    prev_group_ends = std::mem::take(&mut group_ends);
                }
                let mut deps = Vec::new();
                if paired {
                    deps.extend(prev_group_ends.iter().map(|&o| Dep::Op(o)));
                } else if overlap_a2a {
                    let k = pass_ends.len();
                    deps.extend(
                        [k.checked_sub(2), k.checked_sub(3)]
                            .into_iter()
                            .flatten()
                            .map(|i| Dep::Op(pass_ends[i])),
                    );
                }
                let pass_stream = if paired {
                    // a pair's forward yields the GPU to its backward
                    if in_pair && forward {
                        Stream::Compute2
                    } else {
                        Stream::Compute
                    }
                } else if overlap_a2a && !forward {
                    Stream::Compute2
                } else {
                    Stream::Compute
                };
                // the input of a forward comes from the previous chunk, the output gradient
                // of a backward from the next; a weight-gradient pass needs neither
                let recv = |ps: &crate::parallel::schedule::Pass| {
                    let g = global(ps.chunk);
                    let needs = match ps.kind {
                        PassKind::Forward => g > 0,
                        PassKind::Backward | PassKind::BackwardInput => g + 1 < n_chunks,
                        PassKind::BackwardWeight => false,
                    };
                    needs.then_some(Dep::Recv(SendKey {
                        iteration: it,
                        microbatch: ps.microbatch,
                        chunk: g,
                        forward: ps.kind.is_forward(),
                    }))
                };
                deps.extend(recv(pass));
                if paired && in_pair {
                    // a pair starts when both its inputs are in
                    let partner = if pass.with_previous {
                        prog.get(pi - 1)
                    } else {
                        prog.get(pi + 1)
                    };
                    deps.extend(partner.and_then(recv));
                }
                if forward && !chunk_started[pass.chunk as usize] {
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
                if off.activations.is_offloaded() && matches!(pass.kind, PassKind::Backward | PassKind::BackwardInput) {
                    if let Some(&stored) = act_copies.get(&(it, pass.microbatch, g)) {
                        // fetched back while the pass before runs (one pass of prefetch)
                        let mut fetch_deps = vec![Dep::Op(stored)];
                        fetch_deps.extend(pass_ends.len().checked_sub(2).map(|i| Dep::Op(pass_ends[i])));
                        let bytes = chunk_act_bytes[g as usize];
                        let duration = SimTime::from_secs(off.pcie_s(bytes));
                        let op = OpKind::HostCopy { duration, bytes };
                        let mb = pass.microbatch;
                        deps.push(Dep::Op(b.push_exact(
                            rank,
                            Stream::Offload,
                            op,
                            "activation fetch",
                            (it, mb),
                            fetch_deps,
                        )));
                    }
                }
                let mut cur = Cursor::new(deps, pass_stream, overlap_a2a);
                let mb = pass.microbatch;
                let nl = layers_per_chunk[g as usize];
                // gradients of a chunk are final after its last gradient pass
                let reduces_grads = matches!(pass.kind, PassKind::Backward | PassKind::BackwardWeight);
                let reduce_now =
                    reduces_grads && (p.zero_stage >= 2 || last_grad_pass[stage as usize][pass.chunk as usize] == pi);
                // the pass that uses a MoE layer's routing draw last drops it
                let last_use = pass.kind != PassKind::Forward && pass.kind != PassKind::BackwardInput;
                let zero3 = p.zero_stage >= 3 && grad_group > 1;
                // ZeRO-3 gathers (ZeRO++: quantised, the backward's inside the node), each
                // after its shard's fetch from the host when parameters are offloaded
                let gather = |b: &mut Builder, cur: &mut Cursor, l: u32, fwd: bool| {
                    for (dim, group, params) in [
                        (grad_dim, grad_group, dense_local(l)),
                        (Dim::ExpertDp, edp, expert_local(l)),
                    ] {
                        if params <= 0.0 || (dim == Dim::ExpertDp && edp <= 1) {
                            continue;
                        }
                        if off.parameters.is_offloaded() {
                            let bytes = PARAM_BYTES * params / group as f64;
                            let duration = SimTime::from_secs(off.param_fetch_s(bytes));
                            let op = OpKind::HostCopy { duration, bytes };
                            b.push_exact(rank, Stream::DpGather, op, "parameter fetch", (it, mb), vec![]);
                        }
                        let (dim, per) = if !fwd && hpz && dim == grad_dim {
                            (Dim::DpNode, gather_bwd_bytes)
                        } else {
                            (dim, gather_fwd_bytes)
                        };
                        let op = OpKind::Collective {
                            dim,
                            kind: CollectiveKind::AllGather,
                            bytes: per * params,
                            purpose: CommPurpose::Parameters,
                        };
                        let id = b.push_exact(rank, Stream::DpGather, op, "zero-3 param gather", (it, mb), vec![]);
                        cur.extra.push(Dep::Op(id));
                    }
                };
                let first_layer = first_layer_of_chunk[g as usize];
                if forward {
                    if g == 0 {
                        cur.emit(&mut b, rank, (it, mb), &sc.emb.forward, None);
                    }
                    for l in first_layer..first_layer + nl {
                        if zero3 {
                            gather(&mut b, &mut cur, l, true);
                        }
                        emit_layer(
                            &mut b,
                            &mut cur,
                            moe_router.as_mut(),
                            sc,
                            m.is_moe_layer(l),
                            pass.kind,
                            (rank, it, mb, l),
                            &lane_ranks[stage as usize],
                            false,
                        );
                    }
                    if g == n_chunks - 1 {
                        cur.emit(&mut b, rank, (it, mb), &sc.head.forward, None);
                        // the MTP modules: input projection, layer, the shared head again
                        for l in mtp_layers.clone() {
                            cur.emit(&mut b, rank, (it, mb), &sc.mtp_in.forward, None);
                            let lanes = &lane_ranks[stage as usize];
                            let at = (rank, it, mb, l);
                            let moe_l = m.is_moe_layer(l);
                            emit_layer(
                                &mut b,
                                &mut cur,
                                moe_router.as_mut(),
                                sc,
                                moe_l,
                                pass.kind,
                                at,
                                lanes,
                                false,
                            );
                            cur.emit(&mut b, rank, (it, mb), &sc.head.forward, None);
                        }
                    }
                } else {
                    // gradient buckets: dense parameters over DP, routed experts over expert-DP
                    let mut bucket = [BucketElements::default(); 2];
                    let flush =
                        |b: &mut Builder, cur: &Cursor, bucket: &mut [BucketElements; 2], grad_ops: &mut Vec<OpId>| {
                            for (i, dim, size) in [(0, grad_dim, grad_group), (1, Dim::ExpertDp, edp)] {
                                let e = std::mem::take(&mut bucket[i]);
                                if e.elements <= 0.0 || size <= 1 {
                                    continue;
                                }
                                let Some(x) = comm.grad_exchange(phase, p.zero_stage, size, &e) else {
                                    continue;
                                };
                                let mut deps = cur.extra.clone();
                                deps.extend(cur.last.map(Dep::Op));
                                if x.compute_bytes > 0.0 {
                                    // compression kernels, on the GPU before the exchange
                                    let duration = SimTime::from_secs(memory_bound_time_s(&sc.gpu, x.compute_bytes, 2));
                                    let op = OpKind::Compute {
                                        duration,
                                        flops: 0.0,
                                        phase: Phase::Optimizer,
                                    };
                                    let id = b.push(rank, cur.stream, op, "gradient compression", (it, mb), deps);
                                    deps = vec![Dep::Op(id)];
                                }
                                for (kind, bytes) in x.collectives {
                                    let op = OpKind::Collective {
                                        dim,
                                        kind,
                                        bytes,
                                        purpose: CommPurpose::Gradients,
                                    };
                                    let id = b.push_exact(rank, Stream::Dp, op, "gradient reduce", (it, mb), deps);
                                    deps = vec![Dep::Op(id)];
                                    grad_ops.push(id);
                                }
                                if off.optimizer.is_offloaded() {
                                    // the reduced shard goes to the host's optimizer
                                    let shard = if p.zero_stage >= 1 { size as f64 } else { 1.0 };
                                    let bytes = GRAD_BYTES * e.elements / shard;
                                    let op = OpKind::HostCopy {
                                        duration: SimTime::from_secs(off.pcie_s(bytes)),
                                        bytes,
                                    };
                                    grad_ops.push(b.push_exact(
                                        rank,
                                        Stream::Offload,
                                        op,
                                        "gradient offload",
                                        (it, mb),
                                        deps,
                                    ));
                                }
                            }
                        };
                    if g == n_chunks - 1 {
                        // the MTP modules' backward first (their loss is the last computed)
                        for l in mtp_layers.clone().rev() {
                            cur.emit(&mut b, rank, (it, mb), pass_steps(pass.kind, &sc.head), None);
                            let lanes = &lane_ranks[stage as usize];
                            let at = (rank, it, mb, l);
                            let moe_l = m.is_moe_layer(l);
                            emit_layer(
                                &mut b,
                                &mut cur,
                                moe_router.as_mut(),
                                sc,
                                moe_l,
                                pass.kind,
                                at,
                                lanes,
                                last_use,
                            );
                            cur.emit(&mut b, rank, (it, mb), pass_steps(pass.kind, &sc.mtp_in), None);
                            if reduce_now {
                                let [dense, expert] = layer_grad_elements(m, p, l, rank_r);
                                bucket[0].add(&dense);
                                bucket[1].add(&expert);
                                // the module's input projection (2h -> h) and its two norms
                                let h = m.hidden_size as f64;
                                bucket[0].add_matrix(2.0 * h, h / p.tp as f64, 1.0, rank_r);
                                bucket[0].add_plain(2.0 * h / p.tp as f64);
                            }
                        }
                        cur.emit(&mut b, rank, (it, mb), pass_steps(pass.kind, &sc.head), None);
                        if reduces_grads && (pp > 1 || !m.tied_embeddings) {
                            bucket[0].add(&emb_elems);
                        }
                    }
                    for l in (first_layer..first_layer + nl).rev() {
                        if zero3 && pass.kind != PassKind::BackwardWeight {
                            gather(&mut b, &mut cur, l, false);
                        }
                        emit_layer(
                            &mut b,
                            &mut cur,
                            moe_router.as_mut(),
                            sc,
                            m.is_moe_layer(l),
                            pass.kind,
                            (rank, it, mb, l),
                            &lane_ranks[stage as usize],
                            last_use,
                        );
                        if reduce_now {
                            bucket[0].add(&layer_elems[l as usize][0]);
                            bucket[1].add(&layer_elems[l as usize][1]);
                            if overlap_grad && bucket[0].elements + bucket[1].elements >= p.grad_bucket_params {
                                flush(&mut b, &cur, &mut bucket, &mut grad_ops);
                            }
                        }
                    }
                    if g == 0 {
                        cur.emit(&mut b, rank, (it, mb), pass_steps(pass.kind, &sc.emb), None);
                        if reduces_grads && reduce_now {
                            bucket[0].add(&emb_elems);
                        }
                    }
                    if reduce_now {
                        flush(&mut b, &cur, &mut bucket, &mut grad_ops);
                    }
                }
                // hand the activation (or its gradient) to the next chunk in the pipeline
                let downstream = match pass.kind {
                    PassKind::Forward => (g + 1 < n_chunks).then(|| g + 1),
                    PassKind::Backward | PassKind::BackwardInput => g.checked_sub(1),
                    PassKind::BackwardWeight => None,
                };
                if let Some(to_chunk) = downstream {
                    let mut deps = std::mem::take(&mut cur.extra);
                    deps.append(&mut cur.join);
                    deps.extend(cur.last.map(Dep::Op));
                    if let (true, Some(&first_end)) = (pass.with_previous, group_ends.first()) {
                        // a pair sends when both its passes are done
                        deps.push(Dep::Op(first_end));
                    }
                    let to = schedule.locate(to_chunk, mb, &shape).0;
                    let id = b.push(
                        rank,
                        Stream::Pp,
                        OpKind::Send {
                            to,
                            bytes: act_p2p_bytes,
                        },
                        if forward { "send activations" } else { "send gradients" },
                        (it, mb),
                        deps,
                    );
                    b.sends.insert(
                        SendKey {
                            iteration: it,
                            microbatch: mb,
                            chunk: to_chunk,
                            forward,
                        },
                        id,
                    );
                    if paired && in_pair && starts_group {
                        pair_send = Some(id);
                    }
                } else if !cur.extra.is_empty() || !cur.join.is_empty() {
                    // nothing downstream: the next op on the compute stream must still wait
                    // for overlapped collectives; a zero-time marker carries the join
                    let mut deps = std::mem::take(&mut cur.extra);
                    deps.append(&mut cur.join);
                    let phase = match pass.kind {
                        PassKind::Forward => Phase::Forward,
                        PassKind::BackwardWeight => Phase::BackwardWeight,
                        _ => Phase::Backward,
                    };
                    cur.last = Some(b.push(
                        rank,
                        cur.stream,
                        OpKind::Compute {
                            duration: SimTime::ZERO,
                            flops: 0.0,
                            phase,
                        },
                        "join",
                        (it, mb),
                        deps,
                    ));
                }
                if let (true, true, Some(last)) = (off.activations.is_offloaded(), forward, cur.last) {
                    // the stored activations go to the host as the forward ends
                    let bytes = chunk_act_bytes[g as usize];
                    let duration = SimTime::from_secs(off.pcie_s(bytes));
                    let op = OpKind::HostCopy { duration, bytes };
                    let id = b.push_exact(
                        rank,
                        Stream::Offload,
                        op,
                        "activation offload",
                        (it, mb),
                        vec![Dep::Op(last)],
                    );
                    act_copies.insert((it, mb, g), id);
                }
                if let Some(last) = cur.last {
                    pass_ends.push(last);
                    group_ends.push(last);
                    if pass.with_previous {
                        // the pair's first pass sends when this one is done too
                        if let Some(send) = pair_send.take() {
                            b.add_dep(send, Dep::Op(last));
                        }
                    }
                }
            }
            if !paired {
                group_ends = pass_ends.last().copied().into_iter().collect();
            }
            // DualPipe: the two copies of a chunk (here and on the mirror stage) add their
            // reduced gradient shards
            let mut opt_deps: Vec<Dep> = grad_ops.iter().chain(&group_ends).map(|&o| Dep::Op(o)).collect();
            if copies > 1 && pp > 1 {
                let mirror = pp - 1 - stage;
                let shard = |x: f64, g: u32| if p.zero_stage >= 1 { x / g as f64 } else { x };
                let bytes = GRAD_BYTES * (shard(local_params, p.dp) + shard(local_expert_params, edp)) / copies as f64;
                let id = b.push(
                    rank,
                    Stream::Pp,
                    OpKind::Send { to: mirror, bytes },
                    "send gradients to the mirror copy",
                    (it, u32::MAX),
                    opt_deps.clone(),
                );
                let key = |to: u32| SendKey {
                    iteration: it,
                    microbatch: u32::MAX,
                    chunk: n_chunks + to,
                    forward: false,
                };
                b.sends.insert(key(mirror), id);
                opt_deps.push(Dep::Recv(key(stage)));
            }
            // every gradient reduced, then all ranks agree on the gradient norm (or, with
            // post-validation, each stage steps on its own and the check follows)
            let opt_after = if post_validation {
                opt_deps
            } else {
                let barrier = b.push(
                    rank,
                    Stream::Compute,
                    OpKind::Barrier { iteration: it },
                    "gradient-norm sync",
                    (it, u32::MAX),
                    opt_deps,
                );
                vec![Dep::Op(barrier)]
            };
            // DualPipe's copies share one optimizer state (sharded over the pair)
            let local_opt_params = if p.zero_stage >= 1 {
                local_params / grad_group as f64 + local_expert_params / edp as f64
            } else {
                local_params + local_expert_params
            } / copies as f64;
            let mut opt = optimizer_step(&mut b, rank, it, off, &sc.gpu, local_opt_params, opt_after);
            let mut fresh_shard = Vec::new();
            if off.optimizer.is_offloaded() && !off.parameters.is_offloaded() {
                // the updated 16-bit shard returns to the GPU
                let bytes = PARAM_BYTES * local_opt_params;
                let duration = SimTime::from_secs(off.pcie_s(bytes));
                let op = OpKind::HostCopy { duration, bytes };
                let deps = vec![Dep::Op(opt)];
                opt = b.push_exact(rank, Stream::Offload, op, "parameter upload", (it, u32::MAX), deps);
                fresh_shard.push(opt);
            }
            // sharded optimizer: gather the updated parameters, one collective per chunk
            for c in 0..v {
                param_gathers[rank as usize][c as usize].clone_from(&fresh_shard);
                if p.zero_stage >= 1 && p.zero_stage < 3 {
                    let gch = global(c);
                    let dense: f64 =
                        chunk_layers(gch).map(dense_local).sum::<f64>() + if gch == 0 { emb_params_local } else { 0.0 };
                    let experts: f64 = chunk_layers(gch).map(expert_local).sum();
                    for (dim, size, params) in [(grad_dim, grad_group, dense), (Dim::ExpertDp, edp, experts)] {
                        if size <= 1 || params <= 0.0 {
                            continue;
                        }
                        let op = OpKind::Collective {
                            dim,
                            kind: CollectiveKind::AllGather,
                            bytes: param_bytes * params,
                            purpose: CommPurpose::Parameters,
                        };
                        let id = b.push_exact(
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

    let (ops, deps, all_to_alls, names) = b.finish();
    Workload {
        ops,
        names,
        deps,
        ranks,
        stages: pp,
        iterations: spec.iterations,
        all_to_alls,
        moe: moe_router.map(|r| r.loads),
        compute_priority: if paired {
            Some(Stream::Compute)
        } else if overlap_a2a {
            Some(Stream::Compute2)
        } else {
            None
        },
    }
}
