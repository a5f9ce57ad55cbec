//! Benchmarks of the simulator itself (a documented bench command, not a timed test).
//!
//! `cargo run --release --example bench` prints, for each case: wall time, discrete
//! events, events per second, and the process's peak resident memory so far.
//! Cases: the raw event queue (hold model, 1,000 pending); the flow network alone at 10^4
//! and 10^5 concurrent flows (partitioned into node-sized components, and one shared
//! component); the README's main scenario, the 16,384-GPU Llama-3-405B-shaped scenario,
//! the largest validation run and the DeepSeek-V3-shaped MoE scenario, each split into
//! graph build, event loop and the rest; the every-replica mode on the 1,024-GPU GPT-3
//! scenario and a 256-GPU Mixtral (every data-parallel replica simulated); the whole
//! validation folder; and a sweep
//! (points per second). Plan search has its own: `cargo run --release --example bench_search`.
//! `cargo run --release --example bench -- deepseek` runs only the cases whose name
//! contains `deepseek` (each case is run three times then, its fastest printed last).

use std::path::Path;
use std::time::Instant;
use trainsim::engine::EventQueue;
use trainsim::network::flow::FlowNetwork;
use trainsim::scenario::Scenario;
use trainsim::units::SimTime;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn report(name: &str, wall_s: f64, events: u64) {
    println!(
        "{name:<44} {wall_s:>9.3} s {events:>11} events {:>8.2} M events/s  peak RSS {:>7.1} MiB",
        events as f64 / wall_s / 1e6,
        peak_rss_mib()
    );
}

/// A sweep run end to end (rows and charts) on all cores, into a temporary folder.
fn sweep(path: &str) {
    let spec = trainsim::sweep::spec::SweepSpec::load(Path::new(path)).expect("sweep loads");
    let out = std::env::temp_dir().join(format!("trainsim-bench-sweep-{}", std::process::id()));
    let opts = trainsim::sweep::run::SweepOptions {
        out_dir: out.clone(),
        shard: None,
        restart: true,
        progress: false,
        charts: trainsim::sweep::charts::ChartOptions::default(),
        max_points: trainsim::sweep::spec::DEFAULT_MAX_POINTS,
    };
    let t = Instant::now();
    let o = trainsim::sweep::run::run_sweep(&spec, &opts).expect("sweep runs");
    let wall_s = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&out);
    println!(
        "sweep {:<38} {wall_s:>9.3} s for {} points ({:.1} points/s, rayon, all cores)  peak RSS {:>7.1} MiB",
        spec.name,
        o.points,
        o.points as f64 / wall_s,
        peak_rss_mib()
    );
}

fn scenario(path: &str) {
    let s = Scenario::load(Path::new(path)).expect("scenario loads");
    let t = Instant::now();
    let r = trainsim::simulation::run(&s.input).expect("simulates");
    let total_s = t.elapsed().as_secs_f64();
    report(
        &format!("{} ({} GPUs)", s.input.name, s.input.cluster.num_gpus),
        total_s,
        r.simulation.events,
    );
    // where that time goes: building the operation graph, the event loop, the rest
    // (breakdown, timeline, memory, training goal)
    let input = &s.input;
    let iterations = input.iterations.max(input.warmup_iterations + 1);
    let placement = input.placement();
    let t = Instant::now();
    let w = input.workload(&placement, iterations);
    let build_s = t.elapsed().as_secs_f64();
    let factors = vec![vec![1.0; w.ranks.len()]; iterations as usize];
    let t = Instant::now();
    let one = trainsim::simulation::ReplicaSet::default();
    let out = trainsim::simulation::simulate(&w, &input.cluster, input.layouts(placement), &factors, &one)
        .expect("simulates");
    let loop_s = t.elapsed().as_secs_f64();
    println!(
        "{:<44} build {build_s:.3} s ({} ops, {:.0} B/op), event loop {loop_s:.3} s ({:.2} M events/s), rest {:.3} s",
        "",
        w.ops.len(),
        w.heap_bytes() as f64 / w.ops.len().max(1) as f64,
        out.events as f64 / loop_s / 1e6,
        (total_s - build_s - loop_s).max(0.0),
    );
}

/// A scenario in every-replica mode (`simulation.ranks = "every_replica"`, one copy of
/// the workload per data-parallel replica), with `overrides` (`key=value`) applied.
fn every_replica(path: &str, overrides: &[&str]) {
    let mut ov: Vec<_> = overrides
        .iter()
        .map(|o| trainsim::scenario::parse_override(o).expect("override parses"))
        .collect();
    ov.push(trainsim::scenario::parse_override("simulation.ranks=every_replica").expect("override parses"));
    let s = Scenario::load_with(Path::new(path), &ov).expect("scenario loads");
    let t = Instant::now();
    let r = trainsim::simulation::run(&s.input).expect("simulates");
    let wall_s = t.elapsed().as_secs_f64();
    report(
        &format!(
            "every replica: {} ({} GPUs, {} replicas)",
            s.input.name, s.input.cluster.num_gpus, r.simulation.replicas_simulated
        ),
        wall_s,
        r.simulation.events,
    );
}

