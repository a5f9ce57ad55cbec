//! The structure-aware scenario mutator of the fuzz harness, shared by `examples/fuzz`
//! (the documented 100,000-case run) and `tests/it/robust.rs` (a small count on every
//! test run). A case is a shipped scenario with 1-3 mutations drawn from a seeded stream:
//! numbers set to edge values (0, -1, 2^31, 2^64, 1e30, subnormals, NaN, inf) or scaled
//! by powers of ten, wrong types, removed keys and sections, any documented field added
//! with an edge value, unknown keys, absurd strings, byte-level damage (truncation,
//! binary junk), and valid extremes: a field at either end of its physical limit
//! (`scenario::limits`), drawn twice as often as the other classes. Case `i` of seed `s` is always the same text.

#![allow(dead_code)]

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Edge values a number is set to.
const EDGE: &[f64] = &[
    0.0,
    -1.0,
    1.0,
    2.0,
    0.5,
    1e-9,
    5e-324,
    2147483648.0,
    4294967296.0,
    9.007199254740992e15,
    9.2e18,
    1.8446744073709552e19,
    1e30,
    -1e30,
    1e300,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
];

/// Mutation classes, for the per-class counts.
pub const CLASSES: &[&str] = &[
    "edge_number",
    "scale_number",
    "wrong_type",
    "remove_key",
    "remove_section",
    "add_field",
    "unknown_key",
    "absurd_string",
    "truncate",
    "binary_junk",
    "limit_edge",
    "limit_edge",
];

/// What a case's text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A scenario file.
    Scenario,
    /// A sweep file (its `base` an absolute path).
    Sweep,
}

/// One generated case.
pub struct Case {
    /// Scenario or sweep file.
    pub kind: Kind,
    /// Which shipped scenario it started from.
    pub base: usize,
    /// The mutation classes applied (indexes into [`CLASSES`]).
    pub classes: Vec<usize>,
    /// The scenario text.
    pub text: String,
}

/// Case `index` of stream `seed` over `bases` (scenario texts) and `sweeps` (sweep file
/// texts, one case in twenty when there are any).
pub fn case(bases: &[String], sweeps: &[String], known_paths: &[String], seed: u64, index: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (kind, base, source) = if !sweeps.is_empty() && rng.random_range(0..20) == 0 {
        let i = rng.random_range(0..sweeps.len());
        (Kind::Sweep, i, &sweeps[i])
    } else {
        let i = rng.random_range(0..bases.len());
        (Kind::Scenario, i, &bases[i])
    };
    let mut table: toml::Table = toml::from_str(source).expect("shipped files parse");
    let n = rng.random_range(1..=3);
    let mut classes = Vec::new();
    let mut text = None;
    for _ in 0..n {
        let class = rng.random_range(0..CLASSES.len());
        classes.push(class);
        match CLASSES[class] {
            "truncate" | "binary_junk" => {
                let mut t = toml::to_string(&table).unwrap_or_default();
                if CLASSES[class] == "truncate" {
                    let cut = rng.random_range(0..=t.len());
                    t = String::from_utf8_lossy(&t.as_bytes()[..cut]).into_owned();
                } else {
                    let at = rng.random_range(0..=t.len());
                    let junk: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random::<u8>()).collect();
                    let mut bytes = t.into_bytes();
                    bytes.splice(at..at, junk);
                    t = String::from_utf8_lossy(&bytes).into_owned();
                }
                text = Some(t);
                break;
            }
            other => mutate_table(&mut table, other, known_paths, &mut rng),
        }
    }
    let text = text.unwrap_or_else(|| toml::to_string(&table).unwrap_or_default());
    Case {
        kind,
        base,
        classes,
        text,
    }
}

fn leaves(t: &toml::Table, prefix: &str, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in t {
        let p = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(sub) => leaves(sub, &p, out),
            other => out.push((p, other.clone())),
        }
    }
}

fn sections(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in t {
        if let toml::Value::Table(sub) = v {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(p.clone());
            sections(sub, &p, out);
        }
    }
}

fn set(t: &mut toml::Table, path: &str, v: toml::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("non-empty path");
    let mut cur = t;
    for p in parts {
        let e = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !e.is_table() {
            *e = toml::Value::Table(toml::Table::new());
        }
        cur = e.as_table_mut().expect("table");
    }
    cur.insert(last.to_string(), v);
}

