//! Enumerations of ASHRAE 135 clause 21 this client names: object types, property identifiers,
//! engineering units, error classes and codes, reject and abort reasons.

/// Object types (BACnetObjectType), the ones named here.
pub mod object_type {
    pub const ANALOG_INPUT: u16 = 0;
    pub const ANALOG_OUTPUT: u16 = 1;
    pub const ANALOG_VALUE: u16 = 2;
    pub const BINARY_INPUT: u16 = 3;
    pub const BINARY_OUTPUT: u16 = 4;
    pub const BINARY_VALUE: u16 = 5;
    pub const DEVICE: u16 = 8;
    pub const MULTI_STATE_INPUT: u16 = 13;
    pub const MULTI_STATE_OUTPUT: u16 = 14;
    pub const MULTI_STATE_VALUE: u16 = 19;
}

const OBJECT_TYPE_NAMES: [&str; 66] = [
    "analog-input",
    "analog-output",
    "analog-value",
    "binary-input",
    "binary-output",
    "binary-value",
    "calendar",
    "command",
    "device",
    "event-enrollment",
    "file",
    "group",
    "loop",
    "multi-state-input",
    "multi-state-output",
    "notification-class",
    "program",
    "schedule",
    "averaging",
    "multi-state-value",
    "trend-log",
    "life-safety-point",
    "life-safety-zone",
    "accumulator",
    "pulse-converter",
    "event-log",
    "global-group",
    "trend-log-multiple",
    "load-control",
    "structured-view",
    "access-door",
    "timer",
    "access-credential",
    "access-point",
    "access-rights",
    "access-user",
    "access-zone",
    "credential-data-input",
    "network-security",
    "bitstring-value",
    "characterstring-value",
    "date-pattern-value",
    "date-value",
    "datetime-pattern-value",
    "datetime-value",
    "integer-value",
    "large-analog-value",
    "octetstring-value",
    "positive-integer-value",
    "time-pattern-value",
    "time-value",
    "notification-forwarder",
    "alert-enrollment",
    "channel",
    "lighting-output",
    "binary-lighting-output",
    "network-port",
    "elevator-group",
    "escalator",
    "lift",
    "staging",
    "audit-log",
    "audit-reporter",
    "color",
    "color-temperature",
    "",
];

/// The standard name of an object type ("analog-input"), or `None` for a proprietary or unknown one.
pub fn object_type_name(kind: u16) -> Option<&'static str> {
    OBJECT_TYPE_NAMES.get(usize::from(kind)).copied().filter(|n| !n.is_empty())
}

/// The object type named `name` ("analog-input"), or a number ("130").
pub fn object_type_from_name(name: &str) -> Option<u16> {
    OBJECT_TYPE_NAMES
        .iter()
        .position(|n| !n.is_empty() && *n == name)
        .map(|p| p as u16)
        .or_else(|| name.parse::<u16>().ok().filter(|&k| k < 1024))
}

/// Property identifiers (BACnetPropertyIdentifier), the ones this client reads or writes.
pub mod property {
    pub const ACTIVE_TEXT: u32 = 4;
    pub const DESCRIPTION: u32 = 28;
    pub const INACTIVE_TEXT: u32 = 46;
    pub const MAX_APDU_LENGTH_ACCEPTED: u32 = 62;
    pub const MAX_PRES_VALUE: u32 = 65;
    pub const MIN_PRES_VALUE: u32 = 69;
    pub const MODEL_NAME: u32 = 70;
    pub const NUMBER_OF_STATES: u32 = 74;
    pub const OBJECT_IDENTIFIER: u32 = 75;
    pub const OBJECT_LIST: u32 = 76;
    pub const OBJECT_NAME: u32 = 77;
    pub const OBJECT_TYPE: u32 = 79;
    pub const OUT_OF_SERVICE: u32 = 81;
    pub const PRESENT_VALUE: u32 = 85;
    pub const PRIORITY_ARRAY: u32 = 87;
    pub const PROTOCOL_SERVICES_SUPPORTED: u32 = 97;
    pub const RELINQUISH_DEFAULT: u32 = 104;
    pub const SEGMENTATION_SUPPORTED: u32 = 107;
    pub const STATE_TEXT: u32 = 110;
    pub const STATUS_FLAGS: u32 = 111;
    pub const UNITS: u32 = 117;
    pub const VENDOR_IDENTIFIER: u32 = 120;
    pub const VENDOR_NAME: u32 = 121;
}

