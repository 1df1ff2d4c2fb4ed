//! Write-ahead log: append-only segments of CRC-checked records, group commit, replay.
//!
//! # Format
//! A segment is `wal/<seq, 20 digits>.wal`: a 16-byte header (`T3WAL001` then the segment's
//! sequence number, u64 little-endian) followed by records. A record is
//! `[payload length: u32 LE][CRC32C of payload: u32 LE][payload]`; a payload is a kind byte (1 =
//! samples), a u32 sample count and that many 21-byte samples
//! (`point_id u32, ts i64, value f64 bits, quality u8`, all little-endian).
//!
//! # Group commit
//! One thread owns the open segment. It takes the first queued append, gathers every append already
//! queued behind it (up to `group_commit_max_bytes`, and for at most `group_commit_max_delay` while
//! appends keep arriving), writes them, fsyncs once, hands the samples to the [`CommitSink`] (the
//! write buffer) and only then acknowledges them. An idle log therefore acknowledges after one
//! fsync; a busy one amortises each fsync over everything that arrived during the previous one.
//!
//! # Failure
//! A failed write or fsync poisons the log: that group and every later append are refused.
//! PostgreSQL learned this the hard way ("fsyncgate"): after a failed fsync the kernel may have
//! dropped the dirty pages, so a retry that succeeds proves nothing.
//!
//! Failing to *create* a segment (no file descriptors, a full disk) loses nothing: every
//! acknowledged record is already fsynced in an earlier segment. The log then refuses writes with
//! a retryable error ([`Error::WalUnavailable`]) and tries again at the next append and every
//! `retry_interval`, and takes writes again as soon as a segment can be created. This is also
//! how the log starts on a full disk: read-only, until space returns.

use crate::error::{Error, Result};
use crate::metrics::Histogram;
use crate::vfs::{VFile, Vfs};
use parking_lot::Mutex;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use t3_core::{PointId, Quality, Sample};
use tokio::sync::oneshot;

const MAGIC: &[u8; 8] = b"T3WAL001";
const HEADER_LEN: usize = 16;
const RECORD_HEADER_LEN: usize = 8;
const KIND_SAMPLES: u8 = 1;
/// Bytes of one encoded sample.
pub const SAMPLE_LEN: usize = 21;

/// Where the committed samples go, in commit order. Called on the WAL thread.
pub trait CommitSink: Send + Sync + 'static {
    /// These samples are durable in the WAL.
    fn committed(&self, samples: &[Sample]);
    /// Segment `closed` is complete; every sample committed so far lies in segments `<= closed`.
    /// Called with no append in between, so the sink can cut its buffer at exactly this point.
    fn rotated(&self, closed: u64);
}

/// Settings of the log.
#[derive(Debug, Clone)]
pub struct WalOptions {
    pub dir: PathBuf,
    pub group_commit_max_delay: Duration,
    pub group_commit_max_bytes: usize,
    pub segment_bytes: u64,
    /// While no segment can be created (see [Failure](self#failure)), how often the log tries again
    /// on its own, so that it takes writes again without waiting for one.
    pub retry_interval: Duration,
    /// Records each group commit's latency: from the start of its write to the end of its fsync.
    pub commit_seconds: Arc<Histogram>,
}

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// Lists the segments in `dir` as (sequence number, path), oldest first. Other files are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = name.strip_suffix(".wal").and_then(|s| s.parse::<u64>().ok()) {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes segments a crash left half-created (`*.wal.tmp`: never renamed into place, so they
/// hold no record).
fn remove_partial_segments(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        if entry.file_name().to_str().is_some_and(|n| n.ends_with(".wal.tmp")) {
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing a WAL segment a crash left half-created");
            fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
    }
    Ok(())
}

pub fn encode_samples(samples: &[Sample], out: &mut Vec<u8>) {
    out.reserve(samples.len() * SAMPLE_LEN);
    for s in samples {
        out.extend_from_slice(&s.point_id.0.to_le_bytes());
        out.extend_from_slice(&s.ts.to_le_bytes());
        out.extend_from_slice(&s.value.to_bits().to_le_bytes());
        out.push(s.quality.0);
    }
}

