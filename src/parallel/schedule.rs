//! Pipeline schedules as programs: for every pipeline stage, the order in which it runs its
//! passes (forward, backward, or backward split into input-gradient and weight-gradient
//! passes) over micro-batches and the model chunks it holds, and where each model chunk
//! lives.
//!
//! Owns the [`PipelineSchedule`] trait, the [`Schedule`] handle that plans carry (a table
//! of the built-in schedules: GPipe, 1F1B, Megatron's interleaved 1F1B) and
//! [`peak_in_flight`], the activation count memory reads off a program. A new schedule is
//! one type implementing the trait plus one entry in [`Schedule::ALL`]; nothing else names
//! schedules. What a schedule does to the step time is never computed here: the simulation
//! runs the program.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
}

impl Pass {
    /// A pass of `kind`.
    pub fn new(kind: PassKind, microbatch: u32, chunk: u32) -> Pass {
        Pass {
            kind,
            microbatch,
            chunk,
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

    /// Global model chunk (chunks numbered in layer order) of `stage`'s local chunk
    /// `chunk`. The default is Megatron's round robin: `g = chunk pp + stage`.
    fn global_chunk(&self, stage: u32, chunk: u32, shape: &PipelineShape) -> u32 {
        chunk * shape.pp + stage
    }

    /// Stage and local chunk of global model chunk `g`: the inverse of
    /// [`PipelineSchedule::global_chunk`].
    fn locate(&self, g: u32, shape: &PipelineShape) -> (u32, u32) {
        (g % shape.pp, g / shape.pp)
    }

    /// The passes of `stage`, in program order: every (micro-batch, chunk) has one forward
    /// and either one fused backward or one backward-input and one backward-weight pass.
    fn passes(&self, stage: u32, shape: &PipelineShape) -> Vec<Pass>;
}

/// A schedule a plan can name: a handle to a [`PipelineSchedule`].
#[derive(Clone, Copy)]
pub struct Schedule(pub &'static dyn PipelineSchedule);

impl Schedule {
    /// All forwards, then all backwards.
    pub const GPIPE: Schedule = Schedule(&Gpipe);
    /// One-forward-one-backward (PipeDream-flush), Megatron's default.
    pub const ONE_F_ONE_B: Schedule = Schedule(&OneFOneB);
    /// Megatron's interleaved 1F1B over `virtual_stages` model chunks per stage.
    pub const INTERLEAVED: Schedule = Schedule(&Interleaved);

    /// The built-in schedules, in the order help texts list them.
    pub const ALL: &'static [Schedule] = &[Schedule::GPIPE, Schedule::ONE_F_ONE_B, Schedule::INTERLEAVED];

    /// Names accepted in scenario files.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|s| s.name()).collect()
    }

    /// The schedule called `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Schedule> {
        Self::ALL.iter().copied().find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The schedule itself.
    pub fn get(self) -> &'static dyn PipelineSchedule {
        self.0
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Schedule {}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Schedule({})", self.name())
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Schedule, D::Error> {
        let name = String::deserialize(d)?;
        Schedule::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown schedule '{name}': allowed values are {}",
                Schedule::names().join(", ")
            ))
        })
    }
}

/// Peak of `weight(pass)` summed over the forwards whose backward has not run yet, walking
/// one stage's program: with `weight` = layers of the pass's chunk, the layers' worth of
/// activations the stage holds at its peak. A fused backward or a backward-input pass
/// releases its forward's activations.
pub fn peak_in_flight(passes: &[Pass], weight: impl Fn(&Pass) -> f64) -> f64 {
    let (mut now, mut peak) = (0.0f64, 0.0f64);
    for p in passes {
        match p.kind {
            PassKind::Forward => {
                now += weight(p);
                peak = peak.max(now);
            }
            PassKind::Backward | PassKind::BackwardInput => now -= weight(p),
            PassKind::BackwardWeight => {}
        }
    }
    peak
}

fn fused(kind: bool, microbatch: u32, chunk: u32) -> Pass {
    Pass::new(
        if kind { PassKind::Forward } else { PassKind::Backward },
        microbatch,
        chunk,
    )
}

