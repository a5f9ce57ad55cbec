//! The serde mirror of a scenario TOML file. Unknown keys are errors everywhere.
//! Every field, its unit and its default is documented in `docs/scenario.md`
//! (the per-field docs live there, so missing_docs is silenced here).
#![allow(missing_docs)]

use schemars::JsonSchema;
use serde::Deserialize;

/// Top level of a scenario file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    /// Display name (defaults to the file stem).
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Seed of every random stream (default 42).
    pub seed: Option<u64>,
    /// Hardware.
    pub cluster: RawCluster,
    /// Architecture.
    pub model: RawModel,
    /// Parallel plan (every key has a default).
    #[serde(default)]
    pub parallel: RawParallel,
    /// Batch, sequence, precision.
    pub training: RawTraining,
    /// Simulation controls.
    pub simulation: Option<RawSimulation>,
    /// A measured result of this exact configuration, for `trainsim validate`.
    pub measured: Option<RawMeasured>,
    /// Slow GPUs and per-step slowdowns.
    pub stragglers: Option<RawStragglers>,
    /// What the run trains to (loss, tokens or steps).
    pub target: Option<RawTarget>,
    /// Failures and checkpointing.
    pub reliability: Option<RawReliability>,
    /// Power, emissions and price.
    pub energy: Option<RawEnergy>,
    /// MoE routing.
    pub moe: Option<RawMoe>,
    /// Element types on the wire and gradient compression.
    pub communication: Option<RawCommunication>,
    /// Offloading to CPU memory or NVMe.
    pub offload: Option<RawOffload>,
}

/// `[communication]`: one `{kind}_dtype` per communication kind, and gradient compression.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCommunication {
    pub tp_dtype: Option<String>,
    pub cp_dtype: Option<String>,
    pub dp_grad_dtype: Option<String>,
    pub dp_param_dtype: Option<String>,
    pub pp_dtype: Option<String>,
    pub ep_dtype: Option<String>,
    pub compression: Option<String>,
    pub warmup_fraction: Option<f64>,
    pub local_steps: Option<u32>,
    pub powersgd_rank: Option<u32>,
    pub topk_fraction: Option<f64>,
    pub zeropp_qwz: Option<bool>,
    pub zeropp_hpz: Option<bool>,
    pub zeropp_qgz: Option<bool>,
    pub extra_steps_fraction: Option<f64>,
}

/// `[offload]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOffload {
    pub optimizer: Option<String>,
    pub parameters: Option<String>,
    pub activations: Option<String>,
}

/// `[cluster.host]`: the node's host side (offloading).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub cpu_memory_gib: Option<f64>,
    pub pcie_gbyte_per_s: Option<f64>,
    pub nvme_gbyte_per_s: Option<f64>,
    pub cpu_adam_params_per_s: Option<f64>,
}

/// `[cluster]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// Total GPUs.
    pub num_gpus: u32,
    /// GPUs per node (default 8).
    pub gpus_per_node: Option<u32>,
    /// `[cluster.gpu]` (not with `[[cluster.groups]]`).
    pub gpu: Option<RawGpu>,
    /// `[[cluster.groups]]`: GPU groups of a heterogeneous cluster, in GPU-rank order.
    pub groups: Option<Vec<RawGpuGroup>>,
    /// `[cluster.network]`.
    pub network: Option<RawNetwork>,
    /// `[cluster.host]`.
    pub host: Option<RawHost>,
}

/// A list of counts or a rule by name: `parallel.stage_layers` (layers per stage or per
/// chunk, or `"balanced"`), `parallel.replica_micro_batches` (micro-batches per replica,
/// or `"even"`, `"balanced"`).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawStageLayers {
    /// Layers of every stage, or of every model chunk.
    Layers(Vec<u32>),
    /// A rule: `"balanced"`.
    Rule(String),
}

/// `[[cluster.groups]]`: consecutive whole nodes of one GPU type.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGpuGroup {
    /// Name in reports (default "group{i}").
    pub name: Option<String>,
    /// GPUs in the group.
    pub num_gpus: u32,
    /// `[cluster.groups.gpu]`.
    pub gpu: RawGpu,
    /// NIC line rate of the group's nodes (default: the cluster's).
    pub nic_gbit_per_s: Option<f64>,
}

