//! Physical units shared by every layer: the simulation clock and unit conversions.
//!
//! The clock is [`SimTime`], integer picoseconds (a `u64` covers 213 days), so event order
//! is exact and needs no epsilon. Quantities that cross module boundaries as plain `f64`
//! carry their unit in the name (`_s`, `_bytes`, `_flops`, `_bytes_per_s`).
//!
//! Prefixes mean what they say: GB = 1e9 bytes and GB/s = 1e9 bytes/s (as NVIDIA and NCCL
//! quote them); GiB = 2^30 bytes appears only where a name says `gib`; bits are spelled out.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// Picoseconds per second.
pub const PS_PER_S: f64 = 1e12;
/// Bytes per GB (decimal).
pub const BYTES_PER_GB: f64 = 1e9;
/// Bytes per GiB (binary).
pub const BYTES_PER_GIB: f64 = 1_073_741_824.0;
/// FLOP/s per TFLOP/s.
pub const FLOPS_PER_TFLOPS: f64 = 1e12;

/// A point on (or a span of) the simulated clock, in integer picoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SimTime(pub u64);

impl SimTime {
    /// Time zero.
    pub const ZERO: SimTime = SimTime(0);
    /// The latest time a simulation may reach (half the `u64` range: 106 days). Sums
    /// saturate instead of wrapping, so a run that overflowed ends at or past this and is
    /// refused rather than reported.
    pub const LIMIT: SimTime = SimTime(u64::MAX / 2);

    /// Converts seconds to the nearest picosecond; negative or NaN inputs clamp to zero.
    pub fn from_secs(seconds: f64) -> SimTime {
        if seconds.is_nan() || seconds <= 0.0 {
            return SimTime::ZERO;
        }
        let ps = (seconds * PS_PER_S).round();
        if ps >= u64::MAX as f64 {
            SimTime(u64::MAX)
        } else {
            SimTime(ps as u64)
        }
    }

    /// Converts to seconds.
    pub fn as_secs(self) -> f64 {
        self.0 as f64 / PS_PER_S
    }

    /// Picoseconds.
    pub fn as_ps(self) -> u64 {
        self.0
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_sub(self, earlier: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(earlier.0))
    }
}

impl Add for SimTime {
    type Output = SimTime;
    fn add(self, rhs: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for SimTime {
    fn add_assign(&mut self, rhs: SimTime) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sub for SimTime {
    type Output = SimTime;
    fn sub(self, rhs: SimTime) -> SimTime {
        assert!(
            self.0 >= rhs.0,
            "engine invariant broken: negative time span {} - {}",
            self.0,
            rhs.0
        );
        SimTime(self.0 - rhs.0)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_secs();
        if s >= 1.0 {
            write!(f, "{s:.3} s")
        } else if s >= 1e-3 {
            write!(f, "{:.3} ms", s * 1e3)
        } else {
            write!(f, "{:.3} us", s * 1e6)
        }
    }
}

/// Converts a bandwidth in GB/s (1e9 bytes/s) to bytes/s.
pub fn gbyte_per_s_to_bytes_per_s(gbyte_per_s: f64) -> f64 {
    gbyte_per_s * BYTES_PER_GB
}

/// Converts a link rate in Gbit/s to bytes/s.
pub fn gbit_per_s_to_bytes_per_s(gbit_per_s: f64) -> f64 {
    gbit_per_s * 1e9 / 8.0
}

/// Converts TFLOP/s to FLOP/s.
pub fn tflops_to_flops_per_s(tflops: f64) -> f64 {
    tflops * FLOPS_PER_TFLOPS
}

/// Converts microseconds to seconds.
pub fn us_to_s(us: f64) -> f64 {
    us * 1e-6
}

/// Converts bytes to GiB.
pub fn bytes_to_gib(bytes: f64) -> f64 {
    bytes / BYTES_PER_GIB
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_trip_to_picoseconds() {
        assert_eq!(SimTime::from_secs(1.0).as_ps(), 1_000_000_000_000);
        assert_eq!(SimTime::from_secs(2.5e-12).as_ps(), 3); // rounds half away from zero
        assert_eq!(SimTime::from_secs(-1.0), SimTime::ZERO);
        assert!((SimTime::from_secs(0.123456).as_secs() - 0.123456).abs() < 1e-12);
    }

    #[test]
    fn unit_conversions_use_decimal_prefixes_and_bits() {
        assert_eq!(gbyte_per_s_to_bytes_per_s(50.0), 50e9);
        assert_eq!(gbit_per_s_to_bytes_per_s(400.0), 50e9);
        assert_eq!(tflops_to_flops_per_s(312.0), 312e12);
        assert_eq!(bytes_to_gib(2.0 * BYTES_PER_GIB), 2.0);
        assert!((us_to_s(5.0) - 5e-6).abs() < 1e-18);
    }

    #[test]
    fn display_picks_a_readable_unit() {
        assert_eq!(SimTime::from_secs(1.5).to_string(), "1.500 s");
        assert_eq!(SimTime::from_secs(0.0025).to_string(), "2.500 ms");
        assert_eq!(SimTime::from_secs(3e-6).to_string(), "3.000 us");
    }
}
