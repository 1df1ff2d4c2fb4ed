//! Single-use, short-lived tickets that open the live-update WebSocket.
//!
//! A browser cannot set headers on a WebSocket, and a bearer token in the connection URL ends up
//! in the browser's console (it prints the URL of a connection that fails), in proxies' access
//! logs and in history. So a client asks for a ticket over REST with its bearer token
//! (`POST /api/t3000/ws/ticket`) and connects with `?ticket=` at once: the ticket opens one
//! connection, within `auth.ws_ticket_secs`, as the token that asked for it; a URL that shows up
//! anywhere afterwards holds a ticket that no longer opens anything.
//!
//! A ticket is 32 random bytes (hex, prefixed `t3w_`); the store keeps only its SHA-256, the token
//! and user it stands for and when it expires (from the injected [`Clock`]). Memory is bounded:
//! at most [`MAX_PER_TOKEN`] tickets wait per token and [`MAX_PER_USER`] per user (a new one
//! replaces the oldest, so a client that never uses its tickets, or a user who logs in again and
//! again, only wastes their own), at most [`MAX_TICKETS`] in all (then issuing is refused until
//! some expire), and expired ones are dropped whenever a ticket is issued.

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use t3_core::clock::Clock;

/// Tickets waiting to be used, all tokens together.
pub const MAX_TICKETS: usize = 4096;
/// Tickets waiting to be used per token: a new one replaces the oldest.
pub const MAX_PER_TOKEN: usize = 8;
/// Tickets waiting to be used per user, all their tokens together: a new one replaces the oldest.
pub const MAX_PER_USER: usize = 32;

/// What a redeemed ticket stands for: the token that asked for it, and its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub token_id: i64,
    pub user_id: i64,
}

/// A ticket just issued: the secret (shown to its client once) and when it expires.
#[derive(Debug, Clone)]
pub struct Issued {
    pub ticket: String,
    /// Epoch microseconds (the server's clock).
    pub expires_us: i64,
}

/// Why no ticket was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// [`MAX_TICKETS`] tickets wait already; the oldest expires within `retry_after_secs`.
    #[error("too many connection tickets are waiting to be used; try again in {retry_after_secs} s")]
    Full { retry_after_secs: u64 },
}

#[derive(Debug)]
struct Entry {
    holder: Holder,
    expires_us: i64,
    /// Issue order, to find a token's oldest ticket.
    seq: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// By the SHA-256 (hex) of the ticket.
    live: HashMap<String, Entry>,
    next_seq: u64,
}

impl Inner {
    /// Removes the oldest of the tickets whose holder is `mine` while there are `max` or more.
    fn make_room(&mut self, max: usize, mine: impl Fn(&Holder) -> bool) {
        let mut held: Vec<(u64, String)> =
            self.live.iter().filter(|(_, e)| mine(&e.holder)).map(|(k, e)| (e.seq, k.clone())).collect();
        if held.len() < max {
            return;
        }
        held.sort_unstable();
        for (_, k) in &held[..=held.len() - max] {
            self.live.remove(k);
        }
    }
}

/// The tickets waiting to be used.
#[derive(Debug)]
pub struct TicketStore {
    clock: Arc<dyn Clock>,
    /// Lifetime of a new ticket; a configuration reload changes it ([`TicketStore::set_ttl`]).
    ttl_us: std::sync::atomic::AtomicI64,
    max_total: usize,
    max_per_token: usize,
    max_per_user: usize,
    inner: Mutex<Inner>,
}

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `ttl` in microseconds, at least 1.
fn ttl_us(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX).max(1)
}

