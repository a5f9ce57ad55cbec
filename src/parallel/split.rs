//! How a model's layers are split over the pipeline's model chunks: evenly when they
//! divide, Megatron's embedding/loss accounting, explicit first and last stage sizes
//! (`--decoder-first/last-pipeline-num-layers`), a full per-stage (or per-chunk) list, or,
//! for a layer count that does not divide, Megatron's uneven first/last stage default.
//!
//! Owns [`LayerSplit`] (what the plan asks for) and [`layers_per_chunk`] (what each model
//! chunk, in layer order, then holds).

use super::schedule::{PipelineSchedule, PipelineShape};
use serde::{Deserialize, Serialize};

/// The split a plan asks for (`parallel.first_stage_layers`, `parallel.last_stage_layers`,
/// `parallel.stage_layers`); all unset is the default split.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSplit {
    /// Layers of the first pipeline stage (the one holding the embedding); the stages
    /// neither first nor last share the rest evenly.
    #[serde(default)]
    pub first_stage: Option<u32>,
    /// Layers of the last pipeline stage.
    #[serde(default)]
    pub last_stage: Option<u32>,
    /// Layers of every pipeline stage (`pp` entries), or of every model chunk in layer
    /// order (`pp * chunks per stage` entries).
    #[serde(default)]
    pub stages: Option<Vec<u32>>,
}

impl LayerSplit {
    /// Whether nothing is asked (even split, or the default for counts that do not divide).
    pub fn is_default(&self) -> bool {
        self.first_stage.is_none() && self.last_stage.is_none() && self.stages.is_none()
    }

    /// Short form for plan labels, e.g. `3+*+2` (first 3, last 2, the rest even) or
    /// `3+4+4+2` (a full list); `None` for the default split.
    pub fn label(&self) -> Option<String> {
        if let Some(v) = &self.stages {
            return Some(v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("+"));
        }
        if self.is_default() {
            return None;
        }
        let f = |x: Option<u32>| x.map(|n| n.to_string()).unwrap_or_else(|| "*".into());
        Some(format!("{}+*+{}", f(self.first_stage), f(self.last_stage)))
    }
}

/// The contiguous split of `num_layers` layers over stages whose time per layer is
/// `layer_s` (one entry per stage) that minimises the slowest stage's `layers x time`, each
/// stage a positive multiple of `chunks` layers; ties give the later stages fewer layers
/// (the last also runs the output head). `None` when `num_layers` is not a multiple of
/// `chunks` or is below `chunks` per stage.
pub fn balanced_split(layer_s: &[f64], num_layers: u32, chunks: u32) -> Option<Vec<u32>> {
    let (k, n) = (chunks.max(1), layer_s.len() as u32);
    if n == 0 || num_layers % k != 0 || num_layers < k * n || layer_s.iter().any(|t| t.is_nan() || *t <= 0.0) {
        return None;
    }
    // units of `k` layers; the smallest bound T on any stage's time that fits them all
    let units = num_layers / k;
    let caps = |t: f64| -> Vec<u32> {
        layer_s
            .iter()
            .map(|s| ((t / (s * k as f64)) * (1.0 + 1e-12)).floor() as u32)
            .collect()
    };
    let mut bounds: Vec<f64> = (layer_s.iter())
        .flat_map(|s| (1..=units).map(move |u| u as f64 * s * k as f64))
        .collect();
    bounds.sort_by(f64::total_cmp);
    let t = *bounds.iter().find(|&&t| {
        let c = caps(t);
        c.iter().all(|&u| u >= 1) && c.iter().map(|&u| u as u64).sum::<u64>() >= units as u64
    })?;
    let mut split = caps(t);
    let mut excess = split.iter().map(|&u| u as u64).sum::<u64>() - units as u64;
    // take the excess from the most loaded stages, the last first on ties
    while excess > 0 {
        let (i, _) = (split.iter().enumerate())
            .filter(|(_, &u)| u > 1)
            .map(|(i, &u)| (i, u as f64 * layer_s[i]))
            .fold(None, |best: Option<(usize, f64)>, (i, load)| match best {
                Some((_, b)) if b > load => best,
                _ => Some((i, load)),
            })?;
        split[i] -= 1;
        excess -= 1;
    }
    Some(split.into_iter().map(|u| u * k).collect())
}

/// Which split rule failed, for messages that name the scenario key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitError {
    /// The scenario key at fault (`parallel.stage_layers`, ...).
    pub field: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

fn err(field: &'static str, message: String) -> SplitError {
    SplitError { field, message }
}

