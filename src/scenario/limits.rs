//! Physical limits of every numeric scenario field, as one table: the envelope outside
//! which a value cannot describe real hardware, a real model or a real run (a 1e30 us
//! kernel, a 5e-324 GB/s link, 2^31 GPUs). A value outside it is refused before anything
//! is built, so no input can overflow the plan arithmetic, the picosecond clock or memory.
//!
//! The semantic rules (a fraction in (0, 1], tp dividing the heads, ...) stay with the
//! sections that own them; this table only bounds magnitudes. docs/scenario.md carries the
//! table (its "Physical limits" section is generated from [`LIMITS`] and checked by a test),
//! and a test checks that every numeric field of the format has an entry, so a new field
//! cannot arrive unbounded.

/// The envelope of one numeric field (both ends included).
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    /// Dotted field path; for a list, the bound applies to each element.
    pub path: &'static str,
    /// Smallest value allowed.
    pub min: f64,
    /// Largest value allowed.
    pub max: f64,
    /// Why the bound is where it is (shown in the error and in the docs).
    pub why: &'static str,
}

const fn lim(path: &'static str, min: f64, max: f64, why: &'static str) -> Limit {
    Limit { path, min, max, why }
}

/// 2^20: GPUs, and GPUs in one parallel dimension (the largest clusters built are ~2^17).
const MAX_GPUS: f64 = 1_048_576.0;
/// Tensor sizes of one layer (hidden, FFN): 2^22, 100x the largest published models.
const MAX_DIM: f64 = 4_194_304.0;
const FRACTION_FLOOR: f64 = 0.001;

