//! One device session: the request socket, the device's limits, the point list, and
//! ReadPropertyMultiple batching with its ReadProperty fallback.

use crate::client::{Client, RequestError};
use crate::codec::enums::{
    abort_reason, error_class, error_class_name, error_code, error_code_name, object_type, property, reject_reason,
    segmentation, unit_symbol,
};
use crate::codec::pdu::MAX_APDU_IP;
use crate::codec::services::{
    PropRef, PropertyValue, confirmed, decode_read_property_ack, decode_read_property_multiple_ack, read_property,
    read_property_multiple, write_property,
};
use crate::codec::tags::{ObjectId, Value};
use crate::config::Config;
use crate::cov;
use crate::points::{Kind, Point, disambiguate, is_output, quality};
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use std::net::{SocketAddrV4, UdpSocket};
use t3_plugin_abi::export::Error;
use t3_plugin_abi::{
    QUALITY_BAD, QUALITY_BAD_CONFIG_ERROR, STATUS_DEVICE, STATUS_INTERNAL, STATUS_INVALID, STATUS_UNREACHABLE,
    STATUS_UNSUPPORTED, Sample,
};

/// One property's answer.
pub type PropResult = Result<PropertyValue, RequestError>;
/// Answers by (object, property, array index).
pub type PropMap = HashMap<(ObjectId, u32, Option<u32>), PropResult>;

/// The APDU header of a confirmed request (unsegmented).
const REQUEST_HEADER: usize = 4;
/// The APDU header of a ComplexACK (unsegmented).
const ACK_HEADER: usize = 3;
/// The max APDU assumed for a device before its own is known.
const DEFAULT_REMOTE_APDU: usize = 480;

/// A failed request as the plugin's error: no answer is `STATUS_UNREACHABLE`, anything the device
/// said is `STATUS_DEVICE`.
pub fn request_error(what: &str, e: &RequestError) -> Error {
    Error::new(status_of(e), format!("{what}: {e}"))
}

/// The status of a failed request.
pub fn status_of(e: &RequestError) -> i32 {
    match e {
        RequestError::Timeout | RequestError::Io(_) => STATUS_UNREACHABLE,
        RequestError::Cancelled => STATUS_INTERNAL,
        _ => STATUS_DEVICE,
    }
}

/// The bytes `n` takes as the content of an unsigned.
fn uint_len(n: u32) -> usize {
    match n {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        0x1_0000..=0xFF_FFFF => 3,
        _ => 4,
    }
}

/// A guess at the encoded size of a property's value in an answer.
fn value_estimate(p: PropRef) -> usize {
    match (p.property, p.index) {
        (_, Some(0)) => 5,
        (property::OBJECT_LIST, _) => 5,
        (property::PRESENT_VALUE | property::MIN_PRES_VALUE | property::MAX_PRES_VALUE, _) => 10,
        (property::STATUS_FLAGS | property::UNITS | property::NUMBER_OF_STATES, _) => 5,
        (property::OBJECT_NAME | property::MODEL_NAME | property::VENDOR_NAME, _) => 72,
        (property::DESCRIPTION, _) => 100,
        (property::ACTIVE_TEXT | property::INACTIVE_TEXT, _) => 36,
        (property::STATE_TEXT, None) => 240,
        _ => 40,
    }
}

/// A session with one device.
#[derive(Debug)]
pub struct Session {
    pub cfg: Config,
    client: Client,
    device: ObjectId,
    points: Option<Vec<Point>>,
    /// Whether ReadPropertyMultiple is used (false once the device refused it).
    rpm: bool,
    /// The device's max-APDU-length-accepted, once read.
    remote_apdu: Option<usize>,
    /// Whether the device can send segmented answers.
    remote_segments: bool,
    cov: Option<cov::Worker>,
}

