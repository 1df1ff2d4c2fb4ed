//! T3000's UDP LAN scan: the request T3000 broadcasts and the identity packet a controller sends back.
//!
//! T3000 broadcasts [`SCAN_REQUEST`] (`0x64 0 0 0 0`) to UDP port [`SCAN_PORT`] (1234). Every controller
//! answers with one [`SCAN_REPLY_LEN`]-byte packet for itself and, when it is a gateway for Modbus RTU
//! sub-devices, one more packet per sub-device (with `subnet_protocol = 1` and the gateway's serial
//! number in `master_serial`). The discovery code and the simulator share this module: the simulator
//! answers with [`ScanReply::to_bytes`], discovery reads packets with [`parse_scan_reply`].
//!
//! # Reply layout
//! Source: temcocontrols/T3-programmable-controller-on-ESP32 at commit 1b83f7cb (June 2026):
//! the struct `STR_SCAN_CMD` in `main/define.h` lines 106-135 (inside `#pragma pack(1)`, line 8), filled
//! by `UdpData()` in `main/tcp_server.c` lines 207-275, sent when `rx_buffer[0] == 0x64` (line 645) by
//! the task bound to port 1234 (line 562). The same struct appears in Temco's ARM firmwares. The ESP32
//! is little-endian, so plain `U16_T` fields go out low byte first.
//!
//! | offset | size | field | encoding |
//! |---|---|---|---|
//! | 0 | 2 | command | LE u16: `0x0065` (scan reply; `0x0067` is the firmware's other reply type) |
//! | 2 | 2 | len | LE u16, always `0x001d` |
//! | 4 | 8 | serial number | four LE u16, each holding one byte of the u32 serial, lowest byte first |
//! | 12 | 2 | product model | LE u16 (`product_model & 0xff`) |
//! | 14 | 2 | Modbus address | LE u16 |
//! | 16 | 8 | IPv4 address | four LE u16, each holding one octet, first octet first |
//! | 24 | 2 | Modbus TCP port | LE u16 |
//! | 26 | 2 | firmware revision | LE u16 |
//! | 28 | 2 | hardware revision | LE u16 |
//! | 30 | 4 | master serial number | 4 bytes, lowest first; 0 when the device answers for itself |
//! | 34 | 2 | BACnet instance, low half | big-endian (`htons`) |
//! | 36 | 1 | panel number | the Modbus address |
//! | 37 | 20 | panel name | Latin-1, NUL padded |
//! | 57 | 2 | BACnet instance, high half | big-endian (`htons`) |
//! | 59 | 1 | bootloader | 0 application, 1 bootloader, 2 wrong bootloader, 3 MS/TP device |
//! | 60 | 2 | BACnet/IP port | assigned natively (`= 47808`), so little-endian on the wire, although the header comment says "high byte first" |
//! | 62 | 1 | zigbee / wifi flags | bit 0 zigbee, bit 1 wifi |
//! | 63 | 1 | subnet protocol | 0 the panel itself (Modbus), 1 an RTU sub-device behind it, 12 BIP to MS/TP |
//! | 64 | 1 | command version | 1 |
//! | 65 | 1 | subnet port | 1 main port, 2 zigbee port, 3 sub port (sub-device replies send `port - 1`) |
//! | 66 | 1 | subnet baud rate | index |
//! | 67 | 1 | mini type | hardware variant |
//!
//! Older firmware sends a shorter struct that ends after `zigbee_exist`; [`parse_scan_reply`] needs the
//! first 30 bytes (through the hardware revision) and reads the later fields as 0 / empty when absent.

use std::net::Ipv4Addr;

/// The datagram T3000 broadcasts to find controllers.
pub const SCAN_REQUEST: [u8; 5] = [0x64, 0, 0, 0, 0];
/// The UDP port controllers listen on for [`SCAN_REQUEST`].
pub const SCAN_PORT: u16 = 1234;
/// First byte of a scan request (the firmware checks only this byte).
pub const SCAN_REQUEST_CMD: u8 = 0x64;
/// Command word of a scan reply.
pub const SCAN_REPLY_CMD: u16 = 0x0065;
/// Length of a full scan reply (`sizeof(STR_SCAN_CMD)`, packed).
pub const SCAN_REPLY_LEN: usize = 68;
/// Shortest reply [`parse_scan_reply`] accepts: everything through the hardware revision.
pub const SCAN_REPLY_MIN_LEN: usize = 30;
/// Value of the `len` field the firmware writes.
const SCAN_REPLY_LEN_FIELD: u16 = 0x001d;
const PANEL_NAME_LEN: usize = 20;

