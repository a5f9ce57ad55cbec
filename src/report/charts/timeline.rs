//! Gantt chart of the last simulated iteration: one row per (stage, stream) that has work,
//! ordered by stage then stream (compute, tp, pp, dp, ...), spans coloured by category on a
//! light grey idle background (time the stream does nothing; on a compute row, the bubble).
//! The subtitle's second line says which stages are drawn and which streams the rows show.
//!
//! Rows are reduced before drawing so that even a timeline of 100k spans draws quickly:
//! same-category spans that touch (gap at most 1e-9 s) are merged, and a row still holding
//! more than [`MAX_SPANS_PER_ROW`] spans is resampled on [`BINS`] equal time bins, each
//! drawn in the category that covers most of it (a bin is about one pixel wide).

use super::{category_colour, Chart, RowChart, Swatch};
use crate::report::ReportError;
use crate::simulation::run::TimelineSpan;
use crate::simulation::RunResult;
use crate::workload::Stream;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use std::path::Path;

/// Most stages shown; more are subsampled evenly (first and last kept).
pub const MAX_STAGES: usize = 16;
/// Most spans a row keeps exactly; a denser row is resampled on [`BINS`] bins.
pub const MAX_SPANS_PER_ROW: usize = 1000;
/// Time bins of a resampled row.
pub const BINS: usize = 1000;
/// Same-category spans closer than this are merged, s.
pub const TOUCH_S: f64 = 1e-9;
/// Background of every row over the iteration: the stream is idle where no span covers it.
pub const IDLE: RGBColor = RGBColor(228, 228, 228);

/// Categories in legend order.
const CATEGORIES: [&str; 10] = [
    "forward",
    "backward",
    "backward_weight",
    "recompute",
    "optimizer",
    "tp_comm",
    "ep_comm",
    "dp_comm",
    "pp_comm",
    "sync",
];

/// One drawn span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Category: forward, backward, recompute, optimizer, tp_comm, dp_comm, pp_comm, sync.
    pub category: String,
    /// Start, in [`Data::unit`] since the iteration start.
    pub start: f64,
    /// End, in [`Data::unit`] since the iteration start.
    pub end: f64,
}

/// One row: a stream of a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Label, e.g. "stage 0 compute".
    pub label: String,
    /// Pipeline stage.
    pub stage: u32,
    /// Stream name: "compute", "tp", "pp", "dp" or "dp gather".
    pub stream: String,
    /// Spans in time order, non-overlapping within a category.
    pub spans: Vec<Span>,
    /// Spans of the row in the run's timeline, before merging.
    pub source_spans: usize,
    /// Whether the row was resampled on time bins (it had too many spans).
    pub resampled: bool,
}

/// The timeline chart's data, already in its display unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    /// Scenario name.
    pub scenario: String,
    /// Chart title (holds the scenario name, and says when stages were subsampled).
    pub title: String,
    /// Lines under the title: model, cluster and plan; then the stages drawn and the
    /// streams of the rows.
    pub subtitle: String,
    /// Time unit of every value: "s" or "ms".
    pub unit: String,
    /// x-axis description, with the unit.
    pub x_label: String,
    /// Length of the iteration shown (its start to the end of its last optimizer step), in
    /// `unit`.
    pub iteration: f64,
    /// End of the time axis, in `unit`: the iteration, or the end of its last span if later
    /// (DP parameter all-gathers issued after the optimizer step may finish after it).
    pub extent: f64,
    /// Stages in the timeline.
    pub stages_total: usize,
    /// Stages shown, ascending.
    pub stages_shown: Vec<u32>,
    /// Rows, top to bottom.
    pub rows: Vec<Row>,
    /// Categories present in the shown rows, in legend order.
    pub legend: Vec<String>,
}

fn stream_name(s: Stream) -> &'static str {
    match s {
        Stream::Compute => "compute",
        Stream::Tp => "tp",
        Stream::Pp => "pp",
        Stream::Dp => "dp",
        Stream::DpGather => "dp gather",
        Stream::Compute2 => "compute 2",
        Stream::Ep => "ep",
        Stream::Ep2 => "ep 2",
        Stream::Cp => "cp",
        Stream::Offload => "offload",
    }
}

/// Legend text of a timeline category.
pub fn category_label(c: &str) -> &str {
    match c {
        "tp_comm" => "TP comm",
        "ep_comm" => "EP all-to-all",
        "dp_comm" => "DP comm",
        "pp_comm" => "PP comm",
        "backward_weight" => "weight gradient (W)",
        other => other,
    }
}