/// BACnetSegmentation.
pub mod segmentation {
    pub const BOTH: u32 = 0;
    pub const TRANSMIT: u32 = 1;
    pub const RECEIVE: u32 = 2;
    pub const NONE: u32 = 3;
}

/// The unit string of a BACnetEngineeringUnits value, for the common building-automation units;
/// `None` for "no-units" (95) and for units not in the table.
pub fn unit_symbol(units: u32) -> Option<&'static str> {
    Some(match units {
        0 => "m²",
        1 => "ft²",
        2 => "mA",
        3 => "A",
        4 => "Ω",
        5 => "V",
        6 => "kV",
        7 => "MV",
        8 => "VA",
        9 => "kVA",
        10 => "MVA",
        11 => "var",
        12 => "kvar",
        13 => "Mvar",
        14 => "°",
        15 => "PF",
        16 => "J",
        17 => "kJ",
        18 => "Wh",
        19 => "kWh",
        20 => "BTU",
        21 => "thm",
        22 => "ton·h",
        23 => "J/kg",
        24 => "BTU/lb",
        27 => "Hz",
        28 => "g/kg",
        29 => "%RH",
        30 => "mm",
        31 => "m",
        32 => "in",
        33 => "ft",
        34 => "W/ft²",
        35 => "W/m²",
        36 => "lm",
        37 => "lx",
        38 => "fc",
        39 => "kg",
        40 => "lb",
        41 => "ton",
        42 => "kg/s",
        43 => "kg/min",
        44 => "kg/h",
        47 => "W",
        48 => "kW",
        49 => "MW",
        50 => "BTU/h",
        51 => "hp",
        52 => "TR",
        53 => "Pa",
        54 => "kPa",
        55 => "bar",
        56 => "psi",
        57 => "cmH₂O",
        58 => "inH₂O",
        59 => "mmHg",
        60 => "cmHg",
        61 => "inHg",
        62 => "°C",
        63 => "K",
        64 => "°F",
        65 => "°C·d",
        66 => "°F·d",
        67 => "a",
        68 => "mo",
        69 => "wk",
        70 => "d",
        71 => "h",
        72 => "min",
        73 => "s",
        74 => "m/s",
        75 => "km/h",
        76 => "ft/s",
        77 => "ft/min",
        78 => "mph",
        79 => "ft³",
        80 => "m³",
        81 => "imp gal",
        82 => "l",
        83 => "gal",
        84 => "cfm",
        85 => "m³/s",
        86 => "imp gal/min",
        87 => "l/s",
        88 => "l/min",
        89 => "gpm",
        90 => "°",
        91 => "°C/h",
        92 => "°C/min",
        96 => "ppm",
        97 => "ppb",
        98 => "%",
        99 => "%/s",
        100 => "/min",
        101 => "/s",
        104 => "rpm",
        120 => "Δ°F",
        121 => "ΔK",
        122 => "kΩ",
        123 => "MΩ",
        124 => "mV",
        129 => "kHz",
        130 => "MHz",
        131 => "/h",
        132 => "mW",
        133 => "hPa",
        134 => "mbar",
        135 => "m³/h",
        136 => "l/h",
        146 => "MWh",
        147 => "kBTU",
        148 => "MBTU",
        157 => "kBTU/h",
        158 => "cs",
        159 => "ms",
        165 => "m³/min",
        191 => "ft³/h",
        192 => "gal/h",
        206 => "mmH₂O",
        218 => "mg/m³",
        219 => "µg/m³",
        232 => "dBA",
        234 => "pH",
        _ => return None,
    })
}

/// BACnetErrorClass names.
pub fn error_class_name(class: u32) -> &'static str {
    ["device", "object", "property", "resources", "security", "services", "vt", "communication"]
        .get(class as usize)
        .copied()
        .unwrap_or("proprietary")
}

