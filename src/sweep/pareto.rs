//! Pareto fronts: the points no other point beats on both metrics (e.g. time to target and
//! cost), for sweep and search charts.

/// Which way a metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Lower is better (times, cost, energy, memory).
    Lower,
    /// Higher is better (throughput, utilisation).
    Higher,
}

impl Better {
    /// Direction of a sweep or search column, by name: rates and utilisations are better
    /// high, everything else (times, cost, energy, memory, GPUs) low.
    pub fn of_column(name: &str) -> Better {
        let higher = ["tokens_per_s", "tflops", "mfu", "hfu", "headroom", "goodput"];
        if higher.iter().any(|h| name.contains(h)) {
            Better::Higher
        } else {
            Better::Lower
        }
    }

    fn key(self, v: f64) -> f64 {
        match self {
            Better::Lower => v,
            Better::Higher => -v,
        }
    }
}

/// Indices of the non-dominated points of `points` (x, y), sorted by x from best to worst.
/// A point is dominated when another is at least as good on both metrics and better on
/// one; identical points are all kept. Points with a non-finite coordinate are ignored.
pub fn front(points: &[(f64, f64)], bx: Better, by: Better) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..points.len())
        .filter(|&i| points[i].0.is_finite() && points[i].1.is_finite())
        .collect();
    let k = |i: usize| (bx.key(points[i].0), by.key(points[i].1));
    idx.sort_by(|&a, &b| {
        let (ka, kb) = (k(a), k(b));
        ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(a.cmp(&b))
    });
    let mut out: Vec<usize> = Vec::new();
    let mut best_y = f64::INFINITY;
    for i in idx {
        let (x, y) = k(i);
        let same_as_last = out.last().is_some_and(|&j| k(j) == (x, y));
        if y < best_y || same_as_last {
            best_y = best_y.min(y);
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: i is on the front iff no j dominates it.
    fn dominated(p: &[(f64, f64)], i: usize) -> bool {
        p.iter()
            .any(|q| q.0 <= p[i].0 && q.1 <= p[i].1 && (q.0 < p[i].0 || q.1 < p[i].1))
    }

    #[test]
    fn front_of_a_hand_made_set() {
        // (cost, days): 0 and 2 and 4 trade off; 1 is beaten by 0; 3 by 2; 5 equals 4
        let p = [
            (1.0, 10.0),
            (2.0, 11.0),
            (3.0, 5.0),
            (4.0, 6.0),
            (6.0, 2.0),
            (6.0, 2.0),
            (7.0, 2.0),
        ];
        assert_eq!(front(&p, Better::Lower, Better::Lower), vec![0, 2, 4, 5]);
        for (i, _) in p.iter().enumerate() {
            let on = front(&p, Better::Lower, Better::Lower).contains(&i);
            assert_eq!(on, !dominated(&p, i), "point {i}");
        }
        // throughput (higher better) vs cost (lower better): (x = cost, y = tokens/s)
        let q = [(1.0, 100.0), (2.0, 300.0), (3.0, 250.0), (4.0, 400.0), (f64::NAN, 1e9)];
        assert_eq!(front(&q, Better::Lower, Better::Higher), vec![0, 1, 3]);
        assert!(front(&[], Better::Lower, Better::Lower).is_empty());
    }

    #[test]
    fn directions_follow_column_names() {
        assert_eq!(Better::of_column("tokens_per_s_per_gpu"), Better::Higher);
        assert_eq!(Better::of_column("mfu_pct"), Better::Higher);
        assert_eq!(Better::of_column("cost_usd"), Better::Lower);
        assert_eq!(Better::of_column("time_to_target_days"), Better::Lower);
    }
}
