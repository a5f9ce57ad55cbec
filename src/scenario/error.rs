//! Scenario errors: each names the file, the line and column when known, the field path,
//! the bad value and what is allowed.

use std::path::PathBuf;
use thiserror::Error;

/// Why a scenario cannot be used. All variants are fatal for that scenario.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// TOML syntax, unknown key or wrong type.
    #[error("{path}:{line}:{column}: {message}\n  {line:>4} | {snippet}")]
    Parse {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what is allowed.
        message: String,
        /// The offending line.
        snippet: String,
    },
    /// A value outside what is allowed.
    #[error("{path}{location}: field `{field}` = {value} is invalid: {allowed}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// ":line:column" when known.
        location: String,
        /// Dotted field path.
        field: String,
        /// The value as written.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A `--set path=value` override (command line or explorer form) names no field or does
    /// not fit it.
    #[error("--set {setting}: {message}")]
    Override {
        /// The override as given, `path=value`.
        setting: String,
        /// What is wrong.
        message: String,
    },
    /// The plan cannot run on this model and cluster.
    #[error("{path}{location}: impossible plan: {message}")]
    Plan {
        /// File.
        path: PathBuf,
        /// ":line:column" of the field the problem is most about, when known.
        location: String,
        /// Why.
        message: String,
    },
}

impl ScenarioError {
    /// The problem without file and position (for sweep rows).
    pub fn reason(&self) -> String {
        match self {
            ScenarioError::Io { source, .. } => source.to_string(),
            ScenarioError::Parse { message, .. } => message.clone(),
            ScenarioError::Invalid {
                field, value, allowed, ..
            } => format!("field `{field}` = {value} is invalid: {allowed}"),
            ScenarioError::Plan { message, .. } => format!("impossible plan: {message}"),
            ScenarioError::Override { setting, message } => format!("--set {setting}: {message}"),
        }
    }
}
