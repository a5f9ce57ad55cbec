//! Benchmarks of the simulator itself (a documented bench command, not a timed test).
//!
//! `cargo run --release --example bench` prints, for each case: wall time, discrete
//! events, events per second, and the process's peak resident memory so far.
//! Cases: the raw event queue (hold model, 1,000 pending), the README's main scenario,
//! the 16,384-GPU Llama-3-405B-shaped scenario, and the whole validation folder.

use std::path::Path;
use std::time::Instant;
use trainsim::engine::EventQueue;
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
    let out =
        trainsim::simulation::simulate(&w, &input.cluster, input.layouts(placement), &factors).expect("simulates");
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

fn main() {
    // hold model: pop the earliest event, push one a pseudo-random delay later
    let mut q = EventQueue::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..1000u64 {
        q.schedule(SimTime(i), i);
    }
    let n = 5_000_000u64;
    let t = Instant::now();
    for _ in 0..n {
        let (now, e) = q.pop().expect("pending");
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        q.schedule(now + SimTime(x % 10_000), e);
    }
    report("event queue, 1,000 pending (pop + push)", t.elapsed().as_secs_f64(), n);

    scenario("scenarios/gpt3-175b-a100-1024.toml");
    scenario("scenarios/llama3-405b-h100-16384.toml");
    scenario("scenarios/validation/korthikanti-a100/korthikanti-1t-selective-sp-a100-512.toml");
    scenario("scenarios/deepseek-v3-h800-2048.toml");

    let t = Instant::now();
    let rows = trainsim::cli::validate::compare(Path::new("scenarios/validation")).expect("validation runs");
    println!(
        "{:<44} {:>9.3} s for {} scenarios (rayon, all cores)",
        "validation folder",
        t.elapsed().as_secs_f64(),
        rows.len()
    );
}