fn remove(t: &mut toml::Table, path: &str) {
    match path.split_once('.') {
        None => {
            t.remove(path);
        }
        Some((head, rest)) => {
            if let Some(sub) = t.get_mut(head).and_then(|v| v.as_table_mut()) {
                remove(sub, rest);
            }
        }
    }
}

fn edge_value(rng: &mut impl Rng, integer_like: bool) -> toml::Value {
    let x = EDGE[rng.random_range(0..EDGE.len())];
    if integer_like && x.is_finite() && x == x.trunc() && x.abs() < 9.2e18 {
        toml::Value::Integer(x as i64)
    } else {
        toml::Value::Float(x)
    }
}

fn mutate_table(t: &mut toml::Table, class: &str, known: &[String], rng: &mut impl Rng) {
    let mut ls = Vec::new();
    leaves(t, "", &mut ls);
    if ls.is_empty() {
        return;
    }
    let (path, value) = ls[rng.random_range(0..ls.len())].clone();
    match class {
        "edge_number" => {
            let numbers: Vec<&(String, toml::Value)> =
                ls.iter().filter(|(_, v)| v.is_integer() || v.is_float()).collect();
            if let Some((p, v)) = numbers.get(rng.random_range(0..numbers.len().max(1))) {
                let nv = edge_value(rng, v.is_integer());
                set(t, p, nv);
            }
        }
        "scale_number" => {
            let numbers: Vec<&(String, toml::Value)> =
                ls.iter().filter(|(_, v)| v.is_integer() || v.is_float()).collect();
            if let Some((p, v)) = numbers.get(rng.random_range(0..numbers.len().max(1))) {
                let k = rng.random_range(-12..=12);
                let x = v.as_float().or(v.as_integer().map(|i| i as f64)).unwrap_or(1.0) * 10f64.powi(k);
                let nv = if v.is_integer() && x.abs() < 9.2e18 {
                    toml::Value::Integer(x.round() as i64)
                } else {
                    toml::Value::Float(x)
                };
                set(t, p, nv);
            }
        }
        "wrong_type" => {
            let nv = match rng.random_range(0..5) {
                0 => toml::Value::String("12".into()),
                1 => toml::Value::Boolean(true),
                2 => toml::Value::Array(vec![value.clone(), value]),
                3 => toml::Value::Table(toml::Table::new()),
                _ => toml::Value::Float(1.5),
            };
            set(t, &path, nv);
        }
        "remove_key" => remove(t, &path),
        "remove_section" => {
            let mut ss = Vec::new();
            sections(t, "", &mut ss);
            if !ss.is_empty() {
                let s = ss[rng.random_range(0..ss.len())].clone();
                remove(t, &s);
            }
        }
        "add_field" => {
            let p = &known[rng.random_range(0..known.len())];
            let nv = match rng.random_range(0..4) {
                0 => toml::Value::String(
                    ["auto", "none", "fp8", "zipf", "interleaved", "full", "nvme", ""][rng.random_range(0..8)].into(),
                ),
                1 => toml::Value::Boolean(rng.random()),
                _ => {
                    let integer_like = rng.random();
                    edge_value(rng, integer_like)
                }
            };
            set(t, p, nv);
        }
        "limit_edge" => {
            // valid but extreme: a field at either end of its physical envelope
            let limits = trainsim::scenario::limits::LIMITS;
            let l = &limits[rng.random_range(0..limits.len())];
            let x = if rng.random() { l.min } else { l.max };
            let nv = if x == x.trunc() && x.abs() < 9.2e18 && !l.why.contains("fraction") {
                toml::Value::Integer(x as i64)
            } else {
                toml::Value::Float(x)
            };
            set(t, l.path, nv);
        }
        "unknown_key" => {
            let mut p = path.clone();
            p.push_str("_x");
            set(t, &p, toml::Value::Integer(1));
        }
        "absurd_string" => {
            let s = match rng.random_range(0..4) {
                0 => String::new(),
                1 => "x".repeat(100_000),
                2 => "../../../../etc/passwd".into(),
                _ => "\u{202e}ünïcödé\u{0}".into(),
            };
            set(t, &path, toml::Value::String(s));
        }
        _ => {}
    }
}