/// `n` indices from `0..len` spread evenly, first and last included.
fn spread(len: usize, n: usize) -> Vec<usize> {
    if len <= n {
        return (0..len).collect();
    }
    if n <= 1 {
        return vec![0];
    }
    (0..n)
        .map(|i| ((i * (len - 1)) as f64 / (n - 1) as f64).round() as usize)
        .collect()
}

/// Merges adjacent same-category spans that touch (gap at most `touch`); `spans` sorted
/// by start.
fn merge_touching(spans: Vec<Span>, touch: f64) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(l) if l.category == s.category && s.start - l.end <= touch => l.end = l.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// Resamples spans on `bins` equal bins of `[0, extent]`: each covered bin takes the
/// category covering most of it; runs of equal bins become one span.
fn resample(spans: &[Span], extent: f64, bins: usize) -> Vec<Span> {
    let mut cats: Vec<&str> = Vec::new();
    for s in spans {
        if !cats.contains(&s.category.as_str()) {
            cats.push(&s.category);
        }
    }
    let nc = cats.len().max(1);
    let w = extent / bins as f64;
    let mut cover = vec![0.0f64; bins * nc];
    for s in spans {
        let c = cats.iter().position(|x| *x == s.category).unwrap_or(0);
        let b0 = ((s.start / w).floor().max(0.0) as usize).min(bins - 1);
        let b1 = ((s.end / w).ceil().max(0.0) as usize).clamp(b0 + 1, bins);
        for b in b0..b1 {
            let lo = b as f64 * w;
            let overlap = s.end.min(lo + w) - s.start.max(lo);
            // a zero-length span still marks its bin
            cover[b * nc + c] += overlap.max(f64::MIN_POSITIVE);
        }
    }
    let mut out: Vec<Span> = Vec::new();
    let mut prev: Option<usize> = None;
    for b in 0..bins {
        let row = &cover[b * nc..(b + 1) * nc];
        let best = (0..nc)
            .filter(|&c| row[c] > 0.0)
            .max_by(|&x, &y| row[x].total_cmp(&row[y]));
        let (lo, hi) = (b as f64 * w, if b + 1 == bins { extent } else { (b + 1) as f64 * w });
        match (best, prev) {
            (Some(c), Some(p)) if c == p => {
                if let Some(l) = out.last_mut() {
                    l.end = hi;
                }
            }
            (Some(c), _) => out.push(Span {
                category: cats[c].to_string(),
                start: lo,
                end: hi,
            }),
            (None, _) => {}
        }
        prev = best;
    }
    out
}

/// Prepares the chart's data from a run.
pub fn data(r: &RunResult) -> Data {
    let iteration_s = r.step_times_s.last().copied().unwrap_or(r.step_time_s);
    let (unit, k) = super::time_unit(iteration_s);
    let mut stages: Vec<u32> = r.timeline.iter().map(|s| s.stage).collect();
    stages.sort_unstable();
    stages.dedup();
    let stages_total = stages.len();
    let shown: Vec<u32> = spread(stages.len(), MAX_STAGES)
        .into_iter()
        .map(|i| stages[i])
        .collect();

    // group spans by (stage, stream)
    let streams = Stream::ALL;
    let mut groups: Vec<Vec<&TimelineSpan>> = vec![Vec::new(); shown.len() * streams.len()];
    for s in &r.timeline {
        if let Ok(i) = shown.binary_search(&s.stage) {
            groups[i * streams.len() + s.stream.index()].push(s);
        }
    }
    let mut extent = iteration_s * k;
    for s in &r.timeline {
        extent = extent.max(s.end_s * k);
    }
    let mut rows = Vec::new();
    for (g, spans) in groups.into_iter().enumerate() {
        if spans.is_empty() {
            continue;
        }
        let stage = shown[g / streams.len()];
        let stream = stream_name(streams[g % streams.len()]);
        let source_spans = spans.len();
        let mut v: Vec<Span> = spans
            .iter()
            .map(|s| Span {
                category: s.category.clone(),
                start: s.start_s * k,
                end: s.end_s * k,
            })
            .collect();
        v.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.end.total_cmp(&b.end)));
        let mut v = merge_touching(v, TOUCH_S * k);
        let resampled = v.len() > MAX_SPANS_PER_ROW;
        if resampled {
            v = resample(&v, extent, BINS);
        }
        rows.push(Row {
            label: format!("stage {stage} {stream}"),
            stage,
            stream: stream.into(),
            spans: v,
            source_spans,
            resampled,
        });
    }
    // known categories in their order, then any other in order of appearance
    let mut present: Vec<&str> = Vec::new();
    for s in rows.iter().flat_map(|r| &r.spans) {
        if !present.contains(&s.category.as_str()) {
            present.push(&s.category);
        }
    }
    let mut legend: Vec<String> = CATEGORIES
        .iter()
        .filter(|c| present.contains(c))
        .map(|c| c.to_string())
        .collect();
    legend.extend(
        present
            .iter()
            .filter(|c| !CATEGORIES.contains(c))
            .map(|c| c.to_string()),
    );
    let mut title = format!("{}: timeline of the last iteration", r.name);
    if shown.len() < stages_total {
        title.push_str(&format!(" ({} of {} stages shown)", shown.len(), stages_total));
    }
    let sim = &r.simulation;
    if sim.replicas_simulated > 1 {
        // every-replica mode: the replica drawn is the busiest (the others wait for it)
        title.push_str(&format!(
            ", replica {} of {} (the busiest)",
            sim.timeline_replica, sim.replicas_simulated
        ));
    }
    let stages_line = stages_line(&shown, stages_total, &rows);
    Data {
        scenario: r.name.clone(),
        title,
        subtitle: format!(
            "{} on {} x {}, {}; iteration {} {unit}\n{stages_line}",
            r.model,
            r.num_gpus,
            r.gpu,
            r.plan,
            super::short(iteration_s * k)
        ),
        unit: unit.into(),
        x_label: format!("Time since iteration start ({unit})"),
        iteration: iteration_s * k,
        extent,
        stages_total,
        stages_shown: shown,
        rows,
        legend,
    }
}

