//! The device configuration (`describe`, `check_config`, `open`) and the discovery request.

use serde_json::{Map, Value as Json, json};
use std::net::Ipv4Addr;
use std::time::Duration;
use t3_plugin_abi::export::Error;

/// The largest device instance a device may have (4194303 is the wildcard).
pub const MAX_DEVICE_INSTANCE: u32 = 4_194_302;

/// One configuration key: name, JSON type, required, default, description.
struct Key {
    name: &'static str,
    kind: &'static str,
    required: bool,
    default: Json,
    description: &'static str,
}

fn keys() -> Vec<Key> {
    let k = |name, kind, required, default, description| Key { name, kind, required, default, description };
    vec![
        k("ip_address", "string", true, Json::Null, "IPv4 address of the BACnet/IP device (a dotted quad)."),
        k(
            "port",
            "integer",
            false,
            json!(47808),
            "UDP port of the device (BACnet/IP's 47808, 0xBAC0, unless the device uses another).",
        ),
        k(
            "device_instance",
            "integer",
            true,
            Json::Null,
            "Instance number of the device object (0 ..= 4194302), as its I-Am announces it.",
        ),
        k(
            "local_address",
            "string",
            false,
            json!("0.0.0.0"),
            "Local IPv4 address to bind the client's UDP sockets to (0.0.0.0: any interface).",
        ),
        k(
            "local_port",
            "integer",
            false,
            json!(0),
            "Local UDP port of the request socket (0: any free port; some devices only answer 47808).",
        ),
        k(
            "use_rpm",
            "boolean",
            false,
            json!(true),
            "Read several properties per request with ReadPropertyMultiple; false forces ReadProperty. A device that rejects ReadPropertyMultiple is read with ReadProperty anyway.",
        ),
        k(
            "cov",
            "boolean",
            false,
            json!(true),
            "Subscribe to changes of value (SubscribeCOV) where the device supports it; other points are polled.",
        ),
        k(
            "cov_lifetime_secs",
            "integer",
            false,
            json!(300),
            "Lifetime of each COV subscription in seconds (1 ..= 86400); the plugin renews them before they expire.",
        ),
        k(
            "cov_confirmed",
            "boolean",
            false,
            json!(false),
            "Ask for confirmed COV notifications (answered with SimpleACK) instead of unconfirmed ones.",
        ),
        k(
            "max_apdu",
            "integer",
            false,
            Json::Null,
            "Largest APDU the device accepts (50 ..= 1476), overriding the device's max-apdu-length-accepted; limits the size of ReadPropertyMultiple requests.",
        ),
        k(
            "timeout_ms",
            "integer",
            false,
            json!(3000),
            "Time to wait for an answer to one request, in milliseconds (10 ..= 60000).",
        ),
        k("retries", "integer", false, json!(2), "How often a request that got no answer is sent again (0 ..= 10)."),
        k("name", "string", false, Json::Null, "The device's name in t3000 (informational)."),
    ]
}

/// The JSON of `describe`.
pub fn describe() -> String {
    let keys: Vec<Json> = keys()
        .into_iter()
        .map(|k| {
            json!({"name": k.name, "type": k.kind, "required": k.required, "default": k.default, "description": k.description})
        })
        .collect();
    json!({
        "title": "BACnet/IP",
        "description": "BACnet/IP devices (ASHRAE 135 Annex J): the analog, binary and multi-state input, output and value objects of a device, read with ReadPropertyMultiple (or ReadProperty), commanded with WriteProperty at a priority, and followed with SubscribeCOV. Discovery sends Who-Is.",
        "discovery": true,
        "writes": true,
        "keys": keys,
    })
    .to_string()
}

/// A device's configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub ip_address: Ipv4Addr,
    pub port: u16,
    pub device_instance: u32,
    pub local_address: Ipv4Addr,
    pub local_port: u16,
    pub use_rpm: bool,
    pub cov: bool,
    pub cov_lifetime_secs: u32,
    pub cov_confirmed: bool,
    pub max_apdu: Option<usize>,
    pub timeout: Duration,
    pub retries: u32,
    pub name: Option<String>,
}

fn object(bytes: &[u8]) -> Result<Map<String, Json>, Error> {
    match serde_json::from_slice::<Json>(bytes) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(_) => Err(Error::config("", "the configuration must be a JSON object")),
        Err(e) => Err(Error::config("", &format!("the configuration is not valid JSON: {e}"))),
    }
}

/// The value of `key` unless absent or null.
fn get<'a>(m: &'a Map<String, Json>, key: &str) -> Option<&'a Json> {
    m.get(key).filter(|v| !v.is_null())
}

fn integer(m: &Map<String, Json>, key: &str, min: i64, max: i64) -> Result<Option<i64>, Error> {
    match get(m, key) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
            Some(i) => Err(Error::config(key, &format!("{i} is out of range ({min} ..= {max})"))),
            None => Err(Error::config(key, &format!("must be an integer ({min} ..= {max}), not {v}"))),
        },
    }
}