impl Session {
    /// Opens a session: binds the request socket, sends nothing.
    pub fn open(cfg: Config) -> Result<Session, Error> {
        let socket = UdpSocket::bind(SocketAddrV4::new(cfg.local_address, cfg.local_port)).map_err(|e| {
            let key = if cfg.local_port != 0 { "local_port" } else { "local_address" };
            Error::config(key, &format!("cannot bind UDP {}:{}: {e}", cfg.local_address, cfg.local_port))
        })?;
        let peer = SocketAddrV4::new(cfg.ip_address, cfg.port);
        let client = Client::new(socket, peer, cfg.timeout, cfg.retries);
        Ok(Session {
            device: ObjectId::new(object_type::DEVICE, cfg.device_instance),
            rpm: cfg.use_rpm,
            cfg,
            client,
            points: None,
            remote_apdu: None,
            remote_segments: false,
            cov: None,
        })
    }

    /// The largest APDU to send the device.
    fn apdu_budget(&self) -> usize {
        self.cfg.max_apdu.or(self.remote_apdu).unwrap_or(DEFAULT_REMOTE_APDU).clamp(50, MAX_APDU_IP)
    }

    /// The largest answer to ask the device for in one ReadPropertyMultiple.
    fn answer_budget(&self) -> usize {
        let unsegmented = self.apdu_budget().min(MAX_APDU_IP) - ACK_HEADER;
        if self.remote_segments { unsegmented * 8 } else { unsegmented }
    }

    /// ReadProperty: `Ok(Err(..))` for an answer that is an error, `Err` for no answer.
    pub fn read_property(
        &mut self,
        object: ObjectId,
        prop: u32,
        index: Option<u32>,
    ) -> Result<PropResult, RequestError> {
        let data = read_property(object, prop, index);
        match self.client.confirmed(confirmed::READ_PROPERTY, &data, &mut |_, _, _| {}) {
            Ok(ack) => Ok(decode_read_property_ack(&ack)
                .map(|(_, _, _, v)| v)
                .map_err(|e| RequestError::Decode(e.to_string()))),
            Err(e) if e.is_unreachable() || e == RequestError::Cancelled => Err(e),
            Err(e) => Ok(Err(e)),
        }
    }

    /// Reads `refs` with ReadPropertyMultiple in batches that fit the device's max APDU (halving a
    /// batch the device finds too large), or with ReadProperty when RPM is off or refused.
    /// `Err` only when the device did not answer.
    pub fn read_many(&mut self, refs: &[(ObjectId, PropRef)]) -> Result<PropMap, RequestError> {
        let mut out = PropMap::new();
        let mut queue: std::collections::VecDeque<&[(ObjectId, PropRef)]> = self.batches(refs).into();
        while let Some(batch) = queue.pop_front() {
            if !self.rpm {
                self.read_each(batch, &mut out)?;
                continue;
            }
            let specs = group(batch);
            let data = read_property_multiple(&specs);
            match self.client.confirmed(confirmed::READ_PROPERTY_MULTIPLE, &data, &mut |_, _, _| {}) {
                Ok(ack) => match decode_read_property_multiple_ack(&ack) {
                    Ok(results) => {
                        for r in results {
                            out.insert((r.object, r.property, r.index), r.value.map_err(RequestError::Error));
                        }
                        for (o, p) in batch {
                            out.entry((*o, p.property, p.index)).or_insert_with(|| {
                                Err(RequestError::Decode("missing from the device's answer".into()))
                            });
                        }
                    }
                    Err(_) => self.read_each(batch, &mut out)?,
                },
                Err(e) if e.is_unreachable() || e == RequestError::Cancelled => return Err(e),
                Err(RequestError::Reject(reject_reason::UNRECOGNIZED_SERVICE)) => {
                    self.rpm = false;
                    self.read_each(batch, &mut out)?;
                }
                Err(RequestError::Error(pair))
                    if pair.class == error_class::SERVICES
                        && matches!(
                            pair.code,
                            error_code::SERVICE_REQUEST_DENIED | error_code::OPTIONAL_FUNCTIONALITY_NOT_SUPPORTED
                        ) =>
                {
                    self.rpm = false;
                    self.read_each(batch, &mut out)?;
                }
                Err(RequestError::Abort(
                    abort_reason::SEGMENTATION_NOT_SUPPORTED
                    | abort_reason::BUFFER_OVERFLOW
                    | abort_reason::APDU_TOO_LONG,
                ))
                | Err(RequestError::Reject(reject_reason::BUFFER_OVERFLOW))
                    if batch.len() > 1 =>
                {
                    let (a, b) = batch.split_at(batch.len() / 2);
                    queue.push_front(b);
                    queue.push_front(a);
                }
                // Anything else (an error for the whole request, such as every object unknown):
                // ask property by property to learn which one is at fault.
                Err(_) => self.read_each(batch, &mut out)?,
            }
        }
        Ok(out)
    }