/// `[cluster.gpu]`: a preset and/or explicit fields (fields override the preset).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGpu {
    pub preset: Option<String>,
    pub peak_bf16_tflops: Option<f64>,
    pub peak_fp8_tflops: Option<f64>,
    pub hbm_capacity_gib: Option<f64>,
    pub hbm_bandwidth_gbyte_per_s: Option<f64>,
    pub scale_up_gbyte_per_s: Option<f64>,
    pub sm_count: Option<u32>,
    pub tdp_w: Option<f64>,
    pub gemm_efficiency: Option<f64>,
    pub gemm_half_efficiency_dim: Option<f64>,
    pub fp8_gemm_efficiency: Option<f64>,
    pub attention_fwd_efficiency: Option<f64>,
    pub attention_bwd_efficiency: Option<f64>,
    pub memory_efficiency: Option<f64>,
    pub kernel_overhead_us: Option<f64>,
    pub grouped_gemm_efficiency: Option<f64>,
}

/// `[cluster.network]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub nics_per_node: Option<u32>,
    pub nic_gbit_per_s: Option<f64>,
    pub scale_up_latency_us: Option<f64>,
    pub scale_out_latency_us: Option<f64>,
    pub scale_up_efficiency: Option<f64>,
    pub scale_out_efficiency: Option<f64>,
    pub oversubscription: Option<f64>,
    pub nodes_per_leaf: Option<u32>,
    pub cross_group_gbit_per_s: Option<f64>,
    pub all_reduce_algorithm: Option<String>,
    pub all_gather_algorithm: Option<String>,
    pub reduce_scatter_algorithm: Option<String>,
    pub scale_up_domain: Option<u32>,
    pub fat_tree_tiers: Option<u32>,
    pub leaves_per_pod: Option<u32>,
    pub core_oversubscription: Option<f64>,
    pub rail_optimized: Option<bool>,
    pub switch_latency_us: Option<f64>,
    pub fabric: Option<String>,
    pub collective_model: Option<String>,
    pub fabric_latency_us: Option<f64>,
    pub sharp: Option<bool>,
    pub packet_spraying: Option<bool>,
    pub latency_scale: Option<f64>,
    pub p2p_latency_us: Option<f64>,
}

/// `[model]`: a preset and/or explicit fields.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub preset: Option<String>,
    pub hf_config: Option<String>,
    pub name: Option<String>,
    pub num_layers: Option<u32>,
    pub hidden_size: Option<u32>,
    pub num_heads: Option<u32>,
    pub num_kv_heads: Option<u32>,
    pub head_dim: Option<u32>,
    pub ffn_hidden_size: Option<u32>,
    pub ffn_type: Option<String>,
    pub vocab_size: Option<u32>,
    pub tied_embeddings: Option<bool>,
    pub attention: Option<String>,
    pub q_lora_rank: Option<u32>,
    pub kv_lora_rank: Option<u32>,
    pub qk_nope_head_dim: Option<u32>,
    pub qk_rope_head_dim: Option<u32>,
    pub v_head_dim: Option<u32>,
    pub num_experts: Option<u32>,
    pub top_k: Option<u32>,
    pub num_shared_experts: Option<u32>,
    pub expert_ffn_hidden_size: Option<u32>,
    pub shared_expert_ffn_hidden_size: Option<u32>,
    pub first_dense_layers: Option<u32>,
    pub mtp_modules: Option<u32>,
}

