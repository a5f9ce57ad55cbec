use crate::{repo, scenario};
use std::process::Command;
use trainsim::scenario::Scenario;
use trainsim::simulation::breakdown::Category;
use trainsim::simulation::{run, RunResult};
use trainsim::training::convergence::{Allocation, LossLaw};
use trainsim::training::TrainingOutcome;

fn run_file(rel: &str) -> RunResult {
    let s = Scenario::load(&repo(rel)).unwrap_or_else(|e| panic!("{e}"));
    run(&s.input).expect("simulates")
}

fn to_target(r: &RunResult) -> &TrainingOutcome {
    r.to_target.as_ref().expect("the scenario has a [target]")
}

/// Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (arXiv:2203.15556),
/// Table 3 ("Estimated optimal training FLOPs and training tokens for various model sizes",
/// the projections of Approach 1): (parameters, FLOPs, tokens). The FLOPs are `6 N D`.
const HOFFMANN_TABLE_3: [(f64, f64, f64); 9] = [
    (400e6, 1.92e19, 8.0e9),
    (1e9, 1.21e20, 20.2e9),
    (10e9, 1.23e22, 205.1e9),
    (67e9, 5.76e23, 1.5e12),
    (175e9, 3.85e24, 3.7e12),
    (280e9, 9.90e24, 5.9e12),
    (520e9, 3.43e25, 11.0e12),
    (1e12, 1.27e26, 21.2e12),
    (10e12, 1.30e28, 216.2e12),
];

/// Relative errors `(N_opt / N - 1, D_opt / D - 1)` of an allocation against each Table 3 row.
fn table_3_errors(alloc: Allocation, law: &LossLaw) -> Vec<(f64, f64, f64)> {
    HOFFMANN_TABLE_3
        .iter()
        .map(|&(n, c, d)| {
            let (n_opt, d_opt) = alloc.compute_optimal(law, c);
            (n, n_opt / n - 1.0, d_opt / d - 1.0)
        })
        .collect()
}

/// Issue #5: the compute-optimal allocation against Hoffmann Table 3, every row within 15%
/// on parameters and on tokens.
///
/// * `allocation = approach1` reproduces the rule Table 3 was made with: Hoffmann's
///   Approach 1 power law with its published exponent (Table 2: `a` = 0.50) through the
///   Approach-1 optimum the paper states at 1e21 FLOPs (Appendix D.4: 2.86B parameters),
///   `D = C / 6N`. No constant is fitted to Table 3. Worst row: 67B, -6.8% tokens (the
///   table's 1.5T is rounded: 6 x 67B x 1.5T = 6.03e23, not 5.76e23); the 10T row is +3.1% /
///   -2.8%. Within the paper's 10th-90th percentile of `a` (0.488-0.502) the 10T row would
///   move between -15% and +7% on parameters.
/// * `allocation = loss_law` with `besiroglu2024` (the Approach 3 refit, the default law) is
///   within 15% for every row from 400M to 1T parameters (worst: +14.8% params, -13.1%
///   tokens at 1T). The 10T row is off by +23% / -19%: an extrapolation far past the fitted
///   runs (at most 16B parameters), where the refit's exponent (0.513) and Approach 1's
///   (0.50) part ways. Asserted as such, so the documented gap stays true.
/// * `allocation = loss_law` with `hoffmann2022` (Approach 3 constants as printed, rounded)
///   cannot reach 15% against Table 3: its exponent `beta/(alpha+beta)` = 0.45 instead of
///   0.50 gives models 24% (400M) to 70% (10T) smaller and 31% to 237% more tokens (e.g. 32B
///   params and 3.0T tokens for Gopher's 5.76e23 FLOPs against 67B and 1.5T). This is the
///   known inconsistency of the rounded constants that Besiroglu et al. 2024 point out. For
///   it we test what the constants imply: the closed form is the iso-FLOP minimum of
///   `L(N, D)` found by brute force, with `6 N D = C`.
#[test]
fn chinchilla_compute_optimal_allocation_vs_hoffmann_table_3() {
    let law = LossLaw::BESIROGLU2024;
    let approach1 = table_3_errors(Allocation::Approach1, &law);
    let loss_law = table_3_errors(Allocation::LossLaw, &law);
    eprintln!("Hoffmann Table 3: params, then (N, D) errors of approach1 and of loss_law besiroglu2024");
    for ((n, en, ed), (_, ln, ld)) in approach1.iter().zip(&loss_law) {
        eprintln!("{n:9.3e}  approach1 {en:+.3} {ed:+.3}  loss_law {ln:+.3} {ld:+.3}");
    }
    assert_eq!(approach1.len(), 9);
    for (n, en, ed) in &approach1 {
        assert!(
            en.abs() < 0.15 && ed.abs() < 0.15,
            "approach1, {n:e} params: {en:+.3} params, {ed:+.3} tokens"
        );
    }
    for (n, en, ed) in &loss_law[..8] {
        assert!(
            en.abs() < 0.15 && ed.abs() < 0.15,
            "loss_law besiroglu2024, {n:e} params: {en:+.3} params, {ed:+.3} tokens"
        );
    }
    let (_, en, ed) = loss_law[8];
    assert!(en > 0.15 && ed < -0.15, "10T row: {en:+.3} {ed:+.3}");

    let law = LossLaw::HOFFMANN2022;
    for (n, c, _) in HOFFMANN_TABLE_3 {
        let (n_opt, d_opt) = Allocation::LossLaw.compute_optimal(&law, c);
        assert!((6.0 * n_opt * d_opt / c - 1.0).abs() < 1e-9);
        // brute force over log N, 0.05% steps
        let mut best = (f64::INFINITY, 0.0);
        for i in 0..=20000 {
            let trial = n * 0.1 * 1.0005f64.powi(i);
            let l = law.loss(trial, c / (6.0 * trial));
            if l < best.0 {
                best = (l, trial);
            }
        }
        assert!(
            (best.1 / n_opt - 1.0).abs() < 0.002,
            "{c:e}: brute {:e} vs closed {n_opt:e}",
            best.1
        );
        // and the documented shortfall against Table 3
        assert!(n_opt < 0.8 * n, "{c:e}: {n_opt:e}");
    }
}

