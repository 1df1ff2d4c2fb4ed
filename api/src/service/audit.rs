//! The audit log: who did what, from where, to what, with the old and new value and the result.

use std::sync::Arc;
use t3_core::clock::Clock;
use t3_storage::catalog::{AuditEntry, Catalog};

/// Writes finished actions to the catalog's audit log, time-stamped by the clock.
#[derive(Debug, Clone)]
pub struct AuditLog {
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
}

impl AuditLog {
    pub fn new(catalog: Arc<Catalog>, clock: Arc<dyn Clock>) -> AuditLog {
        AuditLog { catalog, clock }
    }

    /// Records a finished action; a failure to record is logged, not fatal.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        remote: Option<String>,
        actor: &str,
        action: &str,
        target: Option<String>,
        old: Option<serde_json::Value>,
        new: Option<serde_json::Value>,
        result: &str,
    ) {
        let entry = AuditEntry {
            seq: 0,
            ts: self.clock.now_us(),
            actor: actor.to_owned(),
            remote,
            action: action.to_owned(),
            target,
            old,
            new,
            result: result.to_owned(),
        };
        if let Err(e) = self.catalog.audit_record(entry) {
            tracing::error!(error = %e, action, "could not write the audit log");
        }
    }
}
