//! The services this client uses (clauses 13, 15, 16): request encoders and answer decoders.

use super::CodecError;
use super::tags::{ObjectId, Reader, Tag, Value, Writer};

/// Confirmed service choices.
pub mod confirmed {
    pub const CONFIRMED_COV_NOTIFICATION: u8 = 1;
    pub const SUBSCRIBE_COV: u8 = 5;
    pub const READ_PROPERTY: u8 = 12;
    pub const READ_PROPERTY_MULTIPLE: u8 = 14;
    pub const WRITE_PROPERTY: u8 = 15;
}

/// Unconfirmed service choices.
pub mod unconfirmed {
    pub const I_AM: u8 = 0;
    pub const UNCONFIRMED_COV_NOTIFICATION: u8 = 2;
    pub const WHO_IS: u8 = 8;
}

/// `BACnetARRAY[N]` index "all elements" (the index is simply absent on the wire).
pub type ArrayIndex = Option<u32>;

/// Who-Is, with an optional device instance range.
pub fn who_is(range: Option<(u32, u32)>) -> Vec<u8> {
    let mut w = Writer::new();
    if let Some((low, high)) = range {
        w.ctx_unsigned(0, u64::from(low));
        w.ctx_unsigned(1, u64::from(high));
    }
    w.buf
}

/// Decodes a Who-Is request (for tests and for answering nothing: this client is no device).
pub fn decode_who_is(data: &[u8]) -> Result<Option<(u32, u32)>, CodecError> {
    let mut r = Reader::new(data);
    if r.is_empty() {
        return Ok(None);
    }
    let low = r.ctx_u32(0)?;
    let high = r.ctx_u32(1)?;
    Ok(Some((low, high)))
}

/// An I-Am.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IAm {
    pub device: ObjectId,
    pub max_apdu: u32,
    pub segmentation: u32,
    pub vendor_id: u32,
}

pub fn i_am(i: &IAm) -> Vec<u8> {
    let mut w = Writer::new();
    w.value(&Value::ObjectId(i.device));
    w.app_unsigned(u64::from(i.max_apdu));
    w.app_enumerated(i.segmentation);
    w.app_unsigned(u64::from(i.vendor_id));
    w.buf
}

pub fn decode_i_am(data: &[u8]) -> Result<IAm, CodecError> {
    let mut r = Reader::new(data);
    let bad = CodecError::Invalid("malformed I-Am");
    let Value::ObjectId(device) = r.value()? else { return Err(bad) };
    let max_apdu = r.value()?.as_u32().ok_or(bad.clone())?;
    let Value::Enumerated(segmentation) = r.value()? else { return Err(bad) };
    let vendor_id = r.value()?.as_u32().ok_or(bad)?;
    Ok(IAm { device, max_apdu, segmentation, vendor_id })
}

/// ReadProperty-Request.
pub fn read_property(object: ObjectId, property: u32, index: ArrayIndex) -> Vec<u8> {
    let mut w = Writer::new();
    w.ctx_object_id(0, object);
    w.ctx_enumerated(1, property);
    if let Some(i) = index {
        w.ctx_unsigned(2, u64::from(i));
    }
    w.buf
}

/// A property's value as it came: the application-tagged values between the opening and
/// closing tags (an array or list gives several).
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyValue {
    pub values: Vec<Value>,
    /// How many context-tagged or constructed elements were skipped.
    pub skipped: usize,
}

impl PropertyValue {
    pub fn first(&self) -> Option<&Value> {
        self.values.first()
    }
}

/// ReadProperty-ACK: the object, property, index and value.
pub fn decode_read_property_ack(data: &[u8]) -> Result<(ObjectId, u32, ArrayIndex, PropertyValue), CodecError> {
    let mut r = Reader::new(data);
    let object = r.ctx_object_id(0)?;
    let property = r.ctx_u32(1)?;
    let index = r.opt_ctx_u32(2)?;
    r.expect_opening(3)?;
    let (values, skipped) = r.values_until_closing(3)?;
    Ok((object, property, index, PropertyValue { values, skipped }))
}

/// One property reference of a ReadPropertyMultiple request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropRef {
    pub property: u32,
    pub index: ArrayIndex,
}

impl PropRef {
    pub const fn new(property: u32) -> PropRef {
        PropRef { property, index: None }
    }
}

/// ReadPropertyMultiple-Request for `specs` (object, properties).
pub fn read_property_multiple(specs: &[(ObjectId, Vec<PropRef>)]) -> Vec<u8> {
    let mut w = Writer::new();
    for (object, props) in specs {
        w.ctx_object_id(0, *object);
        w.opening(1);
        for p in props {
            w.ctx_enumerated(0, p.property);
            if let Some(i) = p.index {
                w.ctx_unsigned(1, u64::from(i));
            }
        }
        w.closing(1);
    }
    w.buf
}

/// A BACnet error class and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorPair {
    pub class: u32,
    pub code: u32,
}

/// One result of a ReadPropertyMultiple-ACK.
#[derive(Debug, Clone, PartialEq)]
pub struct RpmResult {
    pub object: ObjectId,
    pub property: u32,
    pub index: ArrayIndex,
    pub value: Result<PropertyValue, ErrorPair>,
}

