//! The network: links with bandwidth, flows that share them max-min fairly, and the
//! decomposition of collectives into flows ([`collective`]).
//!
//! Owns: [`FlowNetwork`] (the flow-level model) and [`collective`] (which bytes cross which
//! link class for each collective and algorithm). Does not own: time or events. The
//! simulation asks when the next flow finishes and tells the network when time advances.
//!
//! Rates are recomputed by progressive filling (water-filling) whenever a flow starts or
//! ends, so contention between concurrent collectives emerges from the simulation.

pub mod collective;

use crate::units::{SimTime, PS_PER_S};

/// Index of a link.
pub type LinkId = u32;

/// A unidirectional link.
#[derive(Clone, Debug)]
struct Link {
    capacity_bytes_per_s: f64,
    bytes_carried: f64,
}

#[derive(Clone, Debug)]
struct Flow {
    links: [LinkId; 2],
    n_links: u8,
    remaining_bytes: f64,
    rate_bytes_per_s: f64,
    transfer: u32,
}

#[derive(Clone, Debug)]
struct Transfer {
    pending_flows: u32,
    latency: SimTime,
    tag: u64,
}

/// A transfer that has delivered all its bytes; its consumer may proceed at `ready_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completed {
    /// Caller's tag given to [`FlowNetwork::start_transfer`].
    pub tag: u64,
    /// Delivery time: last byte plus the transfer's latency.
    pub ready_at: SimTime,
}

/// Links and the flows currently crossing them.
#[derive(Clone, Debug, Default)]
pub struct FlowNetwork {
    links: Vec<Link>,
    flows: Vec<Flow>,
    transfers: Vec<Option<Transfer>>,
    free_transfers: Vec<u32>,
    last_update: SimTime,
    rates_dirty: bool,
}

