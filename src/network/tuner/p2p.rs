//! Point-to-point as NCCL 2.28+ runs it: the channels per peer (which shrink as the
//! communicator grows: the sendrecv "cliff" of the data), sendrecv and pipeline sends, and
//! the all-to-all as grouped send/receive to every peer with a cost per remote peer.

use super::super::calibration::ModelConstants;
use super::table::*;
use super::{pow2_up, System};

/// `(p2p channels, channels per peer)` of a communicator of `sys.ranks` ranks (paths.cc):
/// a remote peer gets enough channels for the GPU's NIC rate at NCCL's 14 GB/s per channel,
/// halved while `channels x ceil(n/8)` exceeds the p2p channels; a local peer all of them.
pub fn channels_per_peer(sys: &System, remote: bool) -> (u32, u32) {
    let multi = sys.domains > 1;
    let p2p = pow2_up(if multi {
        sys.collective_channels
    } else {
        ONE_NODE_CHANNELS
    });
    if !remote {
        return (p2p, p2p.min(64));
    }
    let need = (sys.nic_bytes_per_s / P2P_PER_CHANNEL_NET_BYTES_PER_S).ceil() as u32;
    let mut per_peer = pow2_up(need.max(sys.nics_per_gpu.floor() as u32).max(1));
    let batches = sys.ranks.div_ceil(MAX_P2P_PER_BATCH);
    while per_peer * batches > p2p && per_peer > 1 {
        per_peer /= 2;
    }
    (p2p, per_peer)
}

/// Channels one send (or receive) of `bytes` uses, and its chunk (enqueue.cc
/// `addP2pToPlan`): the minimum share of the p2p channels, doubled while parts exceed the
/// chunk, up to the channels per peer.
pub fn op_channels(sys: &System, bytes: f64, remote: bool) -> (f64, f64) {
    let (p2p, per_peer) = channels_per_peer(sys, remote);
    let mut nmin = per_peer;
    while nmin * sys.ranks > p2p && nmin > 1 {
        nmin /= 2;
    }
    let step = if remote {
        sys.p2p_chunk_bytes
    } else {
        P2P_NVLINK_CHUNK_BYTES
    };
    let multi = sys.domains > 1;
    let (min_part, max_part) = if multi {
        (step / 2.0, step)
    } else {
        (step / 8.0, step * 32.0)
    };
    let mut nch = (nmin as f64).min((bytes / min_part).ceil().max(1.0));
    let mut part = min_part.max((bytes / nch).ceil());
    while part > max_part && nch <= (per_peer / 2) as f64 {
        nch *= 2.0;
        part = (bytes / nch).ceil();
    }
    (nch, step)
}

/// One send of `bytes` to a peer `remote` (another domain) or not, every rank sending at
/// once (nccl-tests sendrecv; a pipeline send): `a + fill + S / min(channels x b, link)`,
/// the LL protocol (half the line, no fill) below 16 KiB per channel.
pub fn send_s(sys: &System, bytes: f64, remote: bool, c: &ModelConstants) -> f64 {
    let (nch, step) = op_channels(sys, bytes, remote);
    let (link, per_channel, floor) = if remote {
        (
            sys.nic_bytes_per_s * c.net_efficiency,
            c.p2p_net_channel_bytes_per_s,
            c.p2p_net_latency_s,
        )
    } else {
        (
            sys.nvlink_bytes_per_s * c.nvlink(sys.generation),
            c.p2p_nvlink_channel_bytes_per_s,
            c.p2p_nvlink_latency_s,
        )
    };
    let bw = (nch * per_channel).min(link);
    match chunk_fill_s(bytes, nch, step, per_channel) {
        Some(fill) => floor + fill + bytes / bw,
        None => floor + bytes / (0.5 * bw),
    }
}

/// The pipeline fill of one send of `bytes` over `nch` channels of `per_channel` bytes/s
/// in chunks of up to `step` (a quarter of it below one step, half below eight): its first
/// chunk per channel, seconds. `None` under the LL protocol (16 KiB or less per channel:
/// no fill, half the line).
fn chunk_fill_s(bytes: f64, nch: f64, step: f64, per_channel: f64) -> Option<f64> {
    if bytes <= nch * P2P_LL_THRESHOLD_BYTES {
        return None;
    }
    let chunk = if bytes < step {
        step / 4.0
    } else if bytes < 8.0 * step {
        step / 2.0
    } else {
        step
    };
    Some(chunk.min(bytes / nch) / per_channel)
}

/// nccl-tests sendrecv: every rank sends `S` to its ring successor; the slowest rank's
/// peer is on another domain when the group spans domains.
pub fn sendrecv_s(sys: &System, s: f64, c: &ModelConstants) -> f64 {
    send_s(sys, s, sys.domains > 1, c)
}