fn boolean(m: &Map<String, Json>, key: &str, default: bool) -> Result<bool, Error> {
    match get(m, key) {
        None => Ok(default),
        Some(Json::Bool(b)) => Ok(*b),
        Some(v) => Err(Error::config(key, &format!("must be true or false, not {v}"))),
    }
}

fn ipv4(m: &Map<String, Json>, key: &str) -> Result<Option<Ipv4Addr>, Error> {
    match get(m, key) {
        None => Ok(None),
        Some(Json::String(s)) => s
            .trim()
            .parse::<Ipv4Addr>()
            .map(Some)
            .map_err(|_| Error::config(key, &format!("{s:?} is not an IPv4 address (such as 192.168.1.20)"))),
        Some(v) => Err(Error::config(key, &format!("must be a string holding an IPv4 address, not {v}"))),
    }
}

impl Config {
    /// Parses and validates a configuration object (no I/O).
    pub fn parse(bytes: &[u8]) -> Result<Config, Error> {
        let m = object(bytes)?;
        let known = keys();
        if let Some(unknown) = m.keys().find(|k| !known.iter().any(|key| key.name == k.as_str())) {
            let names: Vec<&str> = known.iter().map(|k| k.name).collect();
            return Err(Error::config(
                unknown,
                &format!("unknown key for bacnet-ip (known keys: {})", names.join(", ")),
            ));
        }
        let ip_address = ipv4(&m, "ip_address")?.ok_or_else(|| Error::config("ip_address", "is required"))?;
        if ip_address.is_unspecified() || ip_address.is_multicast() {
            return Err(Error::config("ip_address", &format!("{ip_address} is not a device address")));
        }
        let device_instance = integer(&m, "device_instance", 0, i64::from(MAX_DEVICE_INSTANCE))?
            .ok_or_else(|| Error::config("device_instance", "is required"))? as u32;
        let name = match get(&m, "name") {
            None => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(v) => Err(Error::config("name", &format!("must be a string, not {v}")))?,
        };
        Ok(Config {
            ip_address,
            port: integer(&m, "port", 1, 65535)?.unwrap_or(47808) as u16,
            device_instance,
            local_address: ipv4(&m, "local_address")?.unwrap_or(Ipv4Addr::UNSPECIFIED),
            local_port: integer(&m, "local_port", 0, 65535)?.unwrap_or(0) as u16,
            use_rpm: boolean(&m, "use_rpm", true)?,
            cov: boolean(&m, "cov", true)?,
            cov_lifetime_secs: integer(&m, "cov_lifetime_secs", 1, 86400)?.unwrap_or(300) as u32,
            cov_confirmed: boolean(&m, "cov_confirmed", false)?,
            max_apdu: integer(&m, "max_apdu", 50, 1476)?.map(|v| v as usize),
            timeout: Duration::from_millis(integer(&m, "timeout_ms", 10, 60_000)?.unwrap_or(3000) as u64),
            retries: integer(&m, "retries", 0, 10)?.unwrap_or(2) as u32,
            name,
        })
    }
}

/// A discovery request: `{port, broadcast, low, high, timeout_ms, local_port}`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoverRequest {
    pub port: u16,
    pub broadcast: Ipv4Addr,
    pub range: Option<(u32, u32)>,
    pub timeout: Duration,
    pub local_port: u16,
}