/// "pipeline stages 0-3 (all 4); rows: compute, tp, dp streams" or, subsampled, "16 of 40
/// pipeline stages: 0, 3, ..., 39; ...".
fn stages_line(shown: &[u32], total: usize, rows: &[Row]) -> String {
    let consecutive = shown.windows(2).all(|w| w[1] == w[0] + 1);
    let stages = match (shown.first(), shown.last()) {
        (Some(a), Some(b)) if shown.len() == total && consecutive && a != b => {
            format!("pipeline stages {a}-{b} (all {total})")
        }
        (Some(a), _) if shown.len() == 1 && total == 1 => format!("pipeline stage {a} (the only one)"),
        _ => format!(
            "{} of {total} pipeline stages: {}",
            shown.len(),
            shown.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut streams: Vec<&str> = Vec::new();
    for r in rows {
        if !streams.contains(&r.stream.as_str()) {
            streams.push(&r.stream);
        }
    }
    format!(
        "{stages}; rows: the {} streams of each (light grey: idle)",
        streams.join(", ")
    )
}

/// Draws the chart to `path` (`.png` or `.svg`).
pub fn draw(d: &Data, path: &Path) -> Result<(), ReportError> {
    super::draw_chart(d, path)
}

/// Legend column width, pixels.
const LEGEND_PX: u32 = 190;

impl Data {
    fn row_px(&self) -> u32 {
        if self.rows.len() <= 12 {
            40
        } else {
            26
        }
    }
}

impl Chart for Data {
    fn size(&self) -> (u32, u32) {
        let extra = super::header_px(&self.subtitle) - super::header_px("");
        let h = 200 + extra + self.rows.len().max(1) as u32 * self.row_px();
        (super::WIDTH, h.max(480))
    }

    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let body = super::header(root, &self.title, &self.subtitle)?;
        let (plot, side) = body.split_horizontally(super::WIDTH - LEGEND_PX);
        let labels: Vec<String> = self.rows.iter().map(|r| r.label.clone()).collect();
        let longest = labels
            .iter()
            .map(|l| super::text_px(l, super::TICK_PX))
            .max()
            .unwrap_or(0);
        let x_max = self.extent.max(self.iteration);
        let rc = RowChart {
            x_max,
            rows: &labels,
            label_px: longest + 44,
            x_desc: &self.x_label,
            y_desc: "Stage and stream",
        };
        let mut chart = rc.build(root, &plot)?;
        let n = self.rows.len();
        // shade every other stage so that its streams read as a group
        let band = BLACK.mix(0.05).filled();
        let mut shade = Vec::new();
        let mut stage_index = 0usize;
        for (i, r) in self.rows.iter().enumerate() {
            if i > 0 && r.stage != self.rows[i - 1].stage {
                stage_index += 1;
            }
            if stage_index % 2 == 1 {
                let y = super::row_centre(i, n);
                shade.push(Rectangle::new([(0.0, y - 0.5), (x_max, y + 0.5)], band));
            }
        }
        chart.draw_series(shade)?;
        let half = 0.38;
        // idle background of every row over the iteration, spans drawn over it
        chart.draw_series((0..n).map(|i| {
            let y = super::row_centre(i, n);
            Rectangle::new([(0.0, y - half), (self.iteration, y + half)], IDLE.filled())
        }))?;
        for (i, r) in self.rows.iter().enumerate() {
            let y = super::row_centre(i, n);
            chart.draw_series(r.spans.iter().map(|s| {
                Rectangle::new(
                    [(s.start, y - half), (s.end, y + half)],
                    category_colour(&s.category).filled(),
                )
            }))?;
        }
        // iteration end, when spans run past it
        if self.extent > self.iteration * (1.0 + 1e-9) {
            chart.draw_series(std::iter::once(DashedPathElement::new(
                vec![(self.iteration, 0.0), (self.iteration, n as f64)],
                8,
                5,
                BLACK.stroke_width(2),
            )))?;
        }
        let mut entries: Vec<(String, Swatch)> = self
            .legend
            .iter()
            .map(|c| (category_label(c).to_string(), Swatch::Fill(category_colour(c))))
            .collect();
        if !self.rows.is_empty() {
            entries.push(("idle".into(), Swatch::Fill(IDLE)));
        }
        if self.extent > self.iteration * (1.0 + 1e-9) {
            entries.push(("iteration end".into(), Swatch::Line(BLACK)));
        }
        super::legend(&side.margin(14, 0, 0, 0), "Category", &entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_files, scratch, tiny_run};
    use super::*;

    fn stream_rank(s: &str) -> usize {
        ["compute", "tp", "pp", "dp", "dp gather"]
            .iter()
            .position(|x| *x == s)
            .expect("known stream")
    }

    #[test]
    fn rows_are_ordered_and_spans_lie_in_the_iteration() {
        let r = tiny_run();
        let d = data(r);
        assert!(d.title.contains(&r.name) && d.scenario == r.name);
        assert_eq!(d.stages_total, 4);
        assert_eq!(d.stages_shown, vec![0, 1, 2, 3]);
        assert!(!d.title.contains("shown"));
        assert!(!d.rows.is_empty());
        // every stage has a compute row; rows ordered by stage then stream
        for s in 0..4 {
            assert!(d.rows.iter().any(|row| row.stage == s && row.stream == "compute"));
        }
        for w in d.rows.windows(2) {
            assert!(
                (w[0].stage, stream_rank(&w[0].stream)) < (w[1].stage, stream_rank(&w[1].stream)),
                "{} before {}",
                w[0].label,
                w[1].label
            );
        }
        let (_, k) = crate::report::charts::time_unit(*r.step_times_s.last().expect("a measured step"));
        let step = r.step_times_s.last().copied().expect("a step") * k;
        assert!((d.iteration - step).abs() <= 1e-12 * step);
        let tol = 1e-9 * step;
        let last_end = r.timeline.iter().map(|s| s.end_s).fold(0.0, f64::max) * k;
        assert!((d.extent - last_end.max(step)).abs() <= tol);
        let mut kept = 0;
        for row in &d.rows {
            assert_eq!(row.label, format!("stage {} {}", row.stage, row.stream));
            assert!(!row.spans.is_empty() && row.spans.len() <= MAX_SPANS_PER_ROW);
            for s in &row.spans {
                assert!(
                    s.start >= -tol && s.end <= d.extent + tol && s.start <= s.end,
                    "{} span {s:?} outside [0, {}]",
                    row.label,
                    d.extent
                );
                // only work issued after the optimizer step (DP parameter all-gathers) may end
                // after the iteration
                if row.stream != "dp" {
                    assert!(
                        s.end <= step + tol,
                        "{} span {s:?} after the iteration end {step}",
                        row.label
                    );
                }
                assert!(CATEGORIES.contains(&s.category.as_str()));
            }
            for w in row.spans.windows(2) {
                assert!(w[0].start <= w[1].start);
            }
            kept += row.source_spans;
        }
        assert_eq!(kept, r.timeline.len(), "every span belongs to a shown row");
        // compute time in the timeline matches the input: merging keeps coverage
        let busy = |stage: u32| -> f64 {
            r.timeline
                .iter()
                .filter(|s| s.stage == stage && s.stream == Stream::Compute && s.category == "forward")
                .map(|s| s.end_s - s.start_s)
                .sum::<f64>()
                * k
        };
        for row in d.rows.iter().filter(|row| row.stream == "compute" && !row.resampled) {
            let drawn: f64 = row
                .spans
                .iter()
                .filter(|s| s.category == "forward")
                .map(|s| s.end - s.start)
                .sum();
            let want = busy(row.stage);
            assert!(
                (drawn - want).abs() <= 1e-6 * want,
                "{}: forward time {drawn} vs {want}",
                row.label
            );
        }
        assert!(d.legend.iter().any(|c| c == "forward") && d.legend.iter().any(|c| c == "backward"));
    }

    #[test]
    fn merges_touching_spans_of_a_category_only() {
        let sp = |c: &str, a: f64, b: f64| Span {
            category: c.into(),
            start: a,
            end: b,
        };
        let v = vec![
            sp("forward", 0.0, 1.0),
            sp("forward", 1.0 + 1e-12, 2.0),
            sp("tp_comm", 2.0, 3.0),
            sp("forward", 3.0, 4.0),
            sp("forward", 4.5, 5.0),
        ];
        let m = merge_touching(v, 1e-9);
        assert_eq!(
            m,
            vec![
                sp("forward", 0.0, 2.0),
                sp("tp_comm", 2.0, 3.0),
                sp("forward", 3.0, 4.0),
                sp("forward", 4.5, 5.0)
            ]
        );
    }

    #[test]
    fn many_stages_are_subsampled_and_dense_rows_resampled() {
        let base = tiny_run();
        let mut r = base.clone();
        // 40 stages x 2,500 alternating spans on the compute stream: 100k spans
        r.timeline.clear();
        let n = 2500;
        for stage in 0..40u32 {
            for i in 0..n {
                let (a, b) = (i as f64 / n as f64, (i as f64 + 0.9) / n as f64);
                r.timeline.push(TimelineSpan {
                    stage,
                    stream: Stream::Compute,
                    category: if i % 2 == 0 { "forward" } else { "tp_comm" }.into(),
                    name: "op".into(),
                    microbatch: Some(i),
                    start_s: a * base.step_time_s,
                    end_s: b * base.step_time_s,
                });
            }
        }
        r.step_times_s = vec![base.step_time_s];
        let t = std::time::Instant::now();
        let d = data(&r);
        assert_eq!(d.stages_total, 40);
        assert_eq!(d.stages_shown.len(), MAX_STAGES);
        assert_eq!(d.stages_shown.first(), Some(&0));
        assert_eq!(d.stages_shown.last(), Some(&39));
        assert!(d.stages_shown.windows(2).all(|w| w[0] < w[1]));
        assert!(d.title.contains("16 of 40 stages shown"));
        let second = d.subtitle.lines().nth(1).expect("stages line");
        assert!(second.starts_with("16 of 40 pipeline stages: 0, "), "{second}");
        assert!(second.contains(", 39;"), "{second}");
        assert_eq!(d.rows.len(), MAX_STAGES);
        for row in &d.rows {
            assert!(row.resampled && row.source_spans == n as usize);
            assert!(row.spans.len() <= BINS, "{} spans", row.spans.len());
            assert!(row
                .spans
                .iter()
                .all(|s| s.start >= 0.0 && s.end <= d.iteration * (1.0 + 1e-9)));
            assert_eq!(d.extent, d.iteration);
        }
        let dir = scratch("timeline-big");
        draw(&d, &dir.join("timeline.png")).expect("PNG draws");
        draw(&d, &dir.join("timeline.svg")).expect("SVG draws");
        check_files(&dir, "timeline", &d.title);
        // generous: debug builds are slow; release takes a small fraction of this
        assert!(t.elapsed().as_secs_f64() < 20.0, "took {:?}", t.elapsed());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn draws_png_and_svg() {
        let d = data(tiny_run());
        let dir = scratch("timeline");
        draw(&d, &dir.join("timeline.png")).expect("PNG draws");
        draw(&d, &dir.join("timeline.svg")).expect("SVG draws");
        check_files(&dir, "timeline", &d.title);
        let svg = std::fs::read_to_string(dir.join("timeline.svg")).expect("SVG");
        assert!(svg.contains(&d.x_label) && svg.contains("stage 0 compute"));
        // the legend has the idle colour and the TP stream's category; the subtitle says
        // which stages are drawn
        for text in [
            "\nidle\n",
            "\nTP comm\n",
            "pipeline stages 0-3 (all 4)",
            "\nstage 0 tp\n",
        ] {
            assert!(svg.contains(text), "{text:?} not in the SVG");
        }
        assert!(
            svg.contains("rgb(228,228,228)") || svg.contains("#E4E4E4"),
            "idle fill drawn"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
