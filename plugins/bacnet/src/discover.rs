//! Discovery: Who-Is (with an optional instance range) to a broadcast or unicast address, I-Ams
//! collected for the request's timeout, then each device's name, model and vendor.

use crate::client::{Client, RequestError};
use crate::codec::enums::{object_type, property};
use crate::codec::pdu::Apdu;
use crate::codec::services::{
    IAm, PropRef, confirmed, decode_i_am, decode_read_property_ack, decode_read_property_multiple_ack, read_property,
    read_property_multiple, unconfirmed, who_is,
};
use crate::codec::tags::{ObjectId, Value};
use crate::config::DiscoverRequest;
use serde_json::{Value as Json, json};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;
use t3_plugin_abi::STATUS_UNREACHABLE;
use t3_plugin_abi::export::Error;

/// The longest wait for one property of a discovered device.
const READ_TIMEOUT: Duration = Duration::from_millis(1000);

/// Whether `ip` looks like a broadcast address (all ones, or a host part of all ones in a /24).
fn is_broadcast(ip: Ipv4Addr) -> bool {
    ip.is_broadcast() || ip.octets()[3] == 255
}

pub fn discover(request: &[u8]) -> Result<String, Error> {
    let req = DiscoverRequest::parse(request)?;
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, req.local_port))
        .map_err(|e| Error::config("local_port", &format!("cannot bind UDP port {}: {e}", req.local_port)))?;
    socket.set_broadcast(true).map_err(|e| Error::new(STATUS_UNREACHABLE, format!("cannot broadcast: {e}")))?;
    let target = SocketAddrV4::new(req.broadcast, req.port);
    let mut client = Client::new(socket, target, READ_TIMEOUT.min(req.timeout), 1);
    let broadcast = is_broadcast(req.broadcast);
    let data = who_is(req.range);
    client
        .send_to(&Apdu::UnconfirmedRequest { service: unconfirmed::WHO_IS, data: &data }, target, broadcast)
        .map_err(|e| Error::new(STATUS_UNREACHABLE, format!("cannot send Who-Is to {target}: {e}")))?;
    let mut found: Vec<(SocketAddrV4, IAm)> = Vec::new();
    client
        .poll(req.timeout, &mut |_, frame, from| {
            let Apdu::UnconfirmedRequest { service: unconfirmed::I_AM, data } = frame.apdu else { return };
            // A device behind a router would need its network number in every request: skipped.
            if frame.source.is_some() {
                return;
            }
            let Ok(i_am) = decode_i_am(data) else { return };
            if i_am.device.kind != object_type::DEVICE {
                return;
            }
            if let Some((low, high)) = req.range
                && !(low..=high).contains(&i_am.device.instance)
            {
                return;
            }
            let addr = match (frame.forwarded_from, from) {
                (Some(a), _) => a,
                (None, SocketAddr::V4(a)) => a,
                (None, SocketAddr::V6(_)) => return,
            };
            if !found.iter().any(|(a, i)| *a == addr && i.device == i_am.device) {
                found.push((addr, i_am));
            }
        })
        .map_err(|e| Error::new(STATUS_UNREACHABLE, format!("waiting for I-Am: {e}")))?;
    let mut out = Vec::with_capacity(found.len());
    for (addr, i_am) in found {
        client.peer = addr;
        let [name, model, vendor] = device_texts(&mut client, i_am.device);
        out.push(json!({
            "name": name.unwrap_or_else(|| format!("device {}", i_am.device.instance)),
            "address": addr.to_string(),
            "model": model,
            "vendor": vendor,
            "config": {
                "ip_address": addr.ip().to_string(),
                "port": addr.port(),
                "device_instance": i_am.device.instance,
            },
        }));
    }
    Ok(Json::Array(out).to_string())
}

/// Object name, model name and vendor name of a device: one ReadPropertyMultiple, or three
/// ReadProperty when the device does not do RPM. Missing ones are `None`.
fn device_texts(client: &mut Client, device: ObjectId) -> [Option<String>; 3] {
    let props = [property::OBJECT_NAME, property::MODEL_NAME, property::VENDOR_NAME];
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let rpm = read_property_multiple(&[(device, props.iter().map(|&p| PropRef::new(p)).collect())]);
    match client.confirmed(confirmed::READ_PROPERTY_MULTIPLE, &rpm, &mut |_, _, _| {}) {
        Ok(ack) => {
            if let Ok(results) = decode_read_property_multiple_ack(&ack) {
                return props.map(|p| {
                    text(
                        results
                            .iter()
                            .find(|r| r.property == p)
                            .and_then(|r| r.value.as_ref().ok())
                            .and_then(|v| v.first()),
                    )
                });
            }
        }
        Err(RequestError::Timeout) => return [None, None, None],
        Err(_) => {}
    }
    props.map(|p| {
        let ack =
            client.confirmed(confirmed::READ_PROPERTY, &read_property(device, p, None), &mut |_, _, _| {}).ok()?;
        let (_, _, _, v) = decode_read_property_ack(&ack).ok()?;
        text(v.first())
    })
}
