//! One transformer layer as a graph of modules, parallelised by one pass per dimension and
//! lowered to the [`Step`]s the operation graph emits.
//!
//! 1. [`base_layer`] lists the layer's modules in forward order (norms, QKV, attention
//!    core, output projection, MLP GEMMs, or the MoE router and shared experts), each with
//!    its forward, input-gradient (B) and weight-gradient (W) cost on this rank's shard.
//! 2. Each dimension's pass ([`super::passes`]) inserts its communication as [`Item`]s
//!    at module boundaries (TP/SP all-reduces, reduce-scatters and all-gathers; the MoE
//!    dispatch, experts and combine) or adds work (recomputation).
//! 3. [`lower`] turns the items into the forward, the fused backward (B+W), the
//!    input-gradient-only backward and the weight-gradient pass. Adjacent modules fuse into
//!    one compute step unless communication separates them; the weight gradient of a
//!    module whose input-gradient collective overlaps it is a step of its own.
//!
//! Adding a dimension is adding a pass that inserts items; nothing here changes.

use super::op::Phase;
use crate::network::collective::CollectiveKind;
use crate::parallel::Dim;

/// Time and FLOPs of a piece of work on one GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Seconds.
    pub time_s: f64,
    /// FLOPs executed (matrix multiplies and attention).
    pub flops: f64,
}

impl Cost {
    /// A cost of `time_s` seconds and `flops` FLOPs.
    pub fn new(time_s: f64, flops: f64) -> Cost {
        Cost { time_s, flops }
    }

    /// From a `(seconds, FLOPs)` pair.
    pub fn of(pair: (f64, f64)) -> Cost {
        Cost::new(pair.0, pair.1)
    }

    fn is_zero(self) -> bool {
        self.time_s == 0.0 && self.flops == 0.0
    }

    fn add(self, o: Cost) -> Cost {
        Cost::new(self.time_s + o.time_s, self.flops + o.flops)
    }
}

/// The part of a layer a module belongs to, which names the fused steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Norms, residuals, dropout, activations: memory-bound element-wise work.
    Elementwise,
    /// QKV, attention core, output projection.
    Attention,
    /// The dense MLP GEMMs.
    Mlp,
    /// MoE router and token permutation.
    Router,
    /// MoE shared experts and un-permutation.
    SharedExperts,
}

/// A module of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    /// Pre-attention norm (and the attention half's residual and dropout traffic).
    AttnNorm,
    /// Q, K, V projections (column-parallel).
    Qkv,
    /// Attention core: scores, softmax, weighted sum.
    CoreAttn,
    /// Attention output projection (row-parallel).
    AttnOut,
    /// Pre-MLP norm (and the MLP half's residual, dropout and activation traffic).
    MlpNorm,
    /// First MLP GEMM (column-parallel; gate and up projections).
    Fc1,
    /// MLP activation (its traffic is counted with the pre-MLP norm in the forward).
    Act,
    /// Second MLP GEMM (row-parallel).
    Fc2,
    /// MoE router, top-k and permutation.
    Router,
    /// MoE shared experts and un-permutation.
    SharedExperts,
}

impl ModuleKind {
    /// Its block.
    pub fn block(self) -> Block {
        match self {
            ModuleKind::AttnNorm | ModuleKind::MlpNorm | ModuleKind::Act => Block::Elementwise,
            ModuleKind::Qkv | ModuleKind::CoreAttn | ModuleKind::AttnOut => Block::Attention,
            ModuleKind::Fc1 | ModuleKind::Fc2 => Block::Mlp,
            ModuleKind::Router => Block::Router,
            ModuleKind::SharedExperts => Block::SharedExperts,
        }
    }
}

/// A module with its costs on this rank.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Module {
    /// Which module.
    pub kind: ModuleKind,
    /// Forward.
    pub fwd: Cost,
    /// Input gradient (B); with a fused backward, run before [`Module::bwd_weight`].
    pub bwd_input: Cost,
    /// Weight gradient (W).
    pub bwd_weight: Cost,
}

