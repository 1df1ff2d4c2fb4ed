//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "T3000 historian",
        description = "History, live values, exports, field devices, the building catalog and control of building \
            controllers. Every endpoint except login, /healthz, /readyz and this document needs \
            `Authorization: Bearer <token>` (POST /api/t3000/auth/login). The live-update WebSocket \
            (GET /api/t3000/ws) also takes `?ticket=`, a single-use ticket from POST /api/t3000/ws/ticket; \
            no endpoint takes a token in the URL. Every response carries `X-Request-Id`: the request's \
            own when it sent a sane one (1 to 64 letters, digits, `-`, `_`, `.`, `:`), else a new one; \
            the server's log lines of that request carry it."
    ),
    modifiers(&BearerAuth, &CommonErrors),
    security(("bearer" = [])),
    paths(
        crate::http::routes::health::healthz,
        crate::http::routes::health::readyz,
        crate::http::routes::metrics::metrics,
        crate::http::routes::auth::login,
        crate::http::routes::auth::logout,
        crate::http::routes::auth::me,
        crate::http::routes::auth::change_password,
        crate::http::routes::auth::ws_ticket,
        crate::http::routes::auth::list_users,
        crate::http::routes::auth::create_user,
        crate::http::routes::auth::update_user,
        crate::http::routes::auth::delete_user,
        crate::http::routes::auth::list_tokens,
        crate::http::routes::auth::create_token,
        crate::http::routes::auth::delete_token,
        crate::http::routes::auth::audit,
        crate::http::routes::buildings::list,
        crate::http::routes::buildings::get_one,
        crate::http::routes::buildings::create,
        crate::http::routes::buildings::update,
        crate::http::routes::buildings::delete,
        crate::http::routes::buildings::floors,
        crate::http::routes::buildings::create_floor,
        crate::http::routes::buildings::update_floor,
        crate::http::routes::buildings::delete_floor,
        crate::http::routes::floorplans::put_plan,
        crate::http::routes::floorplans::get_plan,
        crate::http::routes::floorplans::delete_plan,
        crate::http::routes::floorplans::put_points,
        crate::http::routes::buildings::rooms,
        crate::http::routes::buildings::create_room,
        crate::http::routes::buildings::update_room,
        crate::http::routes::buildings::delete_room,
        crate::http::routes::devices::list,
        crate::http::routes::devices::get_one,
        crate::http::routes::devices::create,
        crate::http::routes::devices::update,
        crate::http::routes::devices::delete,
        crate::http::routes::devices::points,
        crate::http::routes::devices::ranges,
        crate::http::routes::devices::status,
        crate::http::routes::sync::diff,
        crate::http::routes::sync::apply,
        crate::http::routes::devices::discover,
        crate::http::routes::devices::profiles,
        crate::http::routes::plugins::list,
        crate::http::routes::points::list,
        crate::http::routes::points::get_one,
        crate::http::routes::points::create,
        crate::http::routes::points::update,
        crate::http::routes::points::delete,
        crate::http::routes::points::write_value,
        crate::http::routes::points::relinquish,
        crate::http::routes::points::commands,
        crate::http::routes::points::set_mode,
        crate::http::routes::points::in_manual,
        crate::http::routes::schedules::list,
        crate::http::routes::schedules::get_one,
        crate::http::routes::schedules::create,
        crate::http::routes::schedules::update,
        crate::http::routes::schedules::delete,
        crate::http::routes::schedules::run,
        crate::http::routes::schedules::calendars,
        crate::http::routes::schedules::create_calendar,
        crate::http::routes::schedules::update_calendar,
        crate::http::routes::schedules::delete_calendar,
        crate::http::routes::alarms::list,
        crate::http::routes::alarms::history,
        crate::http::routes::alarms::rules,
        crate::http::routes::alarms::create_rule,
        crate::http::routes::alarms::update_rule,
        crate::http::routes::alarms::delete_rule,
        crate::http::routes::alarms::acknowledge,
        crate::http::routes::alerts::channels,
        crate::http::routes::alerts::deliveries,
        crate::http::routes::alerts::test,
        crate::http::routes::trendlogs::list,
        crate::http::routes::trendlogs::get_one,
        crate::http::routes::trendlogs::create,
        crate::http::routes::trendlogs::update,
        crate::http::routes::trendlogs::delete,
        crate::http::routes::programs::list,
        crate::http::routes::programs::get_one,
        crate::http::routes::programs::create,
        crate::http::routes::programs::update,
        crate::http::routes::programs::delete,
        crate::http::routes::programs::run,
        crate::http::routes::programs::enable,
        crate::http::routes::programs::disable,
        crate::http::routes::programs::check,
        crate::http::routes::import_prog::import,
        crate::http::routes::samples::post_samples,
        crate::http::routes::storage::delete_samples,
        crate::http::routes::storage::quarantine,
        crate::http::routes::storage::acknowledge,
        crate::http::routes::backup::backup,
        crate::http::routes::history::point_history,
        crate::http::routes::history::history_batch,
        crate::http::routes::history::point_latest,
        crate::http::routes::history::points_latest,
        crate::http::routes::history::sql_query,
        crate::http::routes::export::export,
        crate::http::routes::import_webview::import,
        crate::http::routes::import_webview::jobs,
        crate::http::routes::import_webview::job,
        crate::http::routes::csv::export_devices,
        crate::http::routes::csv::export_points,
        crate::http::routes::csv::import,
        crate::http::routes::config::reload,
        crate::http::ws::upgrade,
        serve,
    ),
    components(schemas(
        crate::http::error::ErrorBody,
        crate::http::error::ErrorDetail,
        crate::model::device::DevicePoint,
        crate::http::routes::alarms::RuleBody,
        crate::http::routes::schedules::CalendarBody,
        crate::http::routes::csv::SamplesImport,
        crate::http::routes::csv::ConfigImport,
        crate::model::backup::ArchiveManifest
    ))
)]
pub struct ApiDoc;