impl DiscoverRequest {
    pub fn parse(bytes: &[u8]) -> Result<DiscoverRequest, Error> {
        let m = if bytes.iter().all(u8::is_ascii_whitespace) { Map::new() } else { object(bytes)? };
        const KNOWN: [&str; 6] = ["port", "broadcast", "low", "high", "timeout_ms", "local_port"];
        if let Some(unknown) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Error::config(unknown, &format!("unknown discovery option (known: {})", KNOWN.join(", "))));
        }
        let max = i64::from(MAX_DEVICE_INSTANCE) + 1;
        let low = integer(&m, "low", 0, max)?;
        let high = integer(&m, "high", 0, max)?;
        let range = match (low, high) {
            (None, None) => None,
            (Some(l), Some(h)) if l <= h => Some((l as u32, h as u32)),
            (Some(_), Some(_)) => return Err(Error::config("low", "must not be greater than high")),
            (Some(l), None) => Some((l as u32, max as u32)),
            (None, Some(h)) => Some((0, h as u32)),
        };
        Ok(DiscoverRequest {
            port: integer(&m, "port", 1, 65535)?.unwrap_or(47808) as u16,
            broadcast: ipv4(&m, "broadcast")?.unwrap_or(Ipv4Addr::BROADCAST),
            range,
            timeout: Duration::from_millis(integer(&m, "timeout_ms", 10, 60_000)?.unwrap_or(3000) as u64),
            local_port: integer(&m, "local_port", 0, 65535)?.unwrap_or(0) as u16,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_plugin_abi::STATUS_CONFIG;

    fn key_of(e: &Error) -> String {
        assert_eq!(e.status, STATUS_CONFIG);
        let v: Json = serde_json::from_str(&e.message).unwrap();
        v["key"].as_str().unwrap().to_owned()
    }

    #[test]
    fn a_minimal_configuration_takes_the_defaults() {
        let c = Config::parse(br#"{"ip_address": "10.0.0.5", "device_instance": 1234}"#).unwrap();
        assert_eq!(c.ip_address, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!((c.port, c.local_port, c.device_instance), (47808, 0, 1234));
        assert!(c.use_rpm && c.cov && !c.cov_confirmed);
        assert_eq!(c.cov_lifetime_secs, 300);
        assert_eq!(c.max_apdu, None);
        assert_eq!(c.timeout, Duration::from_millis(3000));
        // The keys the host adds are accepted, and nulls mean "the default".
        let c = Config::parse(
            br#"{"ip_address": "10.0.0.5", "device_instance": 0, "name": "AHU-1", "port": 47809,
                 "timeout_ms": 500, "retries": 0, "max_apdu": null}"#,
        )
        .unwrap();
        assert_eq!((c.port, c.retries, c.timeout), (47809, 0, Duration::from_millis(500)));
    }

    #[test]
    fn errors_name_the_key() {
        let cases: [(&[u8], &str); 14] = [
            (br#"{"device_instance": 1}"#, "ip_address"),
            (br#"{"ip_address": "10.0.0.5"}"#, "device_instance"),
            (br#"{"ip_address": "host", "device_instance": 1}"#, "ip_address"),
            (br#"{"ip_address": 5, "device_instance": 1}"#, "ip_address"),
            (br#"{"ip_address": "0.0.0.0", "device_instance": 1}"#, "ip_address"),
            (br#"{"ip_address": "10.0.0.5", "device_instance": 4194303}"#, "device_instance"),
            (br#"{"ip_address": "10.0.0.5", "device_instance": 1.5}"#, "device_instance"),
            (br#"{"ip_address": "10.0.0.5", "device_instance": 1, "port": 0}"#, "port"),
            (br#"{"ip_address": "10.0.0.5", "device_instance": 1, "port": "47808"}"#, "port"),
            (br#"{"ip_address": "10.0.0.5", "device_instance": 1, "use_rpm": "yes"}"#, "use_rpm"),
            (br#"{"ip_address": "10.0.0.5", "device_instance": 1, "cov_lifetime_secs": 0}"#, "cov_lifetime_secs"),
            (br#"{"ip_address": "10.0.0.5", "device_instance": 1, "max_apdu": 2000}"#, "max_apdu"),
            (br#"{"ip_address": "10.0.0.5", "device_instance": 1, "unit_id": 3}"#, "unit_id"),
            (br#"{"ip_address": "10.0.0.5", "device_instance": 1, "local_address": "::1"}"#, "local_address"),
        ];
        for (json, key) in cases {
            let e = Config::parse(json).unwrap_err();
            assert_eq!(key_of(&e), key, "{}", String::from_utf8_lossy(json));
        }
        assert!(Config::parse(b"[1]").is_err());
        assert!(Config::parse(b"{").is_err());
    }

    #[test]
    fn describe_lists_every_key_with_a_description() {
        let d: Json = serde_json::from_str(&describe()).unwrap();
        assert_eq!(d["title"], "BACnet/IP");
        assert_eq!(d["discovery"], true);
        assert_eq!(d["writes"], true);
        let keys = d["keys"].as_array().unwrap();
        for name in
            ["ip_address", "port", "device_instance", "local_port", "use_rpm", "cov", "cov_lifetime_secs", "max_apdu"]
        {
            let k = keys.iter().find(|k| k["name"] == name).unwrap_or_else(|| panic!("no key {name}"));
            assert!(!k["description"].as_str().unwrap().is_empty());
            assert!(["string", "integer", "number", "boolean", "array"].contains(&k["type"].as_str().unwrap()));
        }
        let port = keys.iter().find(|k| k["name"] == "port").unwrap();
        assert_eq!(port["default"], 47808);
        assert_eq!(keys.iter().find(|k| k["name"] == "ip_address").unwrap()["required"], true);
    }

    #[test]
    fn discovery_requests() {
        let r = DiscoverRequest::parse(b"").unwrap();
        assert_eq!((r.port, r.broadcast, r.range), (47808, Ipv4Addr::BROADCAST, None));
        let r = DiscoverRequest::parse(
            br#"{"port": 47900, "broadcast": "127.0.0.1", "low": 5, "high": 9, "timeout_ms": 200}"#,
        )
        .unwrap();
        assert_eq!((r.port, r.range, r.timeout), (47900, Some((5, 9)), Duration::from_millis(200)));
        assert_eq!(key_of(&DiscoverRequest::parse(br#"{"low": 9, "high": 5}"#).unwrap_err()), "low");
        assert_eq!(key_of(&DiscoverRequest::parse(br#"{"subnet": 1}"#).unwrap_err()), "subnet");
        assert_eq!(key_of(&DiscoverRequest::parse(br#"{"broadcast": "x"}"#).unwrap_err()), "broadcast");
    }
}
