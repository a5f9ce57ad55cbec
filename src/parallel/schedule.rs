//! Pipeline schedules as programs: for every pipeline stage, the order in which it runs its
//! passes (forward, backward, or backward split into input-gradient and weight-gradient
//! passes) over micro-batches and the model chunks it holds, and where each model chunk
//! lives.
//!
//! Owns the [`PipelineSchedule`] trait, the pass vocabulary ([`Pass`], [`PassKind`]) and the
//! walks memory reads off a program ([`peak_in_flight`], [`peak_activation`]). The built-in
//! schedules and the table plans name them by ([`super::Schedule`]) live in
//! [`super::schedules`]. What a schedule does to the step time is never computed here: the
//! simulation runs the program.

/// What a pass computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PassKind {
    /// Forward of one micro-batch through one model chunk.
    Forward,
    /// Backward with the input and weight gradients fused (B and W in one pass).
    Backward,
    /// Input gradient only (B): what the previous stage waits for.
    BackwardInput,
    /// Weight gradient only (W): no stage waits for it, so it can fill bubbles.
    BackwardWeight,
}

impl PassKind {
    /// Every pass kind.
    pub const ALL: [PassKind; 4] = [
        PassKind::Forward,
        PassKind::Backward,
        PassKind::BackwardInput,
        PassKind::BackwardWeight,
    ];

    /// Whether this is the forward.
    pub fn is_forward(self) -> bool {
        self == PassKind::Forward
    }

    /// Whether this pass sends a gradient to the previous stage (B, or fused B+W).
    pub fn sends_gradient(self) -> bool {
        matches!(self, PassKind::Backward | PassKind::BackwardInput)
    }
}

/// One pass of one micro-batch through one model chunk of a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    /// What it computes.
    pub kind: PassKind,
    /// Micro-batch index.
    pub microbatch: u32,
    /// Model chunk of this stage (0..chunks per stage).
    pub chunk: u32,
    /// Runs overlapped with the previous pass of the program (DualPipe's forward-backward
    /// pair): the two wait for both their inputs, share the GPU (the backward first when
    /// both are ready), hide each other's communication, and send their outputs when both
    /// are done.
    pub with_previous: bool,
}

impl Pass {
    /// A pass of `kind`.
    pub fn new(kind: PassKind, microbatch: u32, chunk: u32) -> Pass {
        Pass {
            kind,
            microbatch,
            chunk,
            with_previous: false,
        }
    }

    /// The same pass, overlapped with the previous pass of the program.
    pub fn overlapped(self) -> Pass {
        Pass {
            with_previous: true,
            ..self
        }
    }
}

/// The shape a schedule is asked to fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineShape {
    /// Pipeline stages.
    pub pp: u32,
    /// Micro-batches per step.
    pub microbatches: u32,
    /// Model chunks per stage requested by the plan (`parallel.virtual_stages`).
    pub virtual_stages: u32,
    /// Forwards run ahead of the schedule's own warm-up (one more micro-batch in flight
    /// each), e.g. for the MoE all-to-all overlap.
    pub extra_warmup: u32,
}

/// A pipeline schedule (module docs). Implementations are stateless.
pub trait PipelineSchedule: Send + Sync {
    /// Name in scenario files and plan labels.
    fn name(&self) -> &'static str;

    /// Checks that the schedule can run this shape; the error says what to change.
    fn check(&self, shape: &PipelineShape) -> Result<(), String>;

    /// Model chunks each stage holds.
    fn chunks_per_stage(&self, shape: &PipelineShape) -> u32 {
        shape.virtual_stages
    }

    /// Model chunks (pieces of the layer sequence, in layer order) every micro-batch runs
    /// through: `pp` times the chunks per stage, unless chunks are replicated (DualPipe
    /// holds every chunk on two stages).
    fn model_chunks(&self, shape: &PipelineShape) -> u32 {
        shape.pp * self.chunks_per_stage(shape)
    }

    /// Global model chunk (chunks numbered in layer order) of `stage`'s local chunk
    /// `chunk`. The default is Megatron's round robin: `g = chunk pp + stage`.
    fn global_chunk(&self, stage: u32, chunk: u32, shape: &PipelineShape) -> u32 {
        chunk * shape.pp + stage
    }

