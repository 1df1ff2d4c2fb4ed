//! BVLC (Annex J), NPDU (clause 6) and APDU (clause 20.1) framing.

use super::CodecError;
use std::net::{Ipv4Addr, SocketAddrV4};

/// BVLC type of BACnet/IP.
pub const BVLC_TYPE: u8 = 0x81;
/// BVLC functions.
pub mod bvlc {
    pub const RESULT: u8 = 0x00;
    pub const FORWARDED_NPDU: u8 = 0x04;
    pub const ORIGINAL_UNICAST: u8 = 0x0A;
    pub const ORIGINAL_BROADCAST: u8 = 0x0B;
}

/// The largest APDU BACnet/IP carries (and the one this client accepts).
pub const MAX_APDU_IP: usize = 1476;

/// Max-APDU-length-accepted encodings (clause 20.1.2.5), index = code.
const MAX_APDU_CODES: [usize; 6] = [50, 128, 206, 480, 1024, 1476];

/// The code of the largest encodable max-APDU at most `len`.
pub fn max_apdu_code(len: usize) -> u8 {
    MAX_APDU_CODES.iter().rposition(|&l| l <= len).unwrap_or(0) as u8
}

/// The length a max-APDU code stands for (reserved codes read as 1476).
pub fn max_apdu_len(code: u8) -> usize {
    MAX_APDU_CODES.get(usize::from(code)).copied().unwrap_or(MAX_APDU_IP)
}

/// PDU types (high nibble of the first APDU byte).
pub mod pdu_type {
    pub const CONFIRMED_REQUEST: u8 = 0;
    pub const UNCONFIRMED_REQUEST: u8 = 1;
    pub const SIMPLE_ACK: u8 = 2;
    pub const COMPLEX_ACK: u8 = 3;
    pub const SEGMENT_ACK: u8 = 4;
    pub const ERROR: u8 = 5;
    pub const REJECT: u8 = 6;
    pub const ABORT: u8 = 7;
}

/// One application-layer PDU. `data` borrows the service part of the frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Apdu<'a> {
    ConfirmedRequest {
        segmented: bool,
        more_follows: bool,
        segmented_response_accepted: bool,
        /// Max-segments-accepted code (0 = unspecified, n = 2^n, 7 = more than 64).
        max_segments: u8,
        /// Max-APDU-length-accepted code.
        max_apdu: u8,
        invoke_id: u8,
        sequence: u8,
        window: u8,
        service: u8,
        data: &'a [u8],
    },
    UnconfirmedRequest {
        service: u8,
        data: &'a [u8],
    },
    SimpleAck {
        invoke_id: u8,
        service: u8,
    },
    ComplexAck {
        segmented: bool,
        more_follows: bool,
        invoke_id: u8,
        sequence: u8,
        window: u8,
        service: u8,
        data: &'a [u8],
    },
    SegmentAck {
        negative: bool,
        from_server: bool,
        invoke_id: u8,
        sequence: u8,
        window: u8,
    },
    Error {
        invoke_id: u8,
        service: u8,
        /// The rest: an error class and code (possibly wrapped in constructed data, see
        /// [`super::services::decode_error`]).
        data: &'a [u8],
    },
    Reject {
        invoke_id: u8,
        reason: u8,
    },
    Abort {
        from_server: bool,
        invoke_id: u8,
        reason: u8,
    },
}

fn at(b: &[u8], i: usize) -> Result<u8, CodecError> {
    b.get(i).copied().ok_or(CodecError::Truncated)
}

