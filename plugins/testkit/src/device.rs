//! One testkit device: analog points whose values count the reads, a priority array per point, and
//! the faults its configuration asks for.

use crate::config::{Config, Garbage, Stage};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use t3_plugin_abi::export::{Device, Error, Pusher};
use t3_plugin_abi::{
    QUALITY_BAD_CONFIG_ERROR, QUALITY_GOOD, STATUS_INTERNAL, STATUS_INVALID, STATUS_UNREACHABLE, Sample,
};

/// The priorities of a command, 1 (highest) ..= 16.
const PRIORITIES: usize = 16;

/// A session with one simulated device.
#[derive(Debug)]
pub struct TestDevice {
    config: Config,
    /// Successful reads so far: point `i` reads `i + reads` (unless commanded).
    reads: u64,
    /// Each point's priority array; a point reads as its highest set priority, if any.
    commands: Vec<[Option<f64>; PRIORITIES]>,
    requests: u64,
    answered: u64,
    timeouts: u64,
    failures: u64,
    connected: bool,
    /// Samples pushed by the subscription thread.
    pushes: Arc<AtomicU64>,
    subscription: Option<Subscription>,
}

/// Hits the fault the configuration puts in `stage`: a call that never returns, or a panic.
pub fn fault(config: &Config, stage: Stage) {
    if config.hang_in == Some(stage) {
        hang();
    }
    if config.panic_in == Some(stage) {
        panic!("testkit: panic_in = {}", stage.name());
    }
}

/// Blocks the calling thread for good (`park` may return spuriously, so it parks again).
fn hang() -> ! {
    loop {
        std::thread::park();
    }
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

impl TestDevice {
    pub fn new(config: Config) -> TestDevice {
        TestDevice {
            commands: vec![[None; PRIORITIES]; config.points as usize],
            config,
            reads: 0,
            requests: 0,
            answered: 0,
            timeouts: 0,
            failures: 0,
            connected: false,
            pushes: Arc::new(AtomicU64::new(0)),
            subscription: None,
        }
    }

    /// The priority array of a command's point, after checking the point and the priority.
    fn slot(&mut self, point: u32, priority: u8) -> Result<&mut Option<f64>, Error> {
        let points = self.config.points;
        let array = self.commands.get_mut(point as usize).ok_or_else(|| {
            Error::new(STATUS_INVALID, format!("no point {point}: the device has points 0 to {}", points - 1))
        })?;
        if !(1..=PRIORITIES as u8).contains(&priority) {
            return Err(Error::new(STATUS_INVALID, format!("priority {priority} is not 1 to 16")));
        }
        Ok(&mut array[usize::from(priority) - 1])
    }

    /// Counts a command's outcome.
    fn count<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        self.requests += 1;
        match &result {
            Ok(_) => {
                self.answered += 1;
                self.connected = true;
            }
            Err(_) => self.failures += 1,
        }
        result
    }
}

impl Device for TestDevice {
    fn points(&mut self) -> Result<String, Error> {
        fault(&self.config, Stage::Points);
        self.requests += 1;
        self.answered += 1;
        self.connected = true;
        Ok(match self.config.garbage_in {
            // Cut off in the middle of the first point: not JSON.
            Some(Garbage::Points) => "[{\"name\": \"P0\", \"kind\": \"analog\", \"units\": ".to_owned(),
            // JSON, but an object where a list of points belongs.
            Some(Garbage::PointsShape) => json!({"points": ["P0"], "kind": "analog"}).to_string(),
            _ => {
                let points: Vec<_> = (0..self.config.points)
                    .map(|i| {
                        json!({
                            "name": format!("P{i}"),
                            "description": format!("Testkit point {i}: {i} plus the number of reads"),
                            "kind": "analog",
                            "units": "",
                            "writable": true,
                            "min": null,
                            "max": null,
                            "states": [],
                            "address": format!("testkit,{i}"),
                            "class": "variable",
                        })
                    })
                    .collect();
                serde_json::Value::Array(points).to_string()
            }
        })
    }