fn dp_scenario(dp: u32, target: &str) -> String {
    format!(
        r#"
[cluster]
num_gpus = {dp}
[cluster.gpu]
preset = "H100-SXM"
[model]
preset = "llama3-8b"
[parallel]
dp = {dp}
[training]
global_batch_size = {gbs}
seq_length = 4096
[target]
{target}
"#,
        gbs = 4 * dp
    )
}

/// At a fixed batch per GPU (4 x 4096 tokens), more data parallelism shortens the time to
/// a loss almost in proportion while the global batch is far below the critical batch
/// (about 5.8M tokens at loss 2.1), and not at all once it is far above: the steps
/// approach S_min = D_min / B_crit, and the larger DP all-reduce even makes it slightly
/// slower (1663, 442, 43.0, 45.8 h at DP 8, 32, 2048, 8192).
#[test]
fn time_to_target_falls_with_dp_until_past_the_critical_batch() {
    let time = |dp: u32| {
        let r = run(&scenario(&dp_scenario(dp, "loss = 2.1")).input).unwrap();
        let t = r.to_target.clone().unwrap();
        (t.wall_clock_to_target_h, t, r.step_time_s)
    };
    let (t8, o8, _) = time(8);
    let (t32, _, _) = time(32);
    let (t2048, o2048, _) = time(2048);
    let (t8192, o8192, step) = time(8192);
    assert!(o8.tokens_per_step < 0.05 * o8.critical_batch_tokens);
    assert!(o2048.tokens_per_step > 5.0 * o2048.critical_batch_tokens);
    assert!(t32 / t8 < 0.35, "4x GPUs below B_crit: {t8} h -> {t32} h");
    assert!(t8192 / t2048 > 0.85, "4x GPUs above B_crit: {t2048} h -> {t8192} h");
    eprintln!("time to loss 2.1 at DP 8, 32, 2048, 8192: {t8:.0}, {t32:.0}, {t2048:.1}, {t8192:.1} h");
    // the floor: S_min steps
    let floor_h = o8192.min_steps_to_target * step / 3600.0;
    assert!(t8192 / floor_h < 1.1, "{t8192} h vs S_min floor {floor_h} h");
    // tokens grow with the batch: D = D_min (1 + B / B_crit)
    assert!(o8192.tokens_to_target > 10.0 * o8.tokens_to_target);
}

#[test]
fn goodput_falls_as_mtbf_falls() {
    let mut last = (1.0, 0.0);
    for mtbf_gpu_h in [1e7, 1e6, 1e5, 1e4, 2e3] {
        let src = dp_scenario(
            64,
            &format!("tokens = 1e12\n[reliability]\ngpu_mtbf_h = {mtbf_gpu_h:e}"),
        );
        let t = run(&scenario(&src).input).unwrap().to_target.unwrap();
        assert!(t.goodput_fraction < last.0, "{mtbf_gpu_h}: {}", t.goodput_fraction);
        assert!(t.wall_clock_to_target_h > last.1);
        last = (t.goodput_fraction, t.wall_clock_to_target_h);
    }
}

