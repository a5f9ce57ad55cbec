use crate::repo;
use trainsim::report::results_json;
use trainsim::scenario::Scenario;

fn run_json(path: &str) -> Vec<u8> {
    let s = Scenario::load(&repo(path)).unwrap();
    results_json(&trainsim::simulation::run(&s.input).unwrap())
}

/// Same scenario, same seed: byte-identical results JSON, run twice and inside rayon
/// pools of 1 and 4 threads.
#[test]
fn same_scenario_and_seed_give_byte_identical_results() {
    let path = "scenarios/llama3-8b-h100-64.toml";
    let a = run_json(path);
    let b = run_json(path);
    assert_eq!(a, b, "two runs differ");
    for threads in [1, 4] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let c = pool.install(|| {
            use rayon::prelude::*;
            (0..3).into_par_iter().map(|_| run_json(path)).collect::<Vec<_>>()
        });
        for x in c {
            assert_eq!(a, x, "run on {threads} threads differs");
        }
    }
}

/// `run_summary` (sweeps, search, validate) is `run` without the timeline: every other
/// field byte-identical, on a dense and a MoE scenario with expert lanes.
#[test]
fn run_summary_is_run_without_the_timeline() {
    for path in [
        "scenarios/llama3-8b-h100-64.toml",
        "scenarios/mixtral-8x7b-h100-64.toml",
    ] {
        let s = Scenario::load(&repo(path)).unwrap();
        let mut full = trainsim::simulation::run(&s.input).unwrap();
        let summary = trainsim::simulation::run_summary(&s.input).unwrap();
        assert!(!full.timeline.is_empty(), "{path}: run keeps a timeline");
        assert!(summary.timeline.is_empty(), "{path}: run_summary keeps none");
        full.timeline.clear();
        assert_eq!(results_json(&full), results_json(&summary), "{path}");
    }
}
