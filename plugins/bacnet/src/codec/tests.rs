//! Codec tests: known encodings from the standard's rules, encode→decode round trips of every
//! tag type and PDU (proptest), and decoders fed arbitrary bytes (they must never panic).

use super::pdu::{Apdu, decode_frame, encode_frame, max_apdu_code, max_apdu_len};
use super::services::*;
use super::tags::{ObjectId, Reader, Tag, Value, Writer};
use super::{CodecError, enums};
use proptest::prelude::*;

fn enc(v: &Value) -> Vec<u8> {
    let mut w = Writer::new();
    w.value(v);
    w.buf
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

#[test]
fn known_application_encodings() {
    assert_eq!(enc(&Value::Null), hex("00"));
    assert_eq!(enc(&Value::Boolean(true)), hex("11"));
    assert_eq!(enc(&Value::Boolean(false)), hex("10"));
    assert_eq!(enc(&Value::Unsigned(72)), hex("21 48"));
    assert_eq!(enc(&Value::Unsigned(0)), hex("21 00"));
    assert_eq!(enc(&Value::Unsigned(256)), hex("22 01 00"));
    assert_eq!(enc(&Value::Signed(72)), hex("31 48"));
    assert_eq!(enc(&Value::Signed(-1)), hex("31 FF"));
    assert_eq!(enc(&Value::Signed(128)), hex("32 00 80"));
    assert_eq!(enc(&Value::Signed(-129)), hex("32 FF 7F"));
    assert_eq!(enc(&Value::Real(72.3)), hex("44 42 90 99 9A"));
    assert_eq!(enc(&Value::Double(1.0)), hex("55 08 3F F0 00 00 00 00 00 00"));
    assert_eq!(enc(&Value::OctetString(vec![1, 2, 3])), hex("63 01 02 03"));
    assert_eq!(enc(&Value::CharacterString("ABC".into())), hex("74 00 41 42 43"));
    assert_eq!(enc(&Value::BitString(vec![false; 4])), hex("82 04 00"));
    assert_eq!(enc(&Value::BitString(vec![true, false, true, false, false])), hex("82 03 A0"));
    assert_eq!(enc(&Value::Enumerated(0)), hex("91 00"));
    assert_eq!(enc(&Value::Date([91, 1, 24, 4])), hex("A4 5B 01 18 04"));
    assert_eq!(enc(&Value::Time([17, 35, 45, 17])), hex("B4 11 23 2D 11"));
    assert_eq!(enc(&Value::ObjectId(ObjectId::new(0, 1))), hex("C4 00 00 00 01"));
    assert_eq!(enc(&Value::ObjectId(ObjectId::new(8, 4194302))), hex("C4 02 3F FF FE"));
    // Extended lengths: 5..253 in one byte, then 254 + 2 bytes.
    let s = "x".repeat(300);
    let e = enc(&Value::CharacterString(s.clone()));
    assert_eq!(&e[..4], &hex("75 FE 01 2D")[..]);
    assert_eq!(Reader::new(&e).value().unwrap(), Value::CharacterString(s));
}

#[test]
fn other_character_sets_are_decoded() {
    // ISO 8859-1 "é", UCS-2 "é".
    assert_eq!(Reader::new(&hex("73 05 41 E9")).value().unwrap(), Value::CharacterString("Aé".into()));
    assert_eq!(Reader::new(&hex("75 05 04 00 41 00 E9")).value().unwrap(), Value::CharacterString("Aé".into()));
    assert!(Reader::new(&hex("73 00 FF FE")).value().is_err(), "invalid UTF-8 is refused");
    assert!(Reader::new(&hex("73 01 41 42")).value().is_err(), "DBCS is not supported");
}

#[test]
fn known_context_and_constructed_encodings() {
    let mut w = Writer::new();
    w.ctx_object_id(0, ObjectId::new(0, 5));
    w.ctx_enumerated(1, 85);
    assert_eq!(w.buf, hex("0C 00 00 00 05 19 55"));
    assert_eq!(read_property(ObjectId::new(0, 5), 85, None), hex("0C 00 00 00 05 19 55"));
    assert_eq!(read_property(ObjectId::new(8, 1), 76, Some(0)), hex("0C 02 00 00 01 19 4C 29 00"));
    let mut w = Writer::new();
    w.opening(3);
    w.closing(3);
    w.opening(20);
    w.closing(20);
    assert_eq!(w.buf, hex("3E 3F FE 14 FF 14"));
    assert_eq!(who_is(Some((3, 1000))), hex("09 03 1A 03 E8"));
    assert_eq!(who_is(None), Vec::<u8>::new());
}

#[test]
fn known_frames() {
    let apdu = Apdu::ConfirmedRequest {
        segmented: false,
        more_follows: false,
        segmented_response_accepted: true,
        max_segments: 6,
        max_apdu: 5,
        invoke_id: 7,
        sequence: 0,
        window: 0,
        service: confirmed::READ_PROPERTY,
        data: &read_property(ObjectId::new(0, 5), 85, None),
    };
    let frame = encode_frame(false, &apdu);
    assert_eq!(frame, hex("81 0A 00 11 01 04 02 65 07 0C 0C 00 00 00 05 19 55"));
    let decoded = decode_frame(&frame).unwrap().unwrap();
    assert_eq!(decoded.apdu, apdu);
    assert!(!decoded.broadcast);

    // A Forwarded-NPDU of an I-Am from a device behind a router (SNET 5, SADR 0x21): the
    // source network is parsed and the original B/IP address kept.
    let i_am_data = i_am(&IAm { device: ObjectId::new(8, 77), max_apdu: 480, segmentation: 3, vendor_id: 15 });
    let mut f = hex("81 04 00 00 C0 A8 00 05 BA C0 01 08 00 05 01 21 10 00");
    f.extend_from_slice(&i_am_data);
    let len = (f.len() as u16).to_be_bytes();
    f[2] = len[0];
    f[3] = len[1];
    let decoded = decode_frame(&f).unwrap().unwrap();
    assert_eq!(decoded.forwarded_from, Some("192.168.0.5:47808".parse().unwrap()));
    assert_eq!(decoded.source, Some(super::pdu::NetAddr { net: 5, mac: vec![0x21] }));
    let Apdu::UnconfirmedRequest { service: unconfirmed::I_AM, data } = decoded.apdu else { panic!("not an I-Am") };
    assert_eq!(decode_i_am(data).unwrap().device, ObjectId::new(8, 77));

    // A frame with DNET (and hop count) is parsed past it.
    let mut f = hex("81 0A 00 00 01 20 FF FF 00 FF 10 08");
    let len = (f.len() as u16).to_be_bytes();
    f[2] = len[0];
    f[3] = len[1];
    let decoded = decode_frame(&f).unwrap().unwrap();
    assert_eq!(decoded.apdu, Apdu::UnconfirmedRequest { service: unconfirmed::WHO_IS, data: &[] });

    // A network-layer message and a BVLC-Result carry no APDU.
    assert_eq!(decode_frame(&hex("81 0A 00 07 01 80 00")).unwrap(), None);
    assert_eq!(decode_frame(&hex("81 00 00 06 00 00")).unwrap(), None);
    assert!(decode_frame(&hex("81 0A 00 09 01 00")).is_err(), "length past the datagram");
    assert!(decode_frame(&hex("82 0A 00 06 01 00")).is_err());
}

#[test]
fn max_apdu_codes() {
    assert_eq!(max_apdu_code(1476), 5);
    assert_eq!(max_apdu_code(1475), 4);
    assert_eq!(max_apdu_code(50), 0);
    assert_eq!(max_apdu_code(10), 0);
    assert_eq!(max_apdu_len(3), 480);
    assert_eq!(max_apdu_len(15), 1476);
}

#[test]
fn errors_plain_and_wrapped() {
    assert_eq!(decode_error(&hex("91 02 91 20")).unwrap(), ErrorPair { class: 2, code: 32 });
    // WritePropertyMultiple-style: [0] { class code } [1] objref...
    assert_eq!(decode_error(&hex("0E 91 01 91 1F 0F 1C 00 00 00 01")).unwrap(), ErrorPair { class: 1, code: 31 });
    assert!(decode_error(&hex("91 02")).is_err());
    assert_eq!(enums::error_class_name(2), "property");
    assert_eq!(enums::error_code_name(32), "unknown-property");
    assert_eq!(enums::error_code_name(9), "invalid-data-type");
    assert_eq!(enums::error_code_name(33), "error-code-33");
    assert_eq!(enums::error_code_name(1000), "error-code-1000");
}

#[test]
fn rpm_ack_with_values_and_errors() {
    let mut w = Writer::new();
    w.ctx_object_id(0, ObjectId::new(0, 1));
    w.opening(1);
    w.ctx_enumerated(2, 85);
    w.opening(4);
    w.value(&Value::Real(21.5));
    w.closing(4);
    w.ctx_enumerated(2, 110);
    w.ctx_unsigned(3, 2);
    w.opening(4);
    w.value(&Value::CharacterString("On".into()));
    w.closing(4);
    w.ctx_enumerated(2, 28);
    w.opening(5);
    w.app_enumerated(2);
    w.app_enumerated(32);
    w.closing(5);
    w.closing(1);
    w.ctx_object_id(0, ObjectId::new(3, 2));
    w.opening(1);
    w.ctx_enumerated(2, 87);
    w.opening(4);
    // A priority array: NULLs and a constructed choice (skipped).
    w.value(&Value::Null);
    w.opening(0);
    w.value(&Value::Real(1.0));
    w.closing(0);
    w.closing(4);
    w.closing(1);
    let results = decode_read_property_multiple_ack(&w.buf).unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].value, Ok(PropertyValue { values: vec![Value::Real(21.5)], skipped: 0 }));
    assert_eq!(results[1].index, Some(2));
    assert_eq!(results[2].value, Err(ErrorPair { class: 2, code: 32 }));
    assert_eq!(results[3].object, ObjectId::new(3, 2));
    assert_eq!(results[3].value, Ok(PropertyValue { values: vec![Value::Null], skipped: 1 }));
}