/// The stage that owns each model chunk for splitting: where its first copy sits (DualPipe
/// holds every chunk twice; its own stage's copy comes first).
fn owners(schedule: &dyn PipelineSchedule, shape: &PipelineShape) -> Vec<u32> {
    let v = schedule.chunks_per_stage(shape);
    let n = schedule.model_chunks(shape) as usize;
    let mut owner = vec![u32::MAX; n];
    for c in 0..v {
        for s in 0..shape.pp {
            let g = schedule.global_chunk(s, c, shape) as usize;
            if g < n && owner[g] == u32::MAX {
                owner[g] = s;
            }
        }
    }
    owner
}

/// Spreads each stage's layer count over the chunks it owns (in layer order), evenly;
/// with `exact` an uneven spread is an error.
fn per_chunk(stage_layers: &[u32], owner: &[u32], exact: Option<&'static str>) -> Result<Vec<u32>, SplitError> {
    let mut out = vec![0u32; owner.len()];
    for (s, &n) in stage_layers.iter().enumerate() {
        let chunks: Vec<usize> = (0..owner.len()).filter(|&g| owner[g] == s as u32).collect();
        let k = chunks.len().max(1) as u32;
        if let Some(field) = exact {
            if n % k != 0 {
                return Err(err(
                    field,
                    format!(
                        "stage {s}'s {n} layers cannot be split evenly over its {k} model chunks; give each stage a multiple of {k} layers, or list all {} chunk sizes in parallel.stage_layers",
                        owner.len()
                    ),
                ));
            }
        }
        for (i, &g) in chunks.iter().enumerate() {
            out[g] = n / k + u32::from((i as u32) < n % k);
        }
    }
    Ok(out)
}

/// Megatron's uneven first/last stage split of `layers` over `pp` stages when they do
/// not divide: the middle stages take `ceil(layers / pp)` each, the first and last share
/// the rest (the last, which also runs the output head and loss, the smaller half), e.g.
/// DeepSeek-V3's 61 layers on 16 stages as 3 + 14 x 4 + 2. Where that leaves the first or
/// last stage empty or heavier than the middle, the layers are spread as evenly as
/// possible instead, the extra ones on the middle stages.
pub fn default_stage_layers(layers: u32, pp: u32) -> Vec<u32> {
    if pp == 0 {
        return Vec::new();
    }
    if layers % pp == 0 {
        return vec![layers / pp; pp as usize];
    }
    let c = layers.div_ceil(pp);
    if pp >= 2 && layers >= (pp - 2) * c {
        let rest = layers - (pp - 2) * c;
        let (first, last) = (rest.div_ceil(2), rest / 2);
        if last >= 1 && first <= c {
            let mut v = vec![c; pp as usize];
            v[0] = first;
            v[pp as usize - 1] = last;
            return v;
        }
    }
    let mut v = vec![layers / pp; pp as usize];
    let order = (1..pp.saturating_sub(1)).chain([0, pp - 1]);
    for s in order.take((layers % pp) as usize) {
        v[s as usize] += 1;
    }
    v
}

