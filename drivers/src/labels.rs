//! Labels and descriptions of T3 controller points, where the panel keeps them: in its point records.
//!
//! Each input, output and variable record of a T3 controller (the firmware's `Str_in_point`,
//! `Str_out_point`, `Str_variable_point`) starts with a description of up to 20 characters (21 bytes with
//! its NUL) and a label of up to 8 (9 bytes), Latin-1; T3000 shows them as "Full Label" and "Label". The
//! panel serves every record as holding registers, two bytes of the record per register in record order
//! (the first byte in the high half, as `read_user_data_by_block` in the T3 firmware's `modbus.c` sends
//! them): outputs from 10000 (45-byte records, 23 registers each), inputs from 11472 (46 bytes, 23
//! registers), variables from 12944 (39 bytes, 20 registers), `MODBUS_OUTPUT_BLOCK_FIRST`,
//! `MODBUS_INPUT_BLOCK_FIRST` and `MODBUS_VAR_BLOCK_FIRST` in the firmware's register map. The first
//! [`TEXT_REGISTERS`] registers of a record hold the description and the label. The whole records are
//! decoded by [`t3::records`](crate::t3::records); this module reads and writes just their text.

use crate::profile::{PointType, ProfilePoint};
use crate::t3::{from_registers, latin1, latin1_field, to_registers};

/// Bytes of the description, its NUL included.
pub const DESCRIPTION_BYTES: usize = 21;
/// Bytes of an output's description, its NUL included (18 characters): the two bytes after it, up
/// to the label, hold the low and high voltage of the output's range (`Str_out_point`).
pub const OUTPUT_DESCRIPTION_BYTES: usize = 19;

/// Bytes of the description of a point of this kind, its NUL included.
pub fn description_bytes(kind: PointType) -> usize {
    if kind == PointType::Output { OUTPUT_DESCRIPTION_BYTES } else { DESCRIPTION_BYTES }
}
/// Bytes of the label, its NUL included.
pub const LABEL_BYTES: usize = 9;
/// Registers holding the description and the label at the start of a record.
pub const TEXT_REGISTERS: u16 = ((DESCRIPTION_BYTES + LABEL_BYTES) / 2) as u16;

/// (first register, registers per record, records) of each kind of point.
const OUTPUTS: (u16, u16, u16) = (10000, 23, 64);
const INPUTS: (u16, u16, u16) = (11472, 23, 64);
const VARIABLES: (u16, u16, u16) = (12944, 20, 128);

/// What a panel calls one of its points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PointText {
    /// Up to 8 characters: "SUP TEMP".
    pub label: String,
    /// Up to 20 characters: "Supply air temp".
    pub description: String,
}

impl PointText {
    pub fn new(label: &str, description: &str) -> PointText {
        PointText { label: label.to_owned(), description: description.to_owned() }
    }

    pub fn is_empty(&self) -> bool {
        self.label.is_empty() && self.description.is_empty()
    }

    /// The record's first [`TEXT_REGISTERS`] registers for a point of kind `kind`, over what they
    /// hold now (`current`: the bytes between an output's description and its label, its range's
    /// voltages, are kept): the description, then the label, each cut to what its field holds,
    /// NUL-padded; characters outside Latin-1 become `?`.
    pub fn encode(&self, kind: PointType, current: &[u16]) -> Vec<u16> {
        let mut bytes = from_registers(current);
        bytes.resize(DESCRIPTION_BYTES + LABEL_BYTES, 0);
        let n = description_bytes(kind);
        bytes[..n].copy_from_slice(&latin1_field(&self.description, n));
        bytes[DESCRIPTION_BYTES..].copy_from_slice(&latin1_field(&self.label, LABEL_BYTES));
        to_registers(&bytes)
    }

    /// The description and label from a record's first registers (fewer registers: what they hold).
    pub fn decode(kind: PointType, words: &[u16]) -> PointText {
        let bytes = from_registers(words);
        let text =
            |range: std::ops::Range<usize>| latin1(bytes.get(range.start..range.end.min(bytes.len())).unwrap_or(&[]));
        PointText {
            description: text(0..description_bytes(kind)),
            label: text(DESCRIPTION_BYTES..DESCRIPTION_BYTES + LABEL_BYTES),
        }
    }
}

