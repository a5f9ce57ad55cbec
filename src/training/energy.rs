//! Power, energy, emissions and cost of a run, from the simulated time breakdown.
//!
//! # Model
//!
//! * **GPU power** during a step is a time-weighted mix of three levels, each a fraction of
//!   the GPU's `tdp_w` (user-overridable in `[energy]`):
//!   - compute (forward, backward, recompute, optimizer): `compute_power_fraction`,
//!     default 0.90: dense BF16 training runs GPUs close to their power limit;
//!   - exposed communication (TP, DP, PP, synchronisation): `comm_power_fraction`,
//!     default 0.50: SMs mostly wait while HBM, NVLink and the NIC are busy;
//!   - pipeline bubble and idle: `idle_power_fraction`, default 0.30: clocks stay up
//!     inside a training job (an idle, unloaded GPU draws less, about 0.1-0.15 of TDP).
//!
//!   `P_gpu = tdp_w * (f_compute * t_compute + f_comm * t_comm + f_idle * t_idle) / t_step`,
//!   with the times from the simulated breakdown (averaged over pipeline stages).
//! * **Rest of the IT load**, constant while the job holds the machines: per node
//!   `host_power_per_node_w` (CPUs, DRAM, fans, local storage; default 1000 W), per NIC
//!   `nic_power_w` (default 25 W) and `switch_power_per_nic_w`, the share of the switch
//!   fabric per NIC port (default 50 W: a three-tier fat tree has about five switch ports
//!   per NIC, at about 10 W each).
//! * **Facility**: IT power times `pue` (default 1.2).
//! * **Energy to target** = facility power x time. While training (including redone work
//!   after a failure) the GPUs draw `P_gpu`; during checkpoint stalls and restarts they
//!   draw the idle level.
//! * **CO2e** = energy x `grid_gco2_per_kwh` (default 400 g/kWh, about the world-average
//!   grid; set your site's). **Cost** = GPU-hours x `gpu_hour_usd` (default 2.0 $/GPU-hour,
//!   a rental price that includes power).

use serde::{Deserialize, Serialize};

/// Power, emission and price parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergySpec {
    /// GPU power while computing, fraction of TDP.
    pub compute_power_fraction: f64,
    /// GPU power during exposed communication, fraction of TDP.
    pub comm_power_fraction: f64,
    /// GPU power in the bubble, when idle, in checkpoint stalls and restarts, fraction of TDP.
    pub idle_power_fraction: f64,
    /// Host power per node (CPUs, DRAM, fans, storage), W.
    pub host_power_per_node_w: f64,
    /// Power per NIC, W.
    pub nic_power_w: f64,
    /// Switch-fabric power per NIC port, W.
    pub switch_power_per_nic_w: f64,
    /// Power usage effectiveness (facility / IT power), >= 1.
    pub pue: f64,
    /// Grid carbon intensity, g CO2e per kWh.
    pub grid_gco2_per_kwh: f64,
    /// Price of one GPU-hour, USD.
    pub gpu_hour_usd: f64,
}

impl Default for EnergySpec {
    fn default() -> Self {
        EnergySpec {
            compute_power_fraction: 0.90,
            comm_power_fraction: 0.50,
            idle_power_fraction: 0.30,
            host_power_per_node_w: 1000.0,
            nic_power_w: 25.0,
            switch_power_per_nic_w: 50.0,
            pue: 1.2,
            grid_gco2_per_kwh: 400.0,
            gpu_hour_usd: 2.0,
        }
    }
}

/// Mean GPU power over a step of `s`, W.
pub fn gpu_power_w(spec: &EnergySpec, tdp_w: f64, s: &super::SimulatedStep) -> f64 {
    let (compute, comm, step_time_s) = (s.compute_s, s.exposed_comm_s, s.step_time_s);
    let idle = (step_time_s - compute - comm).max(0.0);
    tdp_w * (spec.compute_power_fraction * compute + spec.comm_power_fraction * comm + spec.idle_power_fraction * idle)
        / step_time_s
}

