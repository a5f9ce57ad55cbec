//! The NCCL model (issue 12) against the round-2 nccl-tests calibration data: the committed
//! constants are the in-sample fit, leave-one-system-out meets the targets, and the model's
//! shape: latency floor, monotone time, protocol switches, all-to-all growing with peers,
//! rings declining with node count on flow-routed fabrics, speed, located errors.

use std::process::Command;
use trainsim::network::calibration::{CALIBRATED, PRIOR};
use trainsim::network::fitting::{self, Metrics, Param};
use trainsim::network::nccl::{self, Point};
use trainsim::network::tuner::{self, NcclAlgorithm, Protocol, System};
use trainsim::network::{CollectiveKind, GroupLayout};

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;
const H100_IB: &str = "xxrjun-example-cluster01";
const P5_EFA: &str = "aws-p5-hyperpod-efa";
const B200_IB: &str = "together-b200-dgxc-use3a-ss";

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

/// The round-2 points and the round-1 cases (which every fit trains on).
fn points() -> Vec<Point> {
    let mut p = nccl::load_round2(&crate::repo(
        "scenarios/validation/nccl-tests/round2/nccl-tests-calibration.json",
    ))
    .unwrap();
    for (_, c) in nccl::load_cases(&crate::repo("scenarios/validation/nccl-tests")).unwrap() {
        p.push(nccl::case_point(&c).unwrap());
    }
    p
}

/// `system` with `ranks` GPUs, 8 per node, the whole cluster one group.
fn sys(system: &str, ranks: u32) -> System {
    let c = nccl::round2_cluster(system, ranks).unwrap();
    System::new(
        &c,
        GroupLayout {
            size: ranks,
            members_per_node: ranks.min(8),
        },
    )
}

fn time_s(s: &System, kind: CollectiveKind, bytes: f64) -> f64 {
    tuner::predict(s, kind, bytes, None, None, &CALIBRATED).time_s
}

fn choice(s: &System, kind: CollectiveKind, bytes: f64) -> (NcclAlgorithm, Protocol) {
    let c = tuner::predict(s, kind, bytes, None, None, &CALIBRATED).choice;
    (c.algorithm, c.protocol)
}

/// A table row's figures against the targets, `large` the bar at >= 64 MiB.
fn check(what: &str, m: &Metrics, large: f64, errors: &mut Vec<String>) {
    if let Some(v) = m.mape_large {
        if v > large {
            errors.push(format!(
                "{what}: MAPE at >= 64 MiB {:.1}% > {:.0}%",
                v * 100.0,
                large * 100.0
            ));
        }
    }
    if let Some(v) = m.mape_1mib {
        if v > 0.30 {
            errors.push(format!("{what}: MAPE at 1 MiB {:.1}% > 30%", v * 100.0));
        }
    }
    if let Some((_, lo, hi)) = m.smallest() {
        if lo < 0.5 || hi > 2.0 {
            errors.push(format!(
                "{what}: smallest size predicted/measured in [{lo:.2}, {hi:.2}], not within 2x"
            ));
        }
    }
}

/// Every operation of the calibration file loads (none is "unknown"), on its three systems.
#[test]
fn every_round2_operation_is_expressible() {
    let p = points();
    let round2: Vec<&Point> = p.iter().filter(|x| !x.system.starts_with("round1:")).collect();
    assert_eq!(
        round2.len(),
        359,
        "points of the 37 entries (scaling summaries expanded)"
    );
    let mut entries: Vec<&str> = round2.iter().map(|x| x.entry.as_str()).collect();
    entries.sort();
    entries.dedup();
    assert_eq!(entries.len(), 37);
    for op in ["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "sendrecv"] {
        assert!(round2.iter().any(|x| x.kind.name() == op), "{op}");
    }
    for s in nccl::ROUND2_SYSTEMS {
        assert!(round2.iter().any(|x| x.system == s), "{s}");
    }
}