pub fn decode_samples(bytes: &[u8], out: &mut Vec<Sample>) {
    for c in bytes.chunks_exact(SAMPLE_LEN) {
        out.push(Sample {
            point_id: PointId(u32::from_le_bytes(c[0..4].try_into().unwrap())),
            ts: i64::from_le_bytes(c[4..12].try_into().unwrap()),
            value: f64::from_bits(u64::from_le_bytes(c[12..20].try_into().unwrap())),
            quality: Quality(c[20]),
        });
    }
}

fn encode_record(samples: &[Sample], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER_LEN]);
    out.push(KIND_SAMPLES);
    out.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    encode_samples(samples, out);
    let payload = &out[start + RECORD_HEADER_LEN..];
    let len = payload.len() as u32;
    let crc = crc32c::crc32c(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What replay found in one segment.
#[derive(Debug, Default)]
pub struct SegmentReplay {
    pub seq: u64,
    pub path: PathBuf,
    pub records: usize,
    pub samples: Vec<Sample>,
    /// Bytes after the valid prefix that were not replayed.
    pub dropped_bytes: u64,
    /// Why replay stopped early, if it did.
    pub problem: Option<String>,
}

/// Reads one segment, keeping its longest valid prefix. Never fails on bad content.
pub fn replay_segment(seq: u64, path: &Path) -> Result<SegmentReplay> {
    let bytes = fs::read(path).map_err(|e| Error::io("read WAL segment", path, e))?;
    let mut out = SegmentReplay { seq, path: path.to_owned(), ..Default::default() };
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        out.dropped_bytes = bytes.len() as u64;
        out.problem = Some(format!("truncated or unrecognised segment header ({} bytes)", bytes.len()));
        return Ok(out);
    }
    let header_seq = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    if header_seq != seq {
        out.dropped_bytes = bytes.len() as u64;
        out.problem = Some(format!("header names segment {header_seq}, file name says {seq}"));
        return Ok(out);
    }
    let mut pos = HEADER_LEN;
    while pos < bytes.len() {
        let rest = bytes.len() - pos;
        let problem = if rest < RECORD_HEADER_LEN {
            Some(format!("torn record header at offset {pos}"))
        } else {
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
            if len > rest - RECORD_HEADER_LEN {
                Some(format!("torn record at offset {pos}: {len} bytes announced, {} present", rest - 8))
            } else {
                let payload = &bytes[pos + RECORD_HEADER_LEN..pos + RECORD_HEADER_LEN + len];
                if crc32c::crc32c(payload) != crc {
                    Some(format!("checksum mismatch in record at offset {pos}"))
                } else if len < 5
                    || payload[0] != KIND_SAMPLES
                    || u32::from_le_bytes(payload[1..5].try_into().unwrap()) as usize * SAMPLE_LEN != len - 5
                {
                    Some(format!("malformed record at offset {pos}"))
                } else {
                    decode_samples(&payload[5..], &mut out.samples);
                    out.records += 1;
                    pos += RECORD_HEADER_LEN + len;
                    None
                }
            }
        };
        if let Some(p) = problem {
            out.dropped_bytes = (bytes.len() - pos) as u64;
            out.problem = Some(p);
            break;
        }
    }
    Ok(out)
}

enum Cmd {
    Append { samples: Vec<Sample>, ack: oneshot::Sender<Result<()>> },
    Rotate { ack: oneshot::Sender<Result<u64>> },
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cmd::Append { samples, .. } => write!(f, "Append({})", samples.len()),
            Cmd::Rotate { .. } => write!(f, "Rotate"),
        }
    }
}

/// Whether the log takes writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteState {
    /// It does.
    Ok,
    /// No segment can be created now (no file descriptors, a full disk): writes are refused with a
    /// retryable error while the log keeps trying. Nothing acknowledged is at risk.
    Unavailable(String),
    /// A write or fsync failed: writes are refused until the process restarts.
    Poisoned(String),
}

/// The reasons the log refuses writes; shared by the handles and the WAL thread.
#[derive(Debug, Default)]
struct Status {
    poison: Mutex<Option<String>>,
    unavailable: Mutex<Option<String>>,
}