/// IT power of everything but the GPUs (hosts, NICs, switches), W.
pub fn other_it_power_w(spec: &EnergySpec, num_nodes: u32, nics_per_node: u32) -> f64 {
    let nics = (num_nodes * nics_per_node) as f64;
    num_nodes as f64 * spec.host_power_per_node_w + nics * (spec.nic_power_w + spec.switch_power_per_nic_w)
}

/// Energy and what follows from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyOutcome {
    /// Mean GPU power while training, W.
    pub gpu_power_w: f64,
    /// IT power of the job while training (GPUs, hosts, NICs, switches), W.
    pub it_power_w: f64,
    /// Facility power while training (IT x PUE), W.
    pub facility_power_w: f64,
    /// Facility energy of one step, kWh.
    pub energy_per_step_kwh: f64,
    /// Facility energy to the target, failures and checkpoints included, kWh.
    pub energy_to_target_kwh: f64,
    /// Emissions to the target, kg CO2e.
    pub co2e_kg: f64,
    /// Price of the GPU-hours to the target, USD.
    pub cost_usd: f64,
}

/// Energy of a job: `busy_s` of training at `gpu_power_w` per GPU and `stalled_s` with the
/// GPUs at the idle level, for `gpu_hours` of GPU time.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    spec: &EnergySpec,
    tdp_w: f64,
    num_gpus: u32,
    other_it_w: f64,
    gpu_power_w: f64,
    step_time_s: f64,
    busy_s: f64,
    stalled_s: f64,
    gpu_hours: f64,
) -> EnergyOutcome {
    let gpus = num_gpus as f64;
    let it_power_w = gpus * gpu_power_w + other_it_w;
    let stalled_it_w = gpus * tdp_w * spec.idle_power_fraction + other_it_w;
    let joules = spec.pue * (it_power_w * busy_s + stalled_it_w * stalled_s);
    let kwh = joules / 3.6e6;
    EnergyOutcome {
        gpu_power_w,
        it_power_w,
        facility_power_w: it_power_w * spec.pue,
        energy_per_step_kwh: it_power_w * spec.pue * step_time_s / 3.6e6,
        energy_to_target_kwh: kwh,
        co2e_kg: kwh * spec.grid_gco2_per_kwh / 1000.0,
        cost_usd: gpu_hours * spec.gpu_hour_usd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_is_power_times_time_by_hand() {
        // 10 s step: 6 s compute, 2 s exposed TP comm, 2 s bubble; TDP 700 W
        let step = crate::training::SimulatedStep {
            step_time_s: 10.0,
            tokens_per_step: 1.0,
            compute_s: 6.0,
            exposed_comm_s: 2.0,
            extra_steps_fraction: 0.0,
        };
        let spec = EnergySpec::default();
        let p = gpu_power_w(&spec, 700.0, &step);
        // 700 * (0.9*6 + 0.5*2 + 0.3*2) / 10 = 700 * 0.70 = 490 W
        assert!((p - 490.0).abs() < 1e-9, "{p}");
        // 2 nodes x 8 GPUs x 8 NICs: hosts 2000 W, NICs+switch 16 x 75 = 1200 W
        let other = other_it_power_w(&spec, 2, 8);
        assert_eq!(other, 3200.0);
        // 1 h of training and 0.5 h stalled:
        // IT busy = 16*490 + 3200 = 11040 W; stalled = 16*210 + 3200 = 6560 W
        // facility kWh = 1.2 * (11.040 * 1 + 6.560 * 0.5) = 1.2 * 14.32 = 17.184
        let e = evaluate(&spec, 700.0, 16, other, p, 10.0, 3600.0, 1800.0, 24.0);
        assert!(
            (e.energy_to_target_kwh - 17.184).abs() < 1e-9,
            "{}",
            e.energy_to_target_kwh
        );
        assert!((e.energy_per_step_kwh - 1.2 * 11040.0 * 10.0 / 3.6e6).abs() < 1e-12);
        assert!((e.co2e_kg - 17.184 * 0.4).abs() < 1e-9);
        assert_eq!(e.cost_usd, 48.0);
    }
}
