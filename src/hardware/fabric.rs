//! Scale-out fabrics as presets: owns [`FabricPreset`] (the table [`FABRIC_PRESETS`], each
//! preset a set of constants with its source), [`FabricSpec`] (what a cluster resolved:
//! the constants the collective model reads) and [`CollectiveModel`] (NCCL's tuner-like
//! model or the textbook hop model). How the constants become time is the network's
//! (`crate::network::tuner`); the long notes are in docs/network.md.
//!
//! | preset | NIC | NICs per GPU | plugin latency per network hop | packets sprayed | tuner | source |
//! |---|---|---|---|---|---|---|
//! | `ib-hdr` | 200 Gb/s | 1 | 0 | no | NCCL | DGX A100: 8 x ConnectX-6 HDR; NCCL net_ib reports no latency |
//! | `ib-ndr` | 400 Gb/s | 1 | 0 | no | NCCL | DGX H100/B200: 8 x ConnectX-7 NDR |
//! | `ib-xdr` | 800 Gb/s | 1 | 0 | no | NCCL | ConnectX-8 XDR (DGX B300 / GB300) |
//! | `roce` | 400 Gb/s | 1 | 0 | no (ECMP) | NCCL | RoCEv2 through NCCL's IB transport, ECMP routing |
//! | `spectrum-x` | 400 Gb/s | 1 | 0 | yes (adaptive routing) | NCCL | NVIDIA Spectrum-X RoCE |
//! | `efa-p5` | 100 Gb/s | 4 | 75 us | yes (SRD) | measured | AWS p5/p5e: 32 x EFA; aws-ofi-nccl platform table |
//! | `efa-p5en` | 200 Gb/s | 2 | 35 us | yes (SRD) | measured | AWS p5en: 16 x EFAv3 |
//! | `efa-p6` | 400 Gb/s | 1 | 35 us | yes (SRD) | measured | AWS p6-b200: 8 x 400 Gb/s EFAv4 |
//! | `tcpxo` | 200 Gb/s | 1 | 35 us (assumed) | no | NCCL | GCP A3 Mega: 8 x 200 Gb/s GPUDirect-TCPXO |
//! | `slingshot` | 200 Gb/s | 1 | 0 | yes (adaptive routing) | NCCL | HPE Slingshot-11, one Cassini NIC per GPU |
//! | `nvl72` | 400 Gb/s | 1 | 0 | no | NCCL | GB200 NVL72: 72 GPUs per NVLink domain, ConnectX-7 per GPU |
//!
//! Only `ib-hdr`, `ib-ndr` (B200 and H100 clusters) and `efa-p5` have nccl-tests data behind
//! them (docs/calibration.md); the others carry the shared fitted constants and say so
//! ([`FabricPreset::validated`]).

use serde::{Deserialize, Serialize};

/// How collective and point-to-point time is modelled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectiveModel {
    /// NCCL's tuner model: per algorithm and protocol, latency per ring step and tree level,
    /// channels, protocol bandwidths, the p2p channel policy, calibrated on nccl-tests runs.
    #[default]
    Nccl,
    /// Textbook: bytes over links at the scenario's efficiencies plus a fixed latency per
    /// hop (`scale_up_latency_us`, `scale_out_latency_us`); what the peers of PEERS.md model.
    Hop,
}

impl CollectiveModel {
    /// Names accepted in scenarios and by `--model`.
    pub const NAMES: &'static [&'static str] = &["nccl", "hop"];
    /// In the order of [`Self::NAMES`].
    pub const ALL: [CollectiveModel; 2] = [CollectiveModel::Nccl, CollectiveModel::Hop];
}

/// Who picks the algorithm and protocol of a collective.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunerKind {
    /// NCCL's internal model (its nominal constants, with its mistakes).
    #[default]
    Nccl,
    /// A tuner plugin tuned on measurements (aws-ofi-nccl's on EFA): the fastest choice.
    Measured,
}

/// One scale-out fabric: constants and where they come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FabricPreset {
    /// Name in scenarios (`[cluster.network] fabric`).
    pub name: &'static str,
    /// One line for the reader.
    pub description: &'static str,
    /// Line rate of one NIC, Gbit/s.
    pub nic_gbit_per_s: f64,
    /// NICs per GPU (p5: 32 NICs per 8 GPUs = 4).
    pub nics_per_gpu: f64,
    /// Latency the network plugin reports to NCCL, added to every network hop (twice for the
    /// Simple protocol), microseconds.
    pub latency_us: f64,
    /// Packets of one flow are sprayed over all paths (EFA SRD, adaptive routing): no
    /// per-step straggler from flow placement.
    pub packet_spraying: bool,
    /// NCCL's tuner or a measured plugin.
    pub tuner: TunerKind,
    /// NCCL_P2P_NET_CHUNKSIZE, bytes.
    pub p2p_chunk_bytes: f64,
    /// NCCL_BUFFSIZE (Simple protocol buffer per channel and peer), bytes.
    pub buffer_bytes: f64,
    /// GPUs per NVLink domain the preset implies (0: one node).
    pub scale_up_domain: u32,
    /// nccl-tests data of this fabric were used in the calibration.
    pub validated: bool,
    /// Where the constants come from.
    pub source: &'static str,
}

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

