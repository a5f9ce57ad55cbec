//! The built-in pipeline schedules, one file each, and the table plans name them by.
//!
//! Owns [`Schedule`] (a handle to a [`PipelineSchedule`]) and [`Schedule::ALL`], the one
//! place schedules are listed: scenario names, help texts and the plan search all read
//! it. Adding a schedule is one file here implementing the trait plus one entry in
//! [`Schedule::ALL`].

mod classic;
mod dualpipe;
mod interleaved;
mod zero_bubble;
mod zero_bubble_v;

use super::schedule::{Pass, PipelineSchedule, PipelineShape};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A schedule a plan can name: a handle to a [`PipelineSchedule`].
#[derive(Clone, Copy)]
pub struct Schedule(pub &'static dyn PipelineSchedule);

impl Schedule {
    /// All forwards, then all backwards.
    pub const GPIPE: Schedule = Schedule(&classic::Gpipe);
    /// One-forward-one-backward (PipeDream-flush), Megatron's default.
    pub const ONE_F_ONE_B: Schedule = Schedule(&classic::OneFOneB);
    /// Megatron's interleaved 1F1B over `virtual_stages` model chunks per stage.
    pub const INTERLEAVED: Schedule = Schedule(&interleaved::Interleaved);
    /// Zero Bubble ZB-H1: 1F1B with the backward split into B and W, W passes postponed
    /// into the cool-down (1F1B's activation memory).
    pub const ZERO_BUBBLE_H1: Schedule = Schedule(&zero_bubble::ZeroBubbleH1);
    /// Zero Bubble ZB-H2: more warm-up forwards and postponed W passes, about twice
    /// 1F1B's activation memory, no bubble when F, B and W take the same time.
    pub const ZERO_BUBBLE_H2: Schedule = Schedule(&zero_bubble::ZeroBubbleH2);
    /// Zero Bubble ZB-V: two chunks per stage in a V, 1F1B's activation memory.
    pub const ZERO_BUBBLE_V: Schedule = Schedule(&zero_bubble_v::ZeroBubbleV);
    /// DeepSeek's DualPipe: micro-batches fed from both ends, every stage holds its chunk
    /// and its mirror's, forward and backward chunks of the two directions overlapped.
    pub const DUALPIPE: Schedule = Schedule(&dualpipe::DualPipe);
    /// DualPipeV: DualPipe cut in half into a V (two chunks per stage, one copy of the
    /// parameters).
    pub const DUALPIPE_V: Schedule = Schedule(&dualpipe::DualPipeV);

    /// The built-in schedules, in the order help texts list them.
    pub const ALL: &'static [Schedule] = &[
        Schedule::GPIPE,
        Schedule::ONE_F_ONE_B,
        Schedule::INTERLEAVED,
        Schedule::ZERO_BUBBLE_H1,
        Schedule::ZERO_BUBBLE_H2,
        Schedule::ZERO_BUBBLE_V,
        Schedule::DUALPIPE,
        Schedule::DUALPIPE_V,
    ];

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

    /// Every stage's program for `shape`, computed once per (schedule, shape) and shared
    /// (plan searches evaluate many plans of the same shape).
    pub fn programs(self, shape: &PipelineShape) -> Arc<Vec<Vec<Pass>>> {
        type Key = (&'static str, [u32; 4]);
        /// The programs by key, with their insertion number; passes held.
        type Cache = Mutex<(HashMap<Key, (u64, Arc<Vec<Vec<Pass>>>)>, usize, u64)>;
        /// Passes kept at most (12 bytes each); beyond, the oldest entries go first.
        const MAX_PASSES: usize = 4_000_000;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let key = (
            self.name(),
            [shape.pp, shape.microbatches, shape.virtual_stages, shape.extra_warmup],
        );
        let cache = CACHE.get_or_init(|| Mutex::new((HashMap::new(), 0, 0)));
        if let Some((_, p)) = cache.lock().expect("program cache").0.get(&key) {
            return p.clone();
        }
        let p: Arc<Vec<Vec<Pass>>> = Arc::new(self.0.programs(shape));
        let size = |p: &Vec<Vec<Pass>>| p.iter().map(Vec::len).sum::<usize>();
        let n = size(&p);
        if n > MAX_PASSES {
            return p;
        }
        let mut guard = cache.lock().expect("program cache");
        let (map, held, next) = &mut *guard;
        while *held + n > MAX_PASSES {
            let oldest = *map
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .expect("entries while held > 0")
                .0;
            let (_, gone) = map.remove(&oldest).expect("the oldest entry");
            *held -= size(&gone);
        }
        *next += 1;
        // (another thread may have inserted the same programs meanwhile: same size)
        if map.insert(key, (*next, p.clone())).is_none() {
            *held += n;
        }
        p
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

/// Checks shared by the schedules that run one model chunk per stage.
fn single_chunk(name: &str, shape: &PipelineShape) -> Result<(), String> {
    if shape.virtual_stages != 1 {
        return Err(format!(
            "virtual_stages={} needs schedule = \"interleaved\" ({name} runs one model chunk per stage)",
            shape.virtual_stages
        ));
    }
    Ok(())
}

/// Checks shared by the V-shaped schedules (two chunks per stage, the second coming back).
fn v_shape(name: &str, shape: &PipelineShape) -> Result<(), String> {
    if shape.virtual_stages != 1 && shape.virtual_stages != 2 {
        return Err(format!(
            "{name} runs exactly two model chunks per stage, in a V (virtual_stages = {} is not 2); leave parallel.virtual_stages unset",
            shape.virtual_stages
        ));
    }
    if shape.pp < 2 {
        return Err(format!("{name} needs pp >= 2"));
    }
    Ok(())
}

/// The V map: chunk `g < pp` on stage `g` (local chunk 0, going down), chunk `g >= pp` on
/// stage `2 pp - 1 - g` (local chunk 1, coming back).
fn v_global(stage: u32, chunk: u32, pp: u32) -> u32 {
    if chunk == 0 {
        stage
    } else {
        2 * pp - 1 - stage
    }
}

fn v_locate(g: u32, pp: u32) -> (u32, u32) {
    if g < pp {
        (g, 0)
    } else {
        (2 * pp - 1 - g, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::schedule::{peak_activation, peak_in_flight, Pass, PassKind};

    pub(super) fn shape(pp: u32, m: u32, v: u32) -> PipelineShape {
        PipelineShape {
            pp,
            microbatches: m,
            virtual_stages: v,
            extra_warmup: 0,
        }
    }

    /// Every (micro-batch, chunk) of the stage runs one forward, then either a fused
    /// backward or a B and a W, in that order.
    pub(super) fn check_complete(s: Schedule, stage: u32, sh: &PipelineShape) {
        let order = s.get().passes(stage, sh);
        let v = s.get().chunks_per_stage(sh);
        let mut mbs: Vec<u32> = (0..sh.microbatches).collect();
        if s == Schedule::DUALPIPE {
            // each local chunk serves one direction: half of the micro-batches
            mbs.truncate((sh.microbatches / 2) as usize);
        }
        let key = |p: &Pass| {
            let mb = if s == Schedule::DUALPIPE {
                p.microbatch % (sh.microbatches / 2)
            } else {
                p.microbatch
            };
            (mb, p.chunk)
        };
        let want: Vec<(u32, u32)> = mbs.iter().flat_map(|&i| (0..v).map(move |c| (i, c))).collect();
        let of = |f: &dyn Fn(&Pass) -> bool| {
            let mut seen: Vec<(u32, u32)> = order.iter().filter(|p| f(p)).map(key).collect();
            seen.sort_unstable();
            seen
        };
        assert_eq!(
            of(&|p| p.kind == PassKind::Forward),
            want,
            "{} stage {stage}: forwards",
            s.name()
        );
        assert_eq!(
            of(&|p| p.kind.sends_gradient()),
            want,
            "{} stage {stage}: backwards",
            s.name()
        );
        // a backward after its forward, a W after its B
        for (i, p) in order.iter().enumerate() {
            let before = |k: PassKind| {
                order[..i]
                    .iter()
                    .any(|q| q.kind == k && q.microbatch == p.microbatch && q.chunk == p.chunk)
            };
            match p.kind {
                PassKind::Backward | PassKind::BackwardInput => assert!(before(PassKind::Forward)),
                PassKind::BackwardWeight => assert!(before(PassKind::BackwardInput)),
                PassKind::Forward => {}
            }
        }
        let b = order.iter().filter(|p| p.kind == PassKind::BackwardInput).count();
        let w = order.iter().filter(|p| p.kind == PassKind::BackwardWeight).count();
        assert_eq!(b, w, "{}: every B has its W", s.name());
    }

    #[test]
    fn every_schedule_runs_each_pass_exactly_once() {
        for s in Schedule::ALL {
            for pp in [2u32, 4, 8] {
                for m in [2 * pp, 3 * pp, 4 * pp] {
                    let v = if *s == Schedule::INTERLEAVED { 3 } else { 1 };
                    let sh = shape(pp, m, v);
                    s.get()
                        .check(&sh)
                        .unwrap_or_else(|e| panic!("{} pp={pp} m={m}: {e}", s.name()));
                    for stage in 0..pp {
                        check_complete(*s, stage, &sh);
                    }
                }
            }
        }
        for stage in 0..1 {
            check_complete(Schedule::GPIPE, stage, &shape(1, 4, 1));
            check_complete(Schedule::ONE_F_ONE_B, stage, &shape(1, 4, 1));
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

    /// Zero Bubble Table 2 and Section 3: ZB-H1 holds 1F1B's `p - i + 1` activations plus
    /// `i - 1` pending W buffers on stage `i` (1-based); ZB-H2 `2p - 2i + 1` and `2i - 2`;
    /// ZB-V `2p` half-size chunks (p M_B) on every stage. DeepSeek-V3 Table 2: DualPipe
    /// `PP + 1` chunks at its peak, DualPipeV `2 pp + 1` half-size chunks on `pp` devices.
    #[test]
    fn activation_peaks_match_the_papers() {
        let (p, m) = (8u32, 32u32);
        let (mb, mw) = (34.0, 32.0);
        for s in 0..p {
            let i = (s + 1) as f64;
            let pf = p as f64;
            let h1 = Schedule::ZERO_BUBBLE_H1.get().passes(s, &shape(p, m, 1));
            assert_eq!(peak_activation(&h1, |_| (mb, mw)), (pf - i + 1.0) * mb + (i - 1.0) * mw);
            let h2 = Schedule::ZERO_BUBBLE_H2.get().passes(s, &shape(p, m, 1));
            assert_eq!(
                peak_activation(&h2, |_| (mb, mw)),
                (2.0 * pf - 2.0 * i + 1.0) * mb + (2.0 * i - 2.0) * mw
            );
            let v = Schedule::ZERO_BUBBLE_V.get().passes(s, &shape(p, m, 1));
            assert!(peak_in_flight(&v, |_| 1.0) <= (2 * p) as f64);
        }
        let peak = |s: Schedule, pp: u32| {
            (0..pp)
                .map(|st| peak_in_flight(&s.get().passes(st, &shape(pp, m, 1)), |_| 1.0))
                .fold(0.0, f64::max)
        };
        assert_eq!(peak(Schedule::ZERO_BUBBLE_V, p), (2 * p) as f64);
        assert_eq!(peak(Schedule::DUALPIPE, p), (p + 1) as f64);
        assert_eq!(peak(Schedule::DUALPIPE_V, p / 2), (p + 1) as f64);
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
    fn chunk_maps_invert() {
        for (s, v) in [
            (Schedule::INTERLEAVED, 3),
            (Schedule::ZERO_BUBBLE_V, 1),
            (Schedule::DUALPIPE_V, 1),
            (Schedule::ONE_F_ONE_B, 1),
        ] {
            let sh = shape(4, 8, v);
            let sch = s.get();
            for g in 0..sch.model_chunks(&sh) {
                let (stage, c) = sch.locate(g, 0, &sh);
                assert_eq!(sch.global_chunk(stage, c, &sh), g, "{}", s.name());
            }
        }
        // DualPipe: each chunk on two stages, the micro-batch's direction picks one
        let sh = shape(4, 8, 1);
        let d = Schedule::DUALPIPE.get();
        assert_eq!(d.model_chunks(&sh), 4);
        assert_eq!(d.locate(0, 0, &sh), (0, 0));
        assert_eq!(d.locate(0, 4, &sh), (3, 1));
        assert_eq!(d.global_chunk(3, 1, &sh), 0);
    }
}
