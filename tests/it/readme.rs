//! The README's figures against the binary: every printed-summary block of the README is
//! checked line by line against a fresh simulation of its scenario, so the figures cannot
//! drift from what `trainsim run` prints (an intended change updates the README too).

use crate::repo;
use trainsim::scenario::Scenario;

/// (scenario file, lines of the block) for every ```text block of the README that shows a
/// run: its first line names the scenario (`NAME — model on ...`) or the paragraph before
/// it names `scenarios/....toml`.
fn blocks(readme: &str) -> Vec<(String, Vec<String>)> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "```text" {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j].trim() == "```")
            .unwrap_or(lines.len());
        let block: Vec<String> = lines[start..end].iter().map(|l| l.to_string()).collect();
        let named = block
            .first()
            .and_then(|l| l.split_once(" — "))
            .map(|(n, _)| n.trim().to_string());
        let before = lines[i.saturating_sub(6)..i].join(" ");
        let mentioned = before
            .split(|c: char| c.is_whitespace() || c == '`' || c == ':')
            .find(|w| w.starts_with("scenarios/") && w.ends_with(".toml"))
            .map(str::to_string);
        let file = match (named, mentioned) {
            (Some(n), _) if repo(&format!("scenarios/{n}.toml")).is_file() => Some(format!("scenarios/{n}.toml")),
            (_, Some(m)) => Some(m),
            _ => None,
        };
        if let Some(f) = file {
            out.push((f, block));
        }
        i = end + 1;
    }
    out
}

#[test]
fn readme_summaries_match_the_simulation() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let found = blocks(&readme);
    assert!(
        found.len() >= 2,
        "expected the main example and the training example, got {found:?}"
    );
    for (file, block) in found {
        let s = Scenario::load(&repo(&file)).unwrap_or_else(|e| panic!("{e}"));
        let r = trainsim::simulation::run(&s.input).unwrap();
        let summary = trainsim::report::summary::summary(&r);
        let printed: Vec<&str> = summary.lines().map(str::trim_end).collect();
        for line in &block {
            let l = line.trim_end();
            // elisions and the wall time (which varies) are not figures of the model
            if l.trim().is_empty() || l.trim() == "..." || l.starts_with("simulated in ") {
                continue;
            }
            assert!(
                printed.contains(&l),
                "README.md shows a line for {file} that `trainsim run` no longer prints:\n  {l}\n\
                 update the README from:\n{summary}"
            );
        }
    }
}