const IB: FabricPreset = FabricPreset {
    name: "ib-ndr",
    description: "InfiniBand NDR 400 Gb/s, one NIC per GPU, static/ECMP routing",
    nic_gbit_per_s: 400.0,
    nics_per_gpu: 1.0,
    latency_us: 0.0,
    packet_spraying: false,
    tuner: TunerKind::Nccl,
    p2p_chunk_bytes: 128.0 * KIB,
    buffer_bytes: 4.0 * MIB,
    scale_up_domain: 0,
    validated: true,
    source: "DGX H100/B200 (8 x ConnectX-7 NDR); NCCL net_ib reports no latency (src/transport/net_ib/init.cc); B200 nccl-tests 1-64 nodes and NVIDIA's 2-node H100 ring",
};

const EFA: FabricPreset = FabricPreset {
    name: "efa-p5",
    description: "AWS EFA on p5/p5e: 32 x 100 Gb/s per 8 GPUs, SRD",
    nic_gbit_per_s: 100.0,
    nics_per_gpu: 4.0,
    latency_us: 75.0,
    packet_spraying: true,
    tuner: TunerKind::Measured,
    p2p_chunk_bytes: 512.0 * KIB,
    buffer_bytes: 8.0 * MIB,
    scale_up_domain: 0,
    validated: true,
    source: "AWS p5 (32 EFA interfaces); aws-ofi-nccl src/platform-aws.cpp reports 75 us on p5/p5e; NCCL_BUFFSIZE=8M, NCCL_P2P_NET_CHUNKSIZE=512K as AWS recommends; p5 nccl-tests 2-32 nodes",
};

/// Every preset, by name.
pub const FABRIC_PRESETS: &[FabricPreset] = &[
    FabricPreset {
        name: "ib-hdr",
        description: "InfiniBand HDR 200 Gb/s, one NIC per GPU",
        nic_gbit_per_s: 200.0,
        source: "DGX A100 (8 x ConnectX-6 HDR); NCCL net_ib reports no latency; NVIDIA's 2-node DGX A100 ring (nccl#812)",
        ..IB
    },
    IB,
    FabricPreset {
        name: "ib-xdr",
        description: "InfiniBand XDR 800 Gb/s, one NIC per GPU (unvalidated)",
        nic_gbit_per_s: 800.0,
        validated: false,
        source: "ConnectX-8 SuperNIC 800 Gb/s (DGX B300 / GB300); no nccl-tests data: shared constants",
        ..IB
    },
    FabricPreset {
        name: "roce",
        description: "RoCEv2 400 Gb/s with ECMP routing (unvalidated)",
        validated: false,
        source: "NCCL's IB transport drives RoCE (latency 0); ECMP places flows, no spraying; shared constants",
        ..IB
    },
    FabricPreset {
        name: "spectrum-x",
        description: "NVIDIA Spectrum-X RoCE 400 Gb/s, adaptive routing with packet spraying (unvalidated)",
        packet_spraying: true,
        validated: false,
        source: "Spectrum-X adaptive routing sprays packets; NCCL's IB transport (latency 0); shared constants",
        ..IB
    },
    EFA,
    FabricPreset {
        name: "efa-p5en",
        description: "AWS EFAv3 on p5en: 16 x 200 Gb/s per 8 GPUs (unvalidated)",
        nic_gbit_per_s: 200.0,
        nics_per_gpu: 2.0,
        latency_us: 35.0,
        validated: false,
        source: "AWS p5en; aws-ofi-nccl platform table reports 35 us on p5en/p6; shared constants",
        ..EFA
    },
    FabricPreset {
        name: "efa-p6",
        description: "AWS EFAv4 on p6-b200: 8 x 400 Gb/s per 8 GPUs (unvalidated)",
        nic_gbit_per_s: 400.0,
        nics_per_gpu: 1.0,
        latency_us: 35.0,
        validated: false,
        source: "AWS p6-b200; aws-ofi-nccl platform table reports 35 us; shared constants",
        ..EFA
    },
    FabricPreset {
        name: "tcpxo",
        description: "GCP A3 Mega GPUDirect-TCPXO: 8 x 200 Gb/s per 8 GPUs (unvalidated)",
        nic_gbit_per_s: 200.0,
        latency_us: 35.0,
        validated: false,
        source: "GCP A3 Mega (8 x 200 Gb/s GPU NICs, TCPXO plugin); no public plugin latency found: 35 us assumed as EFA's newer platforms; shared constants",
        ..IB
    },
    FabricPreset {
        name: "slingshot",
        description: "HPE Slingshot-11: one 200 Gb/s Cassini NIC per GPU, adaptive routing (unvalidated)",
        nic_gbit_per_s: 200.0,
        packet_spraying: true,
        validated: false,
        source: "Alps/Perlmutter-class nodes (4 GPUs, 4 Cassini NICs) through aws-ofi-nccl + cxi, which reports no latency off AWS; adaptive routing; shared constants",
        ..IB
    },
    FabricPreset {
        name: "nvl72",
        description: "GB200 NVL72: 72 GPUs per NVLink domain, one 400 Gb/s ConnectX-7 per GPU (unvalidated)",
        scale_up_domain: 72,
        validated: false,
        source: "GB200 NVL72 rack (18 trays of 4 GPUs on NVLink 5), ConnectX-7 400 Gb/s per GPU; no data: shared constants",
        ..IB
    },
];

