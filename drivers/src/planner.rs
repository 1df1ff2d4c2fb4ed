//! Read planning: which Modbus requests fetch a set of points in as few round trips as the limits allow.
//!
//! Items (one per point: table, first address, width) are sorted by `(kind, address)` and merged greedily: an item
//! joins the open request when it is of the same kind, starts no more than `max_gap` registers (or bits) after the
//! request's end, and the widened request still fits the limit for its kind. Overlapping items and duplicates
//! (two points on the same register) are fine and share the request. The output depends only on the input: equal
//! inputs give equal plans.
//!
//! Bridging gaps reads registers nobody asked for; Temco devices answer those (T3000 itself reads in blocks of 100
//! from 0), but a device that refuses unknown addresses wants `max_gap: 0`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::RegisterKind;

/// The most registers one read request (function 03 / 04) may ask for.
pub const MODBUS_MAX_REGISTERS: u16 = 125;
/// The most bits one read request (function 01 / 02) may ask for.
pub const MODBUS_MAX_BITS: u16 = 2000;

/// How requests are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Registers per request for holding and input registers, 1..=125 (default 125).
    pub max_registers: u16,
    /// Bits per request for coils and discrete inputs, 1..=2000 (default 2000).
    pub max_bits: u16,
    /// Unrequested registers (or bits) one request may read across to join two points; 0 joins only adjacent or
    /// overlapping points. Default 10.
    pub max_gap: u16,
    /// One request per point, nothing merged: for devices that reject multi-point reads.
    pub one_per_point: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_registers: MODBUS_MAX_REGISTERS, max_bits: MODBUS_MAX_BITS, max_gap: 10, one_per_point: false }
    }
}

impl Limits {
    /// Both spans within what Modbus allows and at least 1.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.max_registers == 0 || self.max_registers > MODBUS_MAX_REGISTERS {
            return Err(PlanError::InvalidLimits {
                what: "max_registers",
                value: self.max_registers,
                max: MODBUS_MAX_REGISTERS,
            });
        }
        if self.max_bits == 0 || self.max_bits > MODBUS_MAX_BITS {
            return Err(PlanError::InvalidLimits { what: "max_bits", value: self.max_bits, max: MODBUS_MAX_BITS });
        }
        Ok(())
    }

    /// The widest request for `kind`: `max_bits` for coils and discrete inputs, `max_registers` otherwise.
    pub fn max_span(&self, kind: RegisterKind) -> u16 {
        if kind.is_bit() { self.max_bits } else { self.max_registers }
    }
}

/// One thing to read: `count` registers (or bits) of `kind` from `address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanItem {
    pub kind: RegisterKind,
    pub address: u16,
    pub count: u16,
}

/// One Modbus read, and where each item it serves sits in the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub kind: RegisterKind,
    pub start: u16,
    pub count: u16,
    /// `(index into the items slice, offset of the item's first word or bit within this request)`, in address
    /// order.
    pub points: Vec<(usize, u16)>,
}

impl ReadRequest {
    /// One past the last address read.
    pub fn end(&self) -> u32 {
        u32::from(self.start) + u32::from(self.count)
    }
}

impl fmt::Display for ReadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}+{} ({} points)", self.kind, self.start, self.count, self.points.len())
    }
}

/// Why a set of items cannot be planned. All of them are configuration errors, never transient.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// An item spans more registers (or bits) than one request may read.
    #[error("item {index} ({kind} {address}, {count} wide) is wider than the {limit} one request may read")]
    ItemTooWide { index: usize, kind: RegisterKind, address: u16, count: u16, limit: u16 },
    /// `address + count` runs past the last Modbus address (65535).
    #[error("item {index} ({kind} {address}, {count} wide) runs past address 65535")]
    AddressOverflow { index: usize, kind: RegisterKind, address: u16, count: u16 },
    /// An item that reads nothing.
    #[error("item {index} ({kind} {address}) has a count of 0")]
    EmptyItem { index: usize, kind: RegisterKind, address: u16 },
    /// A limit outside what Modbus allows.
    #[error("{what} is {value}; it must be between 1 and {max}")]
    InvalidLimits { what: &'static str, value: u16, max: u16 },
}

