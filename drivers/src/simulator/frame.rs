//! Modbus RTU framing for the simulator's serial server: CRC-16, request splitting, PDU decoding and
//! response encoding.
//!
//! tokio-modbus's RTU server takes a concrete `SerialStream` and owns the framing, so it cannot send a
//! frame with a wrong CRC, garbage, or a reply after the line went quiet; the serial side therefore
//! frames by itself (the TCP side keeps tokio-modbus's server). Requests and responses are still
//! tokio-modbus's [`Request`] / [`Response`] types, so both transports share one request handler.

use std::borrow::Cow;
use tokio_modbus::{ExceptionCode, FunctionCode, Request, Response};

/// CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF); sent low byte first.
pub(crate) fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

/// Appends the CRC to an address + PDU.
pub(crate) fn with_crc(mut adu: Vec<u8>) -> Vec<u8> {
    let crc = crc16(&adu);
    adu.extend_from_slice(&crc.to_le_bytes());
    adu
}

/// True when the last two bytes are the CRC of the rest.
pub(crate) fn crc_ok(frame: &[u8]) -> bool {
    frame.len() >= 4 && {
        let (body, crc) = frame.split_at(frame.len() - 2);
        crc16(body).to_le_bytes() == [crc[0], crc[1]]
    }
}

/// What the start of a receive buffer says about the next request frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameLen {
    /// Not enough bytes to tell yet.
    NeedMore,
    /// The whole frame (address, PDU, CRC) is this long.
    Known(usize),
    /// A function code whose length only the end of transmission (line silence) tells.
    Unknown,
}