/// Every numeric field's physical envelope. Keep sorted by path (a test checks coverage).
pub const LIMITS: &[Limit] = &[
    lim(
        "cluster.gpu.attention_bwd_efficiency",
        FRACTION_FLOOR,
        1.0,
        "fraction of peak",
    ),
    lim(
        "cluster.gpu.attention_fwd_efficiency",
        FRACTION_FLOOR,
        1.0,
        "fraction of peak",
    ),
    lim(
        "cluster.gpu.fp8_gemm_efficiency",
        FRACTION_FLOOR,
        1.0,
        "fraction of peak",
    ),
    lim("cluster.gpu.gemm_efficiency", FRACTION_FLOOR, 1.0, "fraction of peak"),
    lim(
        "cluster.gpu.gemm_half_efficiency_dim",
        0.0,
        1e6,
        "a GEMM dimension, elements",
    ),
    lim("cluster.gpu.grouped_gemm_efficiency", FRACTION_FLOOR, 1.0, "fraction"),
    lim("cluster.gpu.hbm_bandwidth_gbyte_per_s", 1.0, 1e6, "GB/s: 100x any HBM"),
    lim("cluster.gpu.hbm_capacity_gib", 0.1, 1e5, "GiB"),
    lim(
        "cluster.gpu.kernel_overhead_us",
        0.0,
        1e5,
        "us: at most 0.1 s per kernel",
    ),
    lim("cluster.gpu.memory_efficiency", FRACTION_FLOOR, 1.0, "fraction of peak"),
    lim("cluster.gpu.peak_bf16_tflops", 0.1, 1e5, "TFLOP/s: 20x a B200"),
    lim("cluster.gpu.peak_fp8_tflops", 0.0, 2e5, "TFLOP/s"),
    lim(
        "cluster.gpu.scale_up_gbyte_per_s",
        0.1,
        1e9,
        "GB/s per GPU (up to 1e9: a free link, for what-if studies)",
    ),
    lim("cluster.gpu.sm_count", 1.0, 1e5, "SMs"),
    lim("cluster.gpu.tdp_w", 1.0, 1e5, "W"),
    lim("cluster.gpus_per_node", 1.0, 1024.0, "GPUs in one node"),
    lim("cluster.host.cpu_adam_params_per_s", 1e3, 1e13, "parameters/s"),
    lim("cluster.host.cpu_memory_gib", 0.0, 1e6, "GiB per node"),
    lim("cluster.host.nvme_gbyte_per_s", 0.0, 1e4, "GB/s per node"),
    lim("cluster.host.pcie_gbyte_per_s", 0.1, 1e4, "GB/s per GPU"),
    lim(
        "cluster.network.core_oversubscription",
        1.0,
        1000.0,
        "ratio, at least 1 (1 = non-blocking)",
    ),
    lim(
        "cluster.network.cross_group_gbit_per_s",
        0.0,
        1e10,
        "Gbit/s per NIC between GPU groups (0 = the NICs' rate)",
    ),
    lim("cluster.network.fabric_latency_us", 0.0, 1e5, "us: at most 0.1 s"),
    lim(
        "cluster.network.fat_tree_tiers",
        2.0,
        3.0,
        "tiers: 2 (leaf-spine) and 3 (with a core)",
    ),
    lim("cluster.network.latency_scale", 0.001, 1000.0, "factor"),
    lim("cluster.network.leaves_per_pod", 1.0, MAX_GPUS, "leaf switches"),
    lim(
        "cluster.network.nic_gbit_per_s",
        0.1,
        1e10,
        "Gbit/s (up to 1e10: a free network, for what-if studies)",
    ),
    lim("cluster.network.nics_per_node", 1.0, 1024.0, "NICs"),
    lim("cluster.network.nodes_per_leaf", 1.0, MAX_GPUS, "nodes"),
    lim(
        "cluster.network.oversubscription",
        1.0,
        1000.0,
        "ratio, at least 1 (1 = non-blocking)",
    ),
    lim("cluster.network.p2p_latency_us", 0.0, 1e5, "us: at most 0.1 s"),
    lim(
        "cluster.network.scale_out_efficiency",
        FRACTION_FLOOR,
        1.0,
        "fraction of the NIC rate",
    ),
    lim("cluster.network.scale_out_latency_us", 0.0, 1e5, "us: at most 0.1 s"),
    lim("cluster.network.scale_up_domain", 1.0, MAX_GPUS, "GPUs"),
    lim(
        "cluster.network.scale_up_efficiency",
        FRACTION_FLOOR,
        1.0,
        "fraction of the link rate",
    ),
    lim("cluster.network.scale_up_latency_us", 0.0, 1e5, "us: at most 0.1 s"),
    lim("cluster.network.switch_latency_us", 0.0, 1e5, "us: at most 0.1 s"),
    lim(
        "cluster.num_gpus",
        1.0,
        MAX_GPUS,
        "GPUs: 2^20, 8x the largest cluster built",
    ),
    lim(
        "communication.extra_steps_fraction",
        0.0,
        100.0,
        "fraction of the steps",
    ),
    lim("communication.local_steps", 1.0, 1e6, "steps"),
    lim("communication.powersgd_rank", 1.0, 65_536.0, "rank"),
    lim("communication.topk_fraction", 1e-9, 1.0, "fraction"),
    lim("communication.warmup_fraction", 0.0, 1.0, "fraction"),
    lim("energy.comm_power_fraction", 0.0, 1.0, "fraction of TDP"),
    lim("energy.compute_power_fraction", 0.0, 1.0, "fraction of TDP"),
    lim("energy.gpu_hour_usd", 0.0, 1e6, "USD"),
    lim("energy.grid_gco2_per_kwh", 0.0, 1e5, "g CO2e/kWh"),
    lim("energy.host_power_per_node_w", 0.0, 1e6, "W"),
    lim("energy.idle_power_fraction", 0.0, 1.0, "fraction of TDP"),
    lim("energy.nic_power_w", 0.0, 1e5, "W"),
    lim("energy.pue", 1.0, 10.0, "facility power / IT power"),
    lim("energy.switch_power_per_nic_w", 0.0, 1e5, "W"),
    lim("measured.step_time_s", 1e-6, 1e7, "s"),
    lim("measured.tokens_per_s_per_gpu", 1e-6, 1e9, "tokens/s"),
    lim("model.expert_ffn_hidden_size", 1.0, MAX_DIM, "elements"),
    lim("model.ffn_hidden_size", 1.0, MAX_DIM, "elements"),
    lim("model.first_dense_layers", 0.0, 10_000.0, "layers"),
    lim("model.head_dim", 1.0, 65_536.0, "elements"),
    lim("model.hidden_size", 1.0, MAX_DIM, "elements"),
    lim("model.kv_lora_rank", 0.0, MAX_DIM, "elements"),
    lim("model.mtp_modules", 0.0, 64.0, "modules"),
    lim("model.num_experts", 1.0, 65_536.0, "experts"),
    lim("model.num_heads", 1.0, 65_536.0, "heads"),
    lim("model.num_kv_heads", 1.0, 65_536.0, "heads"),
    lim(
        "model.num_layers",
        1.0,
        10_000.0,
        "layers: 50x the deepest published model",
    ),
    lim("model.num_shared_experts", 0.0, 1024.0, "experts"),
    lim("model.q_lora_rank", 0.0, MAX_DIM, "elements"),
    lim("model.qk_nope_head_dim", 0.0, 65_536.0, "elements"),
    lim("model.qk_rope_head_dim", 0.0, 65_536.0, "elements"),
    lim("model.shared_expert_ffn_hidden_size", 1.0, MAX_DIM, "elements"),
    lim("model.top_k", 1.0, 65_536.0, "experts"),
    lim("model.v_head_dim", 0.0, 65_536.0, "elements"),
    lim("model.vocab_size", 1.0, 16_777_216.0, "tokens: 2^24"),
    lim("moe.capacity_factor", 1.0, 1000.0, "factor"),
    lim("moe.dirichlet_alpha", 1e-6, 1e6, "concentration"),
    lim("moe.hot_experts", 1.0, 65_536.0, "experts"),
    lim("moe.hot_fraction", 0.0, 1.0, "probability"),
    lim("moe.lognormal_sigma", 0.0, 100.0, "log-space standard deviation"),
    lim("moe.node_limit", 1.0, MAX_GPUS, "nodes"),
    lim("moe.rotate_every_steps", 1.0, 1e9, "steps"),
    lim("moe.zipf_exponent", 0.0, 100.0, "exponent"),
    lim("parallel.cp", 1.0, MAX_GPUS, "GPUs"),
    lim("parallel.cp_a2a_size", 1.0, MAX_GPUS, "GPUs"),
    lim("parallel.dp", 1.0, MAX_GPUS, "replicas"),
    lim("parallel.ep", 1.0, 65_536.0, "GPUs"),
    lim("parallel.expert_tp", 1.0, 1024.0, "GPUs"),
    lim("parallel.first_stage_layers", 0.0, 10_000.0, "layers"),
    lim(
        "parallel.grad_bucket_params",
        1e5,
        1e13,
        "parameters per gradient bucket",
    ),
    lim("parallel.last_stage_layers", 0.0, 10_000.0, "layers"),
    lim("parallel.micro_batch_size", 1.0, MAX_GPUS, "sequences"),
    lim("parallel.pp", 1.0, 65_536.0, "stages"),
    lim(
        "parallel.replica_micro_batches",
        0.0,
        16_777_216.0,
        "micro-batches per replica: 2^24",
    ),
    lim("parallel.stage_layers", 0.0, 10_000.0, "layers per stage"),
    lim("parallel.tp", 1.0, 65_536.0, "GPUs"),
    lim("parallel.virtual_stages", 1.0, 1024.0, "model chunks per stage"),
    lim("parallel.zero_stage", 0.0, 3.0, "stage"),
    lim("reliability.checkpoint_bytes_per_param", 0.1, 1000.0, "bytes"),
    lim("reliability.checkpoint_interval_steps", 1.0, 1e9, "steps"),
    lim("reliability.checkpoint_write_gbyte_per_s_per_node", 0.001, 1e6, "GB/s"),
    lim("reliability.gpu_mtbf_h", 0.001, 1e9, "hours"),
    lim("reliability.restart_s", 0.0, 1e7, "s"),
    lim("reliability.snapshot_gbyte_per_s_per_gpu", 0.001, 1e6, "GB/s"),
    lim("reliability.unplanned_fraction", 0.0, 1.0, "fraction"),
    lim("seed", 0.0, 1.8446744073709552e19, "any 64-bit seed"),
    lim(
        "simulation.iterations",
        1.0,
        1000.0,
        "iterations (the steady state needs 2-3)",
    ),
    lim("simulation.max_operations", 1000.0, 1e10, "operations (150 bytes each)"),
    lim("simulation.warmup_iterations", 0.0, 999.0, "iterations"),
    lim("stragglers.slow_gpus", 0.0, MAX_GPUS, "GPUs"),
    lim("stragglers.slow_nodes", 0.0, MAX_GPUS, "nodes"),
    lim(
        "stragglers.slowdown_fraction",
        0.0,
        100.0,
        "fraction (100 = 101x slower)",
    ),
    lim("stragglers.step_jitter_fraction", 0.0, 1.0, "fraction of the step"),
    lim("target.critical_batch_exponent", 0.001, 10.0, "exponent"),
    lim("target.critical_batch_scale_tokens", 1.0, 1e20, "tokens"),
    lim("target.loss", 1e-6, 1000.0, "nats/token"),
    lim("target.loss_law_a", 1e-6, 1e15, "law constant"),
    lim("target.loss_law_alpha", 0.001, 10.0, "exponent"),
    lim("target.loss_law_b", 1e-6, 1e15, "law constant"),
    lim("target.loss_law_beta", 0.001, 10.0, "exponent"),
    lim("target.loss_law_e", 1e-6, 1000.0, "nats/token"),
    lim("target.steps", 1.0, 1e12, "steps"),
    lim("target.tokens", 1.0, 1e20, "tokens: 1,000x the largest training run"),
    lim("training.global_batch_size", 1.0, 16_777_216.0, "sequences: 2^24"),
    lim("training.seq_length", 1.0, 16_777_216.0, "tokens: 2^24"),
];