/// Layers held by each model chunk, in layer order (global chunk index), for a model of
/// `layers` layers under `split`, with Megatron's embedding/loss accounting when
/// `embedding_and_loss`.
pub fn layers_per_chunk(
    layers: u32,
    split: &LayerSplit,
    embedding_and_loss: bool,
    schedule: &dyn PipelineSchedule,
    shape: &PipelineShape,
) -> Result<Vec<u32>, SplitError> {
    let pp = shape.pp;
    let n = schedule.model_chunks(shape);
    let owner = owners(schedule, shape);
    let split_keys = if split.stages.is_some() {
        "parallel.stage_layers"
    } else if split.first_stage.is_some() {
        "parallel.first_stage_layers"
    } else {
        "parallel.last_stage_layers"
    };
    if !split.is_default() && embedding_and_loss {
        return Err(err(
            "parallel.pipeline_split_embedding_and_loss",
            format!("pipeline_split_embedding_and_loss cannot be combined with {split_keys} (Megatron does not support both); count the embedding and loss in the stage sizes instead"),
        ));
    }
    let chunks = if let Some(list) = &split.stages {
        if split.first_stage.is_some() || split.last_stage.is_some() {
            return Err(err(
                "parallel.stage_layers",
                "give either parallel.stage_layers or parallel.first_stage_layers / last_stage_layers, not both".into(),
            ));
        }
        let got = list.len() as u32;
        let chunks = if got == n {
            list.clone()
        } else if got == pp {
            per_chunk(list, &owner, Some("parallel.stage_layers"))?
        } else {
            return Err(err(
                "parallel.stage_layers",
                format!(
                    "has {got} entries; give one per pipeline stage (pp = {pp}){}",
                    if n != pp {
                        format!(" or one per model chunk ({n})")
                    } else {
                        String::new()
                    }
                ),
            ));
        };
        let sum: u32 = list.iter().sum();
        if sum != layers {
            return Err(err(
                "parallel.stage_layers",
                format!("sums to {sum} layers but the model has {layers}; the entries must add up to model.num_layers"),
            ));
        }
        chunks
    } else if split.first_stage.is_some() || split.last_stage.is_some() {
        let field = split_keys;
        let (first, last) = (split.first_stage.unwrap_or(0), split.last_stage.unwrap_or(0));
        let fixed = u32::from(split.first_stage.is_some()) + u32::from(split.last_stage.is_some());
        if pp < fixed.max(2) {
            return Err(err(field, format!("needs pp >= 2 (pp = {pp})")));
        }
        if first + last > layers {
            return Err(err(
                field,
                format!("first and last stage layers ({first} + {last}) exceed the model's {layers}"),
            ));
        }
        let rest = layers - first - last;
        let middle = pp - fixed;
        if middle > 0 && rest % middle != 0 {
            return Err(err(
                field,
                format!(
                    "leaves {rest} layers for the {middle} other stages, which does not divide evenly (Megatron requires it); change the first/last sizes or give parallel.stage_layers"
                ),
            ));
        }
        if middle == 0 && rest != 0 {
            return Err(err(
                field,
                format!(
                    "the first and last stage hold {} layers but the model has {layers}",
                    first + last
                ),
            ));
        }
        let mut st = vec![rest.checked_div(middle).unwrap_or(0); pp as usize];
        if let Some(f) = split.first_stage {
            st[0] = f;
        }
        if let Some(l) = split.last_stage {
            st[pp as usize - 1] = l;
        }
        per_chunk(&st, &owner, Some(field))?
    } else if embedding_and_loss {
        let slots = layers + 2;
        if slots % n != 0 {
            return Err(err(
                "parallel.pipeline_split_embedding_and_loss",
                format!(
                    "{layers} layers (+2 for embedding and loss) cannot be split evenly over {n} model chunks; choose pp*virtual_stages dividing {slots}, or drop pipeline_split_embedding_and_loss for the default uneven split"
                ),
            ));
        }
        let per = slots / n;
        if per < 1 || (n == 1 && per < 2) {
            return Err(err(
                "parallel.pipeline_split_embedding_and_loss",
                "pipeline_split_embedding_and_loss needs at least one layer slot per model chunk".into(),
            ));
        }
        let mut v = vec![per; n as usize];
        v[0] -= 1;
        v[n as usize - 1] -= 1;
        v
    } else if layers % n == 0 {
        vec![layers / n; n as usize]
    } else {
        per_chunk(&default_stage_layers(layers, pp), &owner, None)?
    };
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::Schedule;

    #[test]
    fn a_balanced_split_evens_the_stages_out() {
        // one GPU type: the even split; the remainder goes to the first stages
        assert_eq!(balanced_split(&[1.0; 4], 80, 1), Some(vec![20; 4]));
        assert_eq!(balanced_split(&[1.0; 4], 30, 1), Some(vec![8, 8, 7, 7]));
        // a stage twice as slow per layer gets half the layers: max(2 x 20, 1 x 40) = 40
        assert_eq!(balanced_split(&[1.0, 2.0], 60, 1), Some(vec![40, 20]));
        // H100 vs A100 at 1 : 2.25 per layer, 80 layers: 28 x 1 vs 12 x 2.25 = 27 (27 layers
        // would leave 13 x 2.25 = 29.25)
        assert_eq!(
            balanced_split(&[1.0, 1.0, 2.25, 2.25], 80, 1),
            Some(vec![28, 28, 12, 12])
        );
        // chunks: multiples of 2 per stage
        let s = balanced_split(&[1.0, 3.0], 16, 2).unwrap();
        assert_eq!(s, vec![12, 4]);
        // the optimum: no split of 80 over [1, 1, 2.25, 2.25] has a lower slowest stage
        let cost = |v: &[u32], t: &[f64]| v.iter().zip(t).map(|(&n, &t)| n as f64 * t).fold(0.0, f64::max);
        let t = [1.0, 1.0, 2.25, 2.25];
        let best = cost(&balanced_split(&t, 80, 1).unwrap(), &t);
        for a in 1..78u32 {
            for b in 1..(79 - a) {
                for c in 1..(80 - a - b) {
                    let v = [a, b, c, 80 - a - b - c];
                    assert!(cost(&v, &t) >= best - 1e-9, "{v:?} beats the balanced split");
                }
            }
        }
        // impossible: fewer layers than stages, layers not a multiple of the chunks
        assert_eq!(balanced_split(&[1.0; 4], 3, 1), None);
        assert_eq!(balanced_split(&[1.0; 2], 61, 2), None);
        assert_eq!(balanced_split(&[1.0, f64::NAN], 8, 1), None);
    }

    fn shape(pp: u32, v: u32) -> PipelineShape {
        PipelineShape {
            pp,
            microbatches: 4 * pp,
            virtual_stages: v,
            extra_warmup: 0,
        }
    }

    fn split(s: Schedule, pp: u32, v: u32, layers: u32, ls: LayerSplit) -> Result<Vec<u32>, SplitError> {
        layers_per_chunk(layers, &ls, false, s.get(), &shape(pp, v))
    }

    #[test]
    fn deepseek_v3_61_layers_on_16_stages_default_to_megatrons_first_and_last() {
        let v = default_stage_layers(61, 16);
        assert_eq!(v.iter().sum::<u32>(), 61);
        assert_eq!((v[0], v[1], v[14], v[15]), (3, 4, 4, 2));
        let d = split(Schedule::DUALPIPE, 16, 1, 61, LayerSplit::default()).unwrap();
        assert_eq!(d, v);
        // awkward counts fall back to an even spread with the extras in the middle
        assert_eq!(default_stage_layers(9, 8), vec![1, 2, 1, 1, 1, 1, 1, 1]);
        assert_eq!(default_stage_layers(61, 2), vec![31, 30]);
    }

    #[test]
    fn first_and_last_stage_sizes_follow_megatron() {
        let ls = LayerSplit {
            first_stage: Some(3),
            last_stage: Some(2),
            stages: None,
        };
        let v = split(Schedule::ONE_F_ONE_B, 16, 1, 61, ls.clone()).unwrap();
        assert_eq!((v[0], v[7], v[15]), (3, 4, 2));
        let e = split(Schedule::ONE_F_ONE_B, 16, 1, 62, ls).unwrap_err();
        assert!(e.message.contains("does not divide evenly"), "{e:?}");
        // interleaved: each stage's layers over its chunks (round robin)
        let ls = LayerSplit {
            first_stage: Some(4),
            last_stage: Some(4),
            stages: None,
        };
        let v = split(Schedule::INTERLEAVED, 4, 2, 28, ls).unwrap();
        assert_eq!(v, vec![2, 5, 5, 2, 2, 5, 5, 2]);
    }

    #[test]
    fn a_full_list_must_sum_to_the_layers_and_fit_the_chunks() {
        let ls = |v: Vec<u32>| LayerSplit {
            stages: Some(v),
            ..LayerSplit::default()
        };
        assert_eq!(
            split(Schedule::ONE_F_ONE_B, 4, 1, 10, ls(vec![2, 3, 3, 2])).unwrap(),
            vec![2, 3, 3, 2]
        );
        let e = split(Schedule::ONE_F_ONE_B, 4, 1, 10, ls(vec![2, 3, 3, 3])).unwrap_err();
        assert_eq!(e.field, "parallel.stage_layers");
        assert!(e.message.contains("sums to 11"), "{e:?}");
        let e = split(Schedule::ONE_F_ONE_B, 4, 1, 10, ls(vec![5, 5])).unwrap_err();
        assert!(e.message.contains("has 2 entries"), "{e:?}");
        // ZB-V: a stage's layers go into two chunks; an odd count is an error, a
        // per-chunk list is not (chunk 0..3 down, 4..7 back up)
        let e = split(Schedule::ZERO_BUBBLE_V, 4, 1, 16, ls(vec![5, 3, 4, 4])).unwrap_err();
        assert!(
            e.message.contains("cannot be split evenly over its 2 model chunks"),
            "{e:?}"
        );
        let v = split(Schedule::ZERO_BUBBLE_V, 4, 1, 16, ls(vec![4, 4, 4, 4])).unwrap();
        assert_eq!(v, vec![2; 8]);
        let v = split(Schedule::ZERO_BUBBLE_V, 4, 1, 16, ls(vec![1, 2, 2, 2, 2, 2, 2, 3])).unwrap();
        assert_eq!(v.len(), 8);
    }

    #[test]
    fn embedding_and_loss_accounting_keeps_megatrons_rule() {
        let v = layers_per_chunk(
            126,
            &LayerSplit::default(),
            true,
            Schedule::ONE_F_ONE_B.get(),
            &shape(16, 1),
        )
        .unwrap();
        assert_eq!((v[0], v[1], v[15], v.iter().sum::<u32>()), (7, 8, 7, 126));
        let both = LayerSplit {
            first_stage: Some(7),
            ..LayerSplit::default()
        };
        assert!(layers_per_chunk(126, &both, true, Schedule::ONE_F_ONE_B.get(), &shape(16, 1)).is_err());
    }
}