/// Declares the bearer token scheme every protected endpoint uses, and the WebSocket ticket
/// (`GET /api/t3000/ws?ticket=`, from `POST /api/t3000/ws/ticket`).
#[derive(Debug)]
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "ws_ticket",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "ticket",
                "A single-use ticket from POST /api/t3000/ws/ticket, for GET /api/t3000/ws only: it opens \
                 one connection within its `expires_in_secs`, as the token that asked for it. No path \
                 takes a bearer token in the URL.",
            ))),
        );
    }
}

/// Adds the error answers that come from the layers around the handlers rather than from the
/// handlers themselves, to every operation that can get them and does not list them already:
/// 401 (no valid token) and 403 (a role too low, as [`crate::http::access::required_role`] decides) from
/// the authorisation middleware, 400 from a path, query string or body that does not parse, and
/// 413 from a body over `server.max_body_bytes`.
#[derive(Debug)]
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use crate::http::access::required_role;
        use crate::model::user::Role;
        use axum::http::Method;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, &mut item.get),
                (Method::PUT, &mut item.put),
                (Method::POST, &mut item.post),
                (Method::DELETE, &mut item.delete),
            ];
            for (method, op) in operations {
                let Some(op) = op else { continue };
                let mut add = |status: &str, description: &str| {
                    op.responses.responses.entry(status.to_owned()).or_insert_with(|| error(description).into());
                };
                let role = required_role(&method, path);
                if role.is_some() {
                    add("401", "No valid bearer token");
                }
                if role.is_some_and(|r| r > Role::Viewer) {
                    add("403", "The token's role may not do this");
                }
                if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || op.request_body.is_some() {
                    add("400", "A path, query parameter or body that does not parse");
                }
                // A WebView database upload has no size limit (it is streamed to disk).
                if op.request_body.is_some() && !path.starts_with("/api/t3000/import/webview") {
                    add("413", "The body is over server.max_body_bytes");
                }
                // A relinquish without a body empties the operator's priority (8).
                if method == Method::POST
                    && path.ends_with("/relinquish")
                    && let Some(body) = op.request_body.as_mut()
                {
                    body.required = Some(utoipa::openapi::Required::False);
                }
            }
        }
    }
}