/// The limit of `path`, if it has one.
pub fn limit_of(path: &str) -> Option<&'static Limit> {
    LIMITS.iter().find(|l| l.path == path)
}

/// `x` as the docs and messages print it: integers plainly, large or tiny values in
/// scientific notation.
pub fn number_text(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e7 {
        format!("{}", x as i64)
    } else if x.abs() >= 1e7 || (x != 0.0 && x.abs() < 1e-3) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// What the error says is allowed.
pub fn allowed_text(l: &Limit) -> String {
    format!(
        "must be in [{}, {}] ({}); values outside cannot describe a real run",
        number_text(l.min),
        number_text(l.max),
        l.why
    )
}

/// Which ends of the envelope a check enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ends {
    /// NaN, infinities and values above the maximum and above [`HARMLESS`]: checked
    /// before a scenario is converted, since they are what overflows arithmetic and
    /// memory (a fraction of 1.5 is left to its section's more specific message).
    Upper,
    /// Both ends: checked after the sections' own rules, whose messages for a value
    /// below its natural bound ("must be positive") are the more specific.
    Both,
}

/// Values up to this are too small to overflow anything: [`Ends::Upper`] lets them
/// through to the sections' own rules.
pub const HARMLESS: f64 = 1000.0;

/// The first field of `table` outside its limit (at the given ends): (limit, value as
/// written).
pub fn first_violation(table: &toml::Table, ends: Ends) -> Option<(&'static Limit, String)> {
    for l in LIMITS {
        let Some(v) = get(table, l.path) else { continue };
        let values: Vec<&toml::Value> = match v {
            toml::Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for v in values {
            let x = match v {
                toml::Value::Integer(i) => *i as f64,
                toml::Value::Float(f) => *f,
                _ => continue, // a wrong type is the loader's error, with its own message
            };
            let below = ends == Ends::Both && x < l.min;
            let above = x > l.max && (ends == Ends::Both || x > HARMLESS);
            if x.is_nan() || below || above {
                return Some((l, number_text(x)));
            }
        }
    }
    None
}

/// [`first_violation`] in each `[[cluster.groups]]` entry: its `gpu` and `num_gpus` under
/// the limits of `cluster.gpu.*` and `cluster.num_gpus`, its `nic_gbit_per_s` under
/// `cluster.network.nic_gbit_per_s`. Returns the entry's own dotted path
/// (`cluster.groups[1].gpu.peak_bf16_tflops`), the limit and the value.
pub fn first_group_violation(table: &toml::Table, ends: Ends) -> Option<(String, &'static Limit, String)> {
    let groups = table.get("cluster")?.get("groups")?.as_array()?;
    for (i, g) in groups.iter().enumerate() {
        let Some(g) = g.as_table() else { continue };
        let mut cluster = toml::Table::new();
        for key in ["gpu", "num_gpus"] {
            if let Some(v) = g.get(key) {
                cluster.insert(key.into(), v.clone());
            }
        }
        if let Some(v) = g.get("nic_gbit_per_s") {
            let mut n = toml::Table::new();
            n.insert("nic_gbit_per_s".into(), v.clone());
            cluster.insert("network".into(), toml::Value::Table(n));
        }
        let mut t = toml::Table::new();
        t.insert("cluster".into(), toml::Value::Table(cluster));
        if let Some((l, value)) = first_violation(&t, ends) {
            let own = l.path.replacen("cluster.network.", "cluster.", 1);
            let own = own.replacen("cluster.", &format!("cluster.groups[{i}]."), 1);
            return Some((own, l, value));
        }
    }
    None
}

fn get<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut cur = table.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_table()?.get(p)?;
    }
    Some(cur)
}