fn new_ticket() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("t3w_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

impl TicketStore {
    /// Tickets that live `ttl` (at least 1 µs), bounded by [`MAX_TICKETS`], [`MAX_PER_TOKEN`] and
    /// [`MAX_PER_USER`].
    pub fn new(clock: Arc<dyn Clock>, ttl: Duration) -> TicketStore {
        TicketStore::with_bounds(clock, ttl, [MAX_TICKETS, MAX_PER_TOKEN, MAX_PER_USER])
    }

    /// Like [`TicketStore::new`] with other bounds (in all, per token, per user; each at least 1).
    pub fn with_bounds(clock: Arc<dyn Clock>, ttl: Duration, [total, per_token, per_user]: [usize; 3]) -> TicketStore {
        TicketStore {
            clock,
            ttl_us: ttl_us(ttl).into(),
            max_total: total.max(1),
            max_per_token: per_token.max(1),
            max_per_user: per_user.max(1),
            inner: Mutex::default(),
        }
    }

    /// How long a ticket lives.
    pub fn ttl(&self) -> Duration {
        Duration::from_micros(self.ttl_us.load(std::sync::atomic::Ordering::Relaxed).unsigned_abs())
    }

    /// Gives tickets issued from now on the lifetime `ttl`; those waiting keep theirs.
    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_us.store(ttl_us(ttl), std::sync::atomic::Ordering::Relaxed);
    }

    /// A new ticket for `holder`. Drops expired tickets first; replaces the oldest ticket of the
    /// holder's token when it has [`MAX_PER_TOKEN`] waiting, and of the holder's user when they
    /// have [`MAX_PER_USER`].
    pub fn issue(&self, holder: Holder) -> Result<Issued, TicketError> {
        let now = self.clock.now_us();
        let mut inner = self.inner.lock();
        inner.live.retain(|_, e| e.expires_us > now);
        inner.make_room(self.max_per_token, |h| h.token_id == holder.token_id);
        inner.make_room(self.max_per_user, |h| h.user_id == holder.user_id);
        if inner.live.len() >= self.max_total {
            let first_expiry = inner.live.values().map(|e| e.expires_us).min().unwrap_or(now);
            let wait_us = u64::try_from(first_expiry.saturating_sub(now)).unwrap_or(0);
            return Err(TicketError::Full { retry_after_secs: wait_us.div_ceil(1_000_000).max(1) });
        }
        let ticket = new_ticket();
        let expires_us = now.saturating_add(self.ttl_us.load(std::sync::atomic::Ordering::Relaxed));
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.live.insert(sha256_hex(&ticket), Entry { holder, expires_us, seq });
        Ok(Issued { ticket, expires_us })
    }

    /// Uses a ticket up: whom it stands for if it was issued, not used yet and not expired. Any
    /// answer removes it, so a ticket opens at most one connection.
    pub fn redeem(&self, ticket: &str) -> Option<Holder> {
        let now = self.clock.now_us();
        let entry = self.inner.lock().live.remove(&sha256_hex(ticket))?;
        (entry.expires_us > now).then_some(entry.holder)
    }

    /// Tickets waiting now (expired ones included until the next issue drops them).
    pub fn waiting(&self) -> usize {
        self.inner.lock().live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_core::clock::ManualClock;

    const T0: i64 = 1_700_000_000_000_000;

    fn holder(token_id: i64) -> Holder {
        Holder { token_id, user_id: 10 + token_id }
    }

    fn store(clock: &Arc<ManualClock>, total: usize, per_token: usize) -> TicketStore {
        TicketStore::with_bounds(clock.clone(), Duration::from_secs(30), [total, per_token, 100])
    }

    #[test]
    fn a_ticket_opens_once() {
        let clock = ManualClock::new(T0);
        let s = store(&clock, 100, 8);
        let a = s.issue(holder(1)).unwrap();
        let b = s.issue(holder(1)).unwrap();
        assert_ne!(a.ticket, b.ticket, "tickets are random");
        assert!(a.ticket.starts_with("t3w_") && a.ticket.len() == 4 + 64, "{}", a.ticket);
        assert_eq!(a.expires_us, T0 + 30_000_000);
        assert_eq!(s.redeem(&a.ticket), Some(holder(1)));
        assert_eq!(s.redeem(&a.ticket), None, "a second use is refused");
        assert_eq!(s.redeem("t3w_made_up"), None);
        assert_eq!(s.redeem(""), None);
        assert_eq!(s.redeem(&b.ticket), Some(holder(1)), "another ticket still works");
        assert_eq!(s.waiting(), 0);
    }

    #[test]
    fn a_ticket_expires_by_the_clock() {
        let clock = ManualClock::new(T0);
        let s = store(&clock, 100, 8);
        let a = s.issue(holder(1)).unwrap();
        let b = s.issue(holder(2)).unwrap();
        clock.advance(29_999_999);
        assert_eq!(s.redeem(&a.ticket), Some(holder(1)), "still valid 1 µs before it expires");
        clock.advance(1);
        assert_eq!(s.redeem(&b.ticket), None, "expired at its expiry");
        // An expired ticket that nobody used is dropped at the next issue.
        let c = s.issue(holder(3)).unwrap();
        clock.advance(30_000_000);
        s.issue(holder(4)).unwrap();
        assert_eq!(s.waiting(), 1, "the expired ticket of holder 3 is gone");
        assert_eq!(s.redeem(&c.ticket), None);
    }

    #[test]
    fn a_token_keeps_its_newest_tickets_only() {
        let clock = ManualClock::new(T0);
        let s = store(&clock, 100, 3);
        let tickets: Vec<Issued> = (0..5).map(|_| s.issue(holder(1)).unwrap()).collect();
        let other = s.issue(holder(2)).unwrap();
        assert_eq!(s.waiting(), 4, "three of token 1, one of token 2");
        assert_eq!(s.redeem(&tickets[0].ticket), None, "the oldest were replaced");
        assert_eq!(s.redeem(&tickets[1].ticket), None);
        for t in &tickets[2..] {
            assert_eq!(s.redeem(&t.ticket), Some(holder(1)));
        }
        assert_eq!(s.redeem(&other.ticket), Some(holder(2)), "another token's ticket is untouched");
    }

    #[test]
    fn the_store_is_bounded() {
        let clock = ManualClock::new(T0);
        let s = store(&clock, 4, 2);
        let first = s.issue(holder(1)).unwrap();
        s.issue(holder(1)).unwrap();
        clock.advance(10_000_000);
        for t in 2..=3 {
            s.issue(holder(t)).unwrap();
        }
        assert_eq!(s.issue(holder(5)).unwrap_err(), TicketError::Full { retry_after_secs: 20 });
        assert_eq!(s.waiting(), 4);
        // A token at its own bound replaces its oldest even when the store is full.
        s.issue(holder(1)).unwrap();
        assert_eq!(s.waiting(), 4);
        assert_eq!(s.redeem(&first.ticket), None);
        // Once tickets expire there is room again.
        clock.advance(30_000_000);
        s.issue(holder(5)).unwrap();
        assert_eq!(s.waiting(), 1);
        // A flood from one token never grows the store past its bound.
        let s = TicketStore::new(clock.clone(), Duration::from_secs(30));
        for _ in 0..10_000 {
            s.issue(holder(7)).unwrap();
        }
        assert_eq!(s.waiting(), MAX_PER_TOKEN);
        // Nor does one user's flood from many tokens (logging in again and again).
        for token_id in 100..1_100 {
            s.issue(Holder { token_id, user_id: 99 }).unwrap();
        }
        assert_eq!(s.waiting(), MAX_PER_TOKEN + MAX_PER_USER);
    }

    #[test]
    fn a_user_keeps_their_newest_tickets_only() {
        let clock = ManualClock::new(T0);
        let s = TicketStore::with_bounds(clock.clone(), Duration::from_secs(30), [100, 2, 3]);
        let a = |token_id| Holder { token_id, user_id: 1 };
        let first = s.issue(a(1)).unwrap();
        let second = s.issue(a(2)).unwrap();
        let third = s.issue(a(3)).unwrap();
        let fourth = s.issue(a(4)).unwrap();
        let other = s.issue(Holder { token_id: 9, user_id: 2 }).unwrap();
        assert_eq!(s.waiting(), 4, "three of user 1, one of user 2");
        assert_eq!(s.redeem(&first.ticket), None, "the user's oldest was replaced");
        for t in [&second, &third, &fourth] {
            assert!(s.redeem(&t.ticket).is_some());
        }
        assert!(s.redeem(&other.ticket).is_some());
    }
}