/// `[parallel]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawParallel {
    pub tp: Option<u32>,
    pub pp: Option<u32>,
    pub dp: Option<u32>,
    pub cp: Option<u32>,
    pub cp_comm_type: Option<String>,
    pub cp_load_balance: Option<bool>,
    pub cp_a2a_size: Option<u32>,
    pub sequence_parallel: Option<bool>,
    pub schedule: Option<String>,
    pub virtual_stages: Option<u32>,
    pub micro_batch_size: Option<u32>,
    pub zero_stage: Option<u32>,
    pub recompute: Option<String>,
    pub recompute_modules: Option<Vec<String>>,
    pub overlap_grad_reduce: Option<bool>,
    pub overlap_param_gather: Option<bool>,
    pub tp_comm_overlap: Option<bool>,
    pub pipeline_split_embedding_and_loss: Option<bool>,
    pub first_stage_layers: Option<u32>,
    pub last_stage_layers: Option<u32>,
    pub stage_layers: Option<RawStageLayers>,
    /// Micro-batches per data-parallel replica, or a rule (`"even"`, `"balanced"`).
    pub replica_micro_batches: Option<RawStageLayers>,
    pub optimizer_post_validation: Option<bool>,
    pub grad_bucket_params: Option<f64>,
    pub ep: Option<u32>,
    pub expert_tp: Option<u32>,
}

/// `[moe]`: routing of a MoE run.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMoe {
    pub routing: Option<String>,
    pub dirichlet_alpha: Option<f64>,
    pub zipf_exponent: Option<f64>,
    pub lognormal_sigma: Option<f64>,
    pub hot_experts: Option<u32>,
    pub hot_fraction: Option<f64>,
    pub rotate_every_steps: Option<u32>,
    pub loads_csv: Option<String>,
    pub capacity_factor: Option<f64>,
    pub dispatcher: Option<String>,
    pub node_limit: Option<u32>,
    pub dispatch_precision: Option<String>,
    pub overlap_all_to_all: Option<bool>,
}

/// `[training]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTraining {
    pub global_batch_size: u32,
    pub seq_length: u32,
    pub precision: Option<String>,
    pub flash_attention: Option<bool>,
}

/// `[simulation]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSimulation {
    pub iterations: Option<u32>,
    pub warmup_iterations: Option<u32>,
    pub max_operations: Option<u64>,
    pub ranks: Option<String>,
}

/// `[measured]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMeasured {
    pub step_time_s: Option<f64>,
    pub tokens_per_s_per_gpu: Option<f64>,
    pub source: Option<String>,
    pub id: Option<String>,
    pub notes: Option<String>,
}

/// `[target]`: exactly one of `loss`, `tokens`, `steps`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub loss: Option<f64>,
    pub tokens: Option<f64>,
    pub steps: Option<f64>,
    pub loss_law: Option<String>,
    pub loss_law_e: Option<f64>,
    pub loss_law_a: Option<f64>,
    pub loss_law_b: Option<f64>,
    pub loss_law_alpha: Option<f64>,
    pub loss_law_beta: Option<f64>,
    pub critical_batch_scale_tokens: Option<f64>,
    pub critical_batch_exponent: Option<f64>,
    pub moe_effective_params: Option<String>,
}

/// `[reliability]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReliability {
    pub preset: Option<String>,
    pub gpu_mtbf_h: Option<f64>,
    pub unplanned_fraction: Option<f64>,
    pub checkpoint_bytes_per_param: Option<f64>,
    pub checkpoint_write_gbyte_per_s_per_node: Option<f64>,
    pub async_checkpoint: Option<bool>,
    pub snapshot_gbyte_per_s_per_gpu: Option<f64>,
    pub restart_s: Option<f64>,
    pub checkpoint_interval_steps: Option<u32>,
}

/// `[energy]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnergy {
    pub compute_power_fraction: Option<f64>,
    pub comm_power_fraction: Option<f64>,
    pub idle_power_fraction: Option<f64>,
    pub host_power_per_node_w: Option<f64>,
    pub nic_power_w: Option<f64>,
    pub switch_power_per_nic_w: Option<f64>,
    pub pue: Option<f64>,
    pub grid_gco2_per_kwh: Option<f64>,
    pub gpu_hour_usd: Option<f64>,
}

/// `[stragglers]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStragglers {
    pub slow_gpus: Option<u32>,
    pub slow_nodes: Option<u32>,
    pub slowdown_fraction: Option<f64>,
    pub step_jitter_fraction: Option<f64>,
}
