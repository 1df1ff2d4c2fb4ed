//! What the catalog stores and the API shows: the records, the rules their values follow
//! ([`check`]), and the registration of every record type with the catalog ([`register`]).
//!
//! This layer is data: serde and utoipa derive what it looks like, nothing here does I/O, and it
//! knows nothing of HTTP (no axum, no `AppState`, no `ApiError`) or of the services that use it.

/// Implements `t3_storage::catalog::Record` for a struct with an `id: i64` field.
macro_rules! record {
    ($t:ty, $kind:literal) => {
        impl ::t3_storage::catalog::Record for $t {
            const KIND: &'static str = $kind;
            fn id(&self) -> i64 {
                self.id
            }
            fn set_id(&mut self, id: i64) {
                self.id = id;
            }
        }
    };
}

pub mod alarm;
pub mod alert;
pub mod backup;
pub mod check;
pub mod command;
pub mod custom_range;
pub mod device;
pub mod place;
pub mod point;
pub mod program;
pub mod schedule;
pub mod sync;
pub mod user;
pub mod webview;

use t3_storage::catalog::Catalog;

/// Registers (loads) every record type the server keeps, in one place: call it once after opening
/// the catalog, before the services that read it start.
pub fn register(catalog: &Catalog) -> t3_storage::Result<()> {
    catalog.register::<place::Building>()?;
    catalog.register::<place::Floor>()?;
    catalog.register::<place::Room>()?;
    catalog.register::<device::DeviceRecord>()?;
    catalog.register::<point::PointRecord>()?;
    catalog.register::<custom_range::CustomRanges>()?;
    catalog.register::<program::Program>()?;
    catalog.register::<program::TrendLog>()?;
    catalog.register::<command::CommandsRecord>()?;
    catalog.register::<command::ManualSeen>()?;
    catalog.register::<alarm::AlarmRuleRecord>()?;
    catalog.register::<schedule::Calendar>()?;
    catalog.register::<schedule::Schedule>()?;
    catalog.register::<sync::SyncBaseline>()?;
    catalog.register::<user::User>()?;
    catalog.register::<user::Token>()?;
    catalog.register::<webview::WebviewImportJob>()?;
    Ok(())
}
