//! What the devices report about their points: range (unit) codes, and the labels and descriptions
//! T3 controllers keep in their point records; and what a point's range means, from those codes,
//! T3000's tables and its panel's custom ranges (`model::custom_range`).

use std::sync::Arc;
use t3_core::range::{RangeMeaning, RangeTable, Span, t3_span};
use t3_drivers::collector::PointRange;
use t3_drivers::labels::PointText;

use crate::model::custom_range::{CustomRanges, range_meaning};
use crate::model::point::PointRecord;

/// What the catalog holds about a point and its device, for what the device does not say.
#[derive(Debug, Clone, Copy, Default)]
pub struct Configured<'a> {
    /// The point's record: its range code and analog/digital flag as configured (a `.prog`
    /// import, hardware sync), which stand until the device reports its own (an offline device).
    pub point: Option<&'a PointRecord>,
    /// The custom ranges of the point's device (its panel's digital texts, variable units, analog
    /// table names).
    pub custom: Option<&'a CustomRanges>,
}

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

    /// The range code and analog/digital flag of point `point`: as its device reported them, else
    /// as `configured` (the point's record) has them, until the device is read.
    pub fn code(&self, point: u32, configured: Option<&PointRecord>) -> Option<PointRange> {
        self.get(point).or_else(|| {
            let r = configured?;
            (r.range.is_some() || r.digital.is_some()).then_some(PointRange {
                point,
                range: r.range,
                digital: r.digital,
            })
        })
    }

    /// What point `point` (of type `point_type`: input, output, variable) reports about its value:
    /// its units or digital state names, from its range code and analog/digital flag
    /// ([`Ranges::code`]), read in its device's custom ranges and T3000's tables.
    pub fn meaning(&self, point: u32, point_type: &str, configured: Configured<'_>) -> Option<RangeMeaning> {
        let r = self.code(point, configured.point)?;
        range_meaning(configured.custom, table(point_type)?, r.digital?, r.range?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::custom_range::CustomDigitalRange;

    #[test]
    fn meanings_from_the_device_else_the_catalog_with_custom_texts() {
        let ranges = Ranges::default();
        let custom = CustomRanges {
            id: 1,
            digital: vec![CustomDigitalRange { code: 23, off: "Stopped".into(), on: "Running".into(), direct: false }],
            ..Default::default()
        };
        let record = PointRecord { id: 5, range: Some(23), digital: Some(true), ..Default::default() };
        let configured = Configured { point: Some(&record), custom: Some(&custom) };
        // Not read from the device: the catalog's range, in the panel's texts.
        assert_eq!(ranges.code(5, Some(&record)).map(|r| (r.range, r.digital)), Some((Some(23), Some(true))));
        let m = ranges.meaning(5, "variable", configured);
        assert_eq!(m.as_ref().and_then(RangeMeaning::states), Some(("Stopped", "Running")));
        assert_eq!(ranges.meaning(5, "variable", Configured { custom: None, ..configured }), None);
        assert_eq!(ranges.meaning(5, "register", configured), None);
        // A record without a range says nothing.
        assert!(ranges.code(5, Some(&PointRecord::default())).is_none());
        // What the device reports wins.
        ranges.codes.write().insert(5, PointRange { point: 5, range: Some(1), digital: Some(true) });
        assert_eq!(ranges.meaning(5, "variable", configured).map(|m| m.name()).as_deref(), Some("Off/On"));
        ranges.codes.write().insert(5, PointRange { point: 5, range: Some(23), digital: Some(false) });
        assert_eq!(ranges.meaning(5, "variable", configured).map(|m| m.name()).as_deref(), Some("%RH"));
    }
}