    fn read(&mut self, points: &[u32], out: &mut [Sample]) -> Result<(), Error> {
        fault(&self.config, Stage::Read);
        self.requests += 1;
        if self.config.fail_reads_after.is_some_and(|n| self.reads >= n) {
            self.timeouts += 1;
            self.connected = false;
            return Err(Error::new(
                STATUS_UNREACHABLE,
                format!("testkit device \"{}\" did not answer (fail_reads_after = {})", self.config.name, self.reads),
            ));
        }
        self.reads += 1;
        self.answered += 1;
        self.connected = true;
        let ts_us = now_us();
        for (sample, &point) in out.iter_mut().zip(points) {
            sample.ts_us = ts_us;
            match self.commands.get(point as usize) {
                Some(array) => {
                    sample.value =
                        array.iter().flatten().next().copied().unwrap_or(f64::from(point) + self.reads as f64);
                    sample.quality = QUALITY_GOOD;
                }
                None => sample.quality = QUALITY_BAD_CONFIG_ERROR,
            }
        }
        if self.config.garbage_in == Some(Garbage::Read) {
            // Even slots name a point past the list, odd ones a point that was not asked for there.
            let n = self.config.points;
            for (i, (sample, &point)) in out.iter_mut().zip(points).enumerate() {
                sample.point = if i % 2 == 0 {
                    n.saturating_add(i as u32)
                } else if n > 1 {
                    (point % n + 1) % n
                } else {
                    u32::MAX
                };
            }
        }
        Ok(())
    }

    fn write(&mut self, point: u32, value: f64, priority: u8) -> Result<(), Error> {
        fault(&self.config, Stage::Write);
        let result = self.slot(point, priority).and_then(|slot| {
            if !value.is_finite() {
                return Err(Error::new(STATUS_INVALID, format!("{value} is not a finite number")));
            }
            *slot = Some(value);
            Ok(())
        });
        self.count(result)
    }

    fn relinquish(&mut self, point: u32, priority: u8) -> Result<(), Error> {
        let result = self.slot(point, priority).map(|slot| *slot = None);
        self.count(result)
    }

    fn health(&mut self) -> String {
        fault(&self.config, Stage::Health);
        json!({
            "connected": self.connected,
            "requests": self.requests,
            "answered": self.answered,
            "timeouts": self.timeouts,
            "failures": self.failures,
            "reads": self.reads,
            "pushes": self.pushes.load(Ordering::Relaxed),
        })
        .to_string()
    }

    fn subscribe(&mut self, points: &[u32], push: Pusher) -> Result<(), Error> {
        if !self.config.subscribe {
            return Err(Error::unsupported("subscribing (this device has subscribe = false)"));
        }
        if let Some(&bad) = points.iter().find(|&&p| p >= self.config.points) {
            return Err(Error::new(
                STATUS_INVALID,
                format!("no point {bad}: the device has points 0 to {}", self.config.points - 1),
            ));
        }
        // A new subscription replaces the old one, whose thread has stopped when this returns.
        self.subscription = None;
        self.subscription =
            Some(Subscription::start(points.to_vec(), push, self.config.push_ms, Arc::clone(&self.pushes))?);
        Ok(())
    }
}

/// A thread that pushes a sample of every subscribed point every `push_ms` until it is dropped;
/// dropping it (with the device, on `close`) stops the thread and waits for it, so nothing is
/// pushed once `close` has returned.
#[derive(Debug)]
struct Subscription {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Subscription {
    fn start(points: Vec<u32>, push: Pusher, push_ms: u64, pushes: Arc<AtomicU64>) -> Result<Subscription, Error> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let interval = Duration::from_millis(push_ms);
        let thread = std::thread::Builder::new()
            .name("testkit-push".into())
            .spawn(move || {
                let (stopped, wake) = &*signal;
                for round in 1u64.. {
                    let guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
                    let (guard, _) =
                        wake.wait_timeout_while(guard, interval, |s| !*s).unwrap_or_else(PoisonError::into_inner);
                    if *guard {
                        return;
                    }
                    drop(guard);
                    let ts_us = now_us();
                    let samples: Vec<Sample> = points
                        .iter()
                        .map(|&p| Sample { ts_us, ..Sample::new(p, f64::from(p) + round as f64, QUALITY_GOOD) })
                        .collect();
                    push.push(&samples);
                    pushes.fetch_add(samples.len() as u64, Ordering::Relaxed);
                }
            })
            .map_err(|e| Error::new(STATUS_INTERNAL, format!("cannot start the push thread: {e}")))?;
        Ok(Subscription { stop, thread: Some(thread) })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