    fn read_each(&mut self, refs: &[(ObjectId, PropRef)], out: &mut PropMap) -> Result<(), RequestError> {
        for (o, p) in refs {
            let r = self.read_property(*o, p.property, p.index)?;
            out.insert((*o, p.property, p.index), r);
        }
        Ok(())
    }

    /// Splits `refs` into batches whose request and (estimated) answer fit the device.
    fn batches<'r>(&self, refs: &'r [(ObjectId, PropRef)]) -> Vec<&'r [(ObjectId, PropRef)]> {
        let request_budget = self.apdu_budget() - REQUEST_HEADER;
        let answer_budget = self.answer_budget();
        let mut out = Vec::new();
        let (mut start, mut req, mut ans) = (0, 0, 0);
        let mut last: Option<ObjectId> = None;
        for (i, (o, p)) in refs.iter().enumerate() {
            let new_object = last != Some(*o);
            let prop = 1 + uint_len(p.property) + p.index.map_or(0, |x| 1 + uint_len(x));
            let r = prop + if new_object { 7 } else { 0 };
            let a = prop + 2 + value_estimate(*p) + if new_object { 7 } else { 0 };
            if i > start && (req + r > request_budget || ans + a > answer_budget) {
                out.push(&refs[start..i]);
                start = i;
                req = prop + 7;
                ans = prop + 2 + value_estimate(*p) + 7;
            } else {
                req += r;
                ans += a;
            }
            last = Some(*o);
        }
        if start < refs.len() {
            out.push(&refs[start..]);
        }
        out
    }

    /// Reads the device object's limits (max APDU, segmentation) once.
    fn device_info(&mut self) -> Result<(), Error> {
        if self.remote_apdu.is_some() {
            return Ok(());
        }
        let device = self.device;
        let max = self.read_property(device, property::MAX_APDU_LENGTH_ACCEPTED, None);
        let max = max.map_err(|e| request_error("reading the device object", &e))?;
        match max {
            Ok(v) => {
                self.remote_apdu = Some(v.first().and_then(Value::as_u32).map_or(DEFAULT_REMOTE_APDU, |m| m as usize));
            }
            Err(RequestError::Error(pair)) if pair.code == error_code::UNKNOWN_OBJECT => {
                return Err(Error::new(
                    STATUS_DEVICE,
                    format!(
                        "the device at {}:{} has no device object {} (check device_instance)",
                        self.cfg.ip_address, self.cfg.port, self.cfg.device_instance
                    ),
                ));
            }
            Err(_) => self.remote_apdu = Some(DEFAULT_REMOTE_APDU),
        }
        let seg = self.read_property(device, property::SEGMENTATION_SUPPORTED, None);
        let seg = seg.map_err(|e| request_error("reading the device object", &e))?;
        self.remote_segments = matches!(
            seg.ok().and_then(|v| v.first().cloned()),
            Some(Value::Enumerated(segmentation::BOTH | segmentation::TRANSMIT))
        );
        Ok(())
    }

    /// The device's object list: whole (segmented if need be), else element by element.
    fn object_list(&mut self) -> Result<Vec<ObjectId>, Error> {
        let device = self.device;
        let whole = self.read_property(device, property::OBJECT_LIST, None);
        let whole = whole.map_err(|e| request_error("reading the object list", &e))?;
        let ids = |v: &PropertyValue| -> Vec<ObjectId> {
            v.values.iter().filter_map(|x| if let Value::ObjectId(id) = x { Some(*id) } else { None }).collect()
        };
        if let Ok(v) = &whole {
            return Ok(ids(v));
        }
        // Too long for one answer (the device cannot segment it): read its length, then each element.
        let len = self.read_property(device, property::OBJECT_LIST, Some(0));
        let len = len.map_err(|e| request_error("reading the object list's length", &e))?;
        let len = match len {
            Ok(v) => v.first().and_then(Value::as_u32).unwrap_or(0),
            Err(e) => return Err(request_error("reading the object list", &e)),
        };
        let refs: Vec<(ObjectId, PropRef)> =
            (1..=len).map(|i| (device, PropRef { property: property::OBJECT_LIST, index: Some(i) })).collect();
        let answers = self.read_many(&refs).map_err(|e| request_error("reading the object list", &e))?;
        Ok((1..=len)
            .filter_map(|i| answers.get(&(device, property::OBJECT_LIST, Some(i))))
            .filter_map(|r| r.as_ref().ok())
            .flat_map(ids)
            .collect())
    }

    /// Reads the device's objects into points (see `PluginDecl::points`).
    pub fn load_points(&mut self) -> Result<&[Point], Error> {
        self.device_info()?;
        let mut objects: Vec<ObjectId> =
            self.object_list()?.into_iter().filter(|o| Kind::of(o.kind).is_some()).collect();
        objects.sort();
        objects.dedup();
        let mut refs = Vec::new();
        for o in &objects {
            let kind = Kind::of(o.kind).unwrap_or(Kind::Analog);
            let mut props = vec![property::OBJECT_NAME, property::DESCRIPTION];
            match kind {
                Kind::Analog => props.extend([property::UNITS, property::MIN_PRES_VALUE, property::MAX_PRES_VALUE]),
                Kind::Digital => props.extend([property::INACTIVE_TEXT, property::ACTIVE_TEXT]),
                Kind::Multistate => props.extend([property::NUMBER_OF_STATES, property::STATE_TEXT]),
            }
            refs.extend(props.into_iter().map(|p| (*o, PropRef::new(p))));
            if !is_output(o.kind) {
                refs.push((*o, PropRef { property: property::PRIORITY_ARRAY, index: Some(0) }));
            }
        }
        let answers = self.read_many(&refs).map_err(|e| request_error("reading the objects' properties", &e))?;
        let get = |o: ObjectId, p: u32| answers.get(&(o, p, None)).and_then(|r| r.as_ref().ok());
        let text = |o: ObjectId, p: u32| get(o, p).and_then(|v| v.first()).and_then(Value::as_str).map(str::to_owned);
        let number = |o: ObjectId, p: u32| get(o, p).and_then(|v| v.first()).and_then(Value::as_f64);
        let mut points: Vec<Point> = objects
            .iter()
            .map(|&o| {
                let kind = Kind::of(o.kind).unwrap_or(Kind::Analog);
                let commandable = is_output(o.kind)
                    || answers.get(&(o, property::PRIORITY_ARRAY, Some(0))).is_some_and(|r| r.is_ok());
                let states = match kind {
                    Kind::Analog => vec![],
                    Kind::Digital => vec![
                        text(o, property::INACTIVE_TEXT).unwrap_or_else(|| "inactive".into()),
                        text(o, property::ACTIVE_TEXT).unwrap_or_else(|| "active".into()),
                    ],
                    Kind::Multistate => {
                        let texts: Vec<String> = get(o, property::STATE_TEXT)
                            .map(|v| v.values.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                            .unwrap_or_default();
                        if texts.is_empty() {
                            let n = number(o, property::NUMBER_OF_STATES).unwrap_or(0.0).clamp(0.0, 1000.0) as u32;
                            (1..=n).map(|i| i.to_string()).collect()
                        } else {
                            texts
                        }
                    }
                };
                Point {
                    object: o,
                    kind,
                    name: text(o, property::OBJECT_NAME).unwrap_or_default(),
                    description: text(o, property::DESCRIPTION).filter(|d| !d.trim().is_empty()),
                    units: if kind == Kind::Analog {
                        get(o, property::UNITS).and_then(|v| v.first()).and_then(Value::as_u32).and_then(unit_symbol)
                    } else {
                        None
                    },
                    writable: commandable,
                    min: if kind == Kind::Analog { number(o, property::MIN_PRES_VALUE) } else { None },
                    max: if kind == Kind::Analog { number(o, property::MAX_PRES_VALUE) } else { None },
                    states,
                }
            })
            .collect();
        disambiguate(&mut points);
        self.points = Some(points);
        Ok(self.points.as_deref().unwrap_or_default())
    }

    pub fn points_json(&mut self) -> Result<String, Error> {
        let points = self.load_points()?;
        Ok(Json::Array(points.iter().map(Point::to_json).collect()).to_string())
    }

    /// The point list, loading it if `points` was never called.
    fn loaded(&mut self) -> Result<&[Point], Error> {
        if self.points.is_none() {
            self.load_points()?;
        }
        Ok(self.points.as_deref().unwrap_or_default())
    }

    fn point(&mut self, index: u32) -> Result<Point, Error> {
        let points = self.loaded()?;
        points.get(index as usize).cloned().ok_or_else(|| {
            Error::new(STATUS_INVALID, format!("no point {index} (the device has {} points)", points.len()))
        })
    }

    /// Reads present value and status flags of `indexes` into `out`.
    pub fn read(&mut self, indexes: &[u32], out: &mut [Sample]) -> Result<(), Error> {
        let points = self.loaded()?.to_vec();
        if let Some(&bad) = indexes.iter().find(|&&i| i as usize >= points.len()) {
            return Err(Error::new(STATUS_INVALID, format!("no point {bad} (the device has {} points)", points.len())));
        }
        let mut refs = Vec::with_capacity(indexes.len() * 2);
        for &i in indexes {
            let o = points[i as usize].object;
            if !refs.iter().any(|(x, _)| *x == o) {
                refs.push((o, PropRef::new(property::PRESENT_VALUE)));
                refs.push((o, PropRef::new(property::STATUS_FLAGS)));
            }
        }
        let answers = self.read_many(&refs).map_err(|e| request_error("reading present values", &e))?;
        for (sample, &i) in out.iter_mut().zip(indexes) {
            let p = &points[i as usize];
            let pv = answers.get(&(p.object, property::PRESENT_VALUE, None));
            let flags =
                answers.get(&(p.object, property::STATUS_FLAGS, None)).and_then(|r| r.as_ref().ok()).and_then(|v| {
                    match v.first() {
                        Some(Value::BitString(b)) => Some(b.clone()),
                        _ => None,
                    }
                });
            *sample = match pv {
                Some(Ok(v)) => match v.first().and_then(|x| p.kind.sample_value(x)) {
                    Some(value) => Sample::new(i, value, quality(flags.as_deref())),
                    None => Sample::new(i, f64::NAN, QUALITY_BAD),
                },
                _ => Sample::new(i, f64::NAN, QUALITY_BAD_CONFIG_ERROR),
            };
        }
        Ok(())
    }

    /// Writes the present value of a point at `priority` (`None` value: relinquish, NULL).
    pub fn write(&mut self, index: u32, value: Option<f64>, priority: u8) -> Result<(), Error> {
        if !(1..=16).contains(&priority) {
            return Err(Error::new(STATUS_INVALID, format!("priority {priority} is not in 1 ..= 16")));
        }
        let p = self.point(index)?;
        if !p.writable {
            return Err(Error::new(
                STATUS_UNSUPPORTED,
                format!("point {:?} is read-only (it has no priority array)", p.name),
            ));
        }
        let v = match value {
            Some(x) => {
                p.kind.write_value(x).map_err(|m| Error::new(STATUS_INVALID, format!("point {:?}: {m}", p.name)))?
            }
            None => Value::Null,
        };
        self.write_property(p.object, property::PRESENT_VALUE, &v, Some(priority))
            .map_err(|e| Error::new(e.status, format!("writing {:?}: {}", p.name, e.message)))
    }

    /// WriteProperty of any value: a refusal is `STATUS_DEVICE` naming the BACnet error class and
    /// code (or the reject/abort reason), no answer `STATUS_UNREACHABLE`.
    pub fn write_property(
        &mut self,
        object: ObjectId,
        prop: u32,
        value: &Value,
        priority: Option<u8>,
    ) -> Result<(), Error> {
        let data = write_property(object, prop, None, value, priority);
        match self.client.confirmed(confirmed::WRITE_PROPERTY, &data, &mut |_, _, _| {}) {
            Ok(_) => Ok(()),
            Err(RequestError::Error(pair)) => Err(Error::new(
                STATUS_DEVICE,
                format!("the device refused it: {}/{}", error_class_name(pair.class), error_code_name(pair.code)),
            )),
            Err(e) => Err(Error::new(status_of(&e), e.to_string())),
        }
    }

    /// Subscribes to changes of value of `indexes`.
    pub fn subscribe(&mut self, indexes: &[u32], sink: cov::Sink) -> Result<(), Error> {
        if !self.cfg.cov {
            return Err(Error::new(STATUS_UNSUPPORTED, "COV subscriptions are turned off (cov = false)"));
        }
        let points = self.loaded()?.to_vec();
        let mut targets: Vec<cov::Target> = Vec::new();
        for &i in indexes {
            let p = points.get(i as usize).ok_or_else(|| Error::new(STATUS_INVALID, format!("no point {i}")))?;
            match targets.iter_mut().find(|t| t.object == p.object) {
                Some(t) => t.points.push(i),
                None => targets.push(cov::Target { object: p.object, kind: p.kind, points: vec![i] }),
            }
        }
        // A new subscription replaces the last one (its thread stops and cancels).
        self.cov = None;
        self.cov = Some(cov::Worker::start(&self.cfg, targets, sink)?);
        Ok(())
    }

    pub fn health(&self) -> String {
        let s = &self.client.stats;
        let mut h = json!({
            "connected": s.connected.unwrap_or(false),
            "requests": s.requests,
            "answered": s.answered,
            "timeouts": s.timeouts,
            "failures": s.failures,
            "segmented_answers": s.segmented_answers,
            "last_error": s.last_error,
            "read_property_multiple": self.rpm,
            "max_apdu": self.apdu_budget(),
            "segmentation": self.remote_segments,
            "points": self.points.as_ref().map(Vec::len),
        });
        if let Some(c) = &self.cov {
            h["cov"] = c.health();
        }
        h.to_string()
    }
}

