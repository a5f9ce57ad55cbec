//! GPUs and the clusters built from them: peak rates, memory, calibration constants,
//! and the kernel-time model (roofline with size-dependent efficiency).
//!
//! Owns: [`GpuSpec`], [`ClusterSpec`], the validated GPU and fabric presets
//! ([`fabric`]), and [`kernel`] timing.
//! Does not own: how kernels are chosen (workload) or how bytes move between GPUs (network).

pub mod cluster;
pub mod fabric;
pub mod gpu;
pub mod host;
pub mod kernel;
pub mod presets;

pub use cluster::ClusterSpec;
pub use gpu::{GpuSpec, Precision};
pub use host::HostSpec;