/// A deterministic xorshift stream for the synthetic event delays and flow sets.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The flow network alone: `n` concurrent flows between the ports of `n / 10` GPUs (a NIC
/// out and a NIC in link of 50 GB/s each), 1-2 MB each, all started at once, then drained
/// completion by completion. `group` > 0: a flow stays inside its group of `group` GPUs
/// (node-local collectives: many small components); 0: any GPU to any other (an
/// all-to-all: one component of every flow, the worst case, where each completion
/// re-solves every flow). Prints the first solve of all `n` flows and the drain rate;
/// the drain stops after 5 s (the count is printed).
fn flows(n: usize, group: usize) {
    let gpus = (n / 10).max(2);
    let mut net = FlowNetwork::new();
    let outs: Vec<u32> = (0..gpus).map(|_| net.add_link(50e9)).collect();
    let ins: Vec<u32> = (0..gpus).map(|_| net.add_link(50e9)).collect();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let t = Instant::now();
    for i in 0..n {
        let src = rng.next() as usize % gpus;
        let dst = match group {
            0 => (src + 1 + rng.next() as usize % (gpus - 1)) % gpus,
            g => src / g * g + (src % g + 1 + rng.next() as usize % (g - 1)) % g,
        };
        let bytes = 1e6 * (1.0 + (rng.next() % 1000) as f64 / 1000.0);
        let links = [outs[src], ins[dst.min(gpus - 1)]];
        net.start_transfer(SimTime::ZERO, &[(&links, bytes)], SimTime::ZERO, i as u64);
    }
    let first = net.next_completion();
    let solve_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (mut done, mut instants) = (0usize, 0usize);
    let mut buf = Vec::new();
    let mut at = first;
    while let Some(now) = at {
        net.advance_into(now, &mut buf);
        done += buf.len();
        instants += 1;
        if t.elapsed().as_secs_f64() > 5.0 {
            break;
        }
        at = net.next_completion();
    }
    let drain_s = t.elapsed().as_secs_f64();
    let shape = if group > 0 {
        format!("groups of {group} GPUs")
    } else {
        "one component".to_string()
    };
    println!(
        "flow network, {n} flows, {shape:<15} first solve {solve_s:.3} s; drained {done} of {n} flows at {instants} instants in {drain_s:.2} s ({:.0} completions/s)  peak RSS {:>7.1} MiB",
        done as f64 / drain_s,
        peak_rss_mib()
    );
}

fn main() {
    if let Some(filter) = std::env::args().nth(1) {
        let cases = [
            "scenarios/gpt3-175b-a100-1024.toml",
            "scenarios/llama3-405b-h100-16384.toml",
            "scenarios/validation/korthikanti-a100/korthikanti-1t-selective-sp-a100-512.toml",
            "scenarios/deepseek-v3-h800-2048.toml",
        ];
        for case in cases.iter().filter(|c| c.contains(&filter)) {
            for _ in 0..3 {
                scenario(case);
            }
        }
        return;
    }
    // hold model: pop the earliest event, push one a pseudo-random delay later
    let mut q = EventQueue::new();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for i in 0..1000u64 {
        q.schedule(SimTime(i), i);
    }
    let n = 5_000_000u64;
    let t = Instant::now();
    for _ in 0..n {
        let (now, e) = q.pop().expect("pending");
        q.schedule(now + SimTime(rng.next() % 10_000), e);
    }
    report("event queue, 1,000 pending (pop + push)", t.elapsed().as_secs_f64(), n);

    flows(10_000, 8);
    flows(100_000, 8);
    flows(10_000, 0);
    flows(100_000, 0);

    scenario("scenarios/gpt3-175b-a100-1024.toml");
    scenario("scenarios/llama3-405b-h100-16384.toml");
    scenario("scenarios/validation/korthikanti-a100/korthikanti-1t-selective-sp-a100-512.toml");
    scenario("scenarios/deepseek-v3-h800-2048.toml");
    every_replica("scenarios/gpt3-175b-a100-1024.toml", &[]);
    every_replica(
        "scenarios/mixtral-8x7b-h100-64.toml",
        &[
            "cluster.num_gpus=256",
            "parallel.dp=32",
            "training.global_batch_size=1024",
        ],
    );

    sweep("scenarios/sweeps/gpt3-175b-tp-pp.toml");

    let t = Instant::now();
    let rows = trainsim::cli::validate::compare(Path::new("scenarios/validation")).expect("validation runs");
    println!(
        "{:<44} {:>9.3} s for {} scenarios (rayon, all cores)",
        "validation folder",
        t.elapsed().as_secs_f64(),
        rows.len()
    );
}
