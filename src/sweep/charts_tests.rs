//! Tests of the sweep charts' data: the series, references, cells and default axes each
//! chart draws, from small hand-written sweep CSVs.

use super::*;
use crate::sweep::columns::METRIC_COLUMNS;

/// A scratch folder.
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trainsim-sweep-charts-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch folder");
    d
}

/// Writes `dir/sweep.csv`: `axes` columns then every metric column; each row gives the
/// axis texts and (metric, text) pairs (others left empty).
/// One CSV row: axis texts, (metric, text) pairs.
type Row<'a> = (Vec<String>, Vec<(&'a str, String)>);

fn csv(dir: &Path, axes: &[&str], rows: &[Row]) -> PathBuf {
    let mut header = vec!["point".to_string()];
    header.extend(axes.iter().map(|a| a.to_string()));
    header.extend(METRIC_COLUMNS.iter().map(|c| c.to_string()));
    let mut text = header.join(",") + "\n";
    for (i, (ax, metrics)) in rows.iter().enumerate() {
        let mut cells = vec![i.to_string()];
        cells.extend(ax.iter().cloned());
        for c in METRIC_COLUMNS {
            cells.push(
                metrics
                    .iter()
                    .find(|(m, _)| m == c)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            );
        }
        text.push_str(&(cells.join(",") + "\n"));
    }
    let p = dir.join("sweep.csv");
    std::fs::write(&p, text).expect("write CSV");
    p
}

/// A feasible row's metrics: step time, GPUs, throughput (1M tokens per step) and the rest
/// derived from them.
fn ok(step_s: f64, gpus: f64, mem_gib: f64) -> Vec<(&'static str, String)> {
    let tps = 1e6 / step_s;
    vec![
        ("feasible", "true".into()),
        ("step_time_s", format!("{step_s}")),
        ("tokens_per_s", format!("{tps}")),
        ("tokens_per_s_per_gpu", format!("{}", tps / gpus)),
        ("mfu_pct", format!("{}", 40.0 * 64.0 / gpus * 10.0 / step_s)),
        ("memory_gib", format!("{mem_gib}")),
        ("num_gpus", format!("{gpus}")),
        ("gpu_hours_per_step", format!("{}", step_s * gpus / 3600.0)),
    ]
}

fn oom(step_s: f64, gpus: f64, mem_gib: f64) -> Vec<(&'static str, String)> {
    let mut m = ok(step_s, gpus, mem_gib);
    m[0].1 = "false".into();
    m.push(("reason", format!("out of memory: {mem_gib:.1} GiB of 80.0 GiB")));
    m
}