/// Why a datagram is not a scan reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// Fewer than [`SCAN_REPLY_MIN_LEN`] bytes.
    #[error("scan reply too short: {len} bytes, need at least {SCAN_REPLY_MIN_LEN}")]
    TooShort { len: usize },
    /// The command word is not `0x0065` / `0x0067`.
    #[error("not a scan reply: command word 0x{command:04x}")]
    NotAReply { command: u16 },
}

/// One controller's (or sub-device's) identity from a scan reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanReply {
    /// `0x0065` for a scan reply.
    pub command: u16,
    pub serial_number: u32,
    pub product_model: u16,
    pub modbus_address: u16,
    pub ip: Ipv4Addr,
    pub modbus_port: u16,
    pub firmware_rev: u16,
    pub hardware_rev: u16,
    /// Serial number of the gateway panel for a sub-device reply, 0 otherwise.
    pub master_serial: u32,
    pub bacnet_instance: u32,
    pub panel_number: u8,
    pub panel_name: String,
    pub bootloader: u8,
    pub bacnet_port: u16,
    pub zigbee_flags: u8,
    /// 0: the panel itself; 1: a Modbus RTU sub-device reached through the panel at `ip`.
    pub subnet_protocol: u8,
    pub command_version: u8,
    pub subnet_port: u8,
    pub subnet_baudrate: u8,
    pub mini_type: u8,
}

impl ScanReply {
    /// True for a reply that describes a sub-device reached through another panel.
    pub fn is_sub_device(&self) -> bool {
        self.subnet_protocol == 1 || self.master_serial != 0
    }

    /// The packed 68-byte packet, as the firmware sends it.
    pub fn to_bytes(&self) -> [u8; SCAN_REPLY_LEN] {
        let mut b = [0u8; SCAN_REPLY_LEN];
        b[0..2].copy_from_slice(&self.command.to_le_bytes());
        b[2..4].copy_from_slice(&SCAN_REPLY_LEN_FIELD.to_le_bytes());
        for (i, byte) in self.serial_number.to_le_bytes().into_iter().enumerate() {
            b[4 + 2 * i..6 + 2 * i].copy_from_slice(&u16::from(byte).to_le_bytes());
        }
        b[12..14].copy_from_slice(&self.product_model.to_le_bytes());
        b[14..16].copy_from_slice(&self.modbus_address.to_le_bytes());
        for (i, octet) in self.ip.octets().into_iter().enumerate() {
            b[16 + 2 * i..18 + 2 * i].copy_from_slice(&u16::from(octet).to_le_bytes());
        }
        b[24..26].copy_from_slice(&self.modbus_port.to_le_bytes());
        b[26..28].copy_from_slice(&self.firmware_rev.to_le_bytes());
        b[28..30].copy_from_slice(&self.hardware_rev.to_le_bytes());
        b[30..34].copy_from_slice(&self.master_serial.to_le_bytes());
        b[34..36].copy_from_slice(&((self.bacnet_instance & 0xffff) as u16).to_be_bytes());
        b[36] = self.panel_number;
        for (i, ch) in self.panel_name.chars().take(PANEL_NAME_LEN - 1).enumerate() {
            // Latin-1: anything outside it becomes '?'.
            b[37 + i] = u8::try_from(u32::from(ch)).unwrap_or(b'?');
        }
        b[57..59].copy_from_slice(&((self.bacnet_instance >> 16) as u16).to_be_bytes());
        b[59] = self.bootloader;
        b[60..62].copy_from_slice(&self.bacnet_port.to_le_bytes());
        b[62] = self.zigbee_flags;
        b[63] = self.subnet_protocol;
        b[64] = self.command_version;
        b[65] = self.subnet_port;
        b[66] = self.subnet_baudrate;
        b[67] = self.mini_type;
        b
    }
}

/// True when `datagram` is a scan request (the firmware looks only at the first byte).
pub fn is_scan_request(datagram: &[u8]) -> bool {
    datagram.first() == Some(&SCAN_REQUEST_CMD)
}

