//! The columns of sweep results (sweep.csv, sweep.jsonl): their names, with units, and
//! which hold numbers. Shared by the runner that writes them and the charts that read them.

/// Metric columns after the axis columns (units in every name).
pub const METRIC_COLUMNS: &[&str] = &[
    "feasible",
    "reason",
    "step_time_s",
    "tokens_per_s",
    "tokens_per_s_per_gpu",
    "model_tflops_per_gpu",
    "mfu_pct",
    "hfu_pct",
    "bubble_pct",
    "exposed_tp_comm_s",
    "exposed_dp_comm_s",
    "exposed_pp_comm_s",
    "exposed_cp_comm_s",
    "memory_gib",
    "fits_in_memory",
    "num_gpus",
    "gpu_hours_per_step",
    "time_to_target_days",
    "cost_usd",
    "energy_to_target_kwh",
    "exposed_ep_comm_s",
    "moe_imbalance_s",
    "moe_dropped_fraction",
    "moe_rank_load_max_over_mean",
    "plan",
];

/// Metric columns that hold text or booleans; every other metric column is a number.
const NON_NUMERIC_COLUMNS: &[&str] = &["feasible", "reason", "fits_in_memory", "plan"];

/// Metric columns that hold numbers (the choices of `--x` / `--y`).
pub fn numeric_columns() -> impl Iterator<Item = &'static str> {
    METRIC_COLUMNS
        .iter()
        .copied()
        .filter(|c| !NON_NUMERIC_COLUMNS.contains(c))
}

/// Columns that need a `[target]` section.
pub const TARGET_COLUMNS: &[&str] = &["time_to_target_days", "cost_usd", "energy_to_target_kwh"];

/// Columns only Mixture-of-Experts runs fill (empty for dense models): exposed
/// expert-parallel all-to-all time and time waiting for slower expert-parallel ranks per
/// step, the fraction of token-expert assignments dropped by the capacity factor, and
/// the mean max/mean load of the expert-parallel ranks.
pub const MOE_COLUMNS: &[&str] = &[
    "exposed_ep_comm_s",
    "moe_imbalance_s",
    "moe_dropped_fraction",
    "moe_rank_load_max_over_mean",
];