/// How a collective relates to the compute around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlap {
    /// Runs on the compute stream: compute waits for it.
    Blocking,
    /// Runs on the dimension's stream beside the next compute step; the step after waits.
    WithNext,
    /// Runs beside the previous compute step (chunked GEMM + collective pipelining, e.g. a
    /// reduce-scatter fed by the GEMM producing it); the next compute step waits for it.
    WithPrev,
}

/// One collective of a dimension's group at one point of the forward order, and its
/// mirror in the backward.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CommItem {
    /// The group.
    pub dim: Dim,
    /// Buffer size, bytes (full buffer, as nccl-tests counts it).
    pub bytes: f64,
    /// The forward's collective here, if any.
    pub fwd: Option<(CollectiveKind, Overlap)>,
    /// The backward's collective at the mirrored point, if any.
    pub bwd: Option<(CollectiveKind, Overlap)>,
    /// The backward collective reduces the input gradient of the module that follows this
    /// point in forward order and overlaps that module's weight gradient: it runs between
    /// the module's B and W, and W is a step of its own.
    pub bwd_overlaps_weight_grad: bool,
}

/// An element of a layer in forward order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Item {
    /// A module.
    Module(Module),
    /// A collective placed by a dimension pass.
    Comm(CommItem),
    /// MoE token all-to-all in the forward's direction: towards the experts (`true`,
    /// dispatch) or back (`false`, combine). The backward runs it the other way.
    AllToAll {
        /// Forward direction.
        to_experts: bool,
    },
    /// The routed experts' grouped GEMMs (their time depends on the routed load).
    Experts,
    /// A kernel boundary: the modules on either side are separate steps (e.g. a ring
    /// attention block that must wait for the K/V the previous step brought).
    Boundary,
}

/// Which part of the routed experts' work a step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpertPart {
    /// Forward (or its recomputation).
    Forward,
    /// Input and weight gradients.
    Backward,
    /// Input gradients only (B).
    BackwardInput,
    /// Weight gradients only (W).
    Weight,
}

/// One element of a lowered pass.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A fused segment of kernels on the compute stream.
    Compute {
        /// Duration, seconds.
        time_s: f64,
        /// FLOPs executed (matrix multiplies and attention).
        flops: f64,
        /// Breakdown phase.
        phase: Phase,
        /// Short label for traces.
        name: &'static str,
    },
    /// A collective over the group of `dim`, of `bytes` (full buffer).
    Comm {
        /// The group.
        dim: Dim,
        /// The collective.
        kind: CollectiveKind,
        /// Buffer size, bytes.
        bytes: f64,
        /// Relation to compute.
        overlap: Overlap,
    },
    /// The token all-to-all of a MoE layer over the expert-parallel group, towards the
    /// experts (forward dispatch, backward gradient of the combine) or back from them. Its
    /// per-rank bytes depend on the routed load of the micro-batch.
    AllToAll {
        /// Towards the ranks holding the experts.
        to_experts: bool,
    },
    /// The routed experts' grouped GEMMs on every expert-parallel rank; each rank's time
    /// depends on the load routed to it.
    Experts {
        /// Breakdown phase.
        phase: Phase,
        /// Which part of the experts' work.
        part: ExpertPart,
    },
}

/// A compute step.
pub fn compute(time_s: f64, flops: f64, phase: Phase, name: &'static str) -> Step {
    Step::Compute {
        time_s,
        flops,
        phase,
        name,
    }
}

/// The lowered passes of one layer (or of the embedding / output head).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerSteps {
    /// Forward pass.
    pub forward: Vec<Step>,
    /// Backward with input and weight gradients fused, recomputation first.
    pub backward: Vec<Step>,
    /// Backward-input pass (B) of schedules that split the backward, recomputation first.
    pub backward_input: Vec<Step>,
    /// Backward-weight pass (W): the weight gradients of every module.
    pub weight: Vec<Step>,
}

/// Compute modules waiting to be fused into one step.
#[derive(Default)]
struct Fuser {
    cost: Cost,
    blocks: Vec<Block>,
    weight_only: bool,
    open: bool,
}

impl Fuser {
    fn add(&mut self, block: Block, c: Cost, weight: bool) {
        self.cost = self.cost.add(c);
        if !self.blocks.contains(&block) {
            self.blocks.push(block);
        }
        self.weight_only = if self.open { self.weight_only && weight } else { weight };
        self.open = true;
    }

