//! The source of time. Production uses the system clock; tests use [`ManualClock`].

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Current time in microseconds since the Unix epoch, UTC.
pub trait Clock: Debug + Send + Sync + 'static {
    fn now_us(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> i64 {
        chrono::Utc::now().timestamp_micros()
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_us: i64) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(now_us)))
    }

    pub fn set(&self, now_us: i64) {
        self.0.store(now_us, Ordering::SeqCst);
    }

    pub fn advance(&self, us: i64) {
        self.0.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