/// Plan the reads for `items`. See the module documentation for the rules.
pub fn plan(items: &[PlanItem], limits: &Limits) -> Result<Vec<ReadRequest>, PlanError> {
    limits.validate()?;
    for (index, it) in items.iter().enumerate() {
        let (kind, address, count) = (it.kind, it.address, it.count);
        if count == 0 {
            return Err(PlanError::EmptyItem { index, kind, address });
        }
        if u32::from(address) + u32::from(count) > 65536 {
            return Err(PlanError::AddressOverflow { index, kind, address, count });
        }
        let limit = limits.max_span(kind);
        if count > limit {
            return Err(PlanError::ItemTooWide { index, kind, address, count, limit });
        }
    }

    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].kind, items[i].address, items[i].count, i));

    let mut out: Vec<ReadRequest> = Vec::new();
    let mut open: Option<Open> = None;
    for i in order {
        let it = items[i];
        let (a, e) = (u32::from(it.address), u32::from(it.address) + u32::from(it.count));
        if let Some(cur) = open.as_mut() {
            let joins = !limits.one_per_point
                && cur.kind == it.kind
                && a <= cur.end + u32::from(limits.max_gap)
                && e.max(cur.end) - cur.start <= u32::from(limits.max_span(it.kind));
            if joins {
                cur.end = e.max(cur.end);
                cur.members.push((i, a));
                continue;
            }
        }
        if let Some(done) = open.replace(Open { kind: it.kind, start: a, end: e, members: vec![(i, a)] }) {
            out.push(done.close());
        }
    }
    if let Some(done) = open {
        out.push(done.close());
    }
    Ok(out)
}

/// The request being built; `end` is exclusive and a `u32` so that 65536 fits.
struct Open {
    kind: RegisterKind,
    start: u32,
    end: u32,
    /// Items with their addresses.
    members: Vec<(usize, u32)>,
}