/// Reads a scan reply (see the module docs for the layout). Bytes after the 68th are ignored.
pub fn parse_scan_reply(datagram: &[u8]) -> Result<ScanReply, ScanError> {
    if datagram.len() < SCAN_REPLY_MIN_LEN {
        return Err(ScanError::TooShort { len: datagram.len() });
    }
    let le16 = |at: usize| u16::from_le_bytes([datagram[at], datagram[at + 1]]);
    let command = le16(0);
    if command != SCAN_REPLY_CMD && command != 0x0067 {
        return Err(ScanError::NotAReply { command });
    }
    // Optional tail: absent fields read as 0.
    let byte = |at: usize| datagram.get(at).copied().unwrap_or(0);
    let be16_opt = |at: usize| u16::from_be_bytes([byte(at), byte(at + 1)]);
    let le16_opt = |at: usize| u16::from_le_bytes([byte(at), byte(at + 1)]);

    let serial_number = (0..4).fold(0u32, |sn, i| sn | (u32::from(le16(4 + 2 * i) & 0xff) << (8 * i)));
    let octet = |i: usize| (le16(16 + 2 * i) & 0xff) as u8;
    let master_serial = u32::from_le_bytes([byte(30), byte(31), byte(32), byte(33)]);
    let bacnet_instance = (u32::from(be16_opt(57)) << 16) | u32::from(be16_opt(34));
    let name_bytes: Vec<u8> = (37..37 + PANEL_NAME_LEN).map(byte).take_while(|&b| b != 0).collect();
    let panel_name: String = name_bytes.iter().map(|&b| char::from(b)).collect::<String>().trim_end().to_string();

    Ok(ScanReply {
        command,
        serial_number,
        product_model: le16(12),
        modbus_address: le16(14),
        ip: Ipv4Addr::new(octet(0), octet(1), octet(2), octet(3)),
        modbus_port: le16(24),
        firmware_rev: le16(26),
        hardware_rev: le16(28),
        master_serial,
        bacnet_instance,
        panel_number: byte(36),
        panel_name,
        bootloader: byte(59),
        bacnet_port: le16_opt(60),
        zigbee_flags: byte(62),
        subnet_protocol: byte(63),
        command_version: byte(64),
        subnet_port: byte(65),
        subnet_baudrate: byte(66),
        mini_type: byte(67),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ScanReply {
        ScanReply {
            command: SCAN_REPLY_CMD,
            serial_number: 0x1234_5678,
            product_model: 88,
            modbus_address: 7,
            ip: Ipv4Addr::new(192, 168, 0, 41),
            modbus_port: 502,
            firmware_rev: 64,
            hardware_rev: 3,
            master_serial: 0,
            bacnet_instance: 0x0001_5BA0,
            panel_number: 7,
            panel_name: "AHU-1".into(),
            bootloader: 0,
            bacnet_port: 47808,
            zigbee_flags: 0,
            subnet_protocol: 0,
            command_version: 1,
            subnet_port: 0,
            subnet_baudrate: 0,
            mini_type: 0,
        }
    }

    #[test]
    fn layout_matches_the_firmware_struct() {
        let b = sample().to_bytes();
        assert_eq!(&b[0..4], &[0x65, 0x00, 0x1d, 0x00]);
        // Serial number: one byte per u16, lowest byte first.
        assert_eq!(&b[4..12], &[0x78, 0, 0x56, 0, 0x34, 0, 0x12, 0]);
        assert_eq!(&b[12..16], &[88, 0, 7, 0]);
        assert_eq!(&b[16..24], &[192, 0, 168, 0, 0, 0, 41, 0]);
        assert_eq!(&b[24..26], &502u16.to_le_bytes());
        assert_eq!(&b[34..36], &[0x5B, 0xA0]);
        assert_eq!(b[36], 7);
        assert_eq!(&b[37..42], b"AHU-1");
        assert_eq!(&b[57..59], &[0x00, 0x01]);
        assert_eq!(&b[60..62], &47808u16.to_le_bytes());
        assert_eq!(b[64], 1);
    }

    #[test]
    fn round_trip_and_short_packets() {
        let reply = sample();
        assert_eq!(parse_scan_reply(&reply.to_bytes()).unwrap(), reply);
        // An old firmware's shorter packet still parses; missing fields read as zero.
        let short = &reply.to_bytes()[..SCAN_REPLY_MIN_LEN];
        let parsed = parse_scan_reply(short).unwrap();
        assert_eq!(parsed.serial_number, reply.serial_number);
        assert_eq!(parsed.ip, reply.ip);
        assert_eq!(parsed.panel_name, "");
        assert_eq!(parse_scan_reply(&SCAN_REQUEST), Err(ScanError::TooShort { len: 5 }));
        let mut not_reply = reply.to_bytes();
        not_reply[0] = 0x64;
        assert!(matches!(parse_scan_reply(&not_reply), Err(ScanError::NotAReply { .. })));
    }
}
