//! ASN.1-ish tag encoding of ASHRAE 135 clause 20.2: application tags (the 13 primitive types),
//! context tags, and opening/closing tags of constructed data.

use super::CodecError;

/// Application tag numbers (clause 20.2.1.4).
pub mod app {
    pub const NULL: u8 = 0;
    pub const BOOLEAN: u8 = 1;
    pub const UNSIGNED: u8 = 2;
    pub const SIGNED: u8 = 3;
    pub const REAL: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const OCTET_STRING: u8 = 6;
    pub const CHARACTER_STRING: u8 = 7;
    pub const BIT_STRING: u8 = 8;
    pub const ENUMERATED: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const OBJECT_ID: u8 = 12;
}

/// Character sets of a CharacterString (clause 20.2.9).
pub mod charset {
    pub const UTF8: u8 = 0;
    pub const UCS4: u8 = 3;
    pub const UCS2: u8 = 4;
    pub const ISO_8859_1: u8 = 5;
}

/// The largest object instance number (2^22 - 1; 4194303 itself means "unspecified").
pub const MAX_INSTANCE: u32 = 0x3F_FFFF;

/// A BACnet object identifier: a 10-bit type and a 22-bit instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub kind: u16,
    pub instance: u32,
}

impl ObjectId {
    pub const fn new(kind: u16, instance: u32) -> ObjectId {
        ObjectId { kind, instance }
    }

    pub fn to_u32(self) -> u32 {
        (u32::from(self.kind & 0x3FF) << 22) | (self.instance & MAX_INSTANCE)
    }

    pub fn from_u32(v: u32) -> ObjectId {
        ObjectId { kind: (v >> 22) as u16, instance: v & MAX_INSTANCE }
    }
}

/// One primitive value with an application tag.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Unsigned(u64),
    Signed(i64),
    Real(f32),
    Double(f64),
    OctetString(Vec<u8>),
    /// Decoded from UTF-8 (charset 0), UCS-2, UCS-4 or ISO 8859-1; always encoded as UTF-8.
    CharacterString(String),
    BitString(Vec<bool>),
    Enumerated(u32),
    /// Year - 1900, month, day, weekday; 255 is "unspecified".
    Date([u8; 4]),
    /// Hour, minute, second, hundredths; 255 is "unspecified".
    Time([u8; 4]),
    ObjectId(ObjectId),
}

impl Value {
    /// The value as a number, for present values and limits.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Boolean(b) => Some(f64::from(u8::from(b))),
            Value::Unsigned(u) => Some(u as f64),
            Value::Signed(i) => Some(i as f64),
            Value::Real(r) => Some(f64::from(r)),
            Value::Double(d) => Some(d),
            Value::Enumerated(e) => Some(f64::from(e)),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match *self {
            Value::Unsigned(u) => u32::try_from(u).ok(),
            Value::Enumerated(e) => Some(e),
            Value::Signed(i) => u32::try_from(i).ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::CharacterString(s) => Some(s),
            _ => None,
        }
    }

    /// The type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "boolean",
            Value::Unsigned(_) => "unsigned",
            Value::Signed(_) => "signed",
            Value::Real(_) => "real",
            Value::Double(_) => "double",
            Value::OctetString(_) => "octet string",
            Value::CharacterString(_) => "character string",
            Value::BitString(_) => "bit string",
            Value::Enumerated(_) => "enumerated",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::ObjectId(_) => "object identifier",
        }
    }
}

/// What a tag header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// An application-tagged primitive: tag number and content length (for BOOLEAN, the value).
    Application(u8, u32),
    /// A context-tagged primitive: tag number and content length.
    Context(u8, u32),
    /// An opening tag of a constructed context value.
    Opening(u8),
    /// A closing tag.
    Closing(u8),
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Appends BACnet-encoded data to a byte vector.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    pub buf: Vec<u8>,
}

fn unsigned_bytes(v: u64) -> ([u8; 8], usize) {
    let n = (8 - (v.leading_zeros() / 8) as usize).max(1);
    (v.to_be_bytes(), n)
}

