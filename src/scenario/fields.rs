//! What a scenario file may contain, as data: the JSON Schema of the format (derived from
//! the serde mirror in [`super::raw`], so it accepts exactly what the loader accepts, with
//! the descriptions of docs/scenario.md), the list of dotted field paths, and "did you
//! mean" suggestions for misspelt fields, presets and values.

use super::raw::RawScenario;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// docs/scenario.md, compiled in: the descriptions of the schema come from its tables.
const SCENARIO_DOC: &str = include_str!("../../docs/scenario.md");

/// Names people reach for that are not trainsim's, with what to say: where trainsim has it
/// under another name, or that it does not model it yet.
const NOT_MODELLED: &[(&str, &str)] = &[
    ("context_parallel", "context parallelism is `parallel.cp` (with `parallel.cp_comm_type`)"),
    ("context_parallel_size", "context parallelism is `parallel.cp` (with `parallel.cp_comm_type`)"),
    ("cp_size", "context parallelism is `parallel.cp` (with `parallel.cp_comm_type`)"),
    (
        "hierarchical_context_parallel_sizes",
        "hierarchical context parallelism is `parallel.cp_comm_type = \"a2a+p2p\"` with `parallel.cp_a2a_size` (the all-to-all part)",
    ),
    (
        "etp",
        "expert tensor parallelism is `parallel.expert_tp`",
    ),
    (
        "dualpipe",
        "DualPipe is `parallel.schedule = \"dualpipe\"` (or \"dualpipe_v\")",
    ),
    (
        "zero_bubble",
        "zero-bubble schedules are `parallel.schedule = \"zero_bubble_h1\"`, \"zero_bubble_h2\" or \"zero_bubble_v\"",
    ),
    (
        "zb",
        "zero-bubble schedules are `parallel.schedule = \"zero_bubble_h1\"`, \"zero_bubble_h2\" or \"zero_bubble_v\"",
    ),
    ("zbh1", "Zero Bubble's H1 schedule is `parallel.schedule = \"zero_bubble_h1\"`"),
    (
        "sliding_window",
        "sliding-window attention is not modelled yet (every layer attends over the whole sequence)",
    ),
    (
        "num_nextn_predict_layers",
        "multi-token prediction (MTP) modules are `model.mtp_modules`",
    ),
    ("mtp", "multi-token prediction (MTP) modules are `model.mtp_modules`"),
    ("fp8_dispatch", "FP8 dispatch of MoE all-to-alls is `moe.dispatch_precision = \"fp8\"`"),
];

/// Why `name` (a field's last segment or a value) is refused when trainsim does not model it yet.
pub fn not_modelled(name: &str) -> Option<&'static str> {
    let n = name.trim().to_ascii_lowercase();
    NOT_MODELLED.iter().find(|(k, _)| *k == n).map(|(_, why)| *why)
}

/// Edit distance (insertions, deletions, substitutions) between two strings.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word` (case-insensitive), if it is close enough to be what
/// was meant: at most a third of the word's length in edits (at least 2), or the same
/// word with `-`/`_`/`.` differences.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    let squash = |s: &str| s.to_ascii_lowercase().replace(['-', '_', '.', ' '], "");
    let ws = squash(word);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = if squash(c) == ws {
            0
        } else {
            edit_distance(&w, &c.to_ascii_lowercase())
        };
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let limit = (w.chars().count() / 3).max(2);
    best.filter(|(d, _)| *d <= limit).map(|(_, c)| c)
}

/// `"; did you mean X?"` for [`suggest`], or an empty string.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>, quote: &str) -> String {
    suggest(word, candidates)
        .map(|s| format!("did you mean {quote}{s}{quote}? "))
        .unwrap_or_default()
}

