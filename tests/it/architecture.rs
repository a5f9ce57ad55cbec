//! The layering of docs/architecture.md holds: no module imports a module above it, no two
//! files import each other (directly or around a cycle), and no file in src/ outgrows
//! ~700 lines.

use crate::repo;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer of each top-level module; a module may import modules of a strictly lower layer
/// (and itself). Keep in step with docs/architecture.md.
const LAYERS: &[(&str, u32)] = &[
    ("units", 0),
    ("engine", 1),
    ("hardware", 2),
    ("model", 2),
    ("network", 3),
    ("parallel", 4),
    ("training", 4),
    ("workload", 5),
    ("simulation", 6),
    ("scenario", 7),
    ("report", 8),
    ("runner", 9),
    ("sweep", 9),
    ("serve", 10),
    ("cli", 11),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comment lines and trailing comments.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("//") {
                ""
            } else {
                match l.find(" // ") {
                    Some(i) => &l[..i],
                    None => l,
                }
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `crate::a::b::...` paths mentioned in `code`, as their segments.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + 7..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let segs: Vec<String> = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if !segs.is_empty() {
            out.push(segs);
        }
    }
    out
}

fn top_module(rel: &Path) -> String {
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn no_module_imports_a_higher_layer() {
    let src = repo("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let layer: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut bad = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let me = top_module(rel);
        let Some(&mine) = layer.get(me.as_str()) else {
            continue; // lib.rs, main.rs
        };
        for p in crate_paths(&code(&std::fs::read_to_string(f).unwrap())) {
            let to = p[0].as_str();
            if to == me {
                continue;
            }
            match layer.get(to) {
                Some(&theirs) if theirs < mine => {}
                Some(_) => bad.push(format!("{} imports crate::{to}", rel.display())),
                None => bad.push(format!("{}: crate::{to} has no layer in LAYERS", rel.display())),
            }
        }
    }
    bad.sort();
    bad.dedup();
    assert!(bad.is_empty(), "imports against the layering:\n{}", bad.join("\n"));
}

#[test]
fn no_two_files_import_each_other() {
    let src = repo("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // module path of each file: src/a/b.rs and src/a/b/mod.rs are crate::a::b
    let module_of = |f: &Path| -> Vec<String> {
        let rel = f.strip_prefix(&src).unwrap().with_extension("");
        let mut segs: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        if segs.last().is_some_and(|s| s == "mod") {
            segs.pop();
        }
        segs
    };
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in &files {
        let me = module_of(f);
        let text = code(&std::fs::read_to_string(f).unwrap());
        let mut paths = crate_paths(&text);
        // super:: from a file is its parent module (from mod.rs, the parent's parent)
        let parent: Vec<String> = me[..me.len().saturating_sub(1)].to_vec();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("super::") {
            rest = &rest[i + 7..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let mut p = parent.clone();
            p.push(rest[..end].to_string());
            paths.push(p);
        }
        for p in paths {
            // the longest prefix that is a file's module
            let target = (1..=p.len()).rev().map(|n| p[..n].to_vec()).find(|m| modules.contains(m));
            if let Some(t) = target {
                // importing a parent module (mod.rs) from its child is how Rust nests
                if t != me && !me.starts_with(&t) {
                    edges.entry(me.clone()).or_default().insert(t);
                }
            }
        }
    }
    // a cycle is a strongly connected component of more than one file
    let mut cycles = Vec::new();
    for (a, outs) in &edges {
        for b in outs {
            let mut seen = BTreeSet::new();
            let mut stack = vec![b.clone()];
            while let Some(x) = stack.pop() {
                if &x == a {
                    cycles.push(format!("{} -> {} -> ... -> {}", a.join("::"), b.join("::"), a.join("::")));
                    break;
                }
                if seen.insert(x.clone()) {
                    stack.extend(edges.get(&x).into_iter().flatten().cloned());
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles between files:\n{}", cycles.join("\n"));
}

#[test]
fn no_source_file_outgrows_700_lines() {
    let mut files = Vec::new();
    rust_files(&repo("src"), &mut files);
    let mut long: Vec<String> = files
        .iter()
        .map(|f| (f, std::fs::read_to_string(f).unwrap().lines().count()))
        .filter(|(_, n)| *n > 720)
        .map(|(f, n)| format!("{} ({n} lines)", f.display()))
        .collect();
    long.sort();
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
}

/// A schedule defined here, in one place, runs through the whole simulation: 1F1B with
/// every backward split into an input-gradient pass (B, in 1F1B order) and a
/// weight-gradient pass (W) deferred to the end of the step.
mod one_file_schedule {
    use crate::scenario;
    use trainsim::parallel::schedule::{Pass, PassKind, PipelineSchedule, PipelineShape};
    use trainsim::parallel::Schedule;
    use trainsim::simulation::breakdown::Category;
    use trainsim::workload::Phase;

    struct DeferredWeight;

    impl PipelineSchedule for DeferredWeight {
        fn name(&self) -> &'static str {
            "test-1f1b-deferred-w"
        }

        fn check(&self, shape: &PipelineShape) -> Result<(), String> {
            if shape.virtual_stages == 1 {
                Ok(())
            } else {
                Err("one chunk per stage".into())
            }
        }

        fn passes(&self, stage: u32, shape: &PipelineShape) -> Vec<Pass> {
            let m = shape.microbatches;
            let mut out = Vec::new();
            let warmup = (shape.pp - stage - 1).min(m);
            let (mut f, mut b) = (0, 0);
            while f < warmup {
                out.push(Pass::new(PassKind::Forward, f, 0));
                f += 1;
            }
            while b < m {
                if f < m {
                    out.push(Pass::new(PassKind::Forward, f, 0));
                    f += 1;
                }
                out.push(Pass::new(PassKind::BackwardInput, b, 0));
                b += 1;
            }
            out.extend((0..m).map(|i| Pass::new(PassKind::BackwardWeight, i, 0)));
            out
        }
    }

    static DEFERRED_WEIGHT: DeferredWeight = DeferredWeight;

    const SRC: &str = r#"
[cluster]
num_gpus = 32
gpus_per_node = 8
[cluster.gpu]
preset = "H100-SXM"
[model]
preset = "llama3-8b"
[parallel]
tp = 2
pp = 4
micro_batch_size = 1
[training]
global_batch_size = 32
seq_length = 4096
"#;

    #[test]
    fn a_schedule_defined_in_a_test_runs_through_the_simulation() {
        let base = scenario(SRC).input;
        let fused = trainsim::simulation::run(&base).expect("1F1B runs");
        let mut split = base.clone();
        split.plan.schedule = Schedule(&DEFERRED_WEIGHT);
        let r = trainsim::simulation::run(&split).expect("the test schedule runs");
        assert!(r.plan.contains("schedule=test-1f1b-deferred-w"), "{}", r.plan);
        // the same work, split differently: B + W compute equals the fused backward
        let weight = r.breakdown.get(Category::Compute(Phase::BackwardWeight));
        assert!(weight > 0.0);
        let rel = (r.breakdown.compute_s() / fused.breakdown.compute_s() - 1.0).abs();
        assert!(rel < 1e-6, "compute differs by {rel}");
        // deferring every W to the end keeps the first stage waiting for the last stage's
        // gradients no longer than 1F1B does, and adds no work: within one bubble of 1F1B
        let bubble = fused.breakdown.pipeline_bubble_s();
        assert!(
            (r.step_time_s - fused.step_time_s).abs() <= bubble,
            "{} vs {} (bubble {bubble})",
            r.step_time_s,
            fused.step_time_s
        );
    }
}
