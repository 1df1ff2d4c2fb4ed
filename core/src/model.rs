//! Points, samples and quality codes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifies one point (an input, output or variable of a device, or a pushed series).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PointId(pub u32);

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One value of one point at one instant.
///
/// `ts` is microseconds since the Unix epoch, UTC. T3000's int32 x 1000 values are already scaled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub point_id: PointId,
    pub ts: i64,
    pub value: f64,
    pub quality: Quality,
}

impl Sample {
    pub fn new(point_id: u32, ts: i64, value: f64, quality: Quality) -> Self {
        Self { point_id: PointId(point_id), ts, value, quality }
    }

    pub fn good(point_id: u32, ts: i64, value: f64) -> Self {
        Self::new(point_id, ts, value, Quality::GOOD)
    }
}

/// Earliest timestamp accepted: 1970-01-01T00:00:00Z.
pub const MIN_TS: i64 = 0;
/// Latest timestamp accepted: 9999-12-31T23:59:59.999999Z (what RFC 3339 and Parquet dates can express).
pub const MAX_TS: i64 = 253_402_300_799_999_999;

/// Quality of a sample, encoded in one byte the way OPC DA / OPC UA classic do it.
///
/// Bits 7-6 are the major state: `11` good, `01` uncertain, `00` bad. Bits 5-2 are the sub-status.
/// Bits 1-0 are the limit flags (0 none, 1 low, 2 high, 3 constant). Every byte is a valid quality:
/// unknown sub-codes keep their major state.
///
/// | code | hex | meaning |
/// |---|---|---|
/// | `GOOD` | 0xC0 | the device reported this value and nothing is known against it |
/// | `GOOD_LOCAL_OVERRIDE` | 0xD8 | good, but the point is in manual (overridden at the controller) |
/// | `UNCERTAIN` | 0x40 | no specific reason |
/// | `UNCERTAIN_LAST_USABLE` | 0x44 | the value is the last one that was read; the source stopped updating |
/// | `UNCERTAIN_SENSOR_NOT_ACCURATE` | 0x50 | the sensor is out of calibration or at its limits |
/// | `UNCERTAIN_OUT_OF_RANGE` | 0x54 | outside the point's configured range (engineering units exceeded) |
/// | `UNCERTAIN_SUB_NORMAL` | 0x58 | derived from fewer good sources than needed |
/// | `BAD` | 0x00 | no specific reason |
/// | `BAD_CONFIG_ERROR` | 0x04 | the point is configured wrongly (bad address, unknown register) |
/// | `BAD_NOT_CONNECTED` | 0x08 | the input is not connected (open circuit) |
/// | `BAD_DEVICE_FAILURE` | 0x0C | the device answered with an error (Modbus exception) |
/// | `BAD_SENSOR_FAILURE` | 0x10 | the sensor failed (shorted) |
/// | `BAD_LAST_KNOWN` | 0x14 | communication failed; the value is the last known one |
/// | `BAD_COMM_FAILURE` | 0x18 | communication failed and no value is available |
/// | `BAD_OUT_OF_SERVICE` | 0x1C | the point or device is disabled |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quality(pub u8);

impl Quality {
    pub const GOOD: Quality = Quality(0xC0);
    pub const GOOD_LOCAL_OVERRIDE: Quality = Quality(0xD8);
    pub const UNCERTAIN: Quality = Quality(0x40);
    pub const UNCERTAIN_LAST_USABLE: Quality = Quality(0x44);
    pub const UNCERTAIN_SENSOR_NOT_ACCURATE: Quality = Quality(0x50);
    pub const UNCERTAIN_OUT_OF_RANGE: Quality = Quality(0x54);
    pub const UNCERTAIN_SUB_NORMAL: Quality = Quality(0x58);
    pub const BAD: Quality = Quality(0x00);
    pub const BAD_CONFIG_ERROR: Quality = Quality(0x04);
    pub const BAD_NOT_CONNECTED: Quality = Quality(0x08);
    pub const BAD_DEVICE_FAILURE: Quality = Quality(0x0C);
    pub const BAD_SENSOR_FAILURE: Quality = Quality(0x10);
    pub const BAD_LAST_KNOWN: Quality = Quality(0x14);
    pub const BAD_COMM_FAILURE: Quality = Quality(0x18);
    pub const BAD_OUT_OF_SERVICE: Quality = Quality(0x1C);

    pub fn major(self) -> Major {
        match self.0 >> 6 {
            0b11 => Major::Good,
            0b01 => Major::Uncertain,
            0b00 => Major::Bad,
            // 0b10 is unused by OPC DA; treat it as uncertain rather than trusting it.
            _ => Major::Uncertain,
        }
    }

    pub fn is_good(self) -> bool {
        self.major() == Major::Good
    }

    /// A short name for logs and exports (`good`, `uncertain/out_of_range`, `bad/comm_failure`, ...).
    pub fn name(self) -> &'static str {
        match self.0 & 0xFC {
            0xC0 => "good",
            0xD8 => "good/local_override",
            0x40 => "uncertain",
            0x44 => "uncertain/last_usable",
            0x50 => "uncertain/sensor_not_accurate",
            0x54 => "uncertain/out_of_range",
            0x58 => "uncertain/sub_normal",
            0x00 => "bad",
            0x04 => "bad/config_error",
            0x08 => "bad/not_connected",
            0x0C => "bad/device_failure",
            0x10 => "bad/sensor_failure",
            0x14 => "bad/last_known",
            0x18 => "bad/comm_failure",
            0x1C => "bad/out_of_service",
            _ => match self.major() {
                Major::Good => "good",
                Major::Uncertain => "uncertain",
                Major::Bad => "bad",
            },
        }
    }
}

impl Default for Quality {
    fn default() -> Self {
        Quality::GOOD
    }
}

/// The major state of a [`Quality`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Major {
    Good,
    Uncertain,
    Bad,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_major_states() {
        assert_eq!(Quality::GOOD.major(), Major::Good);
        assert_eq!(Quality::GOOD_LOCAL_OVERRIDE.major(), Major::Good);
        assert_eq!(Quality::UNCERTAIN_OUT_OF_RANGE.major(), Major::Uncertain);
        assert_eq!(Quality::BAD_COMM_FAILURE.major(), Major::Bad);
        assert_eq!(Quality(0x80).major(), Major::Uncertain);
        assert_eq!(Quality::BAD_COMM_FAILURE.name(), "bad/comm_failure");
        assert_eq!(Quality(0xC1).name(), "good");
        assert_eq!(Quality(0x3C).name(), "bad");
    }
}