#[test]
fn cov_notification_round_trip() {
    let n = CovNotification {
        process_id: 9,
        device: ObjectId::new(8, 1),
        object: ObjectId::new(2, 3),
        time_remaining: 280,
        values: vec![
            NotifiedValue {
                property: 85,
                index: None,
                value: PropertyValue { values: vec![Value::Real(3.5)], skipped: 0 },
            },
            NotifiedValue {
                property: 111,
                index: None,
                value: PropertyValue { values: vec![Value::BitString(vec![false, true, false, false])], skipped: 0 },
            },
        ],
    };
    assert_eq!(decode_cov_notification(&cov_notification(&n)).unwrap(), n);
    assert_eq!(subscribe_cov(9, ObjectId::new(2, 3), Some((false, 300))), hex("09 09 1C 00 80 00 03 29 00 3A 01 2C"));
    assert_eq!(subscribe_cov(9, ObjectId::new(2, 3), None), hex("09 09 1C 00 80 00 03"));
}

#[test]
fn write_property_encoding() {
    let b = write_property(ObjectId::new(1, 2), 85, None, &Value::Real(1.0), Some(8));
    assert_eq!(b, hex("0C 00 40 00 02 19 55 3E 44 3F 80 00 00 3F 49 08"));
    let b = write_property(ObjectId::new(1, 2), 85, None, &Value::Null, Some(16));
    assert_eq!(b, hex("0C 00 40 00 02 19 55 3E 00 3F 49 10"));
}