/// The description of every documented key, by dotted path, from docs/scenario.md's tables
/// (`| \`key\` | type | unit | default | allowed | meaning |` under `## \`[section]\``).
pub fn documented_keys() -> &'static [(String, String)] {
    static KEYS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut out = Vec::new();
        let mut section: Option<String> = None;
        for line in SCENARIO_DOC.lines() {
            if let Some(h) = line.strip_prefix("## ").or_else(|| line.strip_prefix("### ")) {
                let h = h.trim();
                section = if h.starts_with("Top-level keys") {
                    Some(String::new())
                } else if let Some(rest) = h.strip_prefix("`[") {
                    rest.split_once("]`").map(|(s, _)| s.to_string())
                } else {
                    None // e.g. "### GPU presets": tables of presets, not keys
                };
                continue;
            }
            let Some(sec) = &section else { continue };
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 8 || !cells[1].starts_with('`') {
                continue;
            }
            let keys: Vec<&str> = cells[1].split(',').map(|k| k.trim().trim_matches('`')).collect();
            if keys.iter().any(|k| k.contains(' ') || k.contains('[') || k.is_empty()) {
                continue;
            }
            let (unit, default, allowed, meaning) = (cells[3], cells[4], cells[5], cells[6]);
            let mut d = meaning.replace('`', "");
            let mut extra = Vec::new();
            if !unit.is_empty() && unit != "–" && unit != "-" {
                extra.push(format!("unit: {unit}"));
            }
            if !default.is_empty() {
                extra.push(format!("default: {}", default.replace('`', "").replace("**", "")));
            }
            if !allowed.is_empty() {
                extra.push(format!("allowed: {}", allowed.replace('`', "")));
            }
            if !extra.is_empty() {
                d = format!("{d} ({})", extra.join("; "));
            }
            for key in keys {
                let path = if sec.is_empty() {
                    key.to_string()
                } else {
                    format!("{sec}.{key}")
                };
                out.push((path, d.clone()));
            }
        }
        out
    })
}

/// Quoted string values listed in a docs "allowed" cell, e.g. `"none"`, `"full"`.
fn documented_enum(path: &str) -> Option<Vec<String>> {
    let (sec, key) = path.rsplit_once('.').unwrap_or(("", path));
    let mut section: Option<String> = None;
    for line in SCENARIO_DOC.lines() {
        if let Some(h) = line.strip_prefix("## ").or_else(|| line.strip_prefix("### ")) {
            let h = h.trim();
            if h.starts_with("Top-level keys") {
                section = Some(String::new());
            } else if let Some(rest) = h.strip_prefix("`[") {
                section = rest.split_once("]`").map(|(s, _)| s.to_string());
            } else {
                section = None;
            }
            continue;
        }
        if section.as_deref() != Some(sec) {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 8 || cells[1] != format!("`{key}`") || cells[2] != "string" {
            continue;
        }
        let allowed = cells[5];
        let vals: Vec<String> = allowed
            .split(',')
            .filter_map(|v| {
                let v = v.trim().trim_matches('`');
                (v.starts_with('"') && v.ends_with('"') && v.len() > 2).then(|| v.trim_matches('"').to_string())
            })
            .collect();
        return (vals.len() >= 2).then_some(vals);
    }
    None
}

fn resolve<'a>(root: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name))
            .unwrap_or(v),
        None => v,
    }
}

/// The object schema of a property (through `$ref`, `anyOf` with null, or directly).
fn object_of<'a>(root: &'a Value, v: &'a Value) -> Option<&'a Value> {
    let v = resolve(root, v);
    if v.get("properties").is_some() {
        return Some(v);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = v.get(key).and_then(Value::as_array) {
            for a in alts {
                let a = resolve(root, a);
                if a.get("properties").is_some() {
                    return Some(a);
                }
            }
        }
    }
    None
}

/// The schema as schemars derives it from [`RawScenario`] (no descriptions).
fn raw_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(RawScenario)).expect("schema serialises")
}

/// Every field a scenario may set, as dotted paths (`parallel.tp`), sections excluded, in
/// file order.
pub fn known_paths() -> &'static [String] {
    static PATHS: OnceLock<Vec<String>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let root = raw_schema();
        let mut out = Vec::new();
        fn walk(root: &Value, obj: &Value, prefix: &str, out: &mut Vec<String>) {
            let Some(props) = obj.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (k, v) in props {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match object_of(root, v) {
                    Some(o) => walk(root, o, &path, out),
                    None => out.push(path),
                }
            }
        }
        walk(&root, &root, "", &mut out);
        out
    })
}

