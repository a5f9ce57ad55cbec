//! The fuzz harness: mutated scenario files through the whole run pipeline, counted by
//! outcome. No panic, hang, abort or non-finite number is acceptable.
//!
//! ```text
//! cargo run --release --example fuzz -- --cases 100000 --seed 1
//! ```
//!
//! Prints the count per outcome and per mutation class; writes every defective case to
//! `out/fuzz/case-<index>.toml` (rerun one with `trainsim run`). Exits 1 if any defect.

mod harness;
mod mutate;

use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a whole number, got {v}"))
        })
        .unwrap_or(default)
}

/// The shipped sweep files, each with its `base` made absolute (the cases are written to a
/// scratch folder).
pub fn sweeps(root: &Path) -> Vec<String> {
    let dir = root.join("scenarios/sweeps");
    files(&dir)
        .into_iter()
        .map(|text| {
            let mut t: toml::Table = toml::from_str(&text).expect("shipped sweeps parse");
            if let Some(toml::Value::String(b)) = t.get("base") {
                let abs = dir.join(b).display().to_string();
                t.insert("base".into(), toml::Value::String(abs));
            }
            toml::to_string(&t).expect("a table serialises")
        })
        .collect()
}

/// The shipped scenarios the cases start from.
pub fn bases(root: &Path) -> Vec<String> {
    files(&root.join("scenarios"))
}

fn files(dir: &Path) -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("scenarios/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("readable"))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cases = arg(&args, "--cases", 100_000);
    let seed = arg(&args, "--seed", 1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bases = bases(root);
    let sweeps = sweeps(root);
    let scratch = std::env::temp_dir().join(format!("trainsim-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    let known: Vec<String> = trainsim::scenario::fields::known_paths().to_vec();
    let case_path = root.join("scenarios/fuzz-case.toml");
    harness::install_panic_hook();
    let started = std::time::Instant::now();
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_class: BTreeMap<(&'static str, &'static str), u64> = BTreeMap::new();
    let mut defects = Vec::new();
    let mut refusals: BTreeMap<String, u64> = BTreeMap::new();
    let chunk = 2000u64;
    for start in (0..cases).step_by(chunk as usize) {
        let end = (start + chunk).min(cases);
        let outs: Vec<(u64, mutate::Case, harness::Outcome)> = (start..end)
            .into_par_iter()
            .map(|i| {
                let c = mutate::case(&bases, &sweeps, &known, seed, i);
                let o = match c.kind {
                    mutate::Kind::Scenario => harness::run_case(&c.text, &case_path),
                    mutate::Kind::Sweep => harness::run_sweep_case(&c.text, &scratch.join(format!("case-{i}.toml"))),
                };
                (i, c, o)
            })
            .collect();
        for (i, c, o) in outs {
            *counts.entry(o.name()).or_default() += 1;
            for &k in &c.classes {
                *by_class.entry((mutate::CLASSES[k], o.name())).or_default() += 1;
            }
            if let harness::Outcome::RunRefused(kind) = &o {
                *refusals.entry(kind.clone()).or_default() += 1;
            }
            if o.is_defect() {
                eprintln!("case {i}: {o:?}");
                defects.push((i, c.text));
            }
        }
        eprint!("\r{end}/{cases} cases, {:.0} s", started.elapsed().as_secs_f64());
    }
    eprintln!();
    let _ = std::fs::remove_dir_all(&scratch);
    println!(
        "fuzz: {cases} cases, seed {seed}, {:.0} s",
        started.elapsed().as_secs_f64()
    );
    for (k, v) in &counts {
        println!("  {k:<26} {v:>8}");
    }
    for (k, v) in &refusals {
        println!("    run refused: {k:<40} {v:>6}");
    }
    println!("per mutation class (cases containing it):");
    let mut classes = mutate::CLASSES.to_vec();
    classes.dedup();
    for class in &classes {
        let row: Vec<String> = counts
            .keys()
            .map(|o| format!("{o} {}", by_class.get(&(*class, *o)).copied().unwrap_or(0)))
            .collect();
        println!("  {class:<15} {}", row.join(", "));
    }
    if !defects.is_empty() {
        let dir = root.join("out/fuzz");
        std::fs::create_dir_all(&dir).expect("out/fuzz");
        for (i, text) in &defects {
            std::fs::write(dir.join(format!("case-{i}.toml")), text).expect("write case");
        }
        println!("{} defects written to {}", defects.len(), dir.display());
        std::process::exit(1);
    }
}