#[test]
fn object_type_names() {
    assert_eq!(enums::object_type_name(0), Some("analog-input"));
    assert_eq!(enums::object_type_name(13), Some("multi-state-input"));
    assert_eq!(enums::object_type_name(19), Some("multi-state-value"));
    assert_eq!(enums::object_type_name(56), Some("network-port"));
    assert_eq!(enums::object_type_name(64), Some("color-temperature"));
    assert_eq!(enums::object_type_name(65), None);
    assert_eq!(enums::object_type_from_name("binary-value"), Some(5));
    assert_eq!(enums::object_type_from_name("600"), Some(600));
    assert_eq!(enums::object_type_from_name("nope"), None);
    assert_eq!(enums::unit_symbol(62), Some("°C"));
    assert_eq!(enums::unit_symbol(95), None);
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

fn object_id() -> impl Strategy<Value = ObjectId> {
    (0u16..1024, 0u32..=0x3F_FFFF).prop_map(|(k, i)| ObjectId::new(k, i))
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Boolean),
        any::<u64>().prop_map(Value::Unsigned),
        any::<i64>().prop_map(Value::Signed),
        any::<f32>().prop_map(Value::Real),
        any::<f64>().prop_map(Value::Double),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::OctetString),
        ".{0,80}".prop_map(Value::CharacterString),
        proptest::collection::vec(any::<bool>(), 0..70).prop_map(Value::BitString),
        any::<u32>().prop_map(Value::Enumerated),
        any::<[u8; 4]>().prop_map(Value::Date),
        any::<[u8; 4]>().prop_map(Value::Time),
        object_id().prop_map(Value::ObjectId),
    ]
}

