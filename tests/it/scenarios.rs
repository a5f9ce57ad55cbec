use crate::repo;
use trainsim::cli::validate::scenario_files;
use trainsim::scenario::Scenario;

/// Every scenario shipped under scenarios/ is valid.
#[test]
fn every_shipped_scenario_loads() {
    let files = scenario_files(&repo("scenarios")).unwrap();
    assert!(files.len() >= 20);
    for f in files {
        if f.components().any(|c| c.as_os_str() == "sweeps") {
            continue;
        }
        Scenario::load(&f).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The README's main example runs and reports sane figures.
#[test]
fn main_example_runs() {
    let s = Scenario::load(&repo("scenarios/gpt3-175b-a100-1024.toml")).unwrap();
    let r = trainsim::simulation::run(&s.input).unwrap();
    assert!(r.mfu_fraction > 0.2 && r.mfu_fraction < 0.7, "MFU {}", r.mfu_fraction);
    assert!(r.memory.fits);
    assert_eq!(r.simulation.gpus_represented, 1024);
}