impl Open {
    fn close(self) -> ReadRequest {
        let start = self.start;
        ReadRequest {
            kind: self.kind,
            start: start as u16,
            count: (self.end - start) as u16,
            points: self.members.into_iter().map(|(i, a)| (i, (a - start) as u16)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(address: u16, count: u16) -> PlanItem {
        PlanItem { kind: RegisterKind::Holding, address, count }
    }

    fn spans(reqs: &[ReadRequest]) -> Vec<(RegisterKind, u16, u16)> {
        reqs.iter().map(|r| (r.kind, r.start, r.count)).collect()
    }

    #[test]
    fn merges_adjacent_overlapping_and_small_gaps() {
        let items = [h(10, 2), h(12, 2), h(13, 1), h(20, 2), h(40, 1), h(12, 2)];
        let reqs = plan(&items, &Limits::default()).unwrap();
        assert_eq!(spans(&reqs), vec![(RegisterKind::Holding, 10, 12), (RegisterKind::Holding, 40, 1)]);
        assert_eq!(reqs[0].points, vec![(0, 0), (1, 2), (5, 2), (2, 3), (3, 10)]);
        assert_eq!(reqs[1].points, vec![(4, 0)]);

        let no_gap = Limits { max_gap: 0, ..Limits::default() };
        let reqs = plan(&items, &no_gap).unwrap();
        assert_eq!(spans(&reqs).len(), 3);
        assert_eq!((reqs[0].start, reqs[0].count), (10, 4));
    }

    #[test]
    fn kinds_never_mix_and_sort_by_kind() {
        let items = [
            h(0, 1),
            PlanItem { kind: RegisterKind::Coil, address: 1, count: 1 },
            PlanItem { kind: RegisterKind::Input, address: 0, count: 1 },
            PlanItem { kind: RegisterKind::DiscreteInput, address: 0, count: 1 },
            PlanItem { kind: RegisterKind::Coil, address: 0, count: 1 },
        ];
        let reqs = plan(&items, &Limits::default()).unwrap();
        let kinds: Vec<_> = reqs.iter().map(|r| r.kind).collect();
        use RegisterKind::*;
        assert_eq!(kinds, vec![Coil, DiscreteInput, Holding, Input]);
        assert_eq!(reqs[0].points, vec![(4, 0), (1, 1)]);
    }

    #[test]
    fn respects_the_span_limit() {
        let items: Vec<_> = (0..64).map(|n| h(7484 + 2 * n, 2)).collect();
        let reqs = plan(&items, &Limits::default()).unwrap();
        assert_eq!(spans(&reqs), vec![(RegisterKind::Holding, 7484, 124), (RegisterKind::Holding, 7608, 4)]);
        let reqs = plan(&items, &Limits { max_registers: 100, ..Limits::default() }).unwrap();
        assert_eq!(spans(&reqs), vec![(RegisterKind::Holding, 7484, 100), (RegisterKind::Holding, 7584, 28)]);
        let coils: Vec<_> = (0..3000).map(|a| PlanItem { kind: RegisterKind::Coil, address: a, count: 1 }).collect();
        let reqs = plan(&coils, &Limits::default()).unwrap();
        assert_eq!(spans(&reqs), vec![(RegisterKind::Coil, 0, 2000), (RegisterKind::Coil, 2000, 1000)]);
    }

    #[test]
    fn one_per_point() {
        let items = [h(5, 1), h(1, 2), h(5, 1)];
        let reqs = plan(&items, &Limits { one_per_point: true, ..Limits::default() }).unwrap();
        assert_eq!(
            spans(&reqs),
            vec![(RegisterKind::Holding, 1, 2), (RegisterKind::Holding, 5, 1), (RegisterKind::Holding, 5, 1)]
        );
        assert_eq!(
            reqs.iter().map(|r| r.points.clone()).collect::<Vec<_>>(),
            vec![vec![(1, 0)], vec![(0, 0)], vec![(2, 0)]]
        );
    }

    #[test]
    fn errors() {
        let d = Limits::default();
        assert!(matches!(plan(&[h(0, 126)], &d), Err(PlanError::ItemTooWide { index: 0, limit: 125, .. })));
        assert!(matches!(plan(&[h(1, 1), h(65535, 2)], &d), Err(PlanError::AddressOverflow { index: 1, .. })));
        assert!(plan(&[h(65535, 1)], &d).is_ok());
        assert!(matches!(plan(&[h(3, 0)], &d), Err(PlanError::EmptyItem { .. })));
        for bad in [
            Limits { max_registers: 0, ..d },
            Limits { max_registers: 126, ..d },
            Limits { max_bits: 0, ..d },
            Limits { max_bits: 2001, ..d },
        ] {
            assert!(matches!(plan(&[], &bad), Err(PlanError::InvalidLimits { .. })), "{bad:?}");
        }
        assert_eq!(plan(&[], &d).unwrap(), vec![]);
        let e = plan(&[h(0, 126)], &d).unwrap_err().to_string();
        assert!(e.contains("126") && e.contains("125"), "{e}");
    }

    #[test]
    fn limits_serde_defaults() {
        let l: Limits = serde_json::from_str(r#"{"max_registers": 100}"#).unwrap();
        assert_eq!(l, Limits { max_registers: 100, ..Limits::default() });
        assert!(serde_json::from_str::<Limits>(r#"{"max_regs": 100}"#).is_err());
    }

    fn any_kind() -> impl Strategy<Value = RegisterKind> {
        prop::sample::select(vec![
            RegisterKind::Coil,
            RegisterKind::DiscreteInput,
            RegisterKind::Holding,
            RegisterKind::Input,
        ])
    }

    fn items_and_limits() -> impl Strategy<Value = (Vec<PlanItem>, Limits)> {
        let limits = (1u16..=125, 1u16..=2000, 0u16..20, prop::bool::weighted(0.1)).prop_map(|(r, b, g, one)| Limits {
            max_registers: r,
            max_bits: b,
            max_gap: g,
            one_per_point: one,
        });
        limits.prop_flat_map(|l| {
            // Addresses clustered in a small window (to force merging) plus a few far ones near the top.
            let item = (any_kind(), prop_oneof![4 => 0u16..400, 1 => 65000u16..=65535], 1u16..=8).prop_filter_map(
                "fits",
                move |(kind, address, count)| {
                    let count = count.min(l.max_span(kind));
                    (u32::from(address) + u32::from(count) <= 65536).then_some(PlanItem { kind, address, count })
                },
            );
            (prop::collection::vec(item, 0..80), Just(l))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn plan_properties((items, limits) in items_and_limits()) {
            let reqs = plan(&items, &limits).unwrap();
            prop_assert_eq!(&plan(&items, &limits).unwrap(), &reqs, "deterministic");

            // Every item appears in exactly one request, at its own offset.
            let mut seen = vec![0usize; items.len()];
            for r in &reqs {
                prop_assert!(r.count >= 1 && r.count <= limits.max_span(r.kind), "{r}");
                prop_assert!(r.end() <= 65536);
                let mut covered = vec![false; usize::from(r.count)];
                let mut max_end = 0u32;
                for &(i, off) in &r.points {
                    seen[i] += 1;
                    let it = items[i];
                    prop_assert_eq!(it.kind, r.kind);
                    prop_assert_eq!(u32::from(it.address), u32::from(r.start) + u32::from(off));
                    prop_assert!(u32::from(off) + u32::from(it.count) <= u32::from(r.count));
                    for c in &mut covered[usize::from(off)..usize::from(off + it.count)] { *c = true; }
                    max_end = max_end.max(u32::from(off) + u32::from(it.count));
                }
                // Tight at both ends, and no uncovered run longer than max_gap.
                prop_assert!(covered[0] && max_end == u32::from(r.count));
                let mut run = 0u16;
                for c in covered {
                    run = if c { 0 } else { run + 1 };
                    prop_assert!(run <= limits.max_gap, "gap of {} in {}", run, r);
                }
                if limits.one_per_point {
                    prop_assert_eq!(r.points.len(), 1);
                }
            }
            prop_assert!(seen.iter().all(|&n| n == 1), "{:?}", seen);
            if limits.one_per_point {
                prop_assert_eq!(reqs.len(), items.len());
            }

            // Sorted output, and minimal for the greedy merge: the first item of every request could not have
            // joined the request before it.
            for w in reqs.windows(2) {
                let (prev, next) = (&w[0], &w[1]);
                prop_assert!((prev.kind, prev.start) <= (next.kind, next.start));
                if limits.one_per_point || prev.kind != next.kind {
                    continue;
                }
                let first = next.points.iter().map(|&(i, _)| items[i]).min_by_key(|it| (it.address, it.count)).unwrap();
                let first_end = u32::from(first.address) + u32::from(first.count);
                let gap_too_big = u32::from(first.address) > prev.end() + u32::from(limits.max_gap);
                let too_wide = first_end.max(prev.end()) - u32::from(prev.start) > u32::from(limits.max_span(prev.kind));
                prop_assert!(gap_too_big || too_wide, "{} could have joined {}", next, prev);
            }

            // The same count as a naive re-implementation of the greedy merge.
            let mut sorted = items.clone();
            sorted.sort_by_key(|it| (it.kind, it.address, it.count));
            let mut count = 0;
            let mut cur: Option<(RegisterKind, u32, u32)> = None;
            for it in sorted {
                let (a, e) = (u32::from(it.address), u32::from(it.address) + u32::from(it.count));
                match cur {
                    Some((k, s, end)) if !limits.one_per_point && k == it.kind && a <= end + u32::from(limits.max_gap)
                        && e.max(end) - s <= u32::from(limits.max_span(k)) => cur = Some((k, s, e.max(end))),
                    _ => { count += 1; cur = Some((it.kind, a, e)); }
                }
            }
            prop_assert_eq!(reqs.len(), count);
        }
    }
}