    fn flush(&mut self, phase: Phase, out: &mut Vec<Step>) {
        if self.open && !self.cost.is_zero() {
            out.push(compute(self.cost.time_s, self.cost.flops, phase, self.name()));
        }
        *self = Fuser::default();
    }

    /// The step's label, from the blocks it holds.
    fn name(&self) -> &'static str {
        let has = |b: Block| self.blocks.contains(&b);
        let (attn, mlp, router) = (has(Block::Attention), has(Block::Mlp), has(Block::Router));
        match (attn, mlp, router) {
            (true, true, _) if self.weight_only => "layer wgrad",
            (true, true, _) => "layer",
            (true, false, true) if self.weight_only => "attention + router wgrad",
            (true, false, true) => "attention + router",
            (true, false, false) if self.weight_only => "attention wgrad",
            (true, false, false) => "attention",
            (false, true, _) if self.weight_only => "mlp wgrad",
            (false, true, _) => "mlp",
            (false, false, true) if self.weight_only => "router wgrad",
            (false, false, true) => "router",
            _ if has(Block::SharedExperts) && self.weight_only => "shared experts wgrad",
            _ if has(Block::SharedExperts) => "shared experts",
            _ => "norm",
        }
    }
}

fn comm_step(c: &CommItem, (kind, overlap): (CollectiveKind, Overlap)) -> Step {
    Step::Comm {
        dim: c.dim,
        kind,
        bytes: c.bytes,
        overlap,
    }
}

/// The forward of `items` with compute steps of `phase` (Forward, or Recompute when a
/// recomputation reruns it).
pub fn lower_forward(items: &[Item], phase: Phase) -> Vec<Step> {
    let mut out = Vec::new();
    let mut f = Fuser::default();
    for item in items {
        match item {
            Item::Module(m) => f.add(m.kind.block(), m.fwd, false),
            Item::Comm(c) => {
                if let Some(op) = c.fwd {
                    f.flush(phase, &mut out);
                    out.push(comm_step(c, op));
                }
            }
            Item::AllToAll { to_experts } => {
                f.flush(phase, &mut out);
                out.push(Step::AllToAll {
                    to_experts: *to_experts,
                });
            }
            Item::Boundary => f.flush(phase, &mut out),
            Item::Experts => {
                f.flush(phase, &mut out);
                out.push(Step::Experts {
                    phase,
                    part: ExpertPart::Forward,
                });
            }
        }
    }
    f.flush(phase, &mut out);
    out
}

/// What a backward lowering keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grads {
    /// Input and weight gradients (fused backward).
    Both,
    /// Input gradients only (B pass).
    Input,
}

fn lower_backward(items: &[Item], grads: Grads) -> Vec<Step> {
    let phase = Phase::Backward;
    let mut out = Vec::new();
    let mut f = Fuser::default();
    for i in (0..items.len()).rev() {
        match &items[i] {
            Item::Module(m) => {
                f.add(m.kind.block(), m.bwd_input, false);
                let inside = match i.checked_sub(1).map(|j| &items[j]) {
                    Some(Item::Comm(c)) if c.bwd_overlaps_weight_grad => c.bwd.map(|op| (c, op)),
                    _ => None,
                };
                if let Some((c, op)) = inside {
                    f.flush(phase, &mut out);
                    out.push(comm_step(c, op));
                    if grads == Grads::Both {
                        // the collective's overlap partner: the weight gradient, alone
                        f.add(m.kind.block(), m.bwd_weight, true);
                        f.flush(phase, &mut out);
                    }
                } else if grads == Grads::Both {
                    f.add(m.kind.block(), m.bwd_weight, false);
                }
            }
            Item::Comm(c) => {
                if let (Some(op), false) = (c.bwd, c.bwd_overlaps_weight_grad) {
                    f.flush(phase, &mut out);
                    out.push(comm_step(c, op));
                }
            }
            Item::AllToAll { to_experts } => {
                f.flush(phase, &mut out);
                out.push(Step::AllToAll {
                    to_experts: !to_experts,
                });
            }
            Item::Boundary => f.flush(phase, &mut out),
            Item::Experts => {
                f.flush(phase, &mut out);
                out.push(Step::Experts {
                    phase,
                    part: if grads == Grads::Both {
                        ExpertPart::Backward
                    } else {
                        ExpertPart::BackwardInput
                    },
                });
            }
        }
    }
    f.flush(phase, &mut out);
    out
}

