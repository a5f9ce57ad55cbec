//! The identity of a sweep's output (`<stem>.meta.json`, written next to its CSV) and
//! `trainsim merge`: shards are joined only when they belong to one sweep, come from one
//! split, and together hold every point exactly once, each row whole.

use super::spec::SweepError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of the [`Meta`] format.
pub const META_FORMAT: u32 = 1;

/// What a sweep's CSV holds: written atomically next to it as `<stem>.meta.json`
/// (`<stem>.meta.json.partial` while the sweep runs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// [`META_FORMAT`].
    pub format: u32,
    /// Sweep name.
    pub sweep: String,
    /// [`super::SweepSpec::identity`].
    pub identity: String,
    /// `[i, n]` of a shard; `null` for a whole sweep.
    pub shard: Option<(usize, usize)>,
    /// Points of the whole sweep (after filters).
    pub points: usize,
    /// Rows of this file.
    pub rows: usize,
}

/// `<stem>.meta.json` next to a sweep CSV `<stem>.csv`.
pub fn meta_path(csv: &Path) -> PathBuf {
    let stem = csv
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    csv.with_file_name(format!("{stem}.meta.json"))
}

/// Reads a meta file; `None` when it is absent or unreadable.
pub fn read_meta(p: &Path) -> Option<Meta> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// Writes a meta file atomically.
pub fn write_meta(p: &Path, m: &Meta) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(m)? + "\n";
    crate::report::write_atomic(p, text.as_bytes())?;
    Ok(())
}

/// CSV records of `text` (a quoted cell may hold line ends) and whether the last one ended
/// with a line end.
fn records(text: &str) -> (Vec<&str>, bool) {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    let whole = start == text.len();
    if !whole {
        out.push(&text[start..]);
    }
    (out, whole)
}

/// Cells of one CSV record.
fn cell_count(record: &str) -> usize {
    super::table::split_csv(record).len()
}

fn bad(p: &Path, message: String) -> anyhow::Error {
    SweepError::Invalid {
        path: p.to_path_buf(),
        location: String::new(),
        message,
    }
    .into()
}

fn shard_text(s: Option<(usize, usize)>) -> String {
    let (i, n) = s.unwrap_or((0, 1));
    format!("shard {i}/{n}")
}

/// Merges shard CSVs of one sweep into one file ordered by point index (and its meta file
/// next to it); returns the number of points. Refuses (an error naming the file) shards of
/// different sweeps or splits, a shard given twice or missing, a point missing or twice, a
/// row whose cell count is not the header's, and a file cut short.
pub fn merge_csv(inputs: &[PathBuf], out: &Path) -> anyhow::Result<usize> {
    let mut first: Option<(&Path, Meta, String)> = None;
    let mut shards: BTreeMap<usize, &Path> = BTreeMap::new();
    let mut rows: BTreeMap<usize, String> = BTreeMap::new();
    for p in inputs {
        let text = std::fs::read_to_string(p).map_err(|e| SweepError::Io {
            path: p.clone(),
            source: e,
        })?;
        let mp = meta_path(p);
        let meta = read_meta(&mp).ok_or_else(|| {
            bad(
                p,
                format!(
                    "no readable {} next to it: merge needs the sweep identity `trainsim sweep` \
                     writes with each shard (is the shard still running, or from an older version?)",
                    mp.display()
                ),
            )
        })?;
        if meta.format != META_FORMAT {
            return Err(bad(
                p,
                format!("{} has format {}, expected {META_FORMAT}", mp.display(), meta.format),
            ));
        }
        let (recs, whole) = records(&text);
        let Some(header) = recs.first() else {
            return Err(bad(p, "is empty".into()));
        };
        if !whole {
            return Err(bad(
                p,
                "the last row is cut short (no line end): the file is truncated".into(),
            ));
        }
        let (i, n) = meta.shard.unwrap_or((0, 1));
        match &first {
            None => first = Some((p, meta.clone(), header.to_string())),
            Some((fp, fm, fh)) => {
                if fm.identity != meta.identity || fm.sweep != meta.sweep {
                    return Err(bad(
                        p,
                        format!(
                            "belongs to sweep `{}` (identity {}), but {} to sweep `{}` (identity {}): \
                             shards of different sweeps (or of one sweep file changed between runs)",
                            meta.sweep,
                            meta.identity,
                            fp.display(),
                            fm.sweep,
                            fm.identity
                        ),
                    ));
                }
                let fsh = fm.shard.unwrap_or((0, 1));
                if fsh.1 != n {
                    return Err(bad(
                        p,
                        format!(
                            "is {} but {} is {}: shards of different splits",
                            shard_text(meta.shard),
                            fp.display(),
                            shard_text(fm.shard)
                        ),
                    ));
                }
                if fh != header {
                    return Err(bad(p, format!("has a different header from {}", fp.display())));
                }
            }
        }
        if let Some(other) = shards.insert(i, p) {
            return Err(bad(
                p,
                format!(
                    "is {}, as is {}: a shard given twice",
                    shard_text(meta.shard),
                    other.display()
                ),
            ));
        }
        let cells = cell_count(header);
        let mut count = 0;
        for (k, r) in recs.iter().enumerate().skip(1).filter(|(_, r)| !r.is_empty()) {
            let c = cell_count(r);
            if c != cells {
                return Err(bad(
                    p,
                    format!(
                        "line {}: {c} cells, the header has {cells}: a truncated or corrupt row",
                        k + 1
                    ),
                ));
            }
            let idx: usize = r
                .split(',')
                .next()
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| bad(p, format!("line {}: row without a point index", k + 1)))?;
            if idx % n != i || idx >= meta.points {
                return Err(bad(
                    p,
                    format!(
                        "line {}: point {idx} is not in {} of a sweep of {} points",
                        k + 1,
                        shard_text(meta.shard),
                        meta.points
                    ),
                ));
            }
            if rows.insert(idx, r.to_string()).is_some() {
                return Err(bad(p, format!("line {}: point {idx} is given twice", k + 1)));
            }
            count += 1;
        }
        if count != meta.rows {
            return Err(bad(
                p,
                format!(
                    "has {count} rows, but its sweep wrote {}: the file is incomplete",
                    meta.rows
                ),
            ));
        }
    }
    let Some((fp, fm, header)) = first else {
        anyhow::bail!("merge needs at least one shard CSV");
    };
    let n = fm.shard.unwrap_or((0, 1)).1;
    if let Some(i) = (0..n).find(|i| !shards.contains_key(i)) {
        let stem = fp
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expected = stem.split(".shard-").next().unwrap_or("sweep");
        return Err(bad(
            fp,
            format!("shard {i}/{n} of this sweep ({expected}.shard-{i}-of-{n}.csv) is missing from the inputs"),
        ));
    }
    if let Some(missing) = (0..fm.points).find(|k| !rows.contains_key(k)) {
        return Err(bad(
            fp,
            format!("point {missing} of {} is in none of the shards", fm.points),
        ));
    }
    let mut text = header;
    text.push('\n');
    for l in rows.values() {
        text.push_str(l);
        text.push('\n');
    }
    crate::report::write_atomic(out, text.as_bytes())?;
    let meta = Meta {
        shard: None,
        rows: rows.len(),
        ..fm
    };
    write_meta(&meta_path(out), &meta)?;
    Ok(rows.len())
}