impl FlowNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a unidirectional link of `capacity_bytes_per_s`.
    pub fn add_link(&mut self, capacity_bytes_per_s: f64) -> LinkId {
        assert!(capacity_bytes_per_s > 0.0, "engine invariant broken: link without capacity");
        self.links.push(Link { capacity_bytes_per_s, bytes_carried: 0.0 });
        (self.links.len() - 1) as LinkId
    }

    /// Total bytes that crossed `link` so far.
    pub fn bytes_carried(&self, link: LinkId) -> f64 {
        self.links[link as usize].bytes_carried
    }

    /// Number of flows in progress.
    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// Starts a transfer made of `flows` (each: the links it crosses, one or two, and its
    /// bytes). The transfer completes when every flow has drained, plus `latency`.
    /// Returns immediately-complete transfers (no bytes) through the next [`advance`].
    ///
    /// [`advance`]: FlowNetwork::advance
    pub fn start_transfer(&mut self, now: SimTime, flows: &[(&[LinkId], f64)], latency: SimTime, tag: u64) -> Option<Completed> {
        self.advance_bytes(now);
        let live: Vec<_> = flows.iter().filter(|(_, b)| *b > 0.0).collect();
        if live.is_empty() {
            return Some(Completed { tag, ready_at: now + latency });
        }
        let t = Transfer { pending_flows: live.len() as u32, latency, tag };
        let id = match self.free_transfers.pop() {
            Some(i) => {
                self.transfers[i as usize] = Some(t);
                i
            }
            None => {
                self.transfers.push(Some(t));
                (self.transfers.len() - 1) as u32
            }
        };
        for (links, bytes) in live {
            assert!(!links.is_empty() && links.len() <= 2, "engine invariant broken: a flow crosses 1 or 2 links");
            let mut l = [links[0]; 2];
            if links.len() == 2 {
                l[1] = links[1];
            }
            self.flows.push(Flow { links: l, n_links: links.len() as u8, remaining_bytes: *bytes, rate_bytes_per_s: 0.0, transfer: id });
        }
        self.rates_dirty = true;
        None
    }

    /// When the next flow will finish at current rates, if any flow is active.
    pub fn next_completion(&mut self) -> Option<SimTime> {
        if self.rates_dirty {
            self.recompute_rates();
        }
        self.flows
            .iter()
            .map(|f| {
                let ps = (f.remaining_bytes / f.rate_bytes_per_s * PS_PER_S).ceil().max(1.0);
                self.last_update + SimTime(ps as u64)
            })
            .min()
    }

    /// Advances to `now`: drains bytes at current rates and returns the transfers whose
    /// last flow finished.
    pub fn advance(&mut self, now: SimTime) -> Vec<Completed> {
        self.advance_bytes(now);
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.flows.len() {
            let f = &self.flows[i];
            // finished: within a picosecond's worth of bytes, or a negligible residue
            if f.remaining_bytes <= f.rate_bytes_per_s * 2.0 / PS_PER_S || f.remaining_bytes < 1e-6 {
                let tid = f.transfer;
                self.flows.swap_remove(i);
                self.rates_dirty = true;
                let t = self.transfers[tid as usize].as_mut().expect("engine invariant broken: flow of a finished transfer");
                t.pending_flows -= 1;
                if t.pending_flows == 0 {
                    let t = self.transfers[tid as usize].take().expect("checked above");
                    self.free_transfers.push(tid);
                    done.push(Completed { tag: t.tag, ready_at: now + t.latency });
                }
            } else {
                i += 1;
            }
        }
        // deterministic order regardless of swap_remove
        done.sort_by_key(|c| c.tag);
        done
    }

    fn advance_bytes(&mut self, now: SimTime) {
        if self.rates_dirty {
            self.recompute_rates();
        }
        let dt_s = now.saturating_sub(self.last_update).as_secs();
        if dt_s > 0.0 {
            for f in &mut self.flows {
                let moved = (f.rate_bytes_per_s * dt_s).min(f.remaining_bytes);
                f.remaining_bytes -= moved;
                for &l in &f.links[..f.n_links as usize] {
                    self.links[l as usize].bytes_carried += moved;
                }
            }
        }
        self.last_update = self.last_update.max(now);
    }

    /// Max-min fair rates by progressive filling.
    fn recompute_rates(&mut self) {
        self.rates_dirty = false;
        if self.flows.is_empty() {
            return;
        }
        // links touched by active flows, with remaining capacity and unfrozen flow counts
        let mut touched: Vec<LinkId> = self.flows.iter().flat_map(|f| f.links[..f.n_links as usize].iter().copied()).collect();
        touched.sort_unstable();
        touched.dedup();
        let mut cap: Vec<f64> = touched.iter().map(|&l| self.links[l as usize].capacity_bytes_per_s).collect();
        let mut count = vec![0u32; touched.len()];
        let idx = |l: LinkId| touched.binary_search(&l).expect("touched link");
        let flow_links: Vec<[usize; 2]> = self
            .flows
            .iter()
            .map(|f| {
                let a = idx(f.links[0]);
                let b = if f.n_links == 2 { idx(f.links[1]) } else { usize::MAX };
                [a, b]
            })
            .collect();
        for fl in &flow_links {
            for &li in fl.iter().filter(|&&x| x != usize::MAX) {
                count[li] += 1;
            }
        }
        let mut frozen = vec![false; self.flows.len()];
        let mut left = self.flows.len();
        while left > 0 {
            let mut best = usize::MAX;
            let mut best_share = f64::INFINITY;
            for (li, &n) in count.iter().enumerate() {
                if n > 0 {
                    let share = cap[li] / n as f64;
                    if share < best_share {
                        best_share = share;
                        best = li;
                    }
                }
            }
            assert!(best != usize::MAX, "engine invariant broken: unfrozen flow without links");
            for (fi, fl) in flow_links.iter().enumerate() {
                if !frozen[fi] && (fl[0] == best || fl[1] == best) {
                    frozen[fi] = true;
                    left -= 1;
                    self.flows[fi].rate_bytes_per_s = best_share.max(1e-9);
                    for &li in fl.iter().filter(|&&x| x != usize::MAX) {
                        cap[li] = (cap[li] - best_share).max(0.0);
                        count[li] -= 1;
                    }
                }
            }
        }
    }

    /// Current rate of every active flow with its links (for property tests).
    #[cfg(test)]
    fn rates(&mut self) -> Vec<(Vec<LinkId>, f64)> {
        if self.rates_dirty {
            self.recompute_rates();
        }
        self.flows.iter().map(|f| (f.links[..f.n_links as usize].to_vec(), f.rate_bytes_per_s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngExt};

    #[test]
    fn single_flow_runs_at_link_rate_plus_latency() {
        let mut n = FlowNetwork::new();
        let l = n.add_link(100e9);
        assert!(n.start_transfer(SimTime::ZERO, &[(&[l], 1e9)], SimTime::from_secs(1e-6), 7).is_none());
        let t = n.next_completion().unwrap();
        assert!((t.as_secs() - 0.01).abs() < 1e-11);
        let done = n.advance(t);
        assert_eq!(done, vec![Completed { tag: 7, ready_at: t + SimTime::from_secs(1e-6) }]);
        assert!((n.bytes_carried(l) - 1e9).abs() < 1.0);
    }

    #[test]
    fn two_flows_share_a_link_then_the_survivor_speeds_up() {
        let mut n = FlowNetwork::new();
        let l = n.add_link(10e9);
        n.start_transfer(SimTime::ZERO, &[(&[l], 1e9)], SimTime::ZERO, 1);
        n.start_transfer(SimTime::ZERO, &[(&[l], 2e9)], SimTime::ZERO, 2);
        // both at 5 GB/s until t=0.2 s, then 1e9 left at 10 GB/s: ends at 0.3 s
        let t1 = n.next_completion().unwrap();
        assert!((t1.as_secs() - 0.2).abs() < 1e-9);
        assert_eq!(n.advance(t1)[0].tag, 1);
        let t2 = n.next_completion().unwrap();
        assert!((t2.as_secs() - 0.3).abs() < 1e-9);
        assert_eq!(n.advance(t2)[0].tag, 2);
        assert_eq!(n.active_flows(), 0);
    }

    /// Max-min fairness properties on random instances: no link over capacity, and every
    /// flow crosses a saturated link on which no other flow has a higher rate.
    #[test]
    fn max_min_fairness_properties_hold_on_random_instances() {
        for seed in 0..200u64 {
            let mut rng = crate::engine::rng::stream(seed, "maxmin-test", 0);
            let mut n = FlowNetwork::new();
            let nl = rng.random_range(1..8u32);
            let caps: Vec<f64> = (0..nl).map(|_| rng.random_range(1.0..100.0) * 1e9).collect();
            for &c in &caps {
                n.add_link(c);
            }
            let nf = rng.random_range(1..20u32);
            for i in 0..nf {
                let a = rng.random_range(0..nl);
                let b = rng.random_range(0..nl);
                let links: Vec<LinkId> = if a == b || rng.next_u32() % 2 == 0 { vec![a] } else { vec![a, b] };
                n.start_transfer(SimTime::ZERO, &[(&links, 1e9)], SimTime::ZERO, i as u64);
            }
            let rates = n.rates();
            let mut load = vec![0.0; nl as usize];
            for (links, r) in &rates {
                for &l in links {
                    load[l as usize] += r;
                }
            }
            for l in 0..nl as usize {
                assert!(load[l] <= caps[l] * (1.0 + 1e-9), "seed {seed}: link {l} over capacity");
            }
            for (links, r) in &rates {
                let bottlenecked = links.iter().any(|&l| {
                    let saturated = load[l as usize] >= caps[l as usize] * (1.0 - 1e-9);
                    let max_on_link = rates.iter().filter(|(ls, _)| ls.contains(&l)).map(|(_, r)| *r).fold(0.0, f64::max);
                    saturated && *r >= max_on_link * (1.0 - 1e-9)
                });
                assert!(bottlenecked, "seed {seed}: flow at {r} has no bottleneck");
            }
        }
    }

    #[test]
    fn empty_transfer_completes_after_its_latency() {
        let mut n = FlowNetwork::new();
        let done = n.start_transfer(SimTime(5), &[], SimTime(10), 3).unwrap();
        assert_eq!(done, Completed { tag: 3, ready_at: SimTime(15) });
    }
}
