//! What the devices report about their points: range (unit) codes, and the labels and descriptions
//! T3 controllers keep in their point records.

use std::sync::Arc;
use t3_core::range::{RangeMeaning, RangeTable, Span, t3_range, t3_span};
use t3_drivers::collector::PointRange;
use t3_drivers::labels::PointText;

/// The range table of a point type (`input`, `output`, `variable`); none for registers.
fn table(point_type: &str) -> Option<RangeTable> {
    Some(match point_type {
        "input" => RangeTable::Input,
        "output" => RangeTable::Output,
        "variable" => RangeTable::Variable,
        _ => return None,
    })
}

/// The range (unit) codes the devices report for their points, and the labels and descriptions T3
/// controllers keep for them, read when a device comes online and every [`Ranges::REFRESH`] after that
/// (both are configuration, they rarely change).
#[derive(Debug, Default)]
pub struct Ranges {
    codes: parking_lot::RwLock<std::collections::HashMap<u32, PointRange>>,
    texts: parking_lot::RwLock<std::collections::HashMap<u32, PointText>>,
    read_at: parking_lot::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl Ranges {
    pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(600);

    pub fn get(&self, point: u32) -> Option<PointRange> {
        self.codes.read().get(&point).copied()
    }

    /// The label and description the point's device keeps for it (a T3 controller's point record), if
    /// they were read and are not both empty.
    pub fn text(&self, point: u32) -> Option<PointText> {
        self.texts.read().get(&point).filter(|t| !t.is_empty()).cloned()
    }

    /// What point `point` (of type `point_type`: input, output, variable) reports about its value:
    /// its units or digital state names, from its range code and analog/digital flag.
    pub fn meaning(&self, point: u32, point_type: &str) -> Option<RangeMeaning> {
        let r = self.get(point)?;
        t3_range(table(point_type)?, r.digital?, r.range?)
    }

    /// The values a write to point `point` (of type `point_type`) may carry: `profile` (what its
    /// register format and library description allow, `t3_drivers::classify::write_span`)
    /// narrowed by what its range code allows (0 / 1 when the device says it is digital, 0-100
    /// for a percent output, see [`t3_span`]).
    pub fn span(&self, point: u32, point_type: &str, profile: Option<Span>) -> Option<Span> {
        let coded = self.get(point).and_then(|r| {
            let table = table(point_type)?;
            match (r.digital?, r.range) {
                (true, code) => t3_span(table, true, code.unwrap_or(0)),
                (false, Some(code)) => t3_span(table, false, code),
                (false, None) => None,
            }
        });
        Span::both(profile, coded)
    }

    /// Reads the ranges and labels of every online device that has none yet or older than
    /// [`Ranges::REFRESH`].
    pub async fn refresh(&self, collector: &t3_drivers::collector::Collector) {
        for name in collector.device_names() {
            let online =
                collector.status().get(&name).is_some_and(|s| s.state == t3_drivers::collector::DeviceState::Online);
            let due = self.read_at.lock().get(&name).is_none_or(|t| t.elapsed() >= Self::REFRESH);
            if !online || !due {
                continue;
            }
            self.read_device(collector, &name).await;
        }
    }

    /// Reads the ranges and labels of one device now (after hardware sync wrote them, say).
    pub async fn read_device(&self, collector: &t3_drivers::collector::Collector, name: &str) {
        match collector.read_labels(name).await {
            Ok(texts) => self.texts.write().extend(texts),
            Err(e) => tracing::debug!(device = %name, error = %e, "point labels not read"),
        }
        match collector.read_ranges(name).await {
            Ok(codes) => {
                self.read_at.lock().insert(name.to_owned(), std::time::Instant::now());
                self.codes.write().extend(codes.into_iter().map(|r| (r.point, r)));
            }
            Err(e) => tracing::debug!(device = %name, error = %e, "range codes not read"),
        }
    }

    /// Refreshes every few seconds while the collector lives.
    pub fn spawn(self: &Arc<Self>, collector: &Arc<t3_drivers::collector::Collector>) {
        let (me, collector) = (Arc::downgrade(self), Arc::downgrade(collector));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                let (Some(me), Some(collector)) = (me.upgrade(), collector.upgrade()) else { return };
                me.refresh(&collector).await;
            }
        });
    }
}