/// Llama 3 405B shape at 16,384 GPUs with the `llama3` preset: 466 interruptions in 54
/// days (Llama 3 paper Table 5) = 8.6 per day; Young's interval is sqrt(2 delta M_u).
#[test]
fn llama3_training_scenario_interruptions_and_young_interval() {
    let r = run_file("scenarios/llama3-405b-h100-16384-training.toml");
    let t = to_target(&r);
    let rel = t.reliability.as_ref().unwrap();
    let published = 466.0 / 54.0;
    assert!(
        (rel.interruptions_per_day / published - 1.0).abs() < 0.2,
        "{} per day vs {published}",
        rel.interruptions_per_day
    );
    let young = (2.0 * rel.checkpoint_stall_s * rel.job_mtbf_unplanned_h.unwrap() * 3600.0).sqrt();
    assert!((rel.optimal_checkpoint_interval_s - young).abs() <= r.step_time_s / 2.0 + 1e-9);
    assert!(rel.configured_checkpoint_interval_s.is_none());
    assert_eq!(rel.checkpoint_interval_s, rel.optimal_checkpoint_interval_s);
    assert!(
        t.goodput_fraction > 0.8 && t.goodput_fraction < 1.0,
        "{}",
        t.goodput_fraction
    );
    assert_eq!(t.tokens_to_target, 15.6e12);
    assert!((t.steps_to_target - 15.6e12 / r.tokens_per_step).abs() < 1e-6);
    assert!(t.loss_at_target_nats > t.loss_floor_nats);
    // the loss curve falls and ends at the target
    let c = &t.loss_curve;
    assert!(
        c.len() > 10
            && c.windows(2)
                .all(|w| w[1].loss_nats < w[0].loss_nats && w[1].wall_clock_h > w[0].wall_clock_h)
    );
    let last = c.last().unwrap();
    assert!((last.loss_nats - t.loss_at_target_nats).abs() < 1e-9);
    assert!((last.wall_clock_h / t.wall_clock_to_target_h - 1.0).abs() < 1e-9);
}

/// Energy = power x time, by hand from the simulated breakdown (no failures).
#[test]
fn energy_is_power_times_time() {
    let src = dp_scenario(16, "steps = 1000\n[energy]\npue = 1.5\nhost_power_per_node_w = 800\nnic_power_w = 20\nswitch_power_per_nic_w = 30\ngrid_gco2_per_kwh = 100\ngpu_hour_usd = 3");
    let r = run(&scenario(&src).input).unwrap();
    let t = to_target(&r);
    let b = &r.breakdown;
    let comm = b.exposed_comm_s() + b.get(Category::Sync);
    let idle = r.step_time_s - b.compute_s() - comm;
    let p_gpu = 700.0 * (0.9 * b.compute_s() + 0.5 * comm + 0.3 * idle) / r.step_time_s;
    // 2 nodes: 2 x 800 W hosts, 16 NICs x (20 + 30) W
    let it_w = 16.0 * p_gpu + 1600.0 + 16.0 * 50.0;
    let hours = 1000.0 * r.step_time_s / 3600.0;
    let kwh = 1.5 * it_w * hours / 1000.0;
    assert!((t.energy.gpu_power_w / p_gpu - 1.0).abs() < 1e-9);
    assert!(
        (t.energy.energy_to_target_kwh / kwh - 1.0).abs() < 1e-9,
        "{} vs {kwh}",
        t.energy.energy_to_target_kwh
    );
    assert!((t.energy.co2e_kg / (kwh * 0.1) - 1.0).abs() < 1e-9);
    assert!((t.energy.cost_usd / (16.0 * hours * 3.0) - 1.0).abs() < 1e-9);
    assert_eq!(t.goodput_fraction, 1.0);
    assert_eq!(t.expected_interruptions, 0.0);
}