/// The "Physical limits" table of docs/scenario.md, generated from [`LIMITS`].
pub fn docs_table() -> String {
    let mut s = String::from("| field | min | max | unit / why |\n|---|---|---|---|\n");
    for l in LIMITS {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            l.path,
            number_text(l.min),
            number_text(l.max),
            l.why
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_well_formed() {
        for w in LIMITS.windows(2) {
            assert!(w[0].path < w[1].path, "{} before {}", w[0].path, w[1].path);
        }
        for l in LIMITS {
            assert!(l.min.is_finite() && l.max.is_finite() && l.min <= l.max, "{}", l.path);
        }
    }

    #[test]
    fn every_numeric_field_has_a_limit_and_every_limit_a_field() {
        let numeric = crate::scenario::fields::numeric_paths();
        assert!(numeric.len() > 100, "{} numeric fields found", numeric.len());
        let missing: Vec<&String> = numeric.iter().filter(|p| limit_of(p).is_none()).collect();
        assert!(
            missing.is_empty(),
            "numeric fields without a physical limit: {missing:?}"
        );
        for l in LIMITS {
            assert!(
                numeric.iter().any(|p| p == l.path),
                "limit for a field that is not numeric: {}",
                l.path
            );
        }
    }

    #[test]
    fn out_of_range_and_nan_are_found_in_range_is_not() {
        let t: toml::Table =
            toml::from_str("[cluster]\nnum_gpus = 8\n[cluster.network]\nnic_gbit_per_s = 400.0").unwrap();
        assert!(first_violation(&t, Ends::Both).is_none());
        let t: toml::Table = toml::from_str("[cluster.network]\nnic_gbit_per_s = 1e300").unwrap();
        assert_eq!(
            first_violation(&t, Ends::Both).unwrap().0.path,
            "cluster.network.nic_gbit_per_s"
        );
        let t: toml::Table = toml::from_str("[cluster.gpu]\npeak_bf16_tflops = nan").unwrap();
        assert_eq!(
            first_violation(&t, Ends::Both).unwrap().0.path,
            "cluster.gpu.peak_bf16_tflops"
        );
        let t: toml::Table = toml::from_str("[parallel]\nstage_layers = [4, 4, 20000]").unwrap();
        assert_eq!(first_violation(&t, Ends::Both).unwrap().1, "20000");
    }
}