impl<'a> Apdu<'a> {
    pub fn decode(b: &'a [u8]) -> Result<Apdu<'a>, CodecError> {
        let first = at(b, 0)?;
        let rest = |i: usize| b.get(i..).ok_or(CodecError::Truncated);
        Ok(match first >> 4 {
            pdu_type::CONFIRMED_REQUEST => {
                let segmented = first & 0x08 != 0;
                let (sequence, window, service_at) = if segmented { (at(b, 3)?, at(b, 4)?, 5) } else { (0, 0, 3) };
                Apdu::ConfirmedRequest {
                    segmented,
                    more_follows: first & 0x04 != 0,
                    segmented_response_accepted: first & 0x02 != 0,
                    max_segments: (at(b, 1)? >> 4) & 0x07,
                    max_apdu: at(b, 1)? & 0x0F,
                    invoke_id: at(b, 2)?,
                    sequence,
                    window,
                    service: at(b, service_at)?,
                    data: rest(service_at + 1)?,
                }
            }
            pdu_type::UNCONFIRMED_REQUEST => Apdu::UnconfirmedRequest { service: at(b, 1)?, data: rest(2)? },
            pdu_type::SIMPLE_ACK => Apdu::SimpleAck { invoke_id: at(b, 1)?, service: at(b, 2)? },
            pdu_type::COMPLEX_ACK => {
                let segmented = first & 0x08 != 0;
                let (sequence, window, service_at) = if segmented { (at(b, 2)?, at(b, 3)?, 4) } else { (0, 0, 2) };
                Apdu::ComplexAck {
                    segmented,
                    more_follows: first & 0x04 != 0,
                    invoke_id: at(b, 1)?,
                    sequence,
                    window,
                    service: at(b, service_at)?,
                    data: rest(service_at + 1)?,
                }
            }
            pdu_type::SEGMENT_ACK => Apdu::SegmentAck {
                negative: first & 0x02 != 0,
                from_server: first & 0x01 != 0,
                invoke_id: at(b, 1)?,
                sequence: at(b, 2)?,
                window: at(b, 3)?,
            },
            pdu_type::ERROR => Apdu::Error { invoke_id: at(b, 1)?, service: at(b, 2)?, data: rest(3)? },
            pdu_type::REJECT => Apdu::Reject { invoke_id: at(b, 1)?, reason: at(b, 2)? },
            pdu_type::ABORT => Apdu::Abort { from_server: first & 0x01 != 0, invoke_id: at(b, 1)?, reason: at(b, 2)? },
            _ => return Err(CodecError::Invalid("reserved PDU type")),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Apdu::ConfirmedRequest {
                segmented,
                more_follows,
                segmented_response_accepted,
                max_segments,
                max_apdu,
                invoke_id,
                sequence,
                window,
                service,
                data,
            } => {
                out.push(
                    (pdu_type::CONFIRMED_REQUEST << 4)
                        | if segmented { 0x08 } else { 0 }
                        | if more_follows { 0x04 } else { 0 }
                        | if segmented_response_accepted { 0x02 } else { 0 },
                );
                out.push(((max_segments & 0x07) << 4) | (max_apdu & 0x0F));
                out.push(invoke_id);
                if segmented {
                    out.extend_from_slice(&[sequence, window]);
                }
                out.push(service);
                out.extend_from_slice(data);
            }
            Apdu::UnconfirmedRequest { service, data } => {
                out.extend_from_slice(&[pdu_type::UNCONFIRMED_REQUEST << 4, service]);
                out.extend_from_slice(data);
            }
            Apdu::SimpleAck { invoke_id, service } => {
                out.extend_from_slice(&[pdu_type::SIMPLE_ACK << 4, invoke_id, service]);
            }
            Apdu::ComplexAck { segmented, more_follows, invoke_id, sequence, window, service, data } => {
                out.push(
                    (pdu_type::COMPLEX_ACK << 4)
                        | if segmented { 0x08 } else { 0 }
                        | if more_follows { 0x04 } else { 0 },
                );
                out.push(invoke_id);
                if segmented {
                    out.extend_from_slice(&[sequence, window]);
                }
                out.push(service);
                out.extend_from_slice(data);
            }
            Apdu::SegmentAck { negative, from_server, invoke_id, sequence, window } => {
                out.push(
                    (pdu_type::SEGMENT_ACK << 4) | if negative { 0x02 } else { 0 } | if from_server { 0x01 } else { 0 },
                );
                out.extend_from_slice(&[invoke_id, sequence, window]);
            }
            Apdu::Error { invoke_id, service, data } => {
                out.extend_from_slice(&[pdu_type::ERROR << 4, invoke_id, service]);
                out.extend_from_slice(data);
            }
            Apdu::Reject { invoke_id, reason } => out.extend_from_slice(&[pdu_type::REJECT << 4, invoke_id, reason]),
            Apdu::Abort { from_server, invoke_id, reason } => {
                out.extend_from_slice(&[(pdu_type::ABORT << 4) | u8::from(from_server), invoke_id, reason]);
            }
        }
    }

    /// The invoke id of anything but an unconfirmed request.
    pub fn invoke_id(&self) -> Option<u8> {
        match *self {
            Apdu::UnconfirmedRequest { .. } => None,
            Apdu::ConfirmedRequest { invoke_id, .. }
            | Apdu::SimpleAck { invoke_id, .. }
            | Apdu::ComplexAck { invoke_id, .. }
            | Apdu::SegmentAck { invoke_id, .. }
            | Apdu::Error { invoke_id, .. }
            | Apdu::Reject { invoke_id, .. }
            | Apdu::Abort { invoke_id, .. } => Some(invoke_id),
        }
    }
}

/// A remote network address from the NPDU (SNET/SADR or DNET/DADR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetAddr {
    pub net: u16,
    pub mac: Vec<u8>,
}

/// A decoded BACnet/IP datagram carrying an APDU.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame<'a> {
    /// Whether it came as a broadcast (Original-Broadcast-NPDU or Forwarded-NPDU).
    pub broadcast: bool,
    /// For a Forwarded-NPDU, the B/IP address of the original sender.
    pub forwarded_from: Option<SocketAddrV4>,
    /// The NPDU's source network address (a device behind a router), if any.
    pub source: Option<NetAddr>,
    pub expecting_reply: bool,
    pub apdu: Apdu<'a>,
}

