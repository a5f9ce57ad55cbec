//! The checker every scenario section is validated with: where a key sits in the file
//! (line and column), and the primitive checks (positive, fraction, choice among names)
//! whose errors name the file, the field, the value and what is allowed.

use super::{fields, ScenarioError};
use std::path::Path;

/// Checks values of one scenario text.
pub(super) struct Checker<'a> {
    pub(super) src: &'a str,
    pub(super) path: &'a Path,
}

impl Checker<'_> {
    /// ":line:column" of `key` inside `[section]`, when it can be found.
    pub(super) fn locate(&self, field: &str) -> String {
        // an entry of an array of tables: `cluster.groups[1].gpu.preset` is looked up from
        // the second `[[cluster.groups]]` header on
        if let Some((array, rest)) = field.split_once('[') {
            let Some((index, rest)) = rest.split_once("].") else {
                return String::new();
            };
            let header = format!("[[{array}]]");
            let Some(start) = index.parse::<usize>().ok().and_then(|i| {
                let mut headers = self.src.lines().enumerate().filter(|(_, l)| l.trim() == header);
                headers.nth(i).map(|(n, _)| n)
            }) else {
                return String::new();
            };
            let (section, key) = match rest.rfind('.') {
                Some(i) => (format!("{array}.{}", &rest[..i]), &rest[i + 1..]),
                None => (array.to_string(), rest),
            };
            let mut in_section = section == array;
            for (i, line) in self.src.lines().enumerate().skip(start + 1) {
                let t = line.trim();
                if t == header {
                    break;
                }
                if t.starts_with('[') {
                    in_section = t.trim_matches(|c| c == '[' || c == ']').trim() == section;
                    continue;
                }
                if in_section && t.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('=')) {
                    return format!(":{}:{}", i + 1, line.find(key).unwrap_or(0) + 1);
                }
            }
            return String::new();
        }
        let (section, key) = match field.rfind('.') {
            Some(i) => (&field[..i], &field[i + 1..]),
            None => ("", field),
        };
        let mut in_section = section.is_empty();
        for (i, line) in self.src.lines().enumerate() {
            let t = line.trim();
            if t.starts_with('[') {
                in_section = t.trim_matches(|c| c == '[' || c == ']').trim() == section;
                continue;
            }
            if in_section {
                if let Some(rest) = t.strip_prefix(key) {
                    if rest.trim_start().starts_with('=') {
                        let col = line.find(key).unwrap_or(0) + 1;
                        return format!(":{}:{}", i + 1, col);
                    }
                }
            }
        }
        String::new()
    }

    /// ":line:column" of the field a plan error is most about (the first `[parallel]` or
    /// other key its message names that the file sets), else of the `[parallel]` header.
    pub(super) fn locate_plan(&self, message: &str) -> String {
        let m = message.to_ascii_lowercase();
        let mentions: [(&[&str], &str); 12] = [
            (&["tensor parallelism tp=", "tp*pp*dp"], "parallel.tp"),
            (&["expert parallelism ep=", "ep*expert_tp"], "parallel.ep"),
            (&["expert_tp"], "parallel.expert_tp"),
            (&["virtual_stages", "virtual stages"], "parallel.virtual_stages"),
            (&["interleaved schedule", "schedule"], "parallel.schedule"),
            (
                &["pipeline_split_embedding_and_loss"],
                "parallel.pipeline_split_embedding_and_loss",
            ),
            (&["pp=", "pipeline"], "parallel.pp"),
            (&["micro_batch_size", "micro-batch"], "parallel.micro_batch_size"),
            (&["global_batch_size", "global batch"], "training.global_batch_size"),
            (&["dp="], "parallel.dp"),
            (&["num_gpus", "gpus"], "cluster.num_gpus"),
            (&["top_k"], "model.top_k"),
        ];
        for (needles, field) in mentions {
            if needles.iter().any(|n| m.contains(n)) {
                let loc = self.locate(field);
                if !loc.is_empty() {
                    return loc;
                }
            }
        }
        // any [parallel] key the file sets, then the section header
        for key in ["tp", "pp", "dp", "ep", "virtual_stages", "micro_batch_size"] {
            let loc = self.locate(&format!("parallel.{key}"));
            if !loc.is_empty() {
                return loc;
            }
        }
        self.src
            .lines()
            .position(|l| l.trim() == "[parallel]")
            .map(|i| format!(":{}:1", i + 1))
            .unwrap_or_default()
    }

    pub(super) fn invalid(&self, field: &str, value: impl ToString, allowed: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_path_buf(),
            location: self.locate(field),
            field: field.to_string(),
            value: clip(value.to_string()),
            allowed: allowed.into(),
        }
    }

    /// Refuses the first field of `table` outside its physical limit ([`super::limits`]).
    pub(super) fn within_limits(&self, table: &toml::Table, ends: super::limits::Ends) -> Result<(), ScenarioError> {
        if let Some((l, value)) = super::limits::first_violation(table, ends) {
            return Err(self.invalid(l.path, value, super::limits::allowed_text(l)));
        }
        match super::limits::first_group_violation(table, ends) {
            Some((field, l, value)) => Err(self.invalid(&field, value, super::limits::allowed_text(l))),
            None => Ok(()),
        }
    }

    pub(super) fn positive(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.invalid(field, v, "must be a positive number"))
        }
    }

    pub(super) fn non_negative(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(self.invalid(field, v, "must be zero or a positive number"))
        }
    }

    pub(super) fn fraction(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v > 0.0 && v <= 1.0 {
            Ok(v)
        } else {
            Err(self.invalid(field, v, "must be a fraction in (0, 1]"))
        }
    }

    pub(super) fn at_least_one_ratio(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v >= 1.0 {
            Ok(v)
        } else {
            Err(self.invalid(field, v, "must be a ratio of at least 1 (1 = non-blocking, 4 = 4:1)"))
        }
    }

    pub(super) fn at_least_one(&self, field: &str, v: u32) -> Result<u32, ScenarioError> {
        if v >= 1 {
            Ok(v)
        } else {
            Err(self.invalid(field, v, "must be at least 1"))
        }
    }

    pub(super) fn choice<T: Copy>(
        &self,
        field: &str,
        v: &str,
        names: &[&str],
        values: &[T],
    ) -> Result<T, ScenarioError> {
        names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(v))
            .map(|i| values[i])
            .ok_or_else(|| {
                if let Some(why) = fields::not_modelled(v) {
                    return self.invalid(
                        field,
                        format!("\"{v}\""),
                        format!("{why}; allowed values are {}", quote_list(names)),
                    );
                }
                self.invalid(
                    field,
                    format!("\"{v}\""),
                    format!(
                        "{}allowed values are {}",
                        fields::did_you_mean(v, names.iter().copied(), "\""),
                        quote_list(names)
                    ),
                )
            })
    }
}

/// Names in quotes, comma-separated: `"a", "b"`.
pub(super) fn quote_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

/// A value as echoed in a message: at most 80 characters (a pasted megabyte stays out of
/// the error line).
pub(super) fn clip(value: String) -> String {
    clip_to(value, 80)
}

/// `value` cut to `max_chars` characters, saying how long it was.
pub(super) fn clip_to(value: String, max_chars: usize) -> String {
    match value.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}... ({} bytes)", &value[..cut], value.len()),
        None => value,
    }
}
