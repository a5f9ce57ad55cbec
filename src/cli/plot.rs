//! `trainsim plot`: redraw the charts of a saved run (results.json) or sweep (sweep.csv)
//! without simulating again.

use crate::report;
use crate::sweep::charts::{ChartKind, ChartOptions};
use crate::sweep::table::SweepTable;
use std::path::{Path, PathBuf};

pub(super) const PLOT_HELP: &str = "Examples:
  trainsim plot out/gpt3/results.json --out /tmp/charts
      breakdown, timeline (from timeline.json beside it), memory, ... and report.md
  trainsim plot out/gpt3-175b-tp-pp/sweep.csv --metric mfu_pct
      the sweep's heatmap, scaling (scaling sweeps only) and Pareto charts, of MFU
  trainsim plot out/gpt3-175b-scaling/sweep.csv --chart scaling --metric tokens_per_s_per_gpu

A sweep CSV is read on its own: its axes are the columns between `point` and `feasible`
(columns whose values fix each other are one zipped axis). Exit status 2 when a column or
chart does not apply.";

/// Arguments of `trainsim plot`.
#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// A results.json written by `trainsim run`, or a sweep.csv written by `trainsim sweep`.
    pub input: PathBuf,
    /// Output folder [default: the folder of the input].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Sweep CSV only: the metric of the heatmap and the scaling chart (and the Pareto y
    /// unless --y is given), any numeric column [default: tokens_per_s_per_gpu in the
    /// heatmap, tokens_per_s in the scaling chart].
    #[arg(long, value_name = "COLUMN")]
    pub metric: Option<String>,
    /// Sweep CSV only: charts to draw, comma-separated: scaling, heatmap, pareto [default:
    /// all that apply].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub chart: Vec<ChartKind>,
    /// Sweep CSV only: x metric of the Pareto chart.
    #[arg(long)]
    pub x: Option<String>,
    /// Sweep CSV only: y metric of the Pareto chart.
    #[arg(long)]
    pub y: Option<String>,
}

/// Runs `trainsim plot`.
pub fn plot(a: PlotArgs) -> anyhow::Result<i32> {
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| a.input.parent().map(Path::to_path_buf).unwrap_or_default());
    let is_csv = a.input.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !is_csv {
        if a.metric.is_some() || !a.chart.is_empty() || a.x.is_some() || a.y.is_some() {
            eprintln!(
                "error: --metric, --chart, --x and --y apply to a sweep CSV, not to {}",
                a.input.display()
            );
            return Ok(2);
        }
        let r = report::read_results(&a.input)?;
        for p in report::charts::draw_all(&r, &dir)? {
            println!("wrote {}", p.display());
        }
        let md = dir.join("report.md");
        report::write_atomic(&md, report::markdown::markdown(&r).as_bytes())?;
        println!("wrote {}", md.display());
        return Ok(0);
    }
    let t = match SweepTable::from_csv(&a.input) {
        Ok(t) => t,
        Err(e @ report::ReportError::Chart { .. }) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
        Err(e) => return Err(e.into()),
    };
    let opts = ChartOptions {
        kinds: a.chart,
        x: a.x,
        y: a.y,
        metric: a.metric,
    };
    if let Err(m) = opts.check_table(&t) {
        eprintln!("error: {}: {m}", a.input.display());
        return Ok(2);
    }
    let written = crate::sweep::charts::draw_table(&t, &dir, &opts)?;
    if written.is_empty() {
        eprintln!("error: {}: no chart applies to this sweep", a.input.display());
        return Ok(2);
    }
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(0)
}