/// Names of the presets, in table order.
pub fn fabric_names() -> Vec<&'static str> {
    FABRIC_PRESETS.iter().map(|p| p.name).collect()
}

/// The preset called `name` (case-insensitive, `_` for `-`).
pub fn fabric_preset(name: &str) -> Option<&'static FabricPreset> {
    let n = name.trim().to_ascii_lowercase().replace('_', "-");
    FABRIC_PRESETS.iter().find(|p| p.name == n)
}

/// The preset a cluster gets when it names none: InfiniBand of its NIC rate (HDR up to
/// 200 Gb/s, NDR up to 400, XDR above), which is what the scenarios written before presets
/// existed describe.
pub fn default_fabric(nic_gbit_per_s: f64) -> &'static FabricPreset {
    let name = if nic_gbit_per_s <= 200.0 {
        "ib-hdr"
    } else if nic_gbit_per_s <= 400.0 {
        "ib-ndr"
    } else {
        "ib-xdr"
    };
    fabric_preset(name).expect("preset exists")
}

/// The fabric constants a cluster resolved (preset, then the scenario's overrides).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FabricSpec {
    /// The preset's name.
    pub preset: String,
    /// NCCL tuner model or hop model.
    pub model: CollectiveModel,
    /// Latency the network plugin reports, added per network hop (NCCL model), us.
    pub latency_us: f64,
    /// Packets sprayed over all paths (no ring straggler from flow placement).
    pub packet_spraying: bool,
    /// NCCL's tuner or a measured plugin picks algorithm and protocol.
    pub tuner: TunerKind,
    /// NCCL_P2P_NET_CHUNKSIZE, bytes.
    pub p2p_chunk_bytes: f64,
    /// NCCL_BUFFSIZE, bytes.
    pub buffer_bytes: f64,
    /// In-network reduction (InfiniBand SHARP) present and CollNet enabled
    /// (NCCL_COLLNET_ENABLE=1; NCCL's default is off): its tuner may pick CollNet.
    pub sharp: bool,
    /// Multiplier on NCCL's latency table (`None`: the calibrated value).
    pub latency_scale: Option<f64>,
    /// Point-to-point latency across nodes, us (`None`: the calibrated value).
    pub p2p_latency_us: Option<f64>,
}

impl FabricSpec {
    /// The constants of a preset, NCCL model, no SHARP.
    pub fn of(p: &FabricPreset) -> FabricSpec {
        FabricSpec {
            preset: p.name.to_string(),
            model: CollectiveModel::Nccl,
            latency_us: p.latency_us,
            packet_spraying: p.packet_spraying,
            tuner: p.tuner,
            p2p_chunk_bytes: p.p2p_chunk_bytes,
            buffer_bytes: p.buffer_bytes,
            sharp: false,
            latency_scale: None,
            p2p_latency_us: None,
        }
    }

    /// The hop model on an InfiniBand NDR preset (the textbook model of PEERS.md).
    pub fn hop() -> FabricSpec {
        FabricSpec {
            model: CollectiveModel::Hop,
            ..FabricSpec::default()
        }
    }
}

impl Default for FabricSpec {
    /// InfiniBand NDR, NCCL model.
    fn default() -> Self {
        FabricSpec::of(&IB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_resolve_and_state_their_sources() {
        assert_eq!(FABRIC_PRESETS.len(), 11);
        for p in FABRIC_PRESETS {
            assert!(
                p.source.len() > 20 && p.nic_gbit_per_s > 0.0 && p.nics_per_gpu >= 1.0,
                "{}",
                p.name
            );
            assert_eq!(fabric_preset(p.name).unwrap().name, p.name);
            assert_eq!(p.validated, !p.description.contains("unvalidated"), "{}", p.name);
        }
        assert_eq!(fabric_preset("EFA_P5").unwrap().latency_us, 75.0);
        assert!(fabric_preset("myrinet").is_none());
        assert_eq!(default_fabric(200.0).name, "ib-hdr");
        assert_eq!(default_fabric(100.0).name, "ib-hdr");
        assert_eq!(default_fabric(400.0).name, "ib-ndr");
        assert_eq!(default_fabric(800.0).name, "ib-xdr");
        assert_eq!(fabric_preset("nvl72").unwrap().scale_up_domain, 72);
    }
}
