//! `report.html`: one self-contained page per run (no external file, script or font): the
//! summary, every chart inlined as SVG, the scenario as simulated (its TOML and every
//! resolved input) and the trainsim version, and the results JSON embedded.

use super::{ReportError, ScenarioRecord, VERSION};
use crate::simulation::RunResult;
use std::fmt::Write as _;

/// `text` safe inside HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON safe inside a `<script type="application/json">` element.
fn script_json(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("</", "<\\/")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1240px;color:#222;padding:0 1em}\
h1{font-size:1.6em;margin-bottom:.2em}.meta{color:#666;margin-top:0}\
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px;line-height:1.35}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto;border:1px solid #ddd}\
details{margin:1em 0}summary{cursor:pointer;font-weight:600}";

/// The page for `r` (and the scenario it came from, when known).
pub fn report_html(r: &RunResult, scenario: Option<&ScenarioRecord>) -> Result<String, ReportError> {
    let charts = super::charts::svg_all(r)?;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"generator\" content=\"trainsim {VERSION}\">\
         <title>{} — trainsim report</title><style>{STYLE}</style></head><body>\n",
        escape(&r.name)
    );
    let _ = writeln!(
        h,
        "<h1>{}</h1><p class=\"meta\">{} on {} x {} · {} · trainsim {VERSION}</p>",
        escape(&r.name),
        escape(&r.model),
        r.num_gpus,
        escape(&r.gpu),
        escape(&r.plan)
    );
    let _ = writeln!(h, "<h2>Summary</h2><pre>{}</pre>", escape(&super::summary::summary(r)));
    let _ = writeln!(h, "<h2>Charts</h2>");
    for (name, svg) in &charts {
        // the SVG's own XML declaration is not allowed inside HTML
        let body = svg.trim_start().strip_prefix("<?xml").map_or(svg.as_str(), |rest| {
            rest.find("?>").map_or(svg.as_str(), |i| rest[i + 2..].trim_start())
        });
        let _ = writeln!(h, "<figure id=\"{name}\">{body}</figure>");
    }
    if let Some(s) = scenario {
        let _ = writeln!(
            h,
            "<h2>Scenario</h2><p class=\"meta\">{}</p><pre>{}</pre>",
            escape(&s.file),
            escape(&s.source)
        );
        let resolved = serde_json::to_string_pretty(&s.resolved).unwrap_or_default();
        let _ = writeln!(
            h,
            "<details><summary>Every input after presets and defaults</summary><pre>{}</pre></details>",
            escape(&resolved)
        );
    }
    let _ = writeln!(
        h,
        "<details><summary>results.json</summary><p class=\"meta\">Also embedded below as \
         <code>&lt;script id=\"results\" type=\"application/json\"&gt;</code>.</p></details>"
    );
    let _ = writeln!(
        h,
        "<script id=\"results\" type=\"application/json\">{}</script>",
        script_json(&super::results_json_for(r, scenario))
    );
    h.push_str("</body></html>\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_contained_with_charts_scenario_and_version() {
        let r = super::super::charts::test_support::tiny_run();
        let rec = ScenarioRecord {
            file: "t.toml".into(),
            source: "name = \"<tiny>\"\n".into(),
            resolved: serde_json::json!({"parallel": {"tp": 2}}),
        };
        let page = report_html(r, Some(&rec)).unwrap();
        assert!(page.contains("<svg") && page.contains("id=\"timeline\""));
        assert!(page.contains(VERSION) && page.contains("name = &quot;&lt;tiny&gt;&quot;"));
        assert!(
            !page.contains("src=\"http") && !page.contains("href=\"http"),
            "nothing external"
        );
        assert!(!page.contains("<?xml"));
        let start = page.find("type=\"application/json\">").unwrap();
        let json = &page[start + 24..page[start..].find("</script>").unwrap() + start];
        let v: serde_json::Value = serde_json::from_str(&json.replace("<\\/", "</")).unwrap();
        assert_eq!(v["trainsim_version"], VERSION);
        assert_eq!(v["scenario"]["file"], "t.toml");
    }
}
