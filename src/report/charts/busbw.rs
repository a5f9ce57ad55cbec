//! Bus bandwidth of one collective against message size (`trainsim collective`), as
//! nccl-tests reports it: x on a log2 scale labelled with binary prefixes at every power
//! of two (1K, 2K, ... 8G, as far apart as the labels allow), y linear in GB/s from 0.

use super::lines::{binary_size, power_of_two_ticks, LineData, Series};
use crate::report::ReportError;
use std::path::Path;

/// Chart data for the collective `op` (e.g. "all_reduce"): `subtitle` describes the
/// cluster, each series is (label, points (message bytes, busbw GB/s)).
pub fn data(op: &str, subtitle: String, series: Vec<(String, Vec<(f64, f64)>)>) -> LineData {
    let sizes = || series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let lo = sizes().fold(f64::INFINITY, f64::min);
    let hi = sizes().fold(f64::NEG_INFINITY, f64::max);
    LineData {
        title: format!("{op} bus bandwidth vs message size"),
        subtitle,
        x_label: "Message size (bytes; K, M, G = 2^10, 2^20, 2^30; log scale)".into(),
        y_label: "Bus bandwidth (GB/s)".into(),
        log_x: true,
        log_y: false,
        x_ticks: power_of_two_ticks(lo, hi, binary_size),
        y_ticks: Vec::new(),
        series: series
            .into_iter()
            .map(|(label, points)| Series {
                label,
                points,
                reference: Vec::new(),
            })
            .collect(),
        reference_label: String::new(),
        legend_heading: "Collective".into(),
    }
}

/// Draws the chart to `path` (`.png` or `.svg`).
pub fn draw(d: &LineData, path: &Path) -> Result<(), ReportError> {
    super::lines::draw(d, path)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_files, scratch};
    use super::*;

    #[test]
    fn x_ticks_are_binary_sizes_1k_to_8g() {
        let pts: Vec<(f64, f64)> = (10..=33)
            .map(|k| (2f64.powi(k), 360.0 * (1.0 - (-(2f64.powi(k)) / 3e7).exp())))
            .collect();
        let d = data(
            "all_reduce",
            "over 16 x H100".into(),
            vec![("all_reduce, 16 GPUs".into(), pts.clone())],
        );
        let labels: Vec<&str> = d.x_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels.len(), 24);
        assert_eq!(&labels[..4], ["1K", "2K", "4K", "8K"]);
        assert_eq!(&labels[9..12], ["512K", "1M", "2M"]);
        assert_eq!(labels.last(), Some(&"8G"));
        for (t, p) in d.x_ticks.iter().zip(&pts) {
            assert_eq!(t.value, p.0, "a tick at every measured size");
        }
        assert!(d.log_x && !d.log_y);
        assert_eq!(d.series[0].points, pts, "the series is the table's busbw");
        assert!(d.y_label.contains("GB/s") && d.x_label.contains("bytes"));
        let dir = scratch("busbw");
        draw(&d, &dir.join("busbw.png")).expect("PNG draws");
        draw(&d, &dir.join("busbw.svg")).expect("SVG draws");
        check_files(&dir, "busbw", &d.title);
        let svg = std::fs::read_to_string(dir.join("busbw.svg")).expect("SVG");
        // plotters writes each text element's string on a line of its own
        for text in ["\n1K\n", "\n8G\n", "\n1M\n"] {
            assert!(svg.contains(text), "{text} not drawn");
        }
        assert!(!svg.contains("1048576"), "no raw byte counts");
        let _ = std::fs::remove_dir_all(dir);
    }
}