/// The fields whose values are numbers (or lists of numbers): what
/// [`super::limits::LIMITS`] must bound.
pub fn numeric_paths() -> Vec<String> {
    fn numeric(root: &Value, v: &Value) -> bool {
        let v = resolve(root, v);
        let is_num = |t: &Value| matches!(t.as_str(), Some("integer" | "number"));
        let ty = v.get("type");
        let list_of_numbers = || v.get("items").is_some_and(|i| numeric(root, i));
        let direct = match ty {
            Some(Value::Array(ts)) => ts.iter().any(is_num) || (ts.iter().any(|t| t == "array") && list_of_numbers()),
            Some(t) => is_num(t) || (t == "array" && list_of_numbers()),
            None => false,
        };
        direct
            || ["anyOf", "oneOf"].iter().any(|k| {
                v.get(*k)
                    .and_then(Value::as_array)
                    .is_some_and(|alts| alts.iter().any(|a| numeric(root, a)))
            })
    }
    let root = raw_schema();
    let mut out = Vec::new();
    for path in known_paths() {
        let mut obj = &root;
        let mut field = None;
        for part in path.split('.') {
            let Some(v) = obj.get("properties").and_then(|p| p.get(part)) else {
                break;
            };
            match object_of(&root, v) {
                Some(o) => obj = o,
                None => field = Some(v),
            }
        }
        if field.is_some_and(|f| numeric(&root, f)) {
            out.push(path.clone());
        }
    }
    out
}

/// Section paths (`cluster`, `cluster.gpu`, ...).
pub fn known_sections() -> Vec<String> {
    let mut s: Vec<String> = known_paths()
        .iter()
        .filter_map(|p| p.rsplit_once('.').map(|(sec, _)| sec.to_string()))
        .collect();
    s.sort();
    s.dedup();
    s
}

/// Checks that `path` names a scenario field; else says what was probably meant (or that
/// the feature is not modelled yet).
pub fn check_path(path: &str) -> Result<(), String> {
    let paths = known_paths();
    if paths.iter().any(|p| p == path) {
        return Ok(());
    }
    if known_sections().iter().any(|s| s == path) {
        return Err(format!(
            "`{path}` is a section, not a field: name one of its fields, e.g. `{}`",
            paths
                .iter()
                .find(|p| p.starts_with(&format!("{path}.")))
                .map(String::as_str)
                .unwrap_or(path)
        ));
    }
    let last = path.rsplit('.').next().unwrap_or(path);
    if let Some(why) = not_modelled(last) {
        return Err(format!("`{path}`: {why}"));
    }
    // the right key in another section (training.micro_batch_size -> parallel.micro_batch_size)
    let hint = match paths.iter().find(|p| p.rsplit('.').next() == Some(last)) {
        Some(p) => format!("did you mean `{p}`? "),
        None => did_you_mean(path, paths.iter().map(String::as_str), "`"),
    };
    Err(format!(
        "`{path}` is not a scenario field; {hint}see docs/scenario.md or `trainsim schema` for every field"
    ))
}

