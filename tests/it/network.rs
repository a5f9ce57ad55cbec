use crate::scenario;
use std::process::Command;

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
            r.breakdown.total_dp_comm_s >= last_dp * (1.0 - 1e-9),
            "ratio {ratio}: DP comm shrank"
        );
        let rel = (r.scale_out_bytes_per_step_per_gpu - base.scale_out_bytes_per_step_per_gpu).abs()
            / base.scale_out_bytes_per_step_per_gpu;
        assert!(rel < 1e-9, "ratio {ratio}: NIC bytes changed by {rel}");
        last_step = r.step_time_s;
        last_dp = r.breakdown.total_dp_comm_s;
    }
    // at 8:1 half of the NIC bytes cross the spine at 1/8 of NIC rate: 4x the NIC time
    assert!(
        last_dp > 2.0 * base.breakdown.total_dp_comm_s,
        "{last_dp} vs {}",
        base.breakdown.total_dp_comm_s
    );
    assert!(last_step > base.step_time_s);
}

/// Every DP group inside one leaf (32 nodes per leaf): the ratio changes nothing.
#[test]
fn oversubscription_is_invisible_within_one_leaf() {
    let a = with(1.0, 32);
    let b = with(8.0, 32);
    assert_eq!(a.step_time_s, b.step_time_s);
    assert_eq!(a.breakdown.total_dp_comm_s, b.breakdown.total_dp_comm_s);
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
        (&["--op", "broadcast"], "unknown collective 'broadcast'"),
        (&["--min-bytes", "8M", "--max-bytes", "1K"], "larger than --max-bytes"),
        (&["--max-bytes", "12Q"], "unknown unit"),
        (
            &["--oversubscription", "0.5"],
            "--oversubscription 0.5: must be a ratio of at least 1",
        ),
        (&["--gpus", "12"], "multiple of --gpus-per-node"),
        (&["--gpu", "Z80"], "known GPU presets"),
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

/// P1 at 4,096 GPUs (PEERS.md): one flow per representative, far under a second; the
/// bandwidth term is the textbook 2(n-1)/n * 1 GiB / 50 GiB/s.
#[test]
fn collective_table_for_p1_runs_fast_and_matches_the_ring_closed_form() {
    let out = std::env::temp_dir().join(format!("trainsim-p1-{}", std::process::id()));
    let started = std::time::Instant::now();
    let (code, stdout, err) = trainsim(&[
        "collective",
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