/// The document as served: utoipa's, with what its model cannot hold put in as JSON.
///
/// - utoipa documents u8, u16 and u32 alike as `format: int32` with `minimum: 0`, but OpenAPI's
///   int32 is signed: the document would call every point id from 2^31 on invalid. Those schemas
///   lose the format, keep `minimum: 0` and get `maximum: 4294967295` (u8 and u16 fields state
///   their own maximum). `usize` (`minimum: 0` and no format) gets `maximum: 18446744073709551615`.
/// - The schemas with `oneOf` beside `properties`, `const` or `propertyNames` (alarm rules,
///   holiday calendars, weekly schedules) come from [`crate::http::rules`] as JSON.
pub fn document() -> serde_json::Value {
    use serde_json::Value;
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                let format = m.get("format").and_then(Value::as_str).map(str::to_owned);
                let unsigned = m.get("minimum").and_then(Value::as_f64).is_some_and(|v| v >= 0.0);
                let integer = match m.get("type") {
                    Some(Value::String(t)) => t == "integer",
                    Some(Value::Array(a)) => a.iter().any(|t| t == "integer"),
                    _ => false,
                };
                if integer && unsigned && format.as_deref() == Some("int32") {
                    m.remove("format");
                    m.entry("maximum").or_insert(Value::from(u32::MAX));
                } else if integer && unsigned && format.is_none() {
                    m.entry("maximum").or_insert(Value::from(u64::MAX));
                }
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    walk(&mut v);
    let schemas = &mut v["components"]["schemas"];
    schemas["RuleBody"] = crate::http::routes::alarms::rule_body_schema();
    schemas["CalendarBody"] = crate::http::rules::calendar_body_schema();
    schemas["ScheduleBody"]["properties"]["weekly_schedule"] = crate::http::rules::weekly_schedule_schema();
    rules_across_fields(&mut v);
    v
}

/// One schema of two, told apart by `protocol` (`modbus-tcp` or `modbus-rtu`).
fn by_protocol(tcp: &str, rtu: &str, description: &str) -> serde_json::Value {
    let r = |name: &str| format!("#/components/schemas/{name}");
    serde_json::json!({
        "description": description,
        "oneOf": [{"$ref": r(tcp)}, {"$ref": r(rtu)}],
        "discriminator": {"propertyName": "protocol", "mapping": {"modbus-tcp": r(tcp), "modbus-rtu": r(rtu)}},
    })
}