/// Handle to the WAL thread. Dropping every handle stops the thread after it has drained its queue.
#[derive(Debug, Clone)]
pub struct Wal {
    tx: mpsc::Sender<Cmd>,
    status: Arc<Status>,
}

impl Wal {
    /// Starts the WAL thread writing new segments from `first_seq` on in `opts.dir`. If the first
    /// segment cannot be created (a full disk), the log starts unavailable (see
    /// [`WriteState::Unavailable`]) and keeps trying; only failing to start the thread is an error.
    pub fn start(
        opts: WalOptions,
        vfs: Arc<dyn Vfs>,
        first_seq: u64,
        sink: Arc<dyn CommitSink>,
    ) -> Result<(Self, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel();
        let status = Arc::new(Status::default());
        let mut writer =
            Writer { opts, vfs, segment: None, next_seq: first_seq, rx, sink, status: status.clone(), buf: Vec::new() };
        if let Err(why) = writer.prepare_dir().and_then(|()| writer.ensure_segment()) {
            tracing::warn!(error = %why, "the WAL cannot create its segment: starting read-only, retrying every {:?}", writer.opts.retry_interval);
        }
        let handle = std::thread::Builder::new()
            .name("t3-wal".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::Internal(format!("spawn WAL thread: {e}")))?;
        Ok((Wal { tx, status }, handle))
    }