fn block(point_type: PointType) -> Option<(u16, u16, u16)> {
    match point_type {
        PointType::Output => Some(OUTPUTS),
        PointType::Input => Some(INPUTS),
        PointType::Variable => Some(VARIABLES),
        PointType::Register => None,
    }
}

/// The first holding register of a T3 point's record; `None` for library registers.
pub fn record(p: &ProfilePoint) -> Option<u16> {
    // A plugin device's inputs, outputs and variables are not a T3 panel's.
    if p.plugin.is_some() {
        return None;
    }
    let (first, size, count) = block(p.point_type)?;
    let n = u16::try_from(p.point_number).ok().filter(|n| (1..=count).contains(n))?;
    Some(first + (n - 1) * size)
}

/// Every holding register the point records of a T3 controller span: (first, count) per kind of point.
pub fn record_blocks() -> [(u16, u16); 3] {
    [OUTPUTS, INPUTS, VARIABLES].map(|(first, size, count)| (first, size * count))
}

/// The gap between the text of one record and the next (what a read of several records skips).
pub fn record_gap(p: &ProfilePoint) -> u16 {
    block(p.point_type).map_or(0, |(_, size, _)| size - TEXT_REGISTERS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileLibrary;

    #[test]
    fn records_follow_the_firmware_map() {
        let t3 = ProfileLibrary::builtin().get("T3-controller").unwrap();
        let at = |name: &str| record(t3.point(name).unwrap());
        assert_eq!(at("OUT1"), Some(10000));
        assert_eq!(at("OUT64"), Some(10000 + 63 * 23));
        // Inputs start where the 64 outputs end, variables where the inputs end, programs (15504) after them.
        assert_eq!(at("IN1"), Some(10000 + 64 * 23));
        assert_eq!(at("IN1"), Some(11472));
        assert_eq!(at("VAR1"), Some(11472 + 64 * 23));
        assert_eq!(at("VAR128"), Some(12944 + 127 * 20));
        assert_eq!(record_blocks().iter().map(|(_, n)| n).sum::<u16>(), 15504 - 10000);
        let co2 = ProfileLibrary::builtin().get("CO2").unwrap();
        assert!(co2.points.iter().all(|p| record(p).is_none()));
    }

    #[test]
    fn text_round_trips_in_record_byte_order() {
        let v = PointType::Variable;
        let t = PointText::new("SUP TEMP", "Supply air temp");
        let words = t.encode(v, &[]);
        assert_eq!(words.len(), 15);
        // "Su" in the first register, first byte high.
        assert_eq!(words[0], u16::from_be_bytes([b'S', b'u']));
        // The label starts at byte 21: the low half of register 10.
        assert_eq!(words[10] & 0xFF, u16::from(b'S'));
        assert_eq!(PointText::decode(v, &words), t);
        // Too long: cut to 20 and 8 characters, NULs kept; outside Latin-1: '?'.
        let long = PointText::new("ABCDEFGHIJ", "A description longer than twenty");
        let back = PointText::decode(v, &long.encode(v, &[]));
        assert_eq!(back, PointText::new("ABCDEFGH", "A description longer"));
        let odd = PointText::new("20 °C", "CO₂");
        assert_eq!(PointText::decode(v, &odd.encode(v, &[])), PointText::new("20 °C", "CO?"));
        assert!(PointText::decode(v, &[0; 15]).is_empty());
    }

    #[test]
    fn an_output_description_leaves_its_voltages_alone() {
        let o = PointType::Output;
        // The record as the panel holds it: bytes 19 and 20 are the range's low and high voltage.
        let mut bytes = vec![0u8; DESCRIPTION_BYTES + LABEL_BYTES];
        bytes[19] = 2;
        bytes[20] = 10;
        let current = to_registers(&bytes);
        let long = PointText::new("FAN CMD", "Supply fan command!!");
        let words = long.encode(o, &current);
        let out = from_registers(&words);
        assert_eq!((out[19], out[20]), (2, 10), "voltages kept");
        assert_eq!(out[18], 0, "the description ends with its NUL inside its 19 bytes");
        assert_eq!(PointText::decode(o, &words), PointText::new("FAN CMD", "Supply fan command"));
        // Read as an input's record, the voltages would read as characters: outputs are cut at 18.
        assert_eq!(PointText::decode(o, &current).description, "");
    }
}
