//! T3 controllers' own data: the packed records a panel keeps for its points, routines and monitors
//! ([`records`]), and T3000's panel backup file, the `.prog` ([`prog`]).
//!
//! A T3 panel and T3000 keep every configuration object as a packed (`#pragma pack(1)`) little-endian
//! C struct. The same bytes travel in a `.prog` file, in BACnet private transfers and, two bytes per
//! holding register, over Modbus. [`records`] decodes and encodes each struct from and to its bytes, so
//! the file parser and the Modbus sync read the same fields the same way; [`to_registers`] and
//! [`from_registers`] are the Modbus packing (first byte of each pair in the register's high half, as
//! [`labels`](crate::labels) already uses for descriptions and labels).

pub mod prog;
pub mod records;
pub mod routines;

/// Bytes as holding registers: two bytes per register, the first in the high half; an odd last byte
/// is padded with 0.
pub fn to_registers(bytes: &[u8]) -> Vec<u16> {
    bytes.chunks(2).map(|pair| u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)])).collect()
}

/// Holding registers as bytes, the inverse of [`to_registers`] (callers cut to the record's size).
pub fn from_registers(words: &[u16]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// Text of a NUL-terminated Latin-1 field: the bytes up to the first NUL (all of them if there is
/// none), each byte one character, surrounding blanks trimmed.
pub fn latin1(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    field[..end].iter().map(|&b| char::from(b)).collect::<String>().trim().to_owned()
}

/// A field of `size` bytes holding `text`: at most `size - 1` characters, then NULs; characters outside
/// Latin-1 (and NUL itself) become `?`.
pub fn latin1_field(text: &str, size: usize) -> Vec<u8> {
    let mut field = vec![0u8; size];
    for (slot, ch) in field.iter_mut().take(size.saturating_sub(1)).zip(text.chars()) {
        *slot = u8::try_from(u32::from(ch)).ok().filter(|&b| b != 0).unwrap_or(b'?');
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_put_the_first_byte_high() {
        assert_eq!(to_registers(&[0x12, 0x34, 0x56]), vec![0x1234, 0x5600]);
        assert_eq!(from_registers(&[0x1234, 0x5600]), vec![0x12, 0x34, 0x56, 0]);
    }

    #[test]
    fn latin1_fields_stop_at_nul_and_keep_room_for_it() {
        assert_eq!(latin1(b"AB C \0garbage"), "AB C");
        assert_eq!(latin1(b"\xb0C"), "°C");
        assert_eq!(latin1_field("ABCDEFGHIJ", 9), b"ABCDEFGH\0".to_vec());
        assert_eq!(latin1_field("CO₂ °", 6), b"CO? \xb0\0".to_vec());
    }
}