fn single_chunk(name: &str, shape: &PipelineShape) -> Result<(), String> {
    if shape.virtual_stages != 1 {
        return Err(format!(
            "virtual_stages={} needs schedule = \"interleaved\" ({name} runs one model chunk per stage)",
            shape.virtual_stages
        ));
    }
    Ok(())
}

/// GPipe: all forwards, then all backwards.
struct Gpipe;

impl PipelineSchedule for Gpipe {
    fn name(&self) -> &'static str {
        "gpipe"
    }

    fn check(&self, shape: &PipelineShape) -> Result<(), String> {
        single_chunk(self.name(), shape)
    }

    fn passes(&self, _stage: u32, shape: &PipelineShape) -> Vec<Pass> {
        let m = shape.microbatches;
        (0..m)
            .map(|i| fused(true, i, 0))
            .chain((0..m).map(|i| fused(false, i, 0)))
            .collect()
    }
}

/// 1F1B: `pp - stage - 1` warm-up forwards, then one forward and one backward in turn.
struct OneFOneB;

impl PipelineSchedule for OneFOneB {
    fn name(&self) -> &'static str {
        "1f1b"
    }

    fn check(&self, shape: &PipelineShape) -> Result<(), String> {
        single_chunk(self.name(), shape)
    }

    fn passes(&self, stage: u32, shape: &PipelineShape) -> Vec<Pass> {
        let m = shape.microbatches;
        let warmup = (shape.pp - stage - 1 + shape.extra_warmup).min(m);
        one_f_one_b(m, warmup, |k| fused(true, k, 0), |k| fused(false, k, 0))
    }
}