/// Equality that treats floats by their bits (NaN round trips too).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Real(x), Value::Real(y)) => x.to_bits() == y.to_bits(),
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

fn apdu_strategy() -> impl Strategy<Value = (u8, [bool; 4], [u8; 6], Vec<u8>)> {
    (0u8..8, any::<[bool; 4]>(), any::<[u8; 6]>(), proptest::collection::vec(any::<u8>(), 0..40))
}

fn build_apdu<'a>(kind: u8, f: [bool; 4], n: [u8; 6], data: &'a [u8]) -> Apdu<'a> {
    match kind {
        0 => Apdu::ConfirmedRequest {
            segmented: f[0],
            more_follows: f[1],
            segmented_response_accepted: f[2],
            max_segments: n[0] & 7,
            max_apdu: n[1] & 15,
            invoke_id: n[2],
            sequence: if f[0] { n[3] } else { 0 },
            window: if f[0] { n[4] } else { 0 },
            service: n[5],
            data,
        },
        1 => Apdu::UnconfirmedRequest { service: n[5], data },
        2 => Apdu::SimpleAck { invoke_id: n[2], service: n[5] },
        3 => Apdu::ComplexAck {
            segmented: f[0],
            more_follows: f[1],
            invoke_id: n[2],
            sequence: if f[0] { n[3] } else { 0 },
            window: if f[0] { n[4] } else { 0 },
            service: n[5],
            data,
        },
        4 => Apdu::SegmentAck { negative: f[0], from_server: f[1], invoke_id: n[2], sequence: n[3], window: n[4] },
        5 => Apdu::Error { invoke_id: n[2], service: n[5], data },
        6 => Apdu::Reject { invoke_id: n[2], reason: n[3] },
        _ => Apdu::Abort { from_server: f[0], invoke_id: n[2], reason: n[3] },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn application_values_round_trip(v in value()) {
        let bytes = enc(&v);
        let mut r = Reader::new(&bytes);
        let back = r.value().unwrap();
        prop_assert!(same(&v, &back), "{v:?} came back as {back:?}");
        prop_assert!(r.is_empty());
    }

    #[test]
    fn sequences_of_values_round_trip(vs in proptest::collection::vec(value(), 0..12), number in 0u8..=254) {
        let mut w = Writer::new();
        w.opening(number);
        for v in &vs {
            w.value(v);
        }
        w.closing(number);
        let mut r = Reader::new(&w.buf);
        r.expect_opening(number).unwrap();
        let (back, skipped) = r.values_until_closing(number).unwrap();
        prop_assert_eq!(skipped, 0);
        prop_assert_eq!(back.len(), vs.len());
        for (a, b) in vs.iter().zip(&back) {
            prop_assert!(same(a, b));
        }
        // The whole constructed value skips as one element.
        let mut r = Reader::new(&w.buf);
        r.skip().unwrap();
        prop_assert!(r.is_empty());
    }

    #[test]
    fn context_tags_round_trip(number in 0u8..=254, u in any::<u64>(), b in any::<bool>(), id in object_id()) {
        let mut w = Writer::new();
        w.ctx_unsigned(number, u);
        w.ctx_boolean(number, b);
        w.ctx_object_id(number, id);
        let mut r = Reader::new(&w.buf);
        prop_assert!(matches!(r.peek_tag(), Ok(Tag::Context(n, _)) if n == number));
        prop_assert_eq!(r.ctx_unsigned(number).unwrap(), u);
        prop_assert_eq!(r.ctx_boolean(number).unwrap(), b);
        prop_assert_eq!(r.ctx_object_id(number).unwrap(), id);
        prop_assert!(r.is_empty());
    }

    #[test]
    fn apdus_round_trip((kind, f, n, data) in apdu_strategy(), broadcast in any::<bool>()) {
        let apdu = build_apdu(kind, f, n, &data);
        let frame = encode_frame(broadcast, &apdu);
        let decoded = decode_frame(&frame).unwrap().unwrap();
        prop_assert_eq!(decoded.broadcast, broadcast);
        prop_assert_eq!(decoded.apdu, apdu);
    }

    #[test]
    fn service_round_trips(
        id in object_id(),
        prop in any::<u32>(),
        index in proptest::option::of(any::<u32>()),
        v in value(),
        priority in proptest::option::of(1u8..=16),
        range in proptest::option::of((0u32..=0x3F_FFFF, 0u32..=0x3F_FFFF)),
    ) {
        let mut w = Writer::new();
        w.ctx_object_id(0, id);
        w.ctx_enumerated(1, prop);
        if let Some(i) = index {
            w.ctx_unsigned(2, u64::from(i));
        }
        w.opening(3);
        w.value(&v);
        w.closing(3);
        let (o, p, i, pv) = decode_read_property_ack(&w.buf).unwrap();
        prop_assert_eq!((o, p, i), (id, prop, index));
        prop_assert!(same(&pv.values[0], &v));
        prop_assert_eq!(decode_who_is(&who_is(range)).unwrap(), range);
        let wp = write_property(id, prop, index, &v, priority);
        let mut r = Reader::new(&wp);
        prop_assert_eq!(r.ctx_object_id(0).unwrap(), id);
        prop_assert_eq!(r.ctx_u32(1).unwrap(), prop);
        prop_assert_eq!(r.opt_ctx_u32(2).unwrap(), index);
        r.expect_opening(3).unwrap();
        let (vals, _) = r.values_until_closing(3).unwrap();
        prop_assert!(same(&vals[0], &v));
        prop_assert_eq!(r.opt_ctx_u32(4).unwrap().map(|p| p as u8), priority);
        let iam = IAm { device: id, max_apdu: prop, segmentation: prop % 4, vendor_id: prop >> 3 };
        prop_assert_eq!(decode_i_am(&i_am(&iam)).unwrap(), iam);
    }

    #[test]
    fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_frame(&bytes);
        // Also behind a valid BVLC/NPDU header, where the APDU decoder gets to see them.
        let mut f = vec![0x81, 0x0A, 0, 0, 0x01, bytes.first().copied().unwrap_or(0) & 0x2C];
        f.extend_from_slice(&bytes);
        let len = (f.len() as u16).to_be_bytes();
        f[2] = len[0];
        f[3] = len[1];
        let _ = decode_frame(&f);
    }

    #[test]
    fn arbitrary_service_data_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_read_property_ack(&bytes);
        let _ = decode_read_property_multiple_ack(&bytes);
        let _ = decode_cov_notification(&bytes);
        let _ = decode_i_am(&bytes);
        let _ = decode_who_is(&bytes);
        let _ = decode_error(&bytes);
        let mut r = Reader::new(&bytes);
        while !r.is_empty() {
            if r.skip().is_err() {
                break;
            }
        }
        let mut r = Reader::new(&bytes);
        let _ = r.values_until_closing(0);
        let mut r = Reader::new(&bytes);
        while let Ok(_) | Err(CodecError::Invalid(_)) = r.value() {
            if r.is_empty() {
                break;
            }
            if r.read_tag().is_err() {
                break;
            }
        }
    }

    #[test]
    fn tag_soup_never_panics(tags in proptest::collection::vec((0u8..8, 0u8..=255, any::<u32>()), 0..30)) {
        // Well-formed tag headers with arbitrary (often lying) lengths.
        let mut b = Vec::new();
        for (kind, number, len) in tags {
            match kind {
                0 => { let mut w = Writer::new(); w.opening(number); b.extend(w.buf); }
                1 => { let mut w = Writer::new(); w.closing(number); b.extend(w.buf); }
                2 => b.extend_from_slice(&[0x0D, 0xFF]),
                3 => b.extend_from_slice(&[0x75, 254, (len >> 8) as u8, len as u8]),
                4 => b.extend_from_slice(&[0x95, 255]),
                _ => b.extend_from_slice(&len.to_be_bytes()),
            }
        }
        let _ = decode_read_property_multiple_ack(&b);
        let _ = decode_cov_notification(&b);
        let _ = decode_error(&b);
        let mut r = Reader::new(&b);
        let _ = r.skip();
    }
}