fn texts(v: &[&dyn std::fmt::Display]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// GPUs 64..512 x three zipped strategies; strategy "8/4" is 20% slower and its 64-GPU
/// point does not fit.
fn scaling_sweep(dir: &Path) -> SweepTable {
    let mut rows = Vec::new();
    for g in [64.0, 128.0, 256.0, 512.0] {
        for (tp, pp, slow) in [(8, 8, 1.0), (4, 16, 1.05), (8, 4, 1.2)] {
            // sub-linear: each doubling gains 1.8x
            let step = 100.0 * slow * (64.0f64 / g).powf(0.85);
            let m = if tp == 8 && pp == 4 && g == 64.0 {
                oom(step, g, 95.0)
            } else {
                ok(step, g, 60.0 - pp as f64)
            };
            rows.push((texts(&[&g, &tp, &pp]), m));
        }
    }
    let p = csv(dir, &["cluster.num_gpus", "parallel.tp", "parallel.pp"], &rows);
    SweepTable::from_csv(&p).expect("reads")
}

#[test]
fn scaling_chart_has_ideal_lines_and_log_axes() {
    let dir = scratch("scaling");
    let t = scaling_sweep(&dir);
    let d = scaling_data(&t, &ChartOptions::default()).expect("a GPU axis that doubles");
    assert_eq!(d.series.len(), 3, "one line per strategy");
    assert_eq!(d.series[0].label, "tp=8, pp=8");
    assert!(d.log_x && d.log_y, "GPUs and throughput both double");
    let ticks: Vec<&str> = d.x_ticks.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(ticks, ["64", "128", "256", "512"]);
    assert_eq!(d.legend_heading, "tp / pp", "short field names");
    assert_eq!(
        (count_label(4096.0), count_label(1.5)),
        ("4096".to_string(), "1.5".to_string())
    );
    assert!(d.title.contains("throughput vs GPUs") && d.x_label.contains("cluster.num_gpus"));
    assert!(d.y_label.contains("tokens/s") && d.y_label.contains("log scale"));
    for s in &d.series {
        let (x0, y0) = s.points[0];
        assert_eq!(s.reference.len(), s.points.len());
        for (&(x, y), &(rx, ry)) in s.points.iter().zip(&s.reference) {
            assert_eq!(x, rx);
            assert!(
                (ry - y0 * x / x0).abs() < 1e-6 * ry,
                "ideal is linear in GPUs from the first point"
            );
            assert!(y <= ry * (1.0 + 1e-9), "sub-linear scaling stays under its ideal");
        }
    }
    // the out-of-memory point is left out: that line starts at 128 GPUs
    assert_eq!(d.series[2].points[0].0, 128.0);
    assert_eq!(d.series[2].points.len(), 3);
    let y_ticks: Vec<f64> = d.y_ticks.iter().map(|t| t.value).collect();
    assert!(
        y_ticks.len() >= 3 && y_ticks.windows(2).all(|w| w[0] < w[1]),
        "{y_ticks:?}"
    );
    // a per-GPU metric: flat ideal, linear y
    let opts = ChartOptions {
        metric: Some("tokens_per_s_per_gpu".into()),
        ..Default::default()
    };
    let d = scaling_data(&t, &opts).expect("chart");
    assert!(!d.log_y && d.y_ticks.is_empty());
    for s in &d.series {
        assert!(s.reference.iter().all(|r| r.1 == s.points[0].1), "flat ideal");
    }
    // a metric ideal scaling does not fix: no reference
    let opts = ChartOptions {
        metric: Some("memory_gib".into()),
        ..Default::default()
    };
    let d = scaling_data(&t, &opts).expect("chart");
    assert!(d.series.iter().all(|s| s.reference.is_empty()));
    assert!(!d.subtitle.contains("ideal"));
    let written = draw_table(&t, &dir, &ChartOptions::default()).expect("draws");
    assert!(written.iter().any(|p| p.ends_with("scaling.png")));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn only_scaling_sweeps_get_a_scaling_chart() {
    let dir = scratch("not-scaling");
    // TP x PP at a fixed GPU count: both axes double, neither is GPUs or DP
    let mut rows = Vec::new();
    for tp in [1, 2, 4, 8] {
        for pp in [1, 2, 4] {
            rows.push((texts(&[&tp, &pp]), ok(10.0 + tp as f64 + pp as f64, 64.0, 50.0)));
        }
    }
    let t = SweepTable::from_csv(&csv(&dir, &["parallel.tp", "parallel.pp"], &rows)).expect("reads");
    assert_eq!(t.axes.len(), 2);
    assert!(scaling_data(&t, &ChartOptions::default()).is_none());
    let only = ChartOptions {
        kinds: vec![ChartKind::Scaling],
        ..Default::default()
    };
    assert!(only.check_table(&t).unwrap_err().contains("scaling sweep"));
    let written = draw_table(&t, &dir, &ChartOptions::default()).expect("draws");
    assert!(!written.iter().any(|p| p.ends_with("scaling.png")));
    // a DP axis that doubles is a scaling sweep; one that steps by 1 is not
    for (dps, scaling) in [(vec![2, 4, 8, 16], true), (vec![1, 2, 3, 4], false)] {
        let rows: Vec<_> = dps
            .iter()
            .map(|&dp| (texts(&[&dp]), ok(100.0 / dp as f64, 8.0 * dp as f64, 40.0)))
            .collect();
        let t = SweepTable::from_csv(&csv(&dir, &["parallel.dp"], &rows)).expect("reads");
        assert_eq!(scaling_data(&t, &ChartOptions::default()).is_some(), scaling, "{dps:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn heatmap_marks_the_best_cell_and_oom_gib() {
    let dir = scratch("heatmap");
    let mut rows = Vec::new();
    for tp in [1, 2, 4] {
        for pp in [1, 2, 4] {
            let extra = match (tp, pp) {
                (4, 4) => 3.0,
                (2, 4) => 1.0,
                _ => 0.0,
            };
            let step = 20.0 - tp as f64 - pp as f64 + extra;
            let m = match (tp, pp) {
                (1, _) => oom(step, 64.0, 200.0 / pp as f64),
                (2, 1) => vec![("feasible", "false".into()), ("reason", "impossible plan: x".into())],
                _ => ok(step, 64.0, 70.0),
            };
            rows.push((texts(&[&tp, &pp]), m));
        }
    }
    let t = SweepTable::from_csv(&csv(&dir, &["parallel.tp", "parallel.pp"], &rows)).expect("reads");
    let d = heatmap_data(&t, &ChartOptions::default()).expect("two axes");
    assert_eq!(d.rows, ["1", "2", "4"]);
    assert_eq!(d.columns, ["1", "2", "4"]);
    assert_eq!(d.y_label, "parallel.tp");
    assert_eq!(d.cells[0][0], Err("OOM\n200 GiB".to_string()));
    assert_eq!(d.cells[0][2], Err("OOM\n50 GiB".to_string()));
    assert_eq!(d.cells[1][0], Err("invalid".to_string()));
    // throughput per GPU: the fastest feasible plan, tp 4 pp 2 (step 14 s)
    assert_eq!(d.best, Some((2, 1)));
    let v = |r: usize, c: usize| d.cells[r][c].clone().expect("feasible");
    assert!((v(2, 1) - 1e6 / 14.0 / 64.0).abs() < 1e-6);
    assert!(d.title.contains("throughput per GPU") && d.metric_label == "tokens/s per GPU");
    assert_eq!(d.best_label, "best (highest)");
    // a lower-is-better metric marks the smallest
    let opts = ChartOptions {
        metric: Some("step_time_s".into()),
        ..Default::default()
    };
    let d = heatmap_data(&t, &opts).expect("chart");
    assert_eq!(d.best, Some((2, 1)));
    assert_eq!(d.cells[2][1], Ok(14.0));
    assert_eq!((d.best_label.as_str(), d.metric_label.as_str()), ("best (lowest)", "s"));
    draw_table(&t, &dir, &opts).expect("draws");
    assert!(dir.join("heatmap.png").is_file());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pareto_defaults_are_not_proportional() {
    let dir = scratch("pareto");
    // one GPU count: GPU-hours per step are the step time times 64/3600
    let rows: Vec<_> = [(1, 30.0, 20.0), (2, 25.0, 35.0), (4, 22.0, 50.0), (8, 24.0, 40.0)]
        .iter()
        .map(|&(tp, step, mem)| (texts(&[&tp]), ok(step, 64.0, mem)))
        .collect();
    let t = SweepTable::from_csv(&csv(&dir, &["parallel.tp"], &rows)).expect("reads");
    assert_eq!(default_pareto_x(&t, "step_time_s", false), "memory_gib");
    let d = pareto_table(&t, &ChartOptions::default()).expect("data");
    assert!(d.title.ends_with("step_time_s vs memory_gib"), "{}", d.title);
    assert_eq!(d.feasible.len(), 4);
    // each plan trades memory for time: tp=8 (24 s, 40 GiB) is beaten by neither tp=4
    // (faster, bigger) nor tp=2 (smaller, slower)
    let front: Vec<&str> = d.front.iter().map(|p| p.2.as_str()).collect();
    assert_eq!(front, ["tp=1", "tp=2", "tp=8", "tp=4"]);
    // a scaling sweep: GPU-hours and step time trade off, they are the default
    let t = scaling_sweep(&dir);
    assert_eq!(default_pareto_x(&t, "step_time_s", false), "gpu_hours_per_step");
    // --metric sets y when --y is not given
    let opts = ChartOptions {
        metric: Some("tokens_per_s".into()),
        ..Default::default()
    };
    assert!(pareto_table(&t, &opts).expect("data").title.contains("tokens_per_s vs"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn options_are_checked_against_a_csv() {
    let dir = scratch("check");
    let t = scaling_sweep(&dir);
    let with = |metric: &str| ChartOptions {
        metric: Some(metric.into()),
        ..Default::default()
    };
    assert!(with("mfu_pct").check_table(&t).is_ok());
    assert!(
        with("cluster.num_gpus").check_table(&t).is_ok(),
        "an axis is a metric too"
    );
    assert!(with("speed")
        .check_table(&t)
        .unwrap_err()
        .contains("--metric speed: not a numeric column"));
    assert!(with("cost_usd").check_table(&t).unwrap_err().contains("[target]"));
    let heat = ChartOptions {
        kinds: vec![ChartKind::Heatmap],
        ..Default::default()
    };
    assert!(heat.check_table(&t).is_ok(), "GPUs x strategy is two axes");
    let _ = std::fs::remove_dir_all(dir);
}