/// Warm-up forwards, steady one-forward-one-backward, cool-down backwards, over `total`
/// passes of each direction.
fn one_f_one_b(total: u32, warmup: u32, fwd: impl Fn(u32) -> Pass, bwd: impl Fn(u32) -> Pass) -> Vec<Pass> {
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

/// Megatron's interleaved schedule (Narayanan et al. 2021): virtual micro-batch `k` runs
/// chunk `(k / pp) % v` on micro-batch `(k / (pp v)) pp + k % pp`; backward chunks run in
/// reverse. Warm-up is `2 (pp - stage - 1) + (v - 1) pp` forwards.
struct Interleaved;

impl PipelineSchedule for Interleaved {
    fn name(&self) -> &'static str {
        "interleaved"
    }

    fn check(&self, shape: &PipelineShape) -> Result<(), String> {
        if shape.virtual_stages < 2 {
            return Err("the interleaved schedule needs parallel.virtual_stages >= 2".into());
        }
        if shape.pp < 2 {
            return Err("the interleaved schedule needs pp >= 2".into());
        }
        if shape.microbatches % shape.pp != 0 {
            return Err(format!(
                "the interleaved schedule needs the micro-batch count ({}) to be a multiple of pp ({})",
                shape.microbatches, shape.pp
            ));
        }
        Ok(())
    }

    fn passes(&self, stage: u32, shape: &PipelineShape) -> Vec<Pass> {
        let (pp, v, m) = (shape.pp, shape.virtual_stages, shape.microbatches);
        let total = m * v;
        let warmup = ((pp - stage - 1) * 2 + (v - 1) * pp + shape.extra_warmup).min(total);
        let mb = |k: u32| (k / (pp * v)) * pp + k % pp;
        one_f_one_b(
            total,
            warmup,
            |k| fused(true, mb(k), (k / pp) % v),
            |k| fused(false, mb(k), v - 1 - (k / pp) % v),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(pp: u32, m: u32, v: u32) -> PipelineShape {
        PipelineShape {
            pp,
            microbatches: m,
            virtual_stages: v,
            extra_warmup: 0,
        }
    }

    fn check_complete(order: &[Pass], m: u32, v: u32) {
        for fwd in [true, false] {
            let mut seen: Vec<(u32, u32)> = order
                .iter()
                .filter(|p| p.kind.is_forward() == fwd)
                .map(|p| (p.microbatch, p.chunk))
                .collect();
            seen.sort_unstable();
            let want: Vec<(u32, u32)> = (0..m).flat_map(|i| (0..v).map(move |c| (i, c))).collect();
            assert_eq!(seen, want);
        }
        // a backward never precedes its own forward
        for (i, p) in order.iter().enumerate().filter(|(_, p)| !p.kind.is_forward()) {
            assert!(order[..i]
                .iter()
                .any(|q| q.kind.is_forward() && q.microbatch == p.microbatch && q.chunk == p.chunk));
        }
    }

    #[test]
    fn every_schedule_runs_each_pass_exactly_once() {
        for pp in [1, 2, 4, 8] {
            for stage in 0..pp {
                for m in [pp, 2 * pp, 3 * pp] {
                    check_complete(&Schedule::GPIPE.get().passes(stage, &shape(pp, m, 1)), m, 1);
                    check_complete(&Schedule::ONE_F_ONE_B.get().passes(stage, &shape(pp, m, 1)), m, 1);
                    if pp > 1 {
                        check_complete(&Schedule::INTERLEAVED.get().passes(stage, &shape(pp, m, 3)), m, 3);
                    }
                }
            }
        }
    }

    #[test]
    fn one_f_one_b_warmup_depth_is_pp_minus_stage_minus_one() {
        let o = Schedule::ONE_F_ONE_B.get().passes(1, &shape(4, 8, 1));
        let first_b = o.iter().position(|p| !p.kind.is_forward()).unwrap();
        assert_eq!(first_b, (4 - 1 - 1) + 1);
        assert!(o[..first_b].iter().all(|p| p.kind.is_forward()));
    }

    /// The walked peak equals the textbook counts: 1F1B holds `pp - stage` micro-batches,
    /// GPipe all `m`, interleaved `2 (pp - stage - 1) + (v - 1) pp + 1` chunk passes
    /// (Megatron's first-stage figure `pp (1 + (pp - 1) / (pp v))` micro-batches of layers).
    #[test]
    fn peak_in_flight_matches_closed_forms() {
        let (pp, m, v) = (4u32, 16u32, 2u32);
        for stage in 0..pp {
            let one = |_: &Pass| 1.0;
            let o = Schedule::ONE_F_ONE_B.get().passes(stage, &shape(pp, m, 1));
            assert_eq!(peak_in_flight(&o, one), (pp - stage) as f64);
            let g = Schedule::GPIPE.get().passes(stage, &shape(pp, m, 1));
            assert_eq!(peak_in_flight(&g, one), m as f64);
            let i = Schedule::INTERLEAVED.get().passes(stage, &shape(pp, m, v));
            assert_eq!(
                peak_in_flight(&i, one),
                (2 * (pp - stage - 1) + (v - 1) * pp + 1) as f64
            );
        }
        let i = Schedule::INTERLEAVED.get().passes(0, &shape(pp, m, v));
        let layers_per_chunk = 1.0 / v as f64;
        let megatron = pp as f64 * (1.0 + (pp as f64 - 1.0) / (pp * v) as f64);
        assert!((peak_in_flight(&i, |_| layers_per_chunk) - megatron).abs() < 1e-12);
    }

    #[test]
    fn names_round_trip_through_serde_and_the_table() {
        for s in Schedule::ALL {
            let json = serde_json::to_string(s).unwrap();
            let back: Schedule = serde_json::from_str(&json).unwrap();
            assert_eq!(back, *s);
            assert_eq!(Schedule::from_name(&s.name().to_uppercase()), Some(*s));
        }
        assert!(serde_json::from_str::<Schedule>("\"zigzag\"").is_err());
    }

    #[test]
    fn default_chunk_map_is_megatron_round_robin() {
        let s = shape(4, 8, 3);
        for g in 0..12 {
            let (stage, c) = Schedule::INTERLEAVED.get().locate(g, &s);
            assert_eq!(Schedule::INTERLEAVED.get().global_chunk(stage, c, &s), g);
            assert_eq!(c * 4 + stage, g);
        }
    }
}