/// The weight-gradient pass: every module's W in backward order, fused into one step
/// except around the routed experts' (whose time depends on the routed load).
fn lower_weight(items: &[Item]) -> Vec<Step> {
    let phase = Phase::BackwardWeight;
    let mut out = Vec::new();
    let mut f = Fuser::default();
    for item in items.iter().rev() {
        match item {
            Item::Module(m) => f.add(m.kind.block(), m.bwd_weight, true),
            Item::Experts => {
                f.flush(phase, &mut out);
                out.push(Step::Experts {
                    phase,
                    part: ExpertPart::Weight,
                });
            }
            Item::Comm(_) | Item::AllToAll { .. } | Item::Boundary => {}
        }
    }
    f.flush(phase, &mut out);
    out
}

/// Lowers a parallelised layer: forward, fused backward, B-only backward and W pass, with
/// `recompute` (steps rerun before the backward) first in both backwards.
pub fn lower(items: &[Item], recompute: &[Step]) -> LayerSteps {
    let with_recompute = |mut tail: Vec<Step>| {
        let mut v = recompute.to_vec();
        v.append(&mut tail);
        v
    };
    LayerSteps {
        forward: lower_forward(items, Phase::Forward),
        backward: with_recompute(lower_backward(items, Grads::Both)),
        backward_input: with_recompute(lower_backward(items, Grads::Input)),
        weight: lower_weight(items),
    }
}

/// Sum of compute time in `steps`, seconds.
pub fn compute_time_s(steps: &[Step]) -> f64 {
    steps
        .iter()
        .map(|s| match s {
            Step::Compute { time_s, .. } => *time_s,
            _ => 0.0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(kind: ModuleKind, t: f64) -> Item {
        Item::Module(Module {
            kind,
            fwd: Cost::new(t, t),
            bwd_input: Cost::new(t, 2.0 * t),
            bwd_weight: Cost::new(t / 2.0, t),
        })
    }

    #[test]
    fn fused_backward_is_input_plus_weight_and_names_follow_blocks() {
        let items = [
            module(ModuleKind::AttnNorm, 1.0),
            module(ModuleKind::Qkv, 2.0),
            module(ModuleKind::Fc1, 3.0),
        ];
        let l = lower(&items, &[]);
        assert_eq!(l.forward.len(), 1);
        assert!(matches!(l.forward[0], Step::Compute { name: "layer", time_s, .. } if time_s == 6.0));
        let total = |s: &[Step]| compute_time_s(s);
        assert_eq!(total(&l.backward), total(&l.backward_input) + total(&l.weight));
        assert!(matches!(
            l.weight[0],
            Step::Compute {
                phase: Phase::BackwardWeight,
                ..
            }
        ));
    }

    #[test]
    fn an_overlapped_input_gradient_collective_gets_the_weight_gradient_as_partner() {
        let c = CommItem {
            dim: Dim::Tp,
            bytes: 8.0,
            fwd: None,
            bwd: Some((CollectiveKind::AllReduce, Overlap::WithNext)),
            bwd_overlaps_weight_grad: true,
        };
        let items = [
            module(ModuleKind::AttnNorm, 1.0),
            Item::Comm(c),
            module(ModuleKind::Qkv, 2.0),
        ];
        let l = lower(&items, &[]);
        // forward: nothing to communicate, one fused step
        assert_eq!(l.forward.len(), 1);
        // backward: qkv dgrad, the all-reduce, qkv wgrad alone, then the norm
        let names: Vec<&str> = l
            .backward
            .iter()
            .map(|s| match s {
                Step::Compute { name, .. } => *name,
                _ => "comm",
            })
            .collect();
        assert_eq!(names, ["attention", "comm", "attention wgrad", "norm"]);
    }
}
