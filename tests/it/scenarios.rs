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

/// Every config.json under scenarios/hf/ imports to the architecture of the trainsim preset
/// its folder is named after (only the name and the published parameter count differ).
#[test]
fn hf_configs_match_the_presets() {
    let mut n = 0;
    for e in std::fs::read_dir(repo("scenarios/hf")).unwrap() {
        let dir = e.unwrap().path();
        let cfg = dir.join("config.json");
        if !cfg.is_file() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let preset = trainsim::model::presets::model_preset(&name).unwrap_or_else(|| panic!("no preset {name}"));
        let mut got = trainsim::model::hf::load(&cfg).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.name, name);
        got.published_params_b = preset.published_params_b;
        assert_eq!(got, preset, "{}", cfg.display());
        n += 1;
    }
    assert!(n >= 6, "{n} configs");
    // a scenario importing one simulates exactly as the preset does
    let hf = Scenario::load(&repo("scenarios/hf/llama3-8b-h100-64.toml")).unwrap();
    let pre = Scenario::load(&repo("scenarios/llama3-8b-h100-64.toml")).unwrap();
    let (a, b) = (
        trainsim::simulation::run(&hf.input).unwrap(),
        trainsim::simulation::run(&pre.input).unwrap(),
    );
    assert_eq!(a.step_time_s, b.step_time_s);
    assert_eq!(a.memory, b.memory);
}
