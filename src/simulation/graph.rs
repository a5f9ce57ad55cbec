//! One workload's operation graph as the event loop walks it ([`Graph`]): each op's
//! successors, each (rank, stream) queue's ops in program order, and the ops where
//! data-parallel replicas meet, numbered alike in every replica's workload (replicas may
//! run workloads of other micro-batch counts: their meetings still pair up).

use crate::workload::{Op, OpId, OpKind, Stream, Workload};

/// The queue (rank, stream) of `op` within its workload.
pub(super) fn queue_index(op: &Op) -> usize {
    op.rank as usize * Stream::COUNT + op.stream.index()
}

/// Turns per-row counts at `start[r + 1]` into row starts.
fn prefix_sum(start: &mut [u32]) {
    for r in 1..start.len() {
        start[r] += start[r - 1];
    }
}

/// A workload's graph in compressed form.
#[derive(Clone, Debug)]
pub(super) struct Graph {
    /// Dependencies of each op (what every copy's countdown starts from).
    pub deps: Vec<u32>,
    /// Successors of op `i`: `succ[succ_start[i]..succ_start[i + 1]]`.
    pub succ_start: Vec<u32>,
    pub succ: Vec<OpId>,
    /// Program order per (rank, stream): queue `q` is `queue_ops[queue_start[q]..queue_start[q + 1]]`.
    pub queue_start: Vec<u32>,
    pub queue_ops: Vec<OpId>,
    /// Per op: its meeting ([`Meetings`]), `u32::MAX` for the others (empty: no meetings).
    pub meeting: Vec<u32>,
    /// Per meeting: its op.
    pub meeting_op: Vec<u32>,
}

/// Where replicas meet, in a form comparable across workloads: per meeting, numbered rank
/// by rank in each rank's program order, the op's rank, stream, kind, bytes and the
/// replicas meeting in it.
pub(super) type Meetings = Vec<(u32, usize, String, u64, u32)>;

/// The meetings of `w` (`sync_group`: per op, the consecutive replicas meeting in it; 1 or
/// an empty slice: none), each with its op index.
pub(super) fn meetings(w: &Workload, sync_group: &[u32]) -> (Meetings, Vec<u32>) {
    let mut ops: Vec<u32> = (0..w.ops.len() as u32)
        .filter(|&i| sync_group.get(i as usize).is_some_and(|&k| k > 1))
        .collect();
    // rank by rank, program order within each (the sort is stable)
    ops.sort_by_key(|&i| w.ops[i as usize].rank);
    let sig = ops
        .iter()
        .map(|&i| {
            let op = &w.ops[i as usize];
            let (kind, bytes) = match &op.kind {
                OpKind::Collective { dim, kind, bytes, .. } => (format!("{dim:?} {kind:?}"), bytes.to_bits()),
                OpKind::AllToAll { table } => ("all-to-all".to_string(), u64::from(*table)),
                _ => ("other".to_string(), 0),
            };
            (op.rank, op.stream.index(), kind, bytes, sync_group[i as usize])
        })
        .collect();
    (sig, ops)
}

impl Graph {
    /// The graph of `w`, its meetings numbered by [`meetings`].
    pub fn of(w: &Workload, sync_group: &[u32]) -> Graph {
        let n_ops = w.ops.len();
        let n_queues = w.ranks.len() * Stream::COUNT;
        // one pass over the ops (48 bytes each, the memory traffic that costs) counts each
        // op's dependencies and successors and each queue's ops, and keeps what the second
        // pass needs: each op's dependency range and queue
        let mut deps = Vec::with_capacity(n_ops);
        let mut ranges = Vec::with_capacity(n_ops);
        let mut queue = Vec::with_capacity(n_ops);
        let mut succ_start = vec![0u32; n_ops + 1];
        let mut queue_start = vec![0u32; n_queues + 1];
        for op in &w.ops {
            let (from, to) = op.deps;
            deps.push(to - from);
            ranges.push((from, to));
            for &d in &w.deps[from as usize..to as usize] {
                succ_start[d as usize + 1] += 1;
            }
            let q = queue_index(op);
            queue_start[q + 1] += 1;
            queue.push(q as u32);
        }
        prefix_sum(&mut succ_start);
        prefix_sum(&mut queue_start);
        let mut succ = vec![0 as OpId; succ_start[n_ops] as usize];
        let mut queue_ops = vec![0 as OpId; n_ops];
        let (mut succ_fill, mut queue_fill) = (succ_start.clone(), queue_start.clone());
        for (i, (&(from, to), &q)) in ranges.iter().zip(&queue).enumerate() {
            for &d in &w.deps[from as usize..to as usize] {
                let f = &mut succ_fill[d as usize];
                succ[*f as usize] = i as OpId;
                *f += 1;
            }
            let f = &mut queue_fill[q as usize];
            queue_ops[*f as usize] = i as OpId;
            *f += 1;
        }
        let (_, meeting_op) = meetings(w, sync_group);
        let mut meeting = Vec::new();
        if !meeting_op.is_empty() {
            meeting = vec![u32::MAX; n_ops];
            for (m, &op) in meeting_op.iter().enumerate() {
                meeting[op as usize] = m as u32;
            }
        }
        Graph {
            deps,
            succ_start,
            succ,
            queue_start,
            queue_ops,
            meeting,
            meeting_op,
        }
    }
}