    /// Appends samples; resolves once they are fsynced and in the write buffer.
    pub async fn append(&self, samples: Vec<Sample>) -> Result<()> {
        if let Some(why) = self.poisoned() {
            return Err(Error::Poisoned(why));
        }
        let (ack, rx) = oneshot::channel();
        self.tx.send(Cmd::Append { samples, ack }).map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Closes the current segment and opens the next; returns the closed segment's number.
    pub async fn rotate(&self) -> Result<u64> {
        let (ack, rx) = oneshot::channel();
        self.tx.send(Cmd::Rotate { ack }).map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// The reason the log is poisoned, if it is.
    pub fn poisoned(&self) -> Option<String> {
        self.status.poison.lock().clone()
    }

    /// Whether the log takes writes, and if not why.
    pub fn state(&self) -> WriteState {
        if let Some(why) = self.poisoned() {
            return WriteState::Poisoned(why);
        }
        match self.status.unavailable.lock().clone() {
            Some(why) => WriteState::Unavailable(why),
            None => WriteState::Ok,
        }
    }
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    file: Box<dyn VFile>,
    len: u64,
}

impl Segment {
    /// Creates segment `seq` with its header under a temporary name and renames it into place, so
    /// that a crash never leaves a segment without its header (a kill between creating the file and
    /// writing the header once left an empty `.wal` that recovery had to quarantine). On failure
    /// the temporary file is removed.
    fn create(vfs: &dyn Vfs, dir: &Path, seq: u64) -> Result<Self> {
        let path = segment_path(dir, seq);
        let tmp = path.with_extension("wal.tmp");
        let result = (|| {
            let mut file = vfs.create(&tmp).map_err(|e| Error::io("create WAL segment", &tmp, e))?;
            let mut header = Vec::with_capacity(HEADER_LEN);
            header.extend_from_slice(MAGIC);
            header.extend_from_slice(&seq.to_le_bytes());
            file.write_all(&header).map_err(|e| Error::io("write WAL header", &tmp, e))?;
            file.sync().map_err(|e| Error::io("fsync WAL segment", &tmp, e))?;
            vfs.rename(&tmp, &path).map_err(|e| Error::io("rename WAL segment", &path, e))?;
            // The new file's directory entry must be durable too, or a power cut could lose the segment.
            vfs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
            Ok(file)
        })();
        match result {
            Ok(file) => Ok(Segment { seq, file, len: HEADER_LEN as u64 }),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

struct Writer {
    opts: WalOptions,
    vfs: Arc<dyn Vfs>,
    /// The segment being written; `None` until one could be created.
    segment: Option<Segment>,
    /// The number the next segment gets.
    next_seq: u64,
    rx: mpsc::Receiver<Cmd>,
    sink: Arc<dyn CommitSink>,
    status: Arc<Status>,
    buf: Vec<u8>,
}

impl Writer {
    fn run(&mut self) {
        let mut next: Option<Cmd> = None;
        loop {
            let cmd = match next.take() {
                Some(c) => c,
                // While no usable segment exists, try again every `retry_interval`, so the log
                // takes writes again (and says so) without waiting for a write to try.
                None if self.needs_segment() => match self.rx.recv_timeout(self.opts.retry_interval) {
                    Ok(c) => c,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        let _ = self.prepare_dir().and_then(|()| self.ensure_segment());
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                },
                None => match self.rx.recv() {
                    Ok(c) => c,
                    Err(_) => return,
                },
            };
            match cmd {
                Cmd::Rotate { ack } => {
                    let _ = ack.send(self.rotate());
                }
                Cmd::Append { samples, ack } => {
                    let mut group = vec![(samples, ack)];
                    let deadline = Instant::now() + self.opts.group_commit_max_delay;
                    let mut bytes = group[0].0.len() * SAMPLE_LEN;
                    while bytes < self.opts.group_commit_max_bytes && Instant::now() < deadline {
                        match self.rx.try_recv() {
                            Ok(Cmd::Append { samples, ack }) => {
                                bytes += samples.len() * SAMPLE_LEN;
                                group.push((samples, ack));
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(group);
                }
            }
        }
    }

    fn poisoned(&self) -> Option<String> {
        self.status.poison.lock().clone()
    }

    fn set_poison(&self, why: String) {
        tracing::error!(error = %why, "WAL poisoned: refusing all writes until restart");
        *self.status.poison.lock() = Some(why);
    }

    /// Whether the next write needs a new segment first (none yet, or the current one is full).
    fn needs_segment(&self) -> bool {
        self.poisoned().is_none() && self.segment.as_ref().is_none_or(|s| s.len >= self.opts.segment_bytes)
    }

    /// The WAL folder exists and holds no half-created segment.
    fn prepare_dir(&self) -> std::result::Result<(), String> {
        if self.segment.is_some() {
            return Ok(());
        }
        let result = fs::create_dir_all(&self.opts.dir)
            .map_err(|e| Error::io("create directory", &self.opts.dir, e))
            .and_then(|()| remove_partial_segments(&self.opts.dir));
        result.map_err(|e| self.set_unavailable(e.to_string()))
    }

    /// Creates the next segment if the next write needs one. A failure loses nothing (every
    /// acknowledged record is fsynced in an earlier segment): the log is unavailable until a later
    /// attempt succeeds.
    fn ensure_segment(&mut self) -> std::result::Result<(), String> {
        if !self.needs_segment() {
            return Ok(());
        }
        match Segment::create(&*self.vfs, &self.opts.dir, self.next_seq) {
            Ok(segment) => {
                self.segment = Some(segment);
                self.next_seq += 1;
                if self.status.unavailable.lock().take().is_some() {
                    tracing::info!("the WAL can create segments again: writes are accepted");
                }
                Ok(())
            }
            Err(e) => Err(self.set_unavailable(e.to_string())),
        }
    }

    fn set_unavailable(&self, why: String) -> String {
        let mut current = self.status.unavailable.lock();
        if current.as_deref() != Some(why.as_str()) {
            tracing::warn!(error = %why, "the WAL cannot create a segment: writes are refused and retried");
        }
        *current = Some(why.clone());
        why
    }

    fn commit(&mut self, group: Vec<(Vec<Sample>, oneshot::Sender<Result<()>>)>) {
        if let Some(why) = self.poisoned() {
            for (_, ack) in group {
                let _ = ack.send(Err(Error::Poisoned(why.clone())));
            }
            return;
        }
        if let Err(why) = self.prepare_dir().and_then(|()| self.ensure_segment()) {
            for (_, ack) in group {
                let _ = ack.send(Err(Error::WalUnavailable(why.clone())));
            }
            return;
        }
        let Some(segment) = self.segment.as_mut() else {
            unreachable!("ensure_segment succeeded, so a segment is open")
        };
        self.buf.clear();
        for (samples, _) in &group {
            encode_record(samples, &mut self.buf);
        }
        let path = segment_path(&self.opts.dir, segment.seq);
        let started = Instant::now();
        let result = segment
            .file
            .write_all(&self.buf)
            .map_err(|e| format!("write {}: {e}", path.display()))
            .and_then(|_| segment.file.sync().map_err(|e| format!("fsync {}: {e}", path.display())));
        if let Err(why) = result {
            self.set_poison(why.clone());
            for (_, ack) in group {
                let _ = ack.send(Err(Error::Poisoned(why.clone())));
            }
            return;
        }
        self.opts.commit_seconds.observe(started.elapsed());
        segment.len += self.buf.len() as u64;
        for (samples, _) in &group {
            self.sink.committed(samples);
        }
        for (_, ack) in group {
            let _ = ack.send(Ok(()));
        }
        // Roll over now rather than in the next write's latency; if it fails the next write
        // tries again (and is refused if it fails again).
        let _ = self.ensure_segment();
    }

    fn rotate(&mut self) -> Result<u64> {
        if let Some(why) = self.poisoned() {
            return Err(Error::Poisoned(why));
        }
        let closed = match &self.segment {
            // Nothing was written since start-up: every sample committed so far lies in earlier
            // segments, so the cut can be made without a new one.
            None => self.next_seq - 1,
            Some(_) => {
                // A failure here only postpones the cut: writes go on into the current segment.
                let segment = Segment::create(&*self.vfs, &self.opts.dir, self.next_seq)
                    .map_err(|e| Error::WalUnavailable(e.to_string()))?;
                self.next_seq += 1;
                let old = self.segment.replace(segment).map_or(0, |s| s.seq);
                if self.status.unavailable.lock().take().is_some() {
                    tracing::info!("the WAL can create segments again: writes are accepted");
                }
                old
            }
        };
        self.sink.rotated(closed);
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{FaultyFs, RealFs};

    #[derive(Default)]
    struct Collect(Mutex<Vec<Sample>>, Mutex<Vec<u64>>);
    impl CommitSink for Collect {
        fn committed(&self, s: &[Sample]) {
            self.0.lock().extend_from_slice(s);
        }
        fn rotated(&self, closed: u64) {
            self.1.lock().push(closed);
        }
    }

    fn opts(dir: &Path) -> WalOptions {
        WalOptions {
            dir: dir.to_owned(),
            group_commit_max_delay: Duration::from_millis(100),
            group_commit_max_bytes: 1 << 20,
            segment_bytes: 1 << 20,
            retry_interval: Duration::from_millis(20),
            commit_seconds: Arc::default(),
        }
    }

    fn samples(n: u32, base: i64) -> Vec<Sample> {
        (0..n).map(|i| Sample::good(i, base + i as i64, i as f64 * 0.5)).collect()
    }

    #[tokio::test]
    async fn append_then_replay_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Collect::default());
        let o = opts(dir.path());
        let commits = o.commit_seconds.clone();
        let (wal, th) = Wal::start(o, Arc::new(RealFs), 1, sink.clone()).unwrap();
        wal.append(samples(10, 0)).await.unwrap();
        wal.append(samples(5, 100)).await.unwrap();
        assert_eq!(wal.rotate().await.unwrap(), 1);
        wal.append(samples(3, 200)).await.unwrap();
        drop(wal);
        th.join().unwrap();
        assert_eq!(commits.snapshot().count, 3, "one group commit per awaited append");
        assert_eq!(sink.0.lock().len(), 18);
        assert_eq!(*sink.1.lock(), vec![1]);
        let segs = list_segments(dir.path()).unwrap();
        assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2]);
        let r1 = replay_segment(1, &segs[0].1).unwrap();
        assert_eq!((r1.records, r1.samples.len(), r1.problem.is_none()), (2, 15, true));
        assert_eq!(r1.samples[..10], samples(10, 0)[..]);
        let r2 = replay_segment(2, &segs[1].1).unwrap();
        assert_eq!(r2.samples, samples(3, 200));
    }

    #[tokio::test]
    async fn segments_appear_with_their_header_and_half_created_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // What a kill between creating a segment and renaming it into place leaves.
        fs::write(segment_path(dir.path(), 4).with_extension("wal.tmp"), b"").unwrap();
        let (wal, th) = Wal::start(opts(dir.path()), Arc::new(RealFs), 5, Arc::new(Collect::default())).unwrap();
        wal.append(samples(2, 0)).await.unwrap();
        drop(wal);
        th.join().unwrap();
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, vec![format!("{:020}.wal", 5)], "no temporary file is left");
        let segs = list_segments(dir.path()).unwrap();
        let r = replay_segment(5, &segs[0].1).unwrap();
        assert_eq!((r.samples.len(), r.problem), (2, None));
    }

    fn write_segment(dir: &Path, batches: &[Vec<Sample>]) -> PathBuf {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&7u64.to_le_bytes());
        for b in batches {
            encode_record(b, &mut bytes);
        }
        let p = segment_path(dir, 7);
        fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn torn_last_record_keeps_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), &[samples(4, 0), samples(4, 10)]);
        let len = fs::metadata(&p).unwrap().len();
        let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 3).unwrap();
        let r = replay_segment(7, &p).unwrap();
        assert_eq!(r.samples, samples(4, 0));
        assert!(r.problem.unwrap().contains("torn record"));
        assert_eq!(r.dropped_bytes, (8 + 5 + 4 * SAMPLE_LEN - 3) as u64);
    }

    #[test]
    fn flipped_bit_stops_at_the_bad_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), &[samples(4, 0), samples(4, 10), samples(4, 20)]);
        let mut bytes = fs::read(&p).unwrap();
        let second = HEADER_LEN + 8 + 5 + 4 * SAMPLE_LEN;
        bytes[second + 8 + 20] ^= 0x10;
        fs::write(&p, bytes).unwrap();
        let r = replay_segment(7, &p).unwrap();
        assert_eq!(r.samples, samples(4, 0));
        assert!(r.problem.unwrap().contains("checksum"));
    }

    #[test]
    fn truncated_header_drops_segment_without_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = segment_path(dir.path(), 3);
        fs::write(&p, &MAGIC[..5]).unwrap();
        let r = replay_segment(3, &p).unwrap();
        assert!(r.samples.is_empty());
        assert!(r.problem.unwrap().contains("header"));
        let torn_rec = write_segment(dir.path(), &[samples(2, 0)]);
        let mut b = fs::read(&torn_rec).unwrap();
        b.extend_from_slice(&[1, 2, 3]);
        fs::write(&torn_rec, b).unwrap();
        let r = replay_segment(7, &torn_rec).unwrap();
        assert_eq!(r.samples.len(), 2);
        assert!(r.problem.unwrap().contains("torn record header"));
    }

    #[tokio::test]
    async fn fsync_failure_poisons_and_acks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::default();
        let sink = Arc::new(Collect::default());
        let (wal, _th) = Wal::start(opts(dir.path()), Arc::new(fs.clone()), 1, sink.clone()).unwrap();
        wal.append(samples(2, 0)).await.unwrap();
        fs.faults.set_fail_syncs(true);
        assert!(matches!(wal.append(samples(2, 10)).await, Err(Error::Poisoned(_))));
        fs.faults.set_fail_syncs(false);
        // Healing the disk does not un-poison: the earlier failure may have lost pages.
        assert!(matches!(wal.append(samples(2, 20)).await, Err(Error::Poisoned(_))));
        assert!(wal.rotate().await.is_err());
        assert!(matches!(wal.state(), WriteState::Poisoned(_)));
        assert_eq!(sink.0.lock().len(), 2, "only the acknowledged samples reached the buffer");
    }

    #[tokio::test]
    async fn write_failure_poisons() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::default();
        let sink = Arc::new(Collect::default());
        let (wal, _th) = Wal::start(opts(dir.path()), Arc::new(fs.clone()), 1, sink.clone()).unwrap();
        fs.faults.set_fail_writes(true);
        assert!(matches!(wal.append(samples(2, 10)).await, Err(Error::Poisoned(_))));
        assert!(wal.poisoned().unwrap().contains("write"));
        assert!(sink.0.lock().is_empty());
    }

    #[tokio::test]
    async fn no_descriptors_at_roll_over_refuses_that_batch_and_the_next_append_retries() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::default();
        let mut o = opts(dir.path());
        o.segment_bytes = 1000;
        // No retry on its own during the test: the next append must retry by itself.
        o.retry_interval = Duration::from_secs(3600);
        let sink = Arc::new(Collect::default());
        let (wal, th) = Wal::start(o, Arc::new(fs.clone()), 1, sink.clone()).unwrap();
        wal.append(samples(30, 0)).await.unwrap();
        fs.faults.set_no_descriptors(true);
        // This one fills segment 1; creating segment 2 fails with EMFILE after it is acknowledged.
        wal.append(samples(30, 100)).await.unwrap();
        let err = wal.append(samples(30, 200)).await.unwrap_err();
        assert!(matches!(err, Error::WalUnavailable(_)), "{err}");
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("Too many open files"), "{err}");
        assert!(matches!(wal.state(), WriteState::Unavailable(_)));
        assert!(wal.poisoned().is_none(), "nothing was lost: no poison");
        assert!(wal.rotate().await.unwrap_err().is_retryable(), "a buffer cut waits too");
        fs.faults.set_no_descriptors(false);
        wal.append(samples(30, 300)).await.unwrap();
        assert_eq!(wal.state(), WriteState::Ok);
        drop(wal);
        th.join().unwrap();
        let got: Vec<Sample> = list_segments(dir.path())
            .unwrap()
            .iter()
            .flat_map(|(s, p)| replay_segment(*s, p).unwrap().samples)
            .collect();
        let want: Vec<Sample> = [samples(30, 0), samples(30, 100), samples(30, 300)].concat();
        assert_eq!(got, want, "everything acknowledged, nothing refused");
        assert_eq!(*sink.0.lock(), want);
    }

    #[tokio::test]
    async fn a_log_that_cannot_create_its_segment_starts_read_only_and_recovers_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::default();
        fs.faults.set_fail_creates(true);
        let sink = Arc::new(Collect::default());
        let (wal, th) = Wal::start(opts(dir.path()), Arc::new(fs.clone()), 4, sink.clone()).unwrap();
        let WriteState::Unavailable(why) = wal.state() else { panic!("{:?}", wal.state()) };
        assert!(why.contains("create WAL segment"), "{why}");
        assert!(matches!(wal.append(samples(1, 0)).await, Err(Error::WalUnavailable(_))));
        // A cut needs no segment while none was written: everything is in segments before 4.
        assert_eq!(wal.rotate().await.unwrap(), 3);
        assert!(list_segments(dir.path()).unwrap().is_empty());
        fs.faults.set_fail_creates(false);
        let deadline = Instant::now() + Duration::from_secs(10);
        while wal.state() != WriteState::Ok {
            assert!(Instant::now() < deadline, "still {:?}", wal.state());
            std::thread::sleep(Duration::from_millis(5));
        }
        wal.append(samples(2, 0)).await.unwrap();
        drop(wal);
        th.join().unwrap();
        let segs = list_segments(dir.path()).unwrap();
        assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), vec![4]);
        assert_eq!(replay_segment(4, &segs[0].1).unwrap().samples, samples(2, 0));
    }

    #[tokio::test]
    async fn segments_roll_over_at_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.segment_bytes = 1000;
        let sink = Arc::new(Collect::default());
        let (wal, th) = Wal::start(o, Arc::new(RealFs), 1, sink.clone()).unwrap();
        for i in 0..5 {
            wal.append(samples(30, i * 100)).await.unwrap();
        }
        drop(wal);
        th.join().unwrap();
        let segs = list_segments(dir.path()).unwrap();
        // Two 643-byte records fill a 1000-byte segment: 2 + 2 + 1.
        assert_eq!(segs.len(), 3, "{segs:?}");
        let total: usize = segs.iter().map(|(s, p)| replay_segment(*s, p).unwrap().samples.len()).sum();
        assert_eq!(total, 150);
        assert!(sink.1.lock().is_empty(), "size roll-over is not a buffer cut");
    }
}