/// Decodes a datagram. `Ok(None)`: valid BVLC/NPDU that carries no APDU (a BVLC-Result, a
/// network-layer message, a BVLC function this client ignores).
pub fn decode_frame(b: &[u8]) -> Result<Option<Frame<'_>>, CodecError> {
    if at(b, 0)? != BVLC_TYPE {
        return Err(CodecError::Invalid("not a BACnet/IP BVLC"));
    }
    let function = at(b, 1)?;
    let len = usize::from(u16::from_be_bytes([at(b, 2)?, at(b, 3)?]));
    if len < 4 || len > b.len() {
        return Err(CodecError::Invalid("BVLC length does not match the datagram"));
    }
    let b = &b[..len];
    let (npdu_at, broadcast, forwarded_from) = match function {
        bvlc::ORIGINAL_UNICAST => (4, false, None),
        bvlc::ORIGINAL_BROADCAST => (4, true, None),
        bvlc::FORWARDED_NPDU => {
            let ip = Ipv4Addr::new(at(b, 4)?, at(b, 5)?, at(b, 6)?, at(b, 7)?);
            let port = u16::from_be_bytes([at(b, 8)?, at(b, 9)?]);
            (10, true, Some(SocketAddrV4::new(ip, port)))
        }
        _ => return Ok(None),
    };
    let npdu = &b[npdu_at..];
    if at(npdu, 0)? != 0x01 {
        return Err(CodecError::Invalid("NPDU version is not 1"));
    }
    let control = at(npdu, 1)?;
    let mut i = 2;
    let read_addr = |i: &mut usize| -> Result<NetAddr, CodecError> {
        let net = u16::from_be_bytes([at(npdu, *i)?, at(npdu, *i + 1)?]);
        let mlen = usize::from(at(npdu, *i + 2)?);
        let mac = npdu.get(*i + 3..*i + 3 + mlen).ok_or(CodecError::Truncated)?.to_vec();
        *i += 3 + mlen;
        Ok(NetAddr { net, mac })
    };
    let has_dnet = control & 0x20 != 0;
    if has_dnet {
        read_addr(&mut i)?;
    }
    let source = if control & 0x08 != 0 { Some(read_addr(&mut i)?) } else { None };
    if has_dnet {
        at(npdu, i)?; // hop count
        i += 1;
    }
    if control & 0x80 != 0 {
        return Ok(None); // network-layer message
    }
    let apdu = Apdu::decode(npdu.get(i..).ok_or(CodecError::Truncated)?)?;
    Ok(Some(Frame { broadcast, forwarded_from, source, expecting_reply: control & 0x04 != 0, apdu }))
}

/// Encodes a datagram for a device on the local IP network (no DNET).
pub fn encode_frame(broadcast: bool, apdu: &Apdu<'_>) -> Vec<u8> {
    let mut out = vec![
        BVLC_TYPE,
        if broadcast { bvlc::ORIGINAL_BROADCAST } else { bvlc::ORIGINAL_UNICAST },
        0,
        0,
        0x01,
        if matches!(apdu, Apdu::ConfirmedRequest { .. }) { 0x04 } else { 0x00 },
    ];
    apdu.encode(&mut out);
    let len = (out.len() as u16).to_be_bytes();
    out[2] = len[0];
    out[3] = len[1];
    out
}