fn signed_bytes(v: i64) -> ([u8; 8], usize) {
    let b = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (hi, next) = (b[start], b[start + 1]);
        if (hi == 0 && next & 0x80 == 0) || (hi == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    (b, 8 - start)
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    fn header(&mut self, number: u8, context: bool, lvt: u32) {
        let class = if context { 0x08 } else { 0 };
        let (first_number, ext) = if number < 15 { (number << 4, None) } else { (0xF0, Some(number)) };
        if lvt < 5 {
            self.buf.push(first_number | class | lvt as u8);
            self.buf.extend(ext);
        } else {
            self.buf.push(first_number | class | 5);
            self.buf.extend(ext);
            if lvt < 254 {
                self.buf.push(lvt as u8);
            } else if lvt <= 0xFFFF {
                self.buf.push(254);
                self.buf.extend_from_slice(&(lvt as u16).to_be_bytes());
            } else {
                self.buf.push(255);
                self.buf.extend_from_slice(&lvt.to_be_bytes());
            }
        }
    }

    fn tagged(&mut self, number: u8, context: bool, content: &[u8]) {
        self.header(number, context, content.len() as u32);
        self.buf.extend_from_slice(content);
    }

    /// An opening tag `[n]`.
    pub fn opening(&mut self, number: u8) {
        if number < 15 {
            self.buf.push((number << 4) | 0x0E);
        } else {
            self.buf.extend_from_slice(&[0xFE, number]);
        }
    }

    /// A closing tag `[n]`.
    pub fn closing(&mut self, number: u8) {
        if number < 15 {
            self.buf.push((number << 4) | 0x0F);
        } else {
            self.buf.extend_from_slice(&[0xFF, number]);
        }
    }

    pub fn ctx_unsigned(&mut self, number: u8, v: u64) {
        let (b, n) = unsigned_bytes(v);
        self.tagged(number, true, &b[8 - n..]);
    }

    pub fn ctx_enumerated(&mut self, number: u8, v: u32) {
        self.ctx_unsigned(number, u64::from(v));
    }

    pub fn ctx_boolean(&mut self, number: u8, v: bool) {
        self.tagged(number, true, &[u8::from(v)]);
    }

    pub fn ctx_object_id(&mut self, number: u8, id: ObjectId) {
        self.tagged(number, true, &id.to_u32().to_be_bytes());
    }

    pub fn app_unsigned(&mut self, v: u64) {
        self.value(&Value::Unsigned(v));
    }

    pub fn app_enumerated(&mut self, v: u32) {
        self.value(&Value::Enumerated(v));
    }

    /// An application-tagged value.
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.header(app::NULL, false, 0),
            Value::Boolean(b) => self.header(app::BOOLEAN, false, u32::from(*b)),
            Value::Unsigned(u) => {
                let (b, n) = unsigned_bytes(*u);
                self.tagged(app::UNSIGNED, false, &b[8 - n..]);
            }
            Value::Signed(i) => {
                let (b, n) = signed_bytes(*i);
                self.tagged(app::SIGNED, false, &b[8 - n..]);
            }
            Value::Real(r) => self.tagged(app::REAL, false, &r.to_be_bytes()),
            Value::Double(d) => self.tagged(app::DOUBLE, false, &d.to_be_bytes()),
            Value::OctetString(o) => self.tagged(app::OCTET_STRING, false, o),
            Value::CharacterString(s) => {
                self.header(app::CHARACTER_STRING, false, s.len() as u32 + 1);
                self.buf.push(charset::UTF8);
                self.buf.extend_from_slice(s.as_bytes());
            }
            Value::BitString(bits) => {
                let bytes = bits.len().div_ceil(8);
                let unused = (bytes * 8 - bits.len()) as u8;
                let mut content = vec![0u8; bytes + 1];
                content[0] = unused;
                for (i, &bit) in bits.iter().enumerate() {
                    if bit {
                        content[1 + i / 8] |= 0x80 >> (i % 8);
                    }
                }
                self.tagged(app::BIT_STRING, false, &content);
            }
            Value::Enumerated(e) => {
                let (b, n) = unsigned_bytes(u64::from(*e));
                self.tagged(app::ENUMERATED, false, &b[8 - n..]);
            }
            Value::Date(d) => self.tagged(app::DATE, false, d),
            Value::Time(t) => self.tagged(app::TIME, false, t),
            Value::ObjectId(id) => self.tagged(app::OBJECT_ID, false, &id.to_u32().to_be_bytes()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Reads BACnet-encoded data from a byte slice. Never panics: every length is checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn be_unsigned(b: &[u8]) -> Result<u64, CodecError> {
    if b.is_empty() || b.len() > 8 {
        return Err(CodecError::Invalid("unsigned of 0 or more than 8 bytes"));
    }
    Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn be_signed(b: &[u8]) -> Result<i64, CodecError> {
    if b.is_empty() || b.len() > 8 {
        return Err(CodecError::Invalid("signed of 0 or more than 8 bytes"));
    }
    let init: i64 = if b[0] & 0x80 != 0 { -1 } else { 0 };
    Ok(b.iter().fold(init, |acc, &x| (acc << 8) | i64::from(x)))
}

fn decode_string(charset: u8, b: &[u8]) -> Result<String, CodecError> {
    match charset {
        charset::UTF8 => {
            String::from_utf8(b.to_vec()).map_err(|_| CodecError::Invalid("character string is not UTF-8"))
        }
        charset::ISO_8859_1 => Ok(b.iter().map(|&c| char::from(c)).collect()),
        charset::UCS2 => {
            if !b.len().is_multiple_of(2) {
                return Err(CodecError::Invalid("UCS-2 string of odd length"));
            }
            let units: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).map_err(|_| CodecError::Invalid("bad UCS-2 string"))
        }
        charset::UCS4 => {
            if !b.len().is_multiple_of(4) {
                return Err(CodecError::Invalid("UCS-4 string of a length not a multiple of 4"));
            }
            b.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect::<Option<String>>()
                .ok_or(CodecError::Invalid("bad UCS-4 string"))
        }
        _ => Err(CodecError::Invalid("unsupported character set")),
    }
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        let b = *self.buf.get(self.pos).ok_or(CodecError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u32) -> Result<&'a [u8], CodecError> {
        let n = n as usize;
        if self.buf.len() - self.pos.min(self.buf.len()) < n {
            return Err(CodecError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next tag header, without consuming it.
    pub fn peek_tag(&self) -> Result<Tag, CodecError> {
        self.clone().read_tag()
    }

    /// Reads a tag header (not the content of a primitive).
    pub fn read_tag(&mut self) -> Result<Tag, CodecError> {
        let first = self.byte()?;
        let mut number = first >> 4;
        if number == 15 {
            number = self.byte()?;
        }
        let context = first & 0x08 != 0;
        let lvt = first & 0x07;
        if context && lvt == 6 {
            return Ok(Tag::Opening(number));
        }
        if context && lvt == 7 {
            return Ok(Tag::Closing(number));
        }
        if !context && number == app::BOOLEAN {
            // The value is in the header; lengths past 1 are invalid.
            if lvt > 1 {
                return Err(CodecError::Invalid("boolean tag with a value past 1"));
            }
            return Ok(Tag::Application(number, u32::from(lvt)));
        }
        let len = match lvt {
            0..=4 => u32::from(lvt),
            5 => match self.byte()? {
                254 => u32::from(u16::from_be_bytes([self.byte()?, self.byte()?])),
                255 => u32::from_be_bytes([self.byte()?, self.byte()?, self.byte()?, self.byte()?]),
                n => u32::from(n),
            },
            _ => return Err(CodecError::Invalid("application tag with an opening/closing length")),
        };
        Ok(if context { Tag::Context(number, len) } else { Tag::Application(number, len) })
    }

    /// Reads one application-tagged value.
    pub fn value(&mut self) -> Result<Value, CodecError> {
        match self.read_tag()? {
            Tag::Application(number, len) => self.app_content(number, len),
            _ => Err(CodecError::Invalid("expected an application tag")),
        }
    }

    fn app_content(&mut self, number: u8, len: u32) -> Result<Value, CodecError> {
        if number == app::BOOLEAN {
            return Ok(Value::Boolean(len == 1));
        }
        let b = self.take(len)?;
        Ok(match number {
            app::NULL => {
                if len != 0 {
                    return Err(CodecError::Invalid("null with content"));
                }
                Value::Null
            }
            app::UNSIGNED => Value::Unsigned(be_unsigned(b)?),
            app::SIGNED => Value::Signed(be_signed(b)?),
            app::REAL => Value::Real(f32::from_be_bytes(
                b.try_into().map_err(|_| CodecError::Invalid("real of a length not 4"))?,
            )),
            app::DOUBLE => Value::Double(f64::from_be_bytes(
                b.try_into().map_err(|_| CodecError::Invalid("double of a length not 8"))?,
            )),
            app::OCTET_STRING => Value::OctetString(b.to_vec()),
            app::CHARACTER_STRING => {
                let (&set, rest) = b.split_first().ok_or(CodecError::Invalid("character string without a charset"))?;
                Value::CharacterString(decode_string(set, rest)?)
            }
            app::BIT_STRING => {
                let (&unused, rest) =
                    b.split_first().ok_or(CodecError::Invalid("bit string without its unused count"))?;
                if unused > 7 || (rest.is_empty() && unused != 0) {
                    return Err(CodecError::Invalid("bit string with a bad unused count"));
                }
                let n = rest.len() * 8 - usize::from(unused);
                Value::BitString((0..n).map(|i| rest[i / 8] & (0x80 >> (i % 8)) != 0).collect())
            }
            app::ENUMERATED => Value::Enumerated(
                u32::try_from(be_unsigned(b)?).map_err(|_| CodecError::Invalid("enumeration past 32 bits"))?,
            ),
            app::DATE => Value::Date(b.try_into().map_err(|_| CodecError::Invalid("date of a length not 4"))?),
            app::TIME => Value::Time(b.try_into().map_err(|_| CodecError::Invalid("time of a length not 4"))?),
            app::OBJECT_ID => Value::ObjectId(ObjectId::from_u32(u32::from_be_bytes(
                b.try_into().map_err(|_| CodecError::Invalid("object identifier of a length not 4"))?,
            ))),
            _ => return Err(CodecError::Invalid("reserved application tag")),
        })
    }

    /// Whether the next tag is context tag `number` (primitive).
    pub fn at_context(&self, number: u8) -> bool {
        matches!(self.peek_tag(), Ok(Tag::Context(n, _)) if n == number)
    }

    /// Whether the next tag is opening tag `number`.
    pub fn at_opening(&self, number: u8) -> bool {
        self.peek_tag() == Ok(Tag::Opening(number))
    }

    /// Whether the next tag is closing tag `number`.
    pub fn at_closing(&self, number: u8) -> bool {
        self.peek_tag() == Ok(Tag::Closing(number))
    }

    /// The content bytes of context tag `number`.
    pub fn context_bytes(&mut self, number: u8) -> Result<&'a [u8], CodecError> {
        match self.read_tag()? {
            Tag::Context(n, len) if n == number => self.take(len),
            _ => Err(CodecError::Invalid("expected another context tag")),
        }
    }

    pub fn ctx_unsigned(&mut self, number: u8) -> Result<u64, CodecError> {
        be_unsigned(self.context_bytes(number)?)
    }

    pub fn ctx_u32(&mut self, number: u8) -> Result<u32, CodecError> {
        u32::try_from(self.ctx_unsigned(number)?).map_err(|_| CodecError::Invalid("value past 32 bits"))
    }

    pub fn ctx_boolean(&mut self, number: u8) -> Result<bool, CodecError> {
        match self.context_bytes(number)? {
            [b] => Ok(*b != 0),
            _ => Err(CodecError::Invalid("boolean of a length not 1")),
        }
    }

    pub fn ctx_object_id(&mut self, number: u8) -> Result<ObjectId, CodecError> {
        let b: [u8; 4] = self
            .context_bytes(number)?
            .try_into()
            .map_err(|_| CodecError::Invalid("object identifier of a length not 4"))?;
        Ok(ObjectId::from_u32(u32::from_be_bytes(b)))
    }

    /// An optional context-tagged unsigned.
    pub fn opt_ctx_u32(&mut self, number: u8) -> Result<Option<u32>, CodecError> {
        if self.at_context(number) { self.ctx_u32(number).map(Some) } else { Ok(None) }
    }

    pub fn expect_opening(&mut self, number: u8) -> Result<(), CodecError> {
        match self.read_tag()? {
            Tag::Opening(n) if n == number => Ok(()),
            _ => Err(CodecError::Invalid("expected an opening tag")),
        }
    }

    pub fn expect_closing(&mut self, number: u8) -> Result<(), CodecError> {
        match self.read_tag()? {
            Tag::Closing(n) if n == number => Ok(()),
            _ => Err(CodecError::Invalid("expected a closing tag")),
        }
    }

    /// Skips one element: a primitive (application or context) or a whole constructed value.
    pub fn skip(&mut self) -> Result<(), CodecError> {
        let mut depth = 0usize;
        loop {
            match self.read_tag()? {
                Tag::Application(app::BOOLEAN, _) => {}
                Tag::Application(_, len) | Tag::Context(_, len) => {
                    self.take(len)?;
                }
                Tag::Opening(_) => depth += 1,
                Tag::Closing(_) => {
                    depth = depth.checked_sub(1).ok_or(CodecError::Invalid("unbalanced closing tag"))?;
                }
            }
            if depth == 0 {
                return Ok(());
            }
        }
    }

    /// The values between the current position and closing tag `number` (consumed): the
    /// application-tagged values at the top level; context-tagged and nested constructed
    /// elements are skipped and counted in the second result.
    pub fn values_until_closing(&mut self, number: u8) -> Result<(Vec<Value>, usize), CodecError> {
        let mut values = Vec::new();
        let mut skipped = 0;
        loop {
            match self.peek_tag()? {
                Tag::Closing(n) if n == number => {
                    self.read_tag()?;
                    return Ok((values, skipped));
                }
                Tag::Closing(_) => return Err(CodecError::Invalid("unbalanced closing tag")),
                Tag::Application(..) => values.push(self.value()?),
                Tag::Context(..) | Tag::Opening(_) => {
                    self.skip()?;
                    skipped += 1;
                }
            }
        }
    }
}