/// BLOOM-176B against Luccioni et al. 2022 ("Estimating the Carbon Footprint of BLOOM"),
/// 433 MWh. Their figure is GPU-hours x TDP: 1,082,990 A100-hours (384 GPUs for the
/// whole 118-day run, failures, restarts, evaluation and stalls included) x 400 W, with
/// nothing for hosts, network or cooling. Ours is facility energy: fewer GPU-hours
/// (the simulated step, about 86 s, is faster than BLOOM's ~102 s implied by its reported
/// 150 hardware TFLOP/s per GPU, and only the modelled failures add time: about 88 days in
/// all), each GPU below TDP (about 330 W), but hosts, NICs and switches added and x PUE 1.2. The two effects nearly cancel: we
/// report about 480 MWh, +11%; GPUs alone at our power come to about 270 MWh.
#[test]
fn bloom_energy_next_to_the_published_433_mwh() {
    let r = run_file("scenarios/bloom-176b-a100-384.toml");
    let t = to_target(&r);
    let mwh = t.energy.energy_to_target_kwh / 1000.0;
    eprintln!(
        "BLOOM-176B: {mwh:.0} MWh vs 433 MWh published; {:.0} GPU-hours vs 1,082,990",
        t.gpu_hours
    );
    assert!((mwh / 433.0 - 1.0).abs() < 0.3, "{mwh} MWh");
    assert!(t.gpu_hours < 1_082_990.0);
    assert!(t.energy.gpu_power_w < 400.0 && t.energy.gpu_power_w > 250.0);
    // 366e9 tokens at 2048 x 2048 tokens per step
    assert!((t.steps_to_target - 366e9 / 4194304.0).abs() < 1e-6);
}

const BASE: &str = r#"[cluster]
num_gpus = 8
[cluster.gpu]
preset = "H100-SXM"
[model]
preset = "llama3-8b"
[parallel]
tp = 8
[training]
global_batch_size = 8
seq_length = 2048
[target]
tokens = 1e12
[reliability]
gpu_mtbf_h = 50000
[energy]
pue = 1.3
"#;

/// Bad values in the new sections: exit 2, one message with file, line, field and rule.
#[test]
fn bad_target_reliability_energy_give_located_errors_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("trainsim-training-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "probability",
            "gpu_mtbf_h = 50000",
            "gpu_mtbf_h = 50000\nunplanned_fraction = 1.5",
            &[
                "probability.toml:16:1",
                "reliability.unplanned_fraction",
                "1.5",
                "[0, 1]",
            ],
        ),
        (
            "negative-size",
            "gpu_mtbf_h = 50000",
            "gpu_mtbf_h = 50000\ncheckpoint_bytes_per_param = -14",
            &[
                "negative-size.toml:16:1",
                "reliability.checkpoint_bytes_per_param",
                "-14",
                "positive",
            ],
        ),
        (
            "two-targets",
            "tokens = 1e12",
            "tokens = 1e12\nsteps = 1000",
            &[
                "two-targets.toml:14:1",
                "target.steps",
                "exactly one of",
                "target.tokens is also set",
            ],
        ),
        (
            "unknown-law",
            "tokens = 1e12",
            "tokens = 1e12\nloss_law = \"kaplan2020\"",
            &[
                "unknown-law.toml:14:1",
                "target.loss_law",
                "\"kaplan2020\"",
                "\"besiroglu2024\"",
            ],
        ),
        (
            "unreachable-loss",
            "tokens = 1e12",
            "loss = 1.5",
            &["unreachable-loss.toml:13:1", "target.loss", "must exceed"],
        ),
        (
            "pue",
            "pue = 1.3",
            "pue = 0.8",
            &["pue.toml:17:1", "energy.pue", "at least 1"],
        ),
        (
            "no-target",
            "[target]\ntokens = 1e12\n",
            "",
            &["no-target.toml:12:1", "reliability", "needs a [target]"],
        ),
        (
            "unknown-key",
            "pue = 1.3",
            "pue = 1.3\npower_w = 5",
            &["unknown-key.toml:18:1", "unknown field `power_w`"],
        ),
    ];
    for (name, from, to, expect) in cases {
        assert!(BASE.contains(from), "bad test: {from:?}");
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(&p, BASE.replacen(from, to, 1)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_trainsim"))
            .args(["run", "--no-charts", "--quiet", "--out"])
            .arg(dir.join("out"))
            .arg(&p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        for e in *expect {
            assert!(err.contains(e), "{name}: expected {e:?} in {err}");
        }
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    // the good file runs, prints the block and its results.json reads back
    let p = dir.join("good.toml");
    std::fs::write(&p, BASE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trainsim"))
        .args(["run", "--no-charts", "--out"])
        .arg(dir.join("good"))
        .arg(&p)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("training to target") && stdout.contains("MWh"),
        "{stdout}"
    );
    let back = trainsim::report::read_results(&dir.join("good").join("results.json")).unwrap();
    assert!(back.to_target.is_some());
}