/// ReadPropertyMultiple-ACK, flattened to one result per property.
pub fn decode_read_property_multiple_ack(data: &[u8]) -> Result<Vec<RpmResult>, CodecError> {
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    while !r.is_empty() {
        let object = r.ctx_object_id(0)?;
        r.expect_opening(1)?;
        while !r.at_closing(1) {
            let property = r.ctx_u32(2)?;
            let index = r.opt_ctx_u32(3)?;
            let value = match r.read_tag()? {
                Tag::Opening(4) => {
                    let (values, skipped) = r.values_until_closing(4)?;
                    Ok(PropertyValue { values, skipped })
                }
                Tag::Opening(5) => {
                    let pair = error_pair(&mut r)?;
                    r.expect_closing(5)?;
                    Err(pair)
                }
                _ => return Err(CodecError::Invalid("RPM result without a value or an error")),
            };
            out.push(RpmResult { object, property, index, value });
        }
        r.expect_closing(1)?;
    }
    Ok(out)
}

fn error_pair(r: &mut Reader<'_>) -> Result<ErrorPair, CodecError> {
    let bad = CodecError::Invalid("malformed error class/code");
    let Value::Enumerated(class) = r.value()? else { return Err(bad) };
    let Value::Enumerated(code) = r.value()? else { return Err(bad) };
    Ok(ErrorPair { class, code })
}

/// The error class and code of an Error PDU: plain for most services, inside an opening tag
/// (or after other parameters) for a few; the first two enumerations found are taken.
pub fn decode_error(data: &[u8]) -> Result<ErrorPair, CodecError> {
    let mut r = Reader::new(data);
    let mut found = Vec::with_capacity(2);
    while found.len() < 2 {
        match r.peek_tag()? {
            Tag::Opening(_) | Tag::Closing(_) => {
                r.read_tag()?;
            }
            Tag::Application(..) => {
                if let Value::Enumerated(e) = r.value()? {
                    found.push(e);
                }
            }
            Tag::Context(..) => r.skip()?,
        }
    }
    Ok(ErrorPair { class: found[0], code: found[1] })
}

/// An Error PDU's service part for a plain error (for tests and round trips).
pub fn error(pair: ErrorPair) -> Vec<u8> {
    let mut w = Writer::new();
    w.app_enumerated(pair.class);
    w.app_enumerated(pair.code);
    w.buf
}

/// WriteProperty-Request.
pub fn write_property(
    object: ObjectId,
    property: u32,
    index: ArrayIndex,
    value: &Value,
    priority: Option<u8>,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.ctx_object_id(0, object);
    w.ctx_enumerated(1, property);
    if let Some(i) = index {
        w.ctx_unsigned(2, u64::from(i));
    }
    w.opening(3);
    w.value(value);
    w.closing(3);
    if let Some(p) = priority {
        w.ctx_unsigned(4, u64::from(p));
    }
    w.buf
}

/// SubscribeCOV-Request; `None` for `confirmed_and_lifetime` cancels the subscription.
pub fn subscribe_cov(process_id: u32, object: ObjectId, confirmed_and_lifetime: Option<(bool, u32)>) -> Vec<u8> {
    let mut w = Writer::new();
    w.ctx_unsigned(0, u64::from(process_id));
    w.ctx_object_id(1, object);
    if let Some((confirmed, lifetime)) = confirmed_and_lifetime {
        w.ctx_boolean(2, confirmed);
        w.ctx_unsigned(3, u64::from(lifetime));
    }
    w.buf
}

/// One BACnetPropertyValue of a COV notification.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifiedValue {
    pub property: u32,
    pub index: ArrayIndex,
    pub value: PropertyValue,
}

/// A COV notification (confirmed or unconfirmed).
#[derive(Debug, Clone, PartialEq)]
pub struct CovNotification {
    pub process_id: u32,
    pub device: ObjectId,
    pub object: ObjectId,
    pub time_remaining: u32,
    pub values: Vec<NotifiedValue>,
}

pub fn cov_notification(n: &CovNotification) -> Vec<u8> {
    let mut w = Writer::new();
    w.ctx_unsigned(0, u64::from(n.process_id));
    w.ctx_object_id(1, n.device);
    w.ctx_object_id(2, n.object);
    w.ctx_unsigned(3, u64::from(n.time_remaining));
    w.opening(4);
    for v in &n.values {
        w.ctx_enumerated(0, v.property);
        if let Some(i) = v.index {
            w.ctx_unsigned(1, u64::from(i));
        }
        w.opening(2);
        for x in &v.value.values {
            w.value(x);
        }
        w.closing(2);
    }
    w.closing(4);
    w.buf
}

pub fn decode_cov_notification(data: &[u8]) -> Result<CovNotification, CodecError> {
    let mut r = Reader::new(data);
    let process_id = r.ctx_u32(0)?;
    let device = r.ctx_object_id(1)?;
    let object = r.ctx_object_id(2)?;
    let time_remaining = r.ctx_u32(3)?;
    r.expect_opening(4)?;
    let mut values = Vec::new();
    while !r.at_closing(4) {
        let property = r.ctx_u32(0)?;
        let index = r.opt_ctx_u32(1)?;
        r.expect_opening(2)?;
        let (vals, skipped) = r.values_until_closing(2)?;
        // Optional priority [3].
        r.opt_ctx_u32(3)?;
        values.push(NotifiedValue { property, index, value: PropertyValue { values: vals, skipped } });
    }
    r.expect_closing(4)?;
    Ok(CovNotification { process_id, device, object, time_remaining, values })
}