/// Length of the request frame at the start of `buf`, from its function code (and byte count).
pub(crate) fn request_frame_len(buf: &[u8]) -> FrameLen {
    let Some(&fc) = buf.get(1) else { return FrameLen::NeedMore };
    let with_count = |count_at: usize| match buf.get(count_at) {
        Some(&count) => FrameLen::Known(count_at + 1 + usize::from(count) + 2),
        None => FrameLen::NeedMore,
    };
    match fc {
        0x01..=0x06 => FrameLen::Known(8),
        0x07 | 0x0B | 0x0C | 0x11 => FrameLen::Known(4),
        0x0F | 0x10 => with_count(6),
        0x16 => FrameLen::Known(10),
        0x17 => with_count(10),
        _ => FrameLen::Unknown,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Decodes a request PDU (function code + data). A malformed body is exception 03, as the spec asks.
pub(crate) fn decode_request(pdu: &[u8]) -> Result<Request<'static>, ExceptionCode> {
    let bad = ExceptionCode::IllegalDataValue;
    let (&fc, data) = pdu.split_first().ok_or(bad)?;
    let word = |at: usize| be16(data, at).ok_or(bad);
    Ok(match fc {
        0x01 => Request::ReadCoils(word(0)?, word(2)?),
        0x02 => Request::ReadDiscreteInputs(word(0)?, word(2)?),
        0x03 => Request::ReadHoldingRegisters(word(0)?, word(2)?),
        0x04 => Request::ReadInputRegisters(word(0)?, word(2)?),
        0x05 => Request::WriteSingleCoil(
            word(0)?,
            match word(2)? {
                0xFF00 => true,
                0x0000 => false,
                _ => return Err(bad),
            },
        ),
        0x06 => Request::WriteSingleRegister(word(0)?, word(2)?),
        0x0F => {
            let (addr, qty) = (word(0)?, word(2)?);
            let bytes = data.get(5..).ok_or(bad)?;
            if usize::from(*data.get(4).ok_or(bad)?) != bytes.len() || bytes.len() != usize::from(qty).div_ceil(8) {
                return Err(bad);
            }
            let coils = (0..usize::from(qty)).map(|i| bytes[i / 8] & (1 << (i % 8)) != 0).collect::<Vec<_>>();
            Request::WriteMultipleCoils(addr, Cow::Owned(coils))
        }
        0x10 => {
            let (addr, qty) = (word(0)?, word(2)?);
            let words = words_after_count(data, 4, qty)?;
            Request::WriteMultipleRegisters(addr, Cow::Owned(words))
        }
        0x11 => Request::ReportServerId,
        0x16 => Request::MaskWriteRegister(word(0)?, word(2)?, word(4)?),
        0x17 => {
            let (read_addr, read_qty, write_addr, write_qty) = (word(0)?, word(2)?, word(4)?, word(6)?);
            let words = words_after_count(data, 8, write_qty)?;
            Request::ReadWriteMultipleRegisters(read_addr, read_qty, write_addr, Cow::Owned(words))
        }
        other => Request::Custom(other, Cow::Owned(data.to_vec())),
    })
}

fn words_after_count(data: &[u8], count_at: usize, qty: u16) -> Result<Vec<u16>, ExceptionCode> {
    let bad = ExceptionCode::IllegalDataValue;
    let count = usize::from(*data.get(count_at).ok_or(bad)?);
    let bytes = data.get(count_at + 1..).ok_or(bad)?;
    if count != bytes.len() || count != 2 * usize::from(qty) {
        return Err(bad);
    }
    Ok(bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect())
}

fn pack_bits(bits: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (i, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
        out[i / 8] |= 1 << (i % 8);
    }
    out
}

fn push_words(out: &mut Vec<u8>, words: &[u16]) {
    out.push((words.len() * 2) as u8);
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
}

/// Encodes a response PDU (function code + data), or an exception PDU for `function`.
pub(crate) fn encode_response(function: FunctionCode, result: &Result<Response, ExceptionCode>) -> Vec<u8> {
    let response = match result {
        Ok(response) => response,
        Err(code) => return vec![function.value() | 0x80, u8::from(*code)],
    };
    let mut out = vec![response.function_code().value()];
    match response {
        Response::ReadCoils(bits) | Response::ReadDiscreteInputs(bits) => {
            let packed = pack_bits(bits);
            out.push(packed.len() as u8);
            out.extend_from_slice(&packed);
        }
        Response::ReadHoldingRegisters(words)
        | Response::ReadInputRegisters(words)
        | Response::ReadWriteMultipleRegisters(words) => push_words(&mut out, words),
        Response::WriteSingleCoil(addr, on) => {
            out.extend_from_slice(&addr.to_be_bytes());
            out.extend_from_slice(&(if *on { 0xFF00u16 } else { 0 }).to_be_bytes());
        }
        Response::WriteSingleRegister(a, b)
        | Response::WriteMultipleCoils(a, b)
        | Response::WriteMultipleRegisters(a, b) => {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&b.to_be_bytes());
        }
        Response::MaskWriteRegister(addr, and, or) => {
            for w in [addr, and, or] {
                out.extend_from_slice(&w.to_be_bytes());
            }
        }
        Response::ReportServerId(id, running, data) => {
            out.push((data.len() + 2) as u8);
            out.push(*id);
            out.push(if *running { 0xFF } else { 0x00 });
            out.extend_from_slice(data);
        }
        Response::ReadDeviceIdentification(_) | Response::Custom(..) => {
            // The simulator never produces these; answer as an unsupported function.
            return vec![function.value() | 0x80, u8::from(ExceptionCode::IllegalFunction)];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_spec_example() {
        // Read holding registers 0x006B..+3 from unit 0x11: CRC 0x8776 sent as 76 87.
        let frame = with_crc(vec![0x11, 0x03, 0x00, 0x6B, 0x00, 0x03]);
        assert_eq!(&frame[6..], &[0x76, 0x87]);
        assert!(crc_ok(&frame));
        let mut bad = frame.clone();
        bad[7] ^= 1;
        assert!(!crc_ok(&bad));
    }

    #[test]
    fn frame_lengths_and_decoding() {
        assert_eq!(request_frame_len(&[1]), FrameLen::NeedMore);
        assert_eq!(request_frame_len(&[1, 3]), FrameLen::Known(8));
        assert_eq!(request_frame_len(&[1, 0x10, 0, 0, 0, 2]), FrameLen::NeedMore);
        assert_eq!(request_frame_len(&[1, 0x10, 0, 0, 0, 2, 4]), FrameLen::Known(13));
        assert_eq!(request_frame_len(&[1, 0x41]), FrameLen::Unknown);
        let req = decode_request(&[0x10, 0x1B, 0xBC, 0, 2, 4, 0, 0, 0x52, 0x08]).unwrap();
        assert_eq!(req, Request::WriteMultipleRegisters(7100, Cow::Owned(vec![0, 21000])));
        assert_eq!(decode_request(&[0x05, 0, 1, 0x12, 0x34]), Err(ExceptionCode::IllegalDataValue));
        assert_eq!(decode_request(&[0x10, 0, 0, 0, 2, 3, 0, 0, 0]), Err(ExceptionCode::IllegalDataValue));
        let coils = decode_request(&[0x0F, 0, 0, 0, 10, 2, 0b0000_0101, 0b10]).unwrap();
        let expect = [true, false, true, false, false, false, false, false, false, true];
        assert_eq!(coils, Request::WriteMultipleCoils(0, Cow::Owned(expect.to_vec())));
    }

    #[test]
    fn responses_encode_as_the_spec_says() {
        let fc = FunctionCode::ReadHoldingRegisters;
        assert_eq!(encode_response(fc, &Ok(Response::ReadHoldingRegisters(vec![0x022B, 1]))), [3, 4, 2, 0x2B, 0, 1]);
        assert_eq!(encode_response(fc, &Err(ExceptionCode::IllegalDataAddress)), [0x83, 2]);
        let bits = vec![true, false, true, true, false, false, true, true, true];
        assert_eq!(encode_response(FunctionCode::ReadCoils, &Ok(Response::ReadCoils(bits))), [1, 2, 0xCD, 0x01]);
    }
}