/// Remote peers of one rank in an all-to-all: `n - g`.
pub fn remote_peers(sys: &System) -> u32 {
    sys.ranks - sys.per_domain.min(sys.ranks)
}

/// Fixed cost of an all-to-all with `remote` peers across domains, seconds: the p2p floor
/// plus a cost per remote peer (proxy progress, descriptors and rendezvous of one send and
/// one receive per peer); inside one domain the NVLink floor.
pub fn all_to_all_latency_s(remote: u32, c: &ModelConstants) -> f64 {
    if remote == 0 {
        c.p2p_nvlink_latency_s
    } else {
        c.p2p_net_latency_s + remote as f64 * c.all_to_all_peer_latency_s
    }
}

/// All-to-all of `S` bytes per rank (nccl-tests alltoall): `S (g-1)/n` over NVLink and
/// `S (n-g)/n` through the GPU's NICs (PXN puts remote data on the rail NIC), at once, after
/// the fixed cost, which grows with the remote peers.
pub fn all_to_all_s(sys: &System, s: f64, c: &ModelConstants) -> f64 {
    let n = sys.ranks as f64;
    let g = sys.per_domain.min(sys.ranks) as f64;
    let t_nvl = s * (g - 1.0) / n / (sys.nvlink_bytes_per_s * c.nvlink(sys.generation));
    let remote = remote_peers(sys);
    if remote == 0 {
        return all_to_all_latency_s(0, c) + t_nvl;
    }
    let t_net = s * (n - g) / n / (sys.nic_bytes_per_s * c.net_efficiency * c.all_to_all_net_efficiency);
    all_to_all_latency_s(remote, c) + all_to_all_fill_s(sys, s / n, remote, c) + t_net.max(t_nvl)
}

/// Pipeline fill of the remote sends of an all-to-all: each send of `m` bytes to a remote
/// peer fills its channels' first chunk before the line runs (as [`send_s`]), and the
/// p2p channels serve `p2p / per_peer` peers at once, so the fills of successive batches of
/// peers add up.
pub fn all_to_all_fill_s(sys: &System, m: f64, remote: u32, c: &ModelConstants) -> f64 {
    if remote == 0 || m <= 0.0 {
        return 0.0;
    }
    let (p2p, per_peer) = channels_per_peer(sys, true);
    let (nch, step) = op_channels(sys, m, true);
    let at_once = (p2p / per_peer.max(1)).max(1);
    f64::from(remote.div_ceil(at_once)) * chunk_fill_s(m, nch, step, c.p2p_net_channel_bytes_per_s).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::calibration::CALIBRATED;
    use crate::network::nccl::round2_cluster;
    use crate::network::GroupLayout;

    fn efa(ranks: u32) -> System {
        let c = round2_cluster("aws-p5-hyperpod-efa", ranks).unwrap();
        System::new(
            &c,
            GroupLayout {
                size: ranks,
                members_per_node: 8,
            },
        )
    }

    /// The fill grows with the bytes per peer up to a full chunk per channel, then stays:
    /// `ceil(remote / (p2p / per_peer)) x chunk / channel rate`, closed form; none inside a
    /// node; and it adds to the all-to-all's time exactly.
    #[test]
    fn all_to_all_fill_saturates_at_a_chunk_per_channel() {
        let c = &CALIBRATED;
        let s = efa(256);
        let remote = remote_peers(&s);
        assert_eq!(remote, 248);
        let mut last = 0.0;
        for k in 10..28 {
            let m = f64::from(1u32 << k);
            let f = all_to_all_fill_s(&s, m, remote, c);
            assert!(f >= last, "{m} B per peer: {f} s after {last} s");
            last = f;
        }
        let (p2p, per_peer) = channels_per_peer(&s, true);
        let batches = f64::from(remote.div_ceil(p2p / per_peer));
        let full = batches * s.p2p_chunk_bytes / c.p2p_net_channel_bytes_per_s;
        assert!((last - full).abs() <= 1e-12 * full, "{last} vs {full}");
        assert!(full > 1e-4, "{full}: 248 peers' fills are visible at this scale");
        assert_eq!(all_to_all_fill_s(&s, 1e9, 0, c), 0.0);
        // the all-to-all charges it beside the per-peer latency and the NIC time
        let bytes = 256.0 * 8.0 * 1024.0 * 1024.0;
        let without = all_to_all_latency_s(remote, c)
            + bytes * 248.0 / 256.0 / (s.nic_bytes_per_s * c.net_efficiency * c.all_to_all_net_efficiency);
        let t = all_to_all_s(&s, bytes, c);
        assert!((t - without - full).abs() <= 1e-9 * t, "{t} vs {without} + {full}");
    }
}
