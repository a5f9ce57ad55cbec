use crate::scenario;
use std::process::Command;
use trainsim::parallel::Dim;

/// DP-heavy: TP8 inside a node, DP32 over 32 nodes (one member per node).
const DP_HEAVY: &str = r#"
[cluster]
num_gpus = 256
[cluster.gpu]
preset = "H100-SXM"
[cluster.network]
oversubscription = 1.0
nodes_per_leaf = 2
[model]
preset = "llama2-7b"
[parallel]
tp = 8
pp = 1
dp = 32
[training]
global_batch_size = 64
seq_length = 2048
"#;

fn with(ratio: f64, nodes_per_leaf: u32) -> trainsim::simulation::RunResult {
    let src = DP_HEAVY
        .replace("oversubscription = 1.0", &format!("oversubscription = {ratio:?}"))
        .replace("nodes_per_leaf = 2", &format!("nodes_per_leaf = {nodes_per_leaf}"));
    trainsim::simulation::run(&scenario(&src).input).expect("simulates")
}

/// A tighter spine never speeds a step up and lengthens DP communication once the leaf
/// uplinks become the bottleneck (ratio above nodes / leaves crossed = 2 here); NIC bytes
/// are the same at every ratio (the spine re-routes them, it does not add any).
#[test]
fn oversubscription_slows_cross_leaf_dp_and_conserves_bytes() {
    let base = with(1.0, 2);
    let (mut last_step, mut last_dp) = (0.0, 0.0);
    for ratio in [1.0, 2.0, 4.0, 8.0] {
        let r = with(ratio, 2);
        assert!(r.step_time_s >= last_step * (1.0 - 1e-9), "ratio {ratio}: step shrank");
        assert!(
            r.breakdown.total_comm_of_dim(Dim::Dp) >= last_dp * (1.0 - 1e-9),
            "ratio {ratio}: DP comm shrank"
        );
        let rel = (r.scale_out_bytes_per_step_per_gpu - base.scale_out_bytes_per_step_per_gpu).abs()
            / base.scale_out_bytes_per_step_per_gpu;
        assert!(rel < 1e-9, "ratio {ratio}: NIC bytes changed by {rel}");
        last_step = r.step_time_s;
        last_dp = r.breakdown.total_comm_of_dim(Dim::Dp);
    }
    // at 8:1 half of the NIC bytes cross the spine at 1/8 of NIC rate: 4x the NIC time
    assert!(
        last_dp > 2.0 * base.breakdown.total_comm_of_dim(Dim::Dp),
        "{last_dp} vs {}",
        base.breakdown.total_comm_of_dim(Dim::Dp)
    );
    assert!(last_step > base.step_time_s);
}

/// Every DP group inside one leaf (32 nodes per leaf): the ratio changes nothing.
#[test]
fn oversubscription_is_invisible_within_one_leaf() {
    let a = with(1.0, 32);
    let b = with(8.0, 32);
    assert_eq!(a.step_time_s, b.step_time_s);
    assert_eq!(
        a.breakdown.total_comm_of_dim(Dim::Dp),
        b.breakdown.total_comm_of_dim(Dim::Dp)
    );
}