/// The rules that relate fields or depend on a body's media type, which utoipa's model cannot
/// hold: stated here as JSON from [`crate::http::rules`].
fn rules_across_fields(v: &mut serde_json::Value) {
    use crate::http::rules;
    use serde_json::json;
    use t3_core::config::Protocol;
    let schemas = &mut v["components"]["schemas"];

    // Devices: what a body needs depends on its protocol.
    schemas["DeviceTcp"] = rules::device_body_schema(Protocol::ModbusTcp);
    schemas["DeviceRtu"] = rules::device_body_schema(Protocol::ModbusRtu);
    schemas["DeviceBody"] = by_protocol(
        "DeviceTcp",
        "DeviceRtu",
        "A device: the fields of a `[[devices]]` table of the configuration, plus building_id, floor_id, \
         room_id and description.",
    );
    schemas["DiscoverTcp"] = rules::discover_schema(Protocol::ModbusTcp);
    schemas["DiscoverRtu"] = rules::discover_schema(Protocol::ModbusRtu);
    schemas["DiscoverRequest"] = by_protocol("DiscoverTcp", "DiscoverRtu", "What to scan for devices.");

    // History: how the shaping fields combine.
    schemas["BatchRequest"]["oneOf"] = rules::history_modes();
    let text = schemas["BatchRequest"]["description"].as_str().unwrap_or_default().to_owned();
    schemas["BatchRequest"]["description"] = json!(format!("{text}\n\n{}", rules::HISTORY_MODES_TEXT));

    // utoipa takes bounds as f64, which cannot hold 10^17 - 1 (it rounds to 10^17): the integers.
    let epoch_us = &mut schemas["SampleIn"]["properties"]["ts"]["oneOf"][1];
    assert_eq!(epoch_us["type"], "integer", "the second form of a sample's ts is epoch microseconds");
    epoch_us["minimum"] = json!(crate::http::timeparse::EPOCH_US_RANGE.start);
    epoch_us["maximum"] = json!(crate::http::timeparse::EPOCH_US_RANGE.end - 1);

    // A sample without a value has a bad quality.
    schemas["SampleIn"]["anyOf"] = json!([
        {"required": ["value"], "properties": {"value": {"type": "number"}}},
        {"required": ["quality"], "properties": {"quality": {"maximum": rules::bad_quality_max()}}},
    ]);

    // A manual point (no device) is not polled: of its trend settings only retention applies.
    schemas["NewPoint"]["anyOf"] = json!([
        {"required": ["device_id"], "properties": {"device_id": {"type": "integer"}}},
        {"properties": {"trend": {"oneOf": [
            {"type": "null"},
            {"properties": {"interval_ms": {"type": "null"}, "deadband": {"type": "null"}, "heartbeat_secs": {"type": "null"}}},
        ]}}},
    ]);

    schemas["SqlRequest"]["properties"]["sql"]["pattern"] = json!(*rules::SQL_PATTERN);

    let paths = &mut v["paths"];
    for (path, method) in [("/api/t3000/devices", "post"), ("/api/t3000/devices/{id}", "put")] {
        paths[path][method]["requestBody"]["content"]["application/json"]["schema"] =
            json!({"$ref": "#/components/schemas/DeviceBody"});
    }
    // The history query: JSON Schema cannot relate query parameters; the text says it.
    let op = &mut paths["/api/t3000/points/{id}/history"]["get"];
    let text = op["description"].as_str().unwrap_or_default().to_owned();
    op["description"] = json!(format!("{text}\n\n{}", rules::HISTORY_MODES_TEXT).trim().to_owned());

    // Bodies that are files: images the server checks by their signature, an Arrow stream.
    let plan = &mut paths["/api/t3000/floors/{id}/plan"]["put"]["requestBody"]["content"];
    for media in ["image/png", "image/jpeg", "image/webp"] {
        plan[media]["schema"] = json!({"type": "string", "format": "binary", "contentMediaType": media,
            "description": format!("A {media} file (checked by its signature).")});
    }
    plan["image/svg+xml"]["schema"] = json!({"type": "string", "format": "binary", "contentMediaType": "image/svg+xml",
        "description": "An SVG document (UTF-8 text with an `<svg` element)."});
    let arrow = crate::http::routes::samples::ARROW_STREAM;
    paths["/api/t3000/samples"]["post"]["requestBody"]["content"][arrow]["schema"] = json!({
        "type": "string", "format": "binary", "contentMediaType": arrow,
        "description": "An Arrow IPC stream with columns point_id (UInt32), ts (Int64 epoch microseconds, or a \
            timestamp), value (Float64) and optionally quality (UInt8)."});
}

