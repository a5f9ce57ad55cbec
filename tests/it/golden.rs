use crate::repo;
use trainsim::report::{results_json_for, timeline_json, ScenarioRecord};
use trainsim::scenario::Scenario;

/// results.json (with trainsim's version and the scenario, as `trainsim run` writes it) and
/// timeline.json of tests/golden/tiny.toml equal the committed golden files byte for byte.
/// After an intended model change, regenerate with `UPDATE_GOLDEN=1 cargo test --release
/// golden` and review the diff.
#[test]
fn results_json_matches_the_golden_file() {
    let s = Scenario::load(&repo("tests/golden/tiny.toml")).unwrap();
    let r = trainsim::simulation::run(&s.input).unwrap();
    let mut record = ScenarioRecord::of(&s);
    record.file = "tests/golden/tiny.toml".into(); // not the absolute path of this checkout
    for (got, name) in [
        (results_json_for(&r, Some(&record)), "tests/golden/tiny.results.json"),
        (timeline_json(&r), "tests/golden/tiny.timeline.json"),
    ] {
        let path = repo(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read(&path).expect("golden file exists (UPDATE_GOLDEN=1 to create)");
        assert!(
            got == want,
            "{} differs from {}; if intended, rerun with UPDATE_GOLDEN=1 and review the diff",
            name.rsplit('/').next().unwrap_or(name),
            path.display()
        );
    }
}