/// The committed constants (src/network/calibration.rs) are the fit on every point, and
/// in-sample every system and operation is within 12% at >= 64 MiB (EFA all-reduce 11.4%, the
/// worst) and 2x at its smallest size.
#[test]
fn committed_constants_are_the_in_sample_fit() {
    let p = points();
    let fit = fitting::fit(&p, &Param::ALL, &PRIOR);
    for param in Param::ALL {
        let (got, committed) = (param.get(&fit.constants), param.get(&CALIBRATED));
        assert!(
            (got - committed).abs() <= 0.01 * committed.abs(),
            "{}: fit {got:.4}, committed {committed:.4}",
            param.name()
        );
    }
    let table = fitting::metrics(&p, &fitting::predict_all(&p, &CALIBRATED));
    let mut errors = Vec::new();
    for ((system, op), m) in table.iter().filter(|((s, _), _)| !s.starts_with("round1:")) {
        check(&format!("in-sample {system} {op}"), m, 0.12, &mut errors);
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Leave-one-system-out (fit on two systems, predict the third): the targets.
#[test]
fn leave_one_system_out_meets_the_targets() {
    let p = points();
    let folds = fitting::leave_one_system_out(&p, &nccl::ROUND2_SYSTEMS, &Param::ALL, &PRIOR);
    assert_eq!(folds.len(), 3);
    let mut errors = Vec::new();
    let mut rows = 0;
    for f in &folds {
        for ((system, op), m) in &f.metrics {
            assert_eq!(system, &f.held_out);
            rows += 1;
            check(&format!("LOSO {system} {op}"), m, 0.15, &mut errors);
        }
    }
    assert_eq!(rows, 10, "system x operation rows");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Small messages pay NCCL's latency: an 8-byte all-reduce takes tens of microseconds on one
/// node and more across two (nccl-tests: 35-45 us and 70-165 us), not 3-21 us.
#[test]
fn small_messages_pay_nccls_latency() {
    let one = time_s(&sys(H100_IB, 8), CollectiveKind::AllReduce, 8.0) * 1e6;
    let two = time_s(&sys(H100_IB, 16), CollectiveKind::AllReduce, 8.0) * 1e6;
    assert!((25.0..=60.0).contains(&one), "one node: {one:.1} us");
    assert!((60.0..=180.0).contains(&two) && two > one, "two nodes: {two:.1} us");
}

/// time(size) never decreases from 8 B to 16 GiB, for NCCL's choice and for every candidate
/// algorithm and protocol, on the three systems at 1, 2 and 16 nodes.
#[test]
fn time_is_monotone_in_size() {
    let kinds = [
        CollectiveKind::AllReduce,
        CollectiveKind::AllGather,
        CollectiveKind::ReduceScatter,
        CollectiveKind::AllToAll,
        CollectiveKind::SendRecv,
    ];
    for system in nccl::ROUND2_SYSTEMS {
        for ranks in [8, 16, 128] {
            let s = sys(system, ranks);
            for kind in kinds {
                let cands = tuner::candidates(&s, kind, None);
                let mut last_auto = 0.0;
                let mut last: Vec<f64> = vec![0.0; cands.as_slice().len()];
                let mut size = 8.0;
                while size <= 16.0 * GIB {
                    let t = time_s(&s, kind, size);
                    assert!(
                        t >= last_auto * (1.0 - 1e-9),
                        "{system} {ranks} {kind:?} at {size} B: {t} < {last_auto}"
                    );
                    last_auto = t;
                    for (i, c) in cands.as_slice().iter().enumerate() {
                        let t = tuner::time_s(&s, kind, size, *c, &CALIBRATED, tuner::RingForm::Pipelined);
                        assert!(
                            t.is_finite() && t > 0.0 && t >= last[i] * (1.0 - 1e-9),
                            "{system} {ranks} {kind:?} {c:?} at {size} B"
                        );
                        last[i] = t;
                    }
                    size *= 2.0;
                }
            }
        }
    }
}

/// NCCL's protocol and algorithm switches: one H100 node's all-reduce runs ring/LL up to
/// 256 KiB and NVLS from 2 MiB; a 16-node B200 all-gather's ring runs LL to 2 MiB, LL128
/// from 4 MiB and Simple from 1 GiB.
#[test]
fn protocols_switch_where_nccls_tuner_switches() {
    let h = sys(H100_IB, 8);
    let ar = CollectiveKind::AllReduce;
    assert_eq!(choice(&h, ar, 8.0), (NcclAlgorithm::Ring, Protocol::Ll));
    assert_eq!(choice(&h, ar, 256.0 * 1024.0), (NcclAlgorithm::Ring, Protocol::Ll));
    assert_eq!(choice(&h, ar, 2.0 * MIB), (NcclAlgorithm::Nvls, Protocol::Simple));
    assert_eq!(choice(&h, ar, 8.0 * GIB), (NcclAlgorithm::Nvls, Protocol::Simple));
    let b = sys(B200_IB, 128);
    let ag = CollectiveKind::AllGather;
    assert_eq!(choice(&b, ag, 2.0 * MIB), (NcclAlgorithm::Ring, Protocol::Ll));
    assert_eq!(choice(&b, ag, 4.0 * MIB), (NcclAlgorithm::Ring, Protocol::Ll128));
    assert_eq!(choice(&b, ag, 512.0 * MIB), (NcclAlgorithm::Ring, Protocol::Ll128));
    assert_eq!(choice(&b, ag, GIB), (NcclAlgorithm::Ring, Protocol::Simple));
}

/// All-to-all at a fixed 1 MiB per peer costs more with every doubling of the peers (a cost
/// per remote peer and the NIC), not one hop whatever the rank count.
#[test]
fn all_to_all_grows_with_peers() {
    let mut last = 0.0;
    for ranks in [16, 32, 64, 256, 1024, 2048] {
        let t = time_s(&sys(B200_IB, ranks), CollectiveKind::AllToAll, ranks as f64 * MIB);
        assert!(t > last * 1.5, "{ranks} ranks: {t} s after {last} s");
        last = t;
    }
    // per peer: at least the fitted per-peer latency for each of the 2,040 remote peers
    assert!(last >= 2040.0 * CALIBRATED.all_to_all_peer_latency_s, "{last}");
}

/// Rings slow with node count on a flow-routed fabric (B200 over InfiniBand: 345 -> 291 GB/s
/// from 2 to 46 nodes in the data) and not on a packet-sprayed one (EFA).
#[test]
fn rings_decline_with_nodes_on_flow_routed_fabrics_only() {
    let busbw = |system: &str, nodes: u32| {
        let s = sys(system, nodes * 8);
        let t = tuner::predict(
            &s,
            CollectiveKind::AllReduce,
            16.0 * GIB,
            Some(NcclAlgorithm::Ring),
            None,
            &CALIBRATED,
        )
        .time_s;
        16.0 * GIB / t * tuner::bus_factor(CollectiveKind::AllReduce, nodes * 8) / 1e9
    };
    let (ib2, ib46) = (busbw(B200_IB, 2), busbw(B200_IB, 46));
    // the model declines 345 -> 318 GB/s (the data 345 -> 291: it falls short of the decline)
    assert!(ib46 < 0.95 * ib2, "B200 IB: {ib2:.0} -> {ib46:.0} GB/s");
    assert!(
        (ib2 / 345.0 - 1.0).abs() < 0.1 && (ib46 / 291.0 - 1.0).abs() < 0.1,
        "{ib2:.0} {ib46:.0}"
    );
    let (efa2, efa32) = (busbw(P5_EFA, 2), busbw(P5_EFA, 32));
    assert!((efa32 / efa2 - 1.0).abs() < 0.03, "EFA: {efa2:.0} -> {efa32:.0} GB/s");
}

/// The speed bars through the command: a 2,048-rank all-to-all at 1 GiB, and P1 of
/// PEERS.md at 4,096 GPUs under the NCCL model, each well under a second of wall time.
#[test]
fn large_groups_run_fast() {
    let out = std::env::temp_dir().join(format!("trainsim-nccl-speed-{}", std::process::id()));
    for (op, gpus, per_node) in [("all_to_all", "2048", "8"), ("all_reduce", "4096", "1")] {
        let (code, stdout, err) = trainsim(&[
            "collective",
            "--op",
            op,
            "--gpus",
            gpus,
            "--gpus-per-node",
            per_node,
            "--min-bytes",
            "1G",
            "--max-bytes",
            "1G",
            "--no-chart",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let wall: f64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("simulated 1 sizes in "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(wall < 1.0, "{op} over {gpus}: {wall} s");
    }
}

/// Bad fabric, protocol, operation and sizes: exit 2 with a message naming what is allowed.
#[test]
fn bad_network_inputs_get_located_errors() {
    let cases: [(&[&str], &str); 5] = [
        (&["--fabric", "myrinet"], "\"efa-p5\""),
        (&["--protocol", "ll256"], "\"ll128\""),
        (&["--op", "gather"], "\"all_gather\""),
        (&["--min-bytes", "1X"], "--min-bytes"),
        (&["--model", "analytic"], "\"hop\""),
    ];
    for (extra, want) in cases {
        let mut args = vec!["collective", "--no-chart"];
        args.extend(extra.iter());
        let (code, _, err) = trainsim(&args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(
            err.contains(want) && !err.contains("panicked"),
            "{extra:?}: want {want}: {err}"
        );
    }
    let bad = "[cluster]\nnum_gpus = 16\n[cluster.gpu]\npreset = \"H100-SXM\"\n[cluster.network]\nfabric = \"myrinet\"\n[model]\npreset = \"llama2-7b\"\n[parallel]\ntp = 8\n[training]\nglobal_batch_size = 16\nseq_length = 2048\n";
    let err = trainsim::scenario::Scenario::from_source(bad, std::path::Path::new("bad.toml"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cluster.network.fabric") && err.contains("ib-ndr"),
        "{err}"
    );
}

/// What the training simulation charges (ports loaded with the choice's wire bytes, the rest
/// latency) takes the model's time alone on an idle network (within 1%, never less), and a two-node ring all-reduce
/// puts exactly its closed-form bytes on the NIC: 2(n-1)/n S / g, times LL128's 128/120.
#[test]
fn the_training_charge_is_the_models_time_and_conserves_bytes() {
    use trainsim::network::algorithm::Algorithm;
    use trainsim::network::collective::nccl_cost;
    use trainsim::network::{ClusterNetwork, Tier};
    for (system, ranks) in [(H100_IB, 8), (H100_IB, 16), (B200_IB, 128), (P5_EFA, 64)] {
        let c = nccl::round2_cluster(system, ranks).unwrap();
        let layout = GroupLayout {
            size: ranks,
            members_per_node: ranks.min(8),
        };
        let net = ClusterNetwork::new(&c, 0);
        for kind in [
            CollectiveKind::AllReduce,
            CollectiveKind::AllGather,
            CollectiveKind::ReduceScatter,
        ] {
            for size in [8.0, 64.0 * 1024.0, 32.0 * MIB, 4.0 * GIB] {
                let charge = nccl_cost(kind, Algorithm::Auto, None, layout, size, &c).unwrap();
                let idle = net.cost_idle_s(&charge.cost);
                let model = time_s(&System::new(&c, layout), kind, size);
                // the ports cannot beat their capacity: where the model is faster than the
                // decomposition's bytes at the ports' rates (NVLS at its fitted factor), the
                // charge is the port time (at most 1% more)
                assert!(
                    idle >= model * (1.0 - 1e-9) && idle <= model * 1.01 && charge.cost.latency_s >= 0.0,
                    "{system} {ranks} {kind:?} {size}: charged {idle} s, model {model} s"
                );
            }
        }
    }
    let c = nccl::round2_cluster(H100_IB, 16).unwrap();
    let layout = GroupLayout {
        size: 16,
        members_per_node: 8,
    };
    let size = 256.0 * MIB;
    let charge = nccl_cost(
        CollectiveKind::AllReduce,
        Algorithm::Ring,
        Some(Protocol::Ll128),
        layout,
        size,
        &c,
    )
    .unwrap();
    let nic: f64 = charge
        .cost
        .loads
        .iter()
        .filter(|(t, _)| *t == Tier::Leaf)
        .map(|(_, b)| b)
        .sum();
    let want = 2.0 * 15.0 / 16.0 * size / 8.0 * 128.0 / 120.0;
    assert!((nic / want - 1.0).abs() < 1e-9, "NIC bytes {nic}, closed form {want}");
}