const ERROR_CODE_NAMES: [&str; 51] = [
    "other",
    "authentication-failed",
    "configuration-in-progress",
    "device-busy",
    "dynamic-creation-not-supported",
    "file-access-denied",
    "incompatible-security-levels",
    "inconsistent-parameters",
    "inconsistent-selection-criterion",
    "invalid-data-type",
    "invalid-file-access-method",
    "invalid-file-start-position",
    "invalid-operator-name",
    "invalid-parameter-data-type",
    "invalid-time-stamp",
    "key-generation-error",
    "missing-required-parameter",
    "no-objects-of-specified-type",
    "no-space-for-object",
    "no-space-to-add-list-element",
    "no-space-to-write-property",
    "no-vt-sessions-available",
    "property-is-not-a-list",
    "object-deletion-not-permitted",
    "object-identifier-already-exists",
    "operational-problem",
    "password-failure",
    "read-access-denied",
    "security-not-supported",
    "service-request-denied",
    "timeout",
    "unknown-object",
    "unknown-property",
    "",
    "unknown-vt-class",
    "unknown-vt-session",
    "unsupported-object-type",
    "value-out-of-range",
    "vt-session-already-closed",
    "vt-session-termination-failure",
    "write-access-denied",
    "character-set-not-supported",
    "invalid-array-index",
    "cov-subscription-failed",
    "not-cov-property",
    "optional-functionality-not-supported",
    "invalid-configuration-data",
    "datatype-not-supported",
    "duplicate-name",
    "duplicate-object-id",
    "property-is-not-an-array",
];

/// BACnetErrorCode names (the codes up to 50, and the "unknown" ones past them).
pub fn error_code_name(code: u32) -> String {
    let known = match code {
        70 => "unknown-device",
        71 => "unknown-route",
        72 => "value-not-initialized",
        79 => "unknown-subscription",
        80 => "parameter-out-of-range",
        82 => "busy",
        83 => "communication-disabled",
        _ => ERROR_CODE_NAMES.get(code as usize).copied().unwrap_or(""),
    };
    if known.is_empty() { format!("error-code-{code}") } else { known.to_owned() }
}

/// Error code values this client reacts to.
pub mod error_code {
    pub const SERVICE_REQUEST_DENIED: u32 = 29;
    pub const UNKNOWN_OBJECT: u32 = 31;
    pub const UNKNOWN_PROPERTY: u32 = 32;
    pub const INVALID_ARRAY_INDEX: u32 = 42;
    pub const OPTIONAL_FUNCTIONALITY_NOT_SUPPORTED: u32 = 45;
    pub const PROPERTY_IS_NOT_AN_ARRAY: u32 = 50;
}

/// Error class values.
pub mod error_class {
    pub const SERVICES: u32 = 5;
}

/// BACnetRejectReason names.
pub fn reject_reason_name(reason: u8) -> &'static str {
    [
        "other",
        "buffer-overflow",
        "inconsistent-parameters",
        "invalid-parameter-data-type",
        "invalid-tag",
        "missing-required-parameter",
        "parameter-out-of-range",
        "too-many-arguments",
        "undefined-enumeration",
        "unrecognized-service",
    ]
    .get(usize::from(reason))
    .copied()
    .unwrap_or("proprietary")
}

/// BACnetAbortReason names.
pub fn abort_reason_name(reason: u8) -> &'static str {
    [
        "other",
        "buffer-overflow",
        "invalid-apdu-in-this-state",
        "preempted-by-higher-priority-task",
        "segmentation-not-supported",
        "security-error",
        "insufficient-security",
        "window-size-out-of-range",
        "application-exceeded-reply-time",
        "out-of-resources",
        "tsm-timeout",
        "apdu-too-long",
    ]
    .get(usize::from(reason))
    .copied()
    .unwrap_or("proprietary")
}

/// Reject reasons this client reacts to.
pub mod reject_reason {
    pub const BUFFER_OVERFLOW: u8 = 1;
    pub const UNRECOGNIZED_SERVICE: u8 = 9;
}

/// Abort reasons this client reacts to.
pub mod abort_reason {
    pub const BUFFER_OVERFLOW: u8 = 1;
    pub const SEGMENTATION_NOT_SUPPORTED: u8 = 4;
    pub const APDU_TOO_LONG: u8 = 11;
}