fn trainsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trainsim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn oversubscription_below_one_is_a_located_error() {
    let dir = std::env::temp_dir().join(format!("trainsim-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad-oversub.toml");
    std::fs::write(&p, DP_HEAVY.replace("oversubscription = 1.0", "oversubscription = 0.5")).unwrap();
    let (code, _, err) = trainsim(&["run", "--no-charts", "--quiet", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad-oversub.toml:7:")
            && err.contains("cluster.network.oversubscription")
            && err.contains("at least 1"),
        "{err}"
    );
}

#[test]
fn collective_bad_inputs_exit_2_with_a_clear_message() {
    let out = std::env::temp_dir().join(format!("trainsim-coll-{}", std::process::id()));
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        // broadcast, reduce and sendrecv are operations since issue 12
        (&["--op", "gather"], "unknown collective 'gather'"),
        (&["--min-bytes", "8M", "--max-bytes", "1K"], "larger than --max-bytes"),
        (&["--max-bytes", "12Q"], "unknown unit"),
        (
            &["--gpu", "H100-SXM", "--max-bytes", "100G"],
            "--max-bytes 100G: sizes out of range: the buffer must fit in one H100-SXM's 80 GiB",
        ),
        (
            &["--oversubscription", "0.5"],
            "--oversubscription 0.5: must be a ratio of at least 1",
        ),
        (&["--gpus", "12"], "multiple of --gpus-per-node"),
        (&["--gpu", "Z80"], "known GPU presets"),
        (
            &["--algo", "butterfly"],
            "unknown algorithm 'butterfly': allowed values are \"auto\"",
        ),
        (
            &["--gpu", "A100-80GB", "--gpus", "8", "--algo", "nvls"],
            "needs NVLink SHARP",
        ),
        (&["--algo", "pairwise"], "is an all_to_all algorithm"),
        (&["--op", "all_to_all", "--algo", "ring"], "does not run all_to_all"),
        (&["--op", "all_gather", "--algo", "tree"], "all_reduce only"),
        (&["--gpus", "24", "--algo", "halving_doubling"], "power-of-two group"),
        (&["--gpus", "64", "--torus", "4x4"], "holds 16 chips but --gpus is 64"),
        (&["--torus", "4xQ"], "expected 1 to 3 dimension sizes"),
        (
            &[
                "--gpus",
                "64",
                "--gpus-per-node",
                "1",
                "--torus",
                "4x4x4",
                "--algo",
                "tree",
            ],
            "not modelled on a torus",
        ),
        (&["--fat-tree-tiers", "4"], "allowed values are 2 and 3"),
        (&["--core-oversubscription", "0.5"], "at least 1"),
        (&["--scale-up-domain", "12"], "multiple of --gpus-per-node 8"),
        (&["--chunk-bytes", "12Q"], "--chunk-bytes"),
        (&["--nvls-efficiency", "1.5"], "fraction in (0, 1]"),
        (&["--validate", "/nonexistent/dir"], "cannot read the folder"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["collective", "--no-chart", "--out", out];
        args.extend_from_slice(extra);
        let (code, _, err) = trainsim(&args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(want) && !err.contains("panicked"), "{extra:?}: {err}");
    }
}

/// The cluster can come from a scenario file; flags override it.
#[test]
fn collective_takes_the_cluster_from_a_scenario() {
    let out = std::env::temp_dir().join(format!("trainsim-colls-{}", std::process::id()));
    let scenario = crate::repo("scenarios/llama3-8b-h100-64.toml");
    let (code, stdout, err) = trainsim(&[
        "collective",
        "--scenario",
        scenario.to_str().unwrap(),
        "--op",
        "all_gather",
        "--oversubscription",
        "2",
        "--min-bytes",
        "1M",
        "--max-bytes",
        "4M",
        "--no-chart",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("all_gather over 64 x H100") && stdout.contains("2:1 spine"),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with(['1', '2', '4']))
            .count(),
        3,
        "{stdout}"
    );
}

/// P1 at 4,096 GPUs (PEERS.md), under the hop model (PEERS.md's textbook ring; the NCCL
/// model's P1 is in nccl_model.rs): one flow per representative, far under a second; the
/// bandwidth term is the textbook 2(n-1)/n * 1 GiB / 50 GiB/s.
#[test]
fn collective_table_for_p1_runs_fast_and_matches_the_ring_closed_form() {
    let out = std::env::temp_dir().join(format!("trainsim-p1-{}", std::process::id()));
    let started = std::time::Instant::now();
    let (code, stdout, err) = trainsim(&[
        "collective",
        "--model",
        "hop",
        "--algo",
        "ring",
        "--gpus",
        "4096",
        "--gpus-per-node",
        "1",
        "--nic-gbit",
        "429.4967296",
        "--scale-out-latency-us",
        "0.5",
        "--scale-out-efficiency",
        "1",
        "--min-bytes",
        "1G",
        "--max-bytes",
        "1G",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(started.elapsed().as_secs_f64() < 5.0);
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1073741824"))
        .expect(&stdout);
    let time_us: f64 = row.split_whitespace().nth(2).unwrap().parse().unwrap();
    let expect_us = 2.0 * 4095.0 / 4096.0 / 50.0 * 1e6 + 2.0 * 4095.0 * 0.5;
    assert!((time_us - expect_us).abs() < 0.01, "{time_us} vs {expect_us}");
    assert!(out.join("busbw.png").exists() && out.join("collective.csv").exists());
}

// ---- collective algorithms and topologies (issue #3) ----

use trainsim::hardware::presets::gpu_preset;
use trainsim::hardware::ClusterSpec;
use trainsim::network::algorithm::{cost, idle_time_s, Algorithm};
use trainsim::network::collective::{ring_bytes_per_rank, CollectiveKind, GroupLayout};
use trainsim::network::topology::{Fabric, Tier};

fn cluster(num_gpus: u32, gpus_per_node: u32) -> ClusterSpec {
    ClusterSpec {
        gpu: gpu_preset("H100-SXM").unwrap(),
        num_gpus,
        gpus_per_node,
        nics_per_node: gpus_per_node,
        nic_gbit_per_s: 400.0,
        scale_up_latency_us: 1.5,
        scale_out_latency_us: 4.0,
        scale_up_efficiency: 0.8,
        scale_out_efficiency: 0.9,
        oversubscription: 1.0,
        nodes_per_leaf: 4,
        // the closed forms below are the hop model's (algorithm.rs, decompose.rs)
        fabric: trainsim::hardware::fabric::FabricSpec::hop(),
        groups: Vec::new(),
        cross_group_gbit_per_s: 0.0,
        topology: Default::default(),
    }
}

fn layout(size: u32, members: u32) -> GroupLayout {
    GroupLayout {
        size,
        members_per_node: members,
    }
}

/// Topology variants that may only re-route bytes: flat, 4:1 spine, 3 tiers with a 2:1 core,
/// rail-optimized.
fn variants(base: &ClusterSpec) -> Vec<ClusterSpec> {
    let mut v = vec![base.clone()];
    let mut c = base.clone();
    c.oversubscription = 4.0;
    v.push(c.clone());
    c.topology.fat_tree_tiers = 3;
    c.topology.leaves_per_pod = 2;
    c.topology.core_oversubscription = 2.0;
    c.topology.switch_latency_us = 0.5;
    v.push(c.clone());
    c.topology.rail_optimized = true;
    v.push(c);
    v
}

/// Every algorithm moves the bytes its definition says, on every topology (oversubscription,
/// tiers and rails re-route NIC bytes between leaf, spine and core but never add any).
#[test]
fn bytes_are_conserved_per_collective_and_algorithm() {
    use CollectiveKind::*;
    let s = 1e9;
    for (n, g) in [(8u32, 8u32), (64, 8), (256, 8), (32, 1), (128, 4)] {
        let (gf, mf, nf) = (g as f64, (n / g) as f64, n as f64);
        let base = cluster(n.max(8), 8.min(n));
        let combos: Vec<(CollectiveKind, Algorithm, f64, f64)> = vec![
            // (kind, algorithm, expected scale-up bytes (incl. NVLS), expected NIC bytes)
            // ring: k S in all, k S / g through the NIC once the group spans units
            (
                AllReduce,
                Algorithm::Ring,
                2.0 * (nf - 1.0) / nf * s * if mf > 1.0 { (gf - 1.0) / gf } else { 1.0 },
                if mf > 1.0 { 2.0 * (nf - 1.0) / nf * s / gf } else { 0.0 },
            ),
            (
                AllGather,
                Algorithm::Ring,
                (nf - 1.0) / nf * s * if mf > 1.0 { (gf - 1.0) / gf } else { 1.0 },
                if mf > 1.0 { (nf - 1.0) / nf * s / gf } else { 0.0 },
            ),
            (
                AllReduce,
                Algorithm::Tree,
                2.0 * s * (gf - 1.0) / gf,
                2.0 * s * (mf - 1.0) / mf / gf,
            ),
            (
                AllReduce,
                Algorithm::Hierarchical,
                2.0 * s * (gf - 1.0) / gf,
                2.0 * s * (mf - 1.0) / mf / gf,
            ),
            (
                ReduceScatter,
                Algorithm::Hierarchical,
                s * (gf - 1.0) / gf,
                s * (mf - 1.0) / mf / gf,
            ),
            (AllToAll, Algorithm::Direct, s * (gf - 1.0) / nf, s * (nf - gf) / nf),
        ];
        let mut combos = combos;
        if g >= 2 {
            combos.push((
                AllReduce,
                Algorithm::Nvls,
                s * (gf + 1.0) / gf,
                2.0 * s * (mf - 1.0) / mf / gf,
            ));
        }
        for (kind, algo, up, nic) in combos {
            for c in variants(&base) {
                let k = cost(kind, algo, layout(n, g), s, &c).unwrap();
                let pxn = if algo == Algorithm::Direct && c.topology.rail_optimized {
                    nic * (gf - 1.0) / gf
                } else {
                    0.0
                };
                let got_up = k.tier_bytes(Tier::ScaleUp) + k.tier_bytes(Tier::Nvls);
                assert!(
                    (got_up - up - pxn).abs() < 1e-3,
                    "{kind:?} {algo:?} n={n} g={g}: up {got_up} vs {up}"
                );
                assert!(
                    (k.nic_bytes() - nic).abs() < 1e-3,
                    "{kind:?} {algo:?} n={n} g={g}: nic {} vs {nic}",
                    k.nic_bytes()
                );
            }
        }
        // halving-doubling and pairwise: the ring's total, wherever it goes
        if n.is_power_of_two() {
            for kind in [AllReduce, AllGather, ReduceScatter] {
                for c in variants(&base) {
                    let k = cost(kind, Algorithm::HalvingDoubling, layout(n, g), s, &c).unwrap();
                    assert!((k.bytes_per_rank() - ring_bytes_per_rank(kind, n, s)).abs() < 1e-3);
                }
            }
        }
        let k = cost(AllToAll, Algorithm::Pairwise, layout(n, g), s, &base).unwrap();
        assert!((k.bytes_per_rank() - (nf - 1.0) / nf * s).abs() < 1e-3);
    }
}

/// Ring and tree all-reduce on an idle network: the textbook closed forms.
#[test]
fn ring_and_tree_match_their_closed_forms_on_an_idle_network() {
    let c = cluster(256, 8);
    let f = Fabric::new(&c);
    let (n, g, m) = (256.0f64, 8.0f64, 32.0f64);
    let s = 1024.0f64.powi(3);
    let (up, nic) = (f.up_bytes_per_s, f.nic_bytes_per_s);
    let (a_up, a_out) = (1.5e-6, 4e-6);
    // ring: k S over the ring, NIC carries k S / g, NVLink k S (g-1)/g; 2(n-1) mean hops
    let k = 2.0 * (n - 1.0) / n * s;
    let ring = idle_time_s(
        &cost(CollectiveKind::AllReduce, Algorithm::Ring, layout(256, 8), s, &c).unwrap(),
        &c,
        0.0,
    );
    let want = (k / g / nic).max(k * (g - 1.0) / g / up) + 2.0 * (n - 1.0) * (a_out + (g - 1.0) * a_up) / g;
    assert!((ring - want).abs() / want < 1e-9, "ring {ring} vs {want}");
    // tree: 2 S (m-1)/m / g on the NIC, 2 S (g-1)/g on the chain, 2 (g-1 + log2 m) hops
    let tree = idle_time_s(
        &cost(CollectiveKind::AllReduce, Algorithm::Tree, layout(256, 8), s, &c).unwrap(),
        &c,
        0.0,
    );
    let want = (2.0 * s * (m - 1.0) / m / g / nic).max(2.0 * s * (g - 1.0) / g / up)
        + 2.0 * ((g - 1.0) * a_up + m.log2() * a_out);
    assert!((tree - want).abs() / want < 1e-9, "tree {tree} vs {want}");
    // tiny messages: the tree's logarithmic depth beats the ring's 2(n-1) hops
    let small = |a| {
        idle_time_s(
            &cost(CollectiveKind::AllReduce, a, layout(256, 8), 1024.0, &c).unwrap(),
            &c,
            0.0,
        )
    };
    assert!(small(Algorithm::Tree) < small(Algorithm::Ring) / 5.0);
}

/// A tighter spine (or core) never speeds a cross-spine collective up, and slows every one
/// whose bytes cross it once the ratio is high; within one leaf nothing changes.
#[test]
fn oversubscription_monotonically_slows_cross_spine_collectives() {
    let s = 1024.0f64.powi(3);
    let cases = [
        (CollectiveKind::AllReduce, Algorithm::Ring),
        (CollectiveKind::AllReduce, Algorithm::Tree),
        (CollectiveKind::AllReduce, Algorithm::Hierarchical),
        (CollectiveKind::AllToAll, Algorithm::Direct),
        (CollectiveKind::AllReduce, Algorithm::HalvingDoubling),
    ];
    for (kind, algo) in cases {
        for three_tier in [false, true] {
            let mut last = 0.0;
            let mut first = 0.0;
            for ratio in [1.0, 1.5, 2.0, 4.0, 8.0, 16.0] {
                let mut c = cluster(512, 8);
                c.nodes_per_leaf = 1;
                if three_tier {
                    c.topology.fat_tree_tiers = 3;
                    c.topology.leaves_per_pod = 8;
                    c.topology.core_oversubscription = ratio;
                } else {
                    c.oversubscription = ratio;
                }
                let t = idle_time_s(&cost(kind, algo, layout(512, 8), s, &c).unwrap(), &c, 0.0);
                assert!(
                    t >= last * (1.0 - 1e-12),
                    "{kind:?} {algo:?} ratio {ratio}: {t} < {last}"
                );
                if ratio == 1.0 {
                    first = t;
                }
                last = t;
            }
            assert!(
                last > 1.5 * first,
                "{kind:?} {algo:?} 3-tier={three_tier}: {first} -> {last}"
            );
        }
        // one leaf holds the whole group: the ratio is invisible
        let mut c = cluster(64, 8);
        c.nodes_per_leaf = 8;
        let flat = idle_time_s(&cost(kind, algo, layout(64, 8), s, &c).unwrap(), &c, 0.0);
        c.oversubscription = 8.0;
        let over = idle_time_s(&cost(kind, algo, layout(64, 8), s, &c).unwrap(), &c, 0.0);
        assert!((over - flat).abs() / flat < 1e-12, "{kind:?} {algo:?}");
    }
}

/// Rails keep same-rail traffic under one switch: an 8:1 spine costs a rail-optimized ring
/// nothing while the group fits under the rail switches.
#[test]
fn rail_optimized_fabric_keeps_rings_off_the_spine() {
    let s = 1024.0f64.powi(3);
    let mut c = cluster(256, 8);
    c.oversubscription = 8.0;
    let t = |c: &ClusterSpec| {
        idle_time_s(
            &cost(CollectiveKind::AllReduce, Algorithm::Ring, layout(256, 8), s, c).unwrap(),
            c,
            0.0,
        )
    };
    let tor = t(&c);
    c.topology.rail_optimized = true;
    let rail = t(&c);
    c.oversubscription = 1.0;
    let flat = t(&c);
    assert!(tor > 1.5 * rail, "{tor} vs {rail}");
    assert!((rail - flat).abs() / flat < 1e-12);
}

/// A NVL72-style domain keeps a 72-GPU all-reduce on NVLink.
#[test]
fn scale_up_domain_larger_than_a_node_keeps_traffic_on_nvlink() {
    let mut c = cluster(144, 4);
    c.gpu = gpu_preset("B200").unwrap();
    c.topology.scale_up_domain = 72;
    let k = cost(CollectiveKind::AllReduce, Algorithm::Ring, layout(144, 72), 1e9, &c).unwrap();
    assert!((k.nic_bytes() - 2.0 * 143.0 / 144.0 * 1e9 / 72.0).abs() < 1e-3);
    let k = cost(CollectiveKind::AllReduce, Algorithm::Ring, layout(72, 72), 1e9, &c).unwrap();
    assert_eq!(k.nic_bytes(), 0.0);
}

/// Torus all-reduce: reduce-scatter then all-gather along each dimension of a bidirectional
/// ring, `sum_i 2 (k_i-1)/k_i S_i / B + 2 (k_i-1) a` with `S_(i+1) = S_i / k_i`.
#[test]
fn torus_ring_all_reduce_matches_its_closed_form() {
    let s = 1024.0f64.powi(3);
    for dims in [vec![8u32, 8], vec![4, 4, 4], vec![16, 4, 2]] {
        let n: u32 = dims.iter().product();
        let mut c = cluster(n, 1);
        c.topology.torus = dims.clone();
        c.topology.torus_link_gbyte_per_s = 50.0;
        let b = 2.0 * 50e9 * c.scale_up_efficiency;
        let a = c.scale_up_latency_us * 1e-6;
        let mut want = 0.0;
        let mut si = s;
        for &k in &dims {
            let kf = k as f64;
            want += 2.0 * (kf - 1.0) / kf * si / b + 2.0 * (kf - 1.0) * a;
            si /= kf;
        }
        let got = idle_time_s(
            &cost(CollectiveKind::AllReduce, Algorithm::Ring, layout(n, 1), s, &c).unwrap(),
            &c,
            0.0,
        );
        assert!((got - want).abs() / want < 1e-9, "{dims:?}: {got} vs {want}");
        // bytes: the flat ring's 2(n-1)/n S (the sum telescopes), in far fewer hops
        let k = cost(CollectiveKind::AllReduce, Algorithm::Ring, layout(n, 1), s, &c).unwrap();
        assert!((k.tier_bytes(Tier::Torus) - ring_bytes_per_rank(CollectiveKind::AllReduce, n, s)).abs() < 1e-3);
        let hops: u32 = k.phases.iter().map(|p| p.steps).sum();
        assert_eq!(hops, dims.iter().map(|k| 2 * (k - 1)).sum::<u32>());
        assert!(hops < 2 * (n - 1));
    }
}

/// Slow reference: max-min fair rates from scratch by progressive filling over all links.
fn reference_max_min(caps: &[f64], flows: &[Vec<u32>]) -> Vec<f64> {
    let mut rate = vec![0.0; flows.len()];
    let mut frozen = vec![false; flows.len()];
    let mut left = caps.to_vec();
    loop {
        let mut best: Option<(usize, f64)> = None;
        for (l, cap) in left.iter().enumerate() {
            let k = (0..flows.len())
                .filter(|&i| !frozen[i] && flows[i].contains(&(l as u32)))
                .count();
            if k > 0 {
                let share = cap / k as f64;
                if best.is_none_or(|(_, s)| share < s) {
                    best = Some((l, share));
                }
            }
        }
        let Some((l, share)) = best else { break };
        for i in 0..flows.len() {
            if !frozen[i] && flows[i].contains(&(l as u32)) {
                frozen[i] = true;
                rate[i] = share;
                for &x in &flows[i] {
                    left[x as usize] -= share;
                }
            }
        }
    }
    rate
}

/// FlowNetwork's incremental (component-only) max-min solver against the slow reference on
/// random instances, as flows start and finish at different times: same rates; no link
/// over capacity; every flow has a saturated link on which no flow is faster.
#[test]
fn flow_network_max_min_matches_a_slow_reference_on_random_cases() {
    use rand::{RngExt, SeedableRng};
    use trainsim::network::FlowNetwork;
    use trainsim::units::SimTime;
    for seed in 0..300u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut net = FlowNetwork::new();
        let nl = rng.random_range(1..10u32);
        let caps: Vec<f64> = (0..nl).map(|_| rng.random_range(1.0..100.0) * 1e9).collect();
        for &c in &caps {
            net.add_link(c);
        }
        let mut now = SimTime::ZERO;
        for round in 0..4 {
            for i in 0..rng.random_range(1..8u32) {
                let want = rng.random_range(1..=trainsim::network::MAX_FLOW_LINKS);
                let mut links: Vec<u32> = Vec::new();
                for _ in 0..want {
                    let l = rng.random_range(0..nl);
                    if !links.contains(&l) {
                        links.push(l);
                    }
                }
                let bytes = rng.random_range(0.1..2.0) * 1e9;
                net.start_transfer(now, &[(&links, bytes)], SimTime::ZERO, (round * 100 + i) as u64);
            }
            let rates = net.flow_rates();
            let link_sets: Vec<Vec<u32>> = rates.iter().map(|(l, _)| l.clone()).collect();
            let reference = reference_max_min(&caps, &link_sets);
            let mut load = vec![0.0; nl as usize];
            for ((links, r), want) in rates.iter().zip(&reference) {
                assert!(
                    (r - want).abs() <= 1e-9 * want.max(1.0),
                    "seed {seed} round {round}: {r} vs reference {want}"
                );
                for &l in links {
                    load[l as usize] += r;
                }
            }
            for l in 0..nl as usize {
                assert!(load[l] <= caps[l] * (1.0 + 1e-9), "seed {seed}: link {l} over capacity");
                assert!((net.capacity(l as u32) - caps[l]).abs() < 1e-3);
            }
            for (links, r) in &rates {
                let bottleneck = links.iter().any(|&l| {
                    let saturated = load[l as usize] >= caps[l as usize] * (1.0 - 1e-9);
                    let max_on_link = rates
                        .iter()
                        .filter(|(ls, _)| ls.contains(&l))
                        .map(|(_, r)| *r)
                        .fold(0.0, f64::max);
                    saturated && *r >= max_on_link * (1.0 - 1e-9)
                });
                assert!(bottleneck, "seed {seed}: flow at {r} has no bottleneck");
            }
            // let some flows finish before the next arrivals
            if let Some(t) = net.next_completion() {
                now = t;
                net.advance(now);
            }
        }
    }
}
