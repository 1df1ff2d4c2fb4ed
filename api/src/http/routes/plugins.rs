//! `GET /api/t3000/plugins`: the protocol plugins found at start or at the last configuration reload, loaded or refused and why.

use crate::http::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use t3_drivers::plugin::{EntryState, PluginEntry};

/// One configuration key of a plugin protocol.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginKey {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `array`.
    #[serde(rename = "type")]
    pub kind: String,
    pub required: bool,
    /// Any JSON value (`47808`, `false`, `"auto"`), or null when the key has none.
    pub default: Option<serde_json::Value>,
    pub description: String,
}

/// What a loaded plugin's protocol is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginProtocol {
    /// For people: `BACnet/IP`.
    pub title: String,
    pub description: String,
    /// It can look for devices (`POST /api/t3000/devices/discover` with its protocol).
    pub discovery: bool,
    /// It can write points.
    pub writes: bool,
    /// The device keys it takes besides the common ones (`name`, `ip_address`, `port`, ...).
    pub keys: Vec<PluginKey>,
}

/// A file found in a plugin folder.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginInfo {
    /// The file's path.
    pub file: String,
    /// `loaded` or `refused`.
    pub state: String,
    /// The protocol it serves (`protocol = "<name>"` in `[[devices]]`), once its declaration was read.
    pub name: Option<String>,
    pub version: Option<String>,
    /// The plugin ABI version it was built for.
    pub abi: Option<String>,
    /// Why it was refused.
    pub reason: Option<String>,
    pub protocol: Option<PluginProtocol>,
}

impl From<&PluginEntry> for PluginInfo {
    fn from(e: &PluginEntry) -> Self {
        PluginInfo {
            file: e.file.display().to_string(),
            state: match e.state {
                EntryState::Loaded => "loaded",
                EntryState::Refused => "refused",
            }
            .into(),
            name: e.name.clone(),
            version: e.version.clone(),
            abi: e.abi.clone(),
            reason: e.reason.clone(),
            protocol: e.protocol.as_ref().map(|p| PluginProtocol {
                title: p.title.clone(),
                description: p.description.clone(),
                discovery: p.discovery,
                writes: p.writes,
                keys: p
                    .keys
                    .iter()
                    .map(|k| PluginKey {
                        name: k.name.clone(),
                        kind: k.kind.clone(),
                        required: k.required,
                        default: k.default.clone(),
                        description: k.description.clone(),
                    })
                    .collect(),
            }),
        }
    }
}

/// The plugin ABI this server speaks, and every plugin file found at start (or at the last configuration reload).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Plugins {
    /// `major.minor`: a plugin must have the same major version.
    pub abi: String,
    pub plugins: Vec<PluginInfo>,
}

/// The protocol plugins: what was found in the plugin folders at start (or at the last configuration reload), loaded or refused and why.
#[utoipa::path(get, path = "/api/t3000/plugins", tag = "devices", responses((status = 200, body = Plugins)))]
pub async fn list(State(state): State<AppState>) -> Json<Plugins> {
    Json(Plugins {
        abi: format!("{}.{}", t3_plugin_abi::ABI_MAJOR, t3_plugin_abi::ABI_MINOR),
        plugins: state.plugins.entries().iter().map(PluginInfo::from).collect(),
    })
}