    /// Stage and local chunk that run global model chunk `g` for `microbatch`: the
    /// inverse of [`PipelineSchedule::global_chunk`] (where chunks are replicated, the
    /// micro-batch picks the copy).
    fn locate(&self, g: u32, microbatch: u32, shape: &PipelineShape) -> (u32, u32) {
        let _ = microbatch;
        (g % shape.pp, g / shape.pp)
    }

    /// Copies of its parameters (and gradients) each stage keeps: 2 for DualPipe, whose
    /// stages hold their own chunk and their mirror stage's.
    fn parameter_copies(&self) -> u32 {
        1
    }

    /// The passes of `stage`, in program order: every (micro-batch, chunk) has one forward
    /// and either one fused backward or one backward-input and one backward-weight pass.
    fn passes(&self, stage: u32, shape: &PipelineShape) -> Vec<Pass>;

    /// Every stage's program; schedules that build all stages together (ZB-V's greedy)
    /// override it to do so once. Callers go through [`super::Schedule::programs`], which
    /// caches it per shape.
    fn programs(&self, shape: &PipelineShape) -> Vec<Vec<Pass>> {
        (0..shape.pp).map(|s| self.passes(s, shape)).collect()
    }
}

/// Peak of `weight(pass)` summed over the forwards whose backward has not run yet, walking
/// one stage's program: with `weight` = layers of the pass's chunk, the layers' worth of
/// activations the stage holds at its peak. A fused backward or a backward-input pass
/// releases its forward's activations.
pub fn peak_in_flight(passes: &[Pass], weight: impl Fn(&Pass) -> f64) -> f64 {
    peak_activation(passes, |p| (weight(p), 0.0))
}

/// Peak activation memory walking one stage's program: a forward adds `weights(pass).0`
/// (what its backward needs, M_B); a backward-input pass releases it but keeps
/// `weights(pass).1` (what its weight-gradient pass needs, M_W) until that pass runs; a
/// fused backward releases everything.
pub fn peak_activation(passes: &[Pass], weights: impl Fn(&Pass) -> (f64, f64)) -> f64 {
    let (mut now, mut peak) = (0.0f64, 0.0f64);
    for p in passes {
        let (b, w) = weights(p);
        match p.kind {
            PassKind::Forward => {
                now += b;
                peak = peak.max(now);
            }
            PassKind::Backward => now -= b,
            PassKind::BackwardInput => {
                now += w - b;
                peak = peak.max(now);
            }
            PassKind::BackwardWeight => now -= w,
        }
    }
    peak
}

/// Warm-up forwards, steady one-forward-one-backward, cool-down backwards, over `total`
/// passes of each direction (the 1F1B family's shape).
pub fn one_f_one_b(total: u32, warmup: u32, fwd: impl Fn(u32) -> Pass, bwd: impl Fn(u32) -> Pass) -> Vec<Pass> {
    let mut out = Vec::with_capacity(2 * total as usize);
    let (mut f, mut b) = (0, 0);
    while f < warmup {
        out.push(fwd(f));
        f += 1;
    }
    while f < total {
        out.push(fwd(f));
        f += 1;
        out.push(bwd(b));
        b += 1;
    }
    while b < total {
        out.push(bwd(b));
        b += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_weight_pass_keeps_its_buffer_until_it_runs() {
        let f = Pass::new(PassKind::Forward, 0, 0);
        let b = Pass::new(PassKind::BackwardInput, 0, 0);
        let w = Pass::new(PassKind::BackwardWeight, 0, 0);
        let f1 = Pass::new(PassKind::Forward, 1, 0);
        // F (+10), B (-10 +4), F (+10): 14 at the peak; W first brings it back to 10
        assert_eq!(peak_activation(&[f, b, f1], |_| (10.0, 4.0)), 14.0);
        assert_eq!(peak_activation(&[f, b, w, f1], |_| (10.0, 4.0)), 10.0);
        assert_eq!(peak_in_flight(&[f, b, f1], |_| 1.0), 1.0);
    }
}