/// The name of a plugin protocol's schemas: `example-c` -> `ExampleC`.
fn schema_suffix(protocol: &str) -> String {
    protocol
        .split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// Adds the protocols of the loaded plugins to `doc` (from [`document`]): for each, a device body
/// `DevicePlugin<Name>` in `DeviceBody` and its discriminator, and for those that can look for
/// devices a scan `DiscoverPlugin<Name>` in `DiscoverRequest`. Without plugins `doc` is unchanged.
pub fn add_plugins(doc: &mut serde_json::Value, plugins: &[(&str, &t3_drivers::plugin::ProtocolInfo)]) {
    use crate::http::rules;
    use serde_json::json;
    let schemas = &mut doc["components"]["schemas"];
    for &(protocol, info) in plugins {
        let suffix = schema_suffix(protocol);
        let mut add = |union: &str, name: String, schema: serde_json::Value| {
            let r = format!("#/components/schemas/{name}");
            schemas[name.as_str()] = schema;
            if let Some(one_of) = schemas[union]["oneOf"].as_array_mut() {
                one_of.push(json!({"$ref": r}));
            }
            schemas[union]["discriminator"]["mapping"][protocol] = json!(r);
        };
        add("DeviceBody", format!("DevicePlugin{suffix}"), rules::plugin_device_body_schema(protocol, info));
        if info.discovery {
            add("DiscoverRequest", format!("DiscoverPlugin{suffix}"), rules::plugin_discover_schema(protocol, info));
        }
    }
}

/// This document (also at /api/t3000/openapi.json), with the protocols of the plugins loaded.
#[utoipa::path(get, path = "/api/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1 document")), security(()))]
pub async fn serve(
    axum::extract::State(state): axum::extract::State<crate::http::AppState>,
) -> Json<serde_json::Value> {
    static DOCUMENT: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(document);
    let mut doc = DOCUMENT.clone();
    let loaded = state.plugins.plugins();
    let plugins: Vec<_> = loaded.iter().map(|p| (p.lib.name(), &p.info)).collect();
    add_plugins(&mut doc, &plugins);
    Json(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc() -> Value {
        document()
    }

    fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
        &doc["components"]["schemas"][name]
    }

    fn param<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
        let params = doc["paths"][path][method]["parameters"].as_array().unwrap();
        &params.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{method} {path} has no {name}"))["schema"]
    }

    #[test]
    fn the_document_states_the_rules_the_validators_use() {
        use crate::http::rules::*;
        let doc = doc();
        let range = |v: &Value| (v["minimum"].as_f64().unwrap(), v["maximum"].as_f64().unwrap());
        let point = schema(&doc, "TrendSettings");
        let r = |r: std::ops::RangeInclusive<u64>| (*r.start() as f64, *r.end() as f64);
        assert_eq!(range(&point["properties"]["interval_ms"]), r(TREND_INTERVAL_MS));
        let days = RETENTION_DAYS;
        assert_eq!(range(&point["properties"]["retention_days"]), (f64::from(*days.start()), f64::from(*days.end())));
        assert_eq!(range(&schema(&doc, "WriteRequest")["properties"]["expires_in_secs"]), r(EXPIRES_IN_SECS));
        let t = TOKEN_DAYS;
        assert_eq!(
            range(&schema(&doc, "NewToken")["properties"]["expires_in_days"]),
            (f64::from(*t.start()), f64::from(*t.end()))
        );
        let tl = schema(&doc, "TrendLogBody");
        assert_eq!(range(&tl["properties"]["interval_ms"]), r(TRENDLOG_INTERVAL_MS));
        assert_eq!(tl["properties"]["point_ids"]["minItems"], *TRENDLOG_POINTS.start());
        assert_eq!(tl["properties"]["point_ids"]["maxItems"], *TRENDLOG_POINTS.end());
        // A deadband below 0 is refused; on_change is a plain flag.
        assert_eq!(tl["properties"]["deadband"]["minimum"].as_f64(), Some(0.0));
        assert!(tl["properties"]["deadband"]["maximum"].is_null());
        assert_eq!(tl["properties"]["on_change"]["type"], "boolean");
        let stored = schema(&doc, "TrendLog");
        for f in ["on_change", "deadband"] {
            assert!(stored["properties"][f].is_object(), "TrendLog.{f}");
        }
        assert!(doc["paths"]["/api/t3000/trendlogs/{id}"]["get"]["responses"]["404"].is_object());
        assert_eq!(schema(&doc, "NewProgram")["properties"]["source"]["maxLength"], PROGRAM_CHARS);
        for (s, field) in [("NewUser", "password"), ("PasswordChange", "new_password")] {
            let p = &schema(&doc, s)["properties"][field];
            assert_eq!((p["minLength"].as_u64(), p["maxLength"].as_u64()), (Some(8), Some(256)), "{s}.{field}");
            assert!(PASSWORD_CHARS == (8..=256));
        }
        let priority = t3_core::arbiter::Priority::HIGHEST.get()..=t3_core::arbiter::Priority::LOWEST.get();
        for s in ["WriteRequest", "RelinquishRequest", "ScheduleBody"] {
            let p = &schema(&doc, s)["properties"]["priority"];
            assert_eq!(range(p), (f64::from(*priority.start()), f64::from(*priority.end())), "{s}");
        }
        let plan = schema(&doc, "PlanPoint");
        assert_eq!(range(&plan["properties"]["x"]), (0.0, 1.0));
        assert_eq!(
            schema(&doc, "PlanPointsBody")["properties"]["points"]["maxItems"],
            crate::model::place::MAX_PLAN_POINTS
        );
        let limit = param(&doc, "/api/t3000/buildings", "get", "limit");
        assert_eq!(range(limit), (1.0, MAX_PAGE as f64));
        for s in ["BuildingBody", "FloorBody", "RoomBody", "NewPoint", "NewToken", "TrendLogBody", "ScheduleBody"] {
            let name = &schema(&doc, s)["properties"]["name"];
            assert_eq!(name["maxLength"], NAME_MAX, "{s}");
            assert_eq!(name["pattern"].as_str(), Some(NAME_PATTERN.as_str()), "{s}");
        }
        let from = param(&doc, "/api/t3000/points/{id}/history", "get", "from");
        assert_eq!(from["pattern"].as_str(), Some(INSTANT_PATTERN.as_str()));
        let tz = &schema(&doc, "BuildingBody")["properties"]["time_zone"]["enum"];
        assert!(tz.as_array().unwrap().contains(&Value::from("Europe/Berlin")));
    }

    fn query_param<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
        let params = doc["paths"][path][method]["parameters"].as_array().unwrap();
        params.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{method} {path} has no {name}"))
    }

    /// A query parameter the handler cannot do without is required in the document, and every
    /// parameter keeps its description (utoipa drops both for `schema_with`).
    #[test]
    fn required_query_parameters_are_required() {
        let doc = doc();
        for (path, method, name, required) in [
            ("/api/t3000/points/{id}/samples", "delete", "from", true),
            ("/api/t3000/points/{id}/samples", "delete", "to", true),
            ("/api/t3000/export", "get", "points", true),
            ("/api/t3000/export", "get", "from", false),
            ("/api/t3000/points/{id}/history", "get", "from", false),
            ("/api/t3000/points/{id}/history", "get", "agg", false),
            ("/api/t3000/alarms", "get", "state", false),
        ] {
            let p = query_param(&doc, path, method, name);
            assert_eq!(p["required"], required, "{method} {path} {name}");
            assert!(p["description"].as_str().is_some_and(|d| !d.is_empty()), "{method} {path} {name}: {p}");
            // Query parameters are never null.
            assert!(!p["schema"].to_string().contains("null"), "{method} {path} {name}: {p}");
        }
    }

    /// The device bodies state the ranges `DeviceConfig::validate` checks, per protocol.
    #[test]
    fn the_device_bodies_state_the_configuration_rules() {
        use t3_core::config::*;
        let doc = doc();
        let range = |v: &Value| (v["minimum"].as_u64().unwrap(), v["maximum"].as_u64().unwrap());
        let r = |r: std::ops::RangeInclusive<u64>| (*r.start(), *r.end());
        let (tcp, rtu) = (schema(&doc, "DeviceTcp"), schema(&doc, "DeviceRtu"));
        for d in [tcp, rtu] {
            assert_eq!(d["properties"]["name"]["maxLength"], DEVICE_NAME_MAX);
            assert_eq!(range(&d["properties"]["poll_interval_ms"]), r(POLL_INTERVAL_MS));
            assert_eq!(d["additionalProperties"], false);
        }
        assert_eq!(
            range(&rtu["properties"]["baud_rate"]),
            (u64::from(*BAUD_RATES.start()), u64::from(*BAUD_RATES.end()))
        );
        assert_eq!(range(&rtu["properties"]["unit_id"]), (1, 247));
        assert_eq!(range(&tcp["properties"]["unit_id"]), (0, 255));
        assert_eq!(tcp["required"], serde_json::json!(["name", "protocol", "unit_id", "profile", "ip_address"]));
        let body = schema(&doc, "DeviceBody");
        assert_eq!(body["discriminator"]["propertyName"], "protocol");
        let discover = schema(&doc, "DiscoverTcp");
        assert_eq!(range(&discover["properties"]["timeout_ms"]), r(crate::http::rules::DISCOVER_TIMEOUT_MS));
        assert_eq!(discover["properties"]["hosts"]["minItems"], 1);
        for (path, method) in [("/api/t3000/devices", "post"), ("/api/t3000/devices/{id}", "put")] {
            let s = &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(s, "#/components/schemas/DeviceBody", "{method} {path}");
        }
        let ts = &schema(&doc, "SampleIn")["properties"]["ts"]["oneOf"][1];
        assert_eq!(ts["maximum"].as_i64(), Some(crate::http::timeparse::EPOCH_US_RANGE.end - 1));
        assert!(schema(&doc, "BatchRequest")["oneOf"].is_array());
    }

    fn example_c() -> t3_drivers::plugin::ProtocolInfo {
        serde_json::from_value(serde_json::json!({
            "title": "Example (C)", "description": "A simulated air handler.", "discovery": true, "writes": true,
            "keys": [
                {"name": "seed", "type": "integer", "required": false, "default": null, "description": "Shifts the curve."},
                {"name": "fail_reads", "type": "boolean", "required": false, "default": false, "description": "Never answers."},
                {"name": "device_instance", "type": "integer", "required": true, "default": null, "description": "The instance."},
                {"name": "ip_address", "type": "string", "required": true, "default": null, "description": "Its address."},
                {"name": "mode", "type": "string", "required": true, "default": "auto", "description": ""},
            ],
        }))
        .unwrap()
    }

    /// Without plugins the document is as [`document`] makes it; each loaded plugin adds a device
    /// body (in `DeviceBody` and its discriminator) with its keys typed, and a scan when it can
    /// discover.
    #[test]
    fn loaded_plugins_add_their_device_bodies_and_scans() {
        use serde_json::json;
        let base = doc();
        let mut same = base.clone();
        add_plugins(&mut same, &[]);
        assert_eq!(same, base);

        let info = example_c();
        let mut quiet = info.clone();
        quiet.discovery = false;
        let mut v = base.clone();
        add_plugins(&mut v, &[("example-c", &info), ("quiet-one", &quiet)]);
        let body = schema(&v, "DeviceBody");
        assert_eq!(
            body["oneOf"],
            json!([
                {"$ref": "#/components/schemas/DeviceTcp"}, {"$ref": "#/components/schemas/DeviceRtu"},
                {"$ref": "#/components/schemas/DevicePluginExampleC"}, {"$ref": "#/components/schemas/DevicePluginQuietOne"},
            ])
        );
        assert_eq!(body["discriminator"]["mapping"]["example-c"], "#/components/schemas/DevicePluginExampleC");
        assert_eq!(body["discriminator"]["mapping"]["modbus-tcp"], "#/components/schemas/DeviceTcp");
        let d = schema(&v, "DevicePluginExampleC");
        assert_eq!(d["properties"]["protocol"], json!({"const": "example-c"}));
        assert_eq!(d["additionalProperties"], false);
        // Required: the keys required without a default (a required key with one is not).
        assert_eq!(d["required"], json!(["name", "protocol", "device_instance", "ip_address"]));
        let p = &d["properties"];
        assert_eq!(p["seed"]["type"], "integer");
        assert_eq!(p["seed"]["minimum"], i64::MIN);
        assert_eq!(p["fail_reads"], json!({"type": "boolean", "description": "Never answers.", "default": false}));
        assert_eq!(p["mode"]["default"], "auto");
        // A common field the plugin reads keeps the server's type.
        assert_eq!(p["ip_address"]["type"], json!(["string", "null"]));
        assert_eq!(p["ip_address"]["description"], "Its address.");
        assert_eq!(p["port"]["type"], json!(["integer", "null"]));
        assert_eq!(p["options"]["additionalProperties"], false);
        assert_eq!(p["options"]["properties"]["seed"], p["seed"]);
        assert!(p["options"]["properties"].get("ip_address").is_none());
        for common in
            ["name", "device_type", "poll_interval_ms", "timeout_ms", "enabled", "record", "points", "building_id"]
        {
            assert!(p[common].is_object(), "{common}");
        }
        assert_eq!(p["poll_interval_ms"], schema(&v, "DeviceTcp")["properties"]["poll_interval_ms"]);

        let scan = schema(&v, "DiscoverRequest");
        assert_eq!(scan["oneOf"].as_array().unwrap().len(), 3, "only the plugin that can discover: {scan}");
        assert_eq!(scan["discriminator"]["mapping"]["example-c"], "#/components/schemas/DiscoverPluginExampleC");
        assert!(scan["discriminator"]["mapping"].get("quiet-one").is_none());
        let s = schema(&v, "DiscoverPluginExampleC");
        assert_eq!(s["required"], json!(["protocol"]));
        assert_eq!(s["properties"]["options"]["type"], "object");
        assert_eq!(s["properties"]["timeout_ms"], schema(&v, "DiscoverTcp")["properties"]["timeout_ms"]);
        assert!(schema(&v, "DiscoverPluginQuietOne").is_null());
    }

    /// The device answer: `port` may be null (Modbus RTU, a plugin device without one), and a
    /// plugin device's `options` are an object; a device point states its plugin object.
    #[test]
    fn the_device_answer_has_a_nullable_port_and_options() {
        let doc = doc();
        let d = schema(&doc, "DeviceResponse");
        let port = &d["properties"]["port"];
        assert!(port["type"].as_array().is_some_and(|t| t.contains(&Value::from("null"))), "{port}");
        assert!(!d["required"].as_array().unwrap().contains(&Value::from("port")) || port["type"].is_array());
        assert_eq!(d["properties"]["options"]["type"], "object");
        assert!(d["required"].as_array().unwrap().contains(&Value::from("options")));
        assert!(schema(&doc, "DevicePoint")["properties"]["object"].is_object(), "{}", schema(&doc, "DevicePoint"));
    }

    /// A plugin key's default is any JSON value (`false`, `47808`), not only an object.
    #[test]
    fn a_plugin_keys_default_is_any_value() {
        let doc = doc();
        let default = &schema(&doc, "PluginKey")["properties"]["default"];
        assert!(!default.to_string().contains("\"object\""), "{default}");
    }

    /// The WebSocket takes a bearer token or a ticket (a query parameter), and the ticket route
    /// is documented with its answer.
    #[test]
    fn the_websocket_and_its_ticket_are_documented() {
        use serde_json::json;
        let doc = doc();
        let ws = &doc["paths"]["/api/t3000/ws"]["get"];
        assert_eq!(ws["security"], json!([{"bearer": []}, {"ws_ticket": []}]), "{ws}");
        for status in ["101", "400", "401", "403", "503"] {
            assert!(ws["responses"][status].is_object(), "GET /api/t3000/ws lacks {status}: {ws}");
        }
        let scheme = &doc["components"]["securitySchemes"]["ws_ticket"];
        assert_eq!(
            (scheme["type"].as_str(), scheme["in"].as_str(), scheme["name"].as_str()),
            (Some("apiKey"), Some("query"), Some("ticket")),
            "{scheme}"
        );
        let t = &doc["paths"]["/api/t3000/ws/ticket"]["post"];
        assert_eq!(
            t["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/WsTicket"
        );
        assert!(t["responses"]["401"].is_object() && t["responses"]["503"].is_object(), "{t}");
        assert_eq!(schema(&doc, "WsTicket")["required"], json!(["ticket", "expires_in_secs", "expires_us"]));
    }

    /// Every integer a request may carry has a range (a point id past u32 is not "valid").
    #[test]
    fn every_unsigned_integer_has_a_maximum() {
        fn walk(v: &Value, at: &str) {
            match v {
                Value::Object(m) => {
                    let integer = m.get("type").is_some_and(|t| {
                        t == "integer" || t.as_array().is_some_and(|a| a.contains(&Value::from("integer")))
                    });
                    if integer && m.get("minimum").and_then(Value::as_f64).is_some_and(|v| v >= 0.0) {
                        assert!(
                            m.contains_key("maximum") || m.get("format") == Some(&Value::from("int64")),
                            "{at}: {v}"
                        );
                    }
                    for (k, v) in m {
                        walk(v, &format!("{at}/{k}"));
                    }
                }
                Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| walk(v, &format!("{at}/{i}"))),
                _ => {}
            }
        }
        walk(&doc(), "");
    }
}
