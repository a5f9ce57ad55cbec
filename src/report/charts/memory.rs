//! placeholder
use crate::report::ReportError;
use crate::simulation::RunResult;
use std::path::Path;
/// Data.
pub struct Data;
/// Prepares.
pub fn data(_r: &RunResult) -> Data { Data }
/// Draws.
pub fn draw(_d: &Data, _p: &Path) -> Result<(), ReportError> { Ok(()) }
