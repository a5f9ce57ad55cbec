use crate::repo;
use trainsim::report::results_json;
use trainsim::scenario::Scenario;

/// results.json of tests/golden/tiny.toml equals the committed golden file byte for byte.
/// After an intended model change, regenerate with `UPDATE_GOLDEN=1 cargo test --release
/// golden` and review the diff.
#[test]
fn results_json_matches_the_golden_file() {
    let s = Scenario::load(&repo("tests/golden/tiny.toml")).unwrap();
    let got = results_json(&trainsim::simulation::run(&s.input).unwrap());
    let path = repo("tests/golden/tiny.results.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read(&path).expect("golden file exists (UPDATE_GOLDEN=1 to create)");
    assert!(
        got == want,
        "results.json differs from {}; if intended, rerun with UPDATE_GOLDEN=1 and review the diff",
        path.display()
    );
}