/// Groups consecutive references to one object into RPM access specifications.
fn group(refs: &[(ObjectId, PropRef)]) -> Vec<(ObjectId, Vec<PropRef>)> {
    let mut out: Vec<(ObjectId, Vec<PropRef>)> = Vec::new();
    for (o, p) in refs {
        match out.last_mut() {
            Some((last, props)) if last == o => props.push(*p),
            _ => out.push((*o, vec![*p])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(max_apdu: usize, segments: bool) -> Session {
        let cfg = Config::parse(br#"{"ip_address": "127.0.0.1", "device_instance": 1, "local_address": "127.0.0.1"}"#)
            .unwrap();
        let mut s = Session::open(cfg).unwrap();
        s.remote_apdu = Some(max_apdu);
        s.remote_segments = segments;
        s
    }

    #[test]
    fn batches_fit_the_devices_max_apdu() {
        let refs: Vec<(ObjectId, PropRef)> = (0..200u32)
            .flat_map(|i| {
                [
                    (ObjectId::new(0, i), PropRef::new(property::PRESENT_VALUE)),
                    (ObjectId::new(0, i), PropRef::new(property::STATUS_FLAGS)),
                ]
            })
            .collect();
        for max in [50, 128, 206, 480, 1024, 1476] {
            let s = session(max, false);
            let batches = s.batches(&refs);
            assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), refs.len());
            for b in &batches {
                let request = read_property_multiple(&group(b)).len() + REQUEST_HEADER;
                assert!(request <= max || b.len() == 1, "max {max}: request of {request} bytes");
                // The worst answer per object: object id and list (7), present value as a DOUBLE
                // (pid 2, opening/closing 2, 10) and status flags (2 + 2 + 4).
                let objects = group(b).len();
                assert!(objects * 29 + ACK_HEADER <= max.max(29 + ACK_HEADER), "max {max}: {objects} objects");
            }
            if max >= 480 {
                assert!(batches.len() < refs.len() / 2, "max {max}: batches of a useful size");
            }
        }
    }
}