/// The JSON Schema (draft 2020-12) of a scenario file, with each documented key's
/// description, unit, default and allowed values from docs/scenario.md.
pub fn schema() -> Value {
    let mut root = raw_schema();
    let docs = documented_keys();
    fn annotate(root: &mut Value, def: Option<&str>, prefix: &str, docs: &[(String, String)]) {
        // collect (property, child def name) first, then mutate
        let obj_ptr = match def {
            Some(d) => format!("/$defs/{d}"),
            None => String::new(),
        };
        let Some(props) = root
            .pointer(&format!("{obj_ptr}/properties"))
            .and_then(Value::as_object)
            .cloned()
        else {
            return;
        };
        for (k, v) in props {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let child = child_def(&v);
            if let Some(c) = child {
                annotate(root, Some(&c), &path, docs);
                if let Some((_, d)) = docs.iter().find(|(p, _)| *p == path) {
                    if let Some(p) = root.pointer_mut(&format!("{obj_ptr}/properties/{k}")) {
                        p["description"] = json!(d);
                    }
                }
                continue;
            }
            let Some(p) = root.pointer_mut(&format!("{obj_ptr}/properties/{k}")) else {
                continue;
            };
            if let Some((_, d)) = docs.iter().find(|(p, _)| *p == path) {
                p["description"] = json!(d);
            }
            if let Some(values) = documented_enum(&path) {
                // values are case-insensitive in the loader; the schema offers the spellings
                p["examples"] = json!(values);
            }
        }
    }
    fn child_def(v: &Value) -> Option<String> {
        let r = v.get("$ref").and_then(Value::as_str).or_else(|| {
            v.get("anyOf")?
                .as_array()?
                .iter()
                .find_map(|a| a.get("$ref").and_then(Value::as_str))
        })?;
        r.strip_prefix("#/$defs/").map(str::to_string)
    }
    annotate(&mut root, None, "", docs);
    if let Some(o) = root.as_object_mut() {
        let mut m = Map::new();
        m.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
        m.insert("title".into(), json!("trainsim scenario"));
        m.insert(
            "description".into(),
            json!(format!(
                "A trainsim {} scenario file (TOML): cluster, model, parallel plan, training. Every field: docs/scenario.md.",
                env!("CARGO_PKG_VERSION")
            )),
        );
        for (k, v) in std::mem::take(o) {
            if k != "$schema" && k != "title" && k != "description" {
                m.insert(k, v);
            }
        }
        *o = m;
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_near_misses_only() {
        let c = ["parallel.micro_batch_size", "parallel.tp", "parallel.pp"];
        assert_eq!(
            suggest("parallel.micro_batch_sizes", c),
            Some("parallel.micro_batch_size")
        );
        assert_eq!(suggest("parallel.tq", c), Some("parallel.tp"));
        assert_eq!(suggest("cluster.whatever", c), None);
        assert_eq!(suggest("LLAMA3_70B", ["llama3-70b", "llama3-8b"]), Some("llama3-70b"));
    }

    #[test]
    fn known_paths_cover_every_section_and_docs_describe_every_field() {
        let paths = known_paths();
        for p in [
            "name",
            "parallel.tp",
            "cluster.num_gpus",
            "cluster.gpu.preset",
            "cluster.network.nic_gbit_per_s",
            "model.hf_config",
            "training.seq_length",
            "target.loss",
            "moe.routing",
        ] {
            assert!(paths.iter().any(|x| x == p), "{p} missing from {paths:?}");
        }
        let docs = documented_keys();
        let undocumented: Vec<&String> = paths.iter().filter(|p| !docs.iter().any(|(d, _)| d == *p)).collect();
        assert!(
            undocumented.is_empty(),
            "fields the loader accepts but docs/scenario.md does not list: {undocumented:?}"
        );
        let unknown: Vec<&String> = docs
            .iter()
            .map(|(d, _)| d)
            .filter(|d| !paths.iter().any(|p| p == *d))
            .collect();
        assert!(
            unknown.is_empty(),
            "keys docs/scenario.md lists that the loader rejects: {unknown:?}"
        );
    }

    #[test]
    fn check_path_hints() {
        assert!(check_path("parallel.tp").is_ok());
        let e = check_path("parallel.micro_batch_sizes").unwrap_err();
        assert!(e.contains("did you mean `parallel.micro_batch_size`"), "{e}");
        let e = check_path("training.micro_batch_size").unwrap_err();
        assert!(e.contains("`parallel.micro_batch_size`"), "{e}");
        assert!(check_path("parallel.cp").is_ok());
        let e = check_path("parallel.context_parallel_size").unwrap_err();
        assert!(e.contains("`parallel.cp`"), "{e}");
        let e = check_path("parallel").unwrap_err();
        assert!(e.contains("is a section"), "{e}");
    }

    #[test]
    fn schema_has_descriptions_and_forbids_unknown_keys() {
        let s = schema();
        let text = s.to_string();
        assert!(text.contains("additionalProperties"), "deny_unknown_fields shows");
        let tp = s.pointer("/$defs/RawParallel/properties/tp/description");
        assert!(
            tp.and_then(Value::as_str)
                .is_some_and(|d| d.contains("Tensor-parallel")),
            "{tp:?}"
        );
        let rec = s.pointer("/$defs/RawParallel/properties/recompute/examples");
        assert_eq!(rec, Some(&json!(["none", "selective", "full"])));
    }
}
