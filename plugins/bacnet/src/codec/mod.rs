//! The BACnet/IP codec, written from ASHRAE 135: tags ([`tags`]), BVLC/NPDU/APDU framing
//! ([`pdu`]), the services this client uses ([`services`]) and the enumerations it names
//! ([`enums`]). Pure functions on byte slices: no I/O, and no input makes them panic.

pub mod enums;
pub mod pdu;
pub mod services;
pub mod tags;

/// Bytes that are not valid BACnet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("truncated BACnet data")]
    Truncated,
    #[error("invalid BACnet data: {0}")]
    Invalid(&'static str),
}

#[cfg(test)]
mod tests;
