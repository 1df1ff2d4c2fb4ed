//! Write-ahead log: append-only segments of CRC-checked records, group commit, replay.
//!
//! # Format
//! A segment is `wal/<seq, 20 digits>.wal`: a 16-byte header, then records.
//!
//! Version 2 (written now): the header is `T3W2`, a random 32-bit salt and the segment's sequence
//! number (u64); a record is a 24-byte header and its payload:
//!
//! ```text
//! 0   marker      B7 'T' '3' 'R'
//! 4   length      u32, payload bytes
//! 8   count       u32, samples in the payload
//! 12  kind        u8 (1 = samples), then 3 zero bytes
//! 16  header CRC  CRC32C of the segment's salt and sequence number, then bytes 0..16
//! 20  payload CRC CRC32C of the payload
//! 24  payload     `count` 21-byte samples (`point_id u32, ts i64, value f64 bits, quality u8`)
//! ```
//!
//! All integers are little-endian. The marker and the header checksum let replay find the next
//! record after a damaged one (see [Replay](#replay)); binding the header checksum to the segment
//! (salt and number) means a record can only be found in the segment that wrote it, never in stale
//! blocks of another file, and never in sample values crafted to look like a record. A batch is
//! written as records of at most [`MAX_RECORD_SAMPLES`] samples, so one damaged byte costs at most
//! one record.
//!
//! Version 1 (`T3WAL001`, read only): the header is the magic and the sequence number; a record is
//! `[payload length: u32][CRC32C of payload: u32][payload]`, the payload a kind byte, a u32 sample
//! count and the samples.
//!
//! # Replay
//! [`replay_segment`] keeps every valid record. After a damaged stretch it resynchronises on the
//! next place where a valid record starts (version 2: marker, header checksum, then payload
//! checksum; version 1: a length, kind and count that agree, then the checksum) and goes on from
//! there. A damaged record whose header is intact costs exactly its own samples, counted from that
//! header; where the header itself is damaged the count is unknown and only an upper bound (from
//! the damaged bytes) can be given. A record cut short at the end of the file is a *torn tail*,
//! what a crash during a write leaves (a write is acknowledged only once it is complete and
//! fsynced): expected, and reported as such.
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

const MAGIC_V1: &[u8; 8] = b"T3WAL001";
const MAGIC_V2: &[u8; 4] = b"T3W2";
const HEADER_LEN: usize = 16;
const RECORD_MAGIC: [u8; 4] = [0xB7, b'T', b'3', b'R'];
const RECORD_HEADER_LEN: usize = 24;
const V1_RECORD_HEADER_LEN: usize = 8;
const KIND_SAMPLES: u8 = 1;
/// Bytes of one encoded sample.
pub const SAMPLE_LEN: usize = 21;
/// A batch is written as records of at most this many samples (172 KiB), so that one damaged
/// byte costs at most this many samples.
pub const MAX_RECORD_SAMPLES: usize = 8192;

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

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// The checksum seed that binds record headers to their segment: CRC32C of salt and number.
fn header_seed(salt: u32, seq: u64) -> u32 {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&salt.to_le_bytes());
    b[4..].copy_from_slice(&seq.to_le_bytes());
    crc32c::crc32c(&b)
}

/// A salt for a new segment: unpredictable outside this process (std's randomly keyed hasher,
/// fed the time), which is all it needs to be.
fn new_salt(seq: u64) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(seq);
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish() as u32
}

fn segment_header(salt: u32, seq: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC_V2);
    h[4..8].copy_from_slice(&salt.to_le_bytes());
    h[8..].copy_from_slice(&seq.to_le_bytes());
    h
}

/// Appends `samples` as version-2 records of at most [`MAX_RECORD_SAMPLES`] each.
fn encode_records(seed: u32, samples: &[Sample], out: &mut Vec<u8>) {
    for chunk in samples.chunks(MAX_RECORD_SAMPLES) {
        let start = out.len();
        out.extend_from_slice(&RECORD_MAGIC);
        out.extend_from_slice(&((chunk.len() * SAMPLE_LEN) as u32).to_le_bytes());
        out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        out.extend_from_slice(&[KIND_SAMPLES, 0, 0, 0]);
        let header_crc = crc32c::crc32c_append(seed, &out[start..start + 16]);
        out.extend_from_slice(&header_crc.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        encode_samples(chunk, out);
        let payload_crc = crc32c::crc32c(&out[start + RECORD_HEADER_LEN..]);
        out[start + 20..start + 24].copy_from_slice(&payload_crc.to_le_bytes());
    }
}

/// How many samples a damaged stretch of a segment held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Counted from the record's header, whose checksum is intact: exact.
    Counted(u64),
    /// The header is damaged too, so the count is unknown: at most this many, from the length of
    /// the damaged bytes (every sample takes 21 bytes).
    AtMost(u64),
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lost::Counted(n) => write!(f, "{n} samples (counted from the intact record header)"),
            Lost::AtMost(n) => write!(f, "up to {n} samples (estimated from the length: no intact header counts them)"),
        }
    }
}

/// A stretch of a segment that replay could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset in the segment file.
    pub offset: u64,
    pub bytes: u64,
    pub lost: Lost,
    pub reason: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bytes {}..{}: {}, {}", self.offset, self.offset + self.bytes, self.reason, self.lost)
    }
}

/// What replay found in one segment.
#[derive(Debug, Default)]
pub struct SegmentReplay {
    pub seq: u64,
    pub path: PathBuf,
    /// The segment's format version (1 or 2; 0 if the header is not recognised).
    pub version: u8,
    /// Valid records read.
    pub records: usize,
    /// Their samples, in order.
    pub samples: Vec<Sample>,
    /// Damaged stretches, skipped: replay went on at the next valid record after each.
    pub damaged: Vec<Damage>,
    /// The last write, cut short: what a crash during a write leaves. Expected.
    pub torn_tail: Option<Damage>,
    /// Size and CRC32C of the whole file: names its copy in quarantine (see [`quarantine_copy`]).
    pub fingerprint: (u64, u32),
}

impl SegmentReplay {
    /// Samples lost in damaged records whose header is intact (exact).
    pub fn lost_counted(&self) -> u64 {
        self.damaged.iter().map(|d| if let Lost::Counted(n) = d.lost { n } else { 0 }).sum()
    }

    /// At most this many more samples were lost in records whose header is damaged.
    pub fn lost_at_most(&self) -> u64 {
        self.damaged.iter().map(|d| if let Lost::AtMost(n) = d.lost { n } else { 0 }).sum()
    }

    /// Samples of the torn last write (counted if its header is whole, else an upper bound).
    pub fn torn_samples(&self) -> u64 {
        self.torn_tail.as_ref().map_or(0, |d| match d.lost {
            Lost::Counted(n) | Lost::AtMost(n) => n,
        })
    }

    /// One line for the recovery report, or `None` if the segment was read whole.
    pub fn summary(&self) -> Option<String> {
        if self.damaged.is_empty() && self.torn_tail.is_none() {
            return None;
        }
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut line = format!(
            "WAL segment {} ({name}): kept {} records ({} samples)",
            self.seq,
            self.records,
            self.samples.len()
        );
        if !self.damaged.is_empty() {
            let lost = match (self.lost_counted(), self.lost_at_most()) {
                (0, 0) => "lost no samples".to_owned(),
                (c, 0) => format!("lost {c} samples (counted from intact record headers)"),
                (0, m) => {
                    format!("lost up to {m} samples (estimated from the length of records with a damaged header)")
                }
                (c, m) => format!(
                    "lost {c} samples (counted from intact record headers) and up to {m} more (estimated from \
                     the length of records with a damaged header)"
                ),
            };
            let stretches: Vec<String> = self.damaged.iter().map(Damage::to_string).collect();
            line.push_str(&format!(
                "; {lost} in {} damaged stretch(es), each skipped to the next valid record: {}",
                self.damaged.len(),
                stretches.join("; ")
            ));
        }
        if let Some(t) = &self.torn_tail {
            line.push_str(&format!(
                "; torn tail (the last write was cut short, as a crash leaves it; a write is acknowledged \
                 only once complete and fsynced) {t}"
            ));
        }
        Some(line)
    }
}

/// How one segment's records are framed.
#[derive(Debug, Clone, Copy)]
enum Framing {
    V1,
    /// `seed`: see [`header_seed`].
    V2 {
        seed: u32,
    },
}

/// What starts at an offset of a segment.
#[derive(Debug)]
enum Probe {
    /// A whole, valid record ending at `end`.
    Valid { end: usize },
    /// Header intact, payload damaged; the record ends at `end`.
    BadPayload { end: usize, count: u64 },
    /// Header intact, but the record runs past the end of the file.
    Cut { count: u64 },
    /// No record starts here.
    Invalid(String),
}

impl Framing {
    fn record_header_len(self) -> usize {
        match self {
            Framing::V1 => V1_RECORD_HEADER_LEN,
            Framing::V2 { .. } => RECORD_HEADER_LEN,
        }
    }

    fn probe(self, b: &[u8], pos: usize) -> Probe {
        let rest = b.len() - pos;
        let header = self.record_header_len();
        if rest < header {
            return Probe::Invalid(format!("torn record header ({rest} of {header} bytes)"));
        }
        match self {
            Framing::V1 => {
                let len = u32_at(b, pos) as usize;
                if len > rest - header {
                    return Probe::Invalid(format!("record announces {len} bytes, {} present", rest - header));
                }
                // The cheap checks first: replay tries this at every offset of a damaged stretch.
                let payload = &b[pos + header..pos + header + len];
                if len < 5 || payload[0] != KIND_SAMPLES || u32_at(payload, 1) as usize * SAMPLE_LEN != len - 5 {
                    return Probe::Invalid("malformed record (length, kind and count disagree)".into());
                }
                if crc32c::crc32c(payload) != u32_at(b, pos + 4) {
                    return Probe::Invalid("checksum mismatch".into());
                }
                Probe::Valid { end: pos + header + len }
            }
            Framing::V2 { seed } => {
                let h = &b[pos..pos + header];
                if h[..4] != RECORD_MAGIC {
                    return Probe::Invalid("no record marker".into());
                }
                if crc32c::crc32c_append(seed, &h[..16]) != u32_at(h, 16) {
                    return Probe::Invalid("record header checksum mismatch".into());
                }
                let (len, count) = (u32_at(h, 4) as usize, u64::from(u32_at(h, 8)));
                if h[12] != KIND_SAMPLES || len as u64 != count * SAMPLE_LEN as u64 {
                    return Probe::Invalid(format!("unknown record kind {} or length", h[12]));
                }
                if len > rest - header {
                    return Probe::Cut { count };
                }
                let end = pos + header + len;
                if crc32c::crc32c(&b[pos + header..end]) != u32_at(h, 20) {
                    return Probe::BadPayload { end, count };
                }
                Probe::Valid { end }
            }
        }
    }

    /// The samples of the valid record `pos..end`.
    fn samples(self, b: &[u8], pos: usize, end: usize) -> &[u8] {
        match self {
            Framing::V1 => &b[pos + V1_RECORD_HEADER_LEN + 5..end],
            Framing::V2 { .. } => &b[pos + RECORD_HEADER_LEN..end],
        }
    }

    /// The first offset at or after `from` where a record starts (valid, or with an intact header).
    fn next_start(self, b: &[u8], mut from: usize) -> Option<usize> {
        match self {
            Framing::V1 => (from..b.len()).find(|&c| matches!(self.probe(b, c), Probe::Valid { .. })),
            Framing::V2 { .. } => {
                while from + RECORD_MAGIC.len() <= b.len() {
                    let c = from + b[from..].windows(RECORD_MAGIC.len()).position(|w| w == RECORD_MAGIC)?;
                    if !matches!(self.probe(b, c), Probe::Invalid(_)) {
                        return Some(c);
                    }
                    from = c + 1;
                }
                None
            }
        }
    }

    /// At most this many samples fit in `bytes` of damaged records.
    fn max_samples(self, bytes: usize) -> u64 {
        let overhead = match self {
            Framing::V1 => V1_RECORD_HEADER_LEN + 5,
            Framing::V2 { .. } => RECORD_HEADER_LEN,
        };
        (bytes.saturating_sub(overhead) / SAMPLE_LEN) as u64
    }

    /// Whether an unusable stretch from `pos` to the end of the file looks like a write cut short:
    /// shorter than a record header, zeros (a file extended by a crash before its data landed), or
    /// (version 1, which has no header checksum) a record announcing more bytes than there are.
    fn looks_torn(self, b: &[u8], pos: usize) -> bool {
        let rest = &b[pos..];
        rest.len() < self.record_header_len()
            || rest.iter().all(|&x| x == 0)
            || matches!(self, Framing::V1) && u32_at(rest, 0) as usize > rest.len() - V1_RECORD_HEADER_LEN
    }

    /// Reads the records of `b` (after the segment header) into `out`, resynchronising after damage.
    fn walk(self, b: &[u8], out: &mut SegmentReplay) {
        let mut pos = HEADER_LEN;
        while pos < b.len() {
            match self.probe(b, pos) {
                Probe::Valid { end } => {
                    decode_samples(self.samples(b, pos, end), &mut out.samples);
                    out.records += 1;
                    pos = end;
                }
                Probe::BadPayload { end, count } => {
                    out.damaged.push(Damage {
                        offset: pos as u64,
                        bytes: (end - pos) as u64,
                        lost: Lost::Counted(count),
                        reason: "payload checksum mismatch".into(),
                    });
                    pos = end;
                }
                Probe::Cut { count } => {
                    out.torn_tail = Some(Damage {
                        offset: pos as u64,
                        bytes: (b.len() - pos) as u64,
                        lost: Lost::Counted(count),
                        reason: format!(
                            "a record of {} bytes with {} present",
                            count as usize * SAMPLE_LEN + RECORD_HEADER_LEN,
                            b.len() - pos
                        ),
                    });
                    return;
                }
                Probe::Invalid(reason) => {
                    let next = self.next_start(b, pos + 1);
                    let end = next.unwrap_or(b.len());
                    let damage = Damage {
                        offset: pos as u64,
                        bytes: (end - pos) as u64,
                        lost: Lost::AtMost(self.max_samples(end - pos)),
                        reason,
                    };
                    if next.is_none() && self.looks_torn(b, pos) {
                        out.torn_tail = Some(damage);
                    } else {
                        out.damaged.push(damage);
                    }
                    pos = end;
                }
            }
        }
    }
}

/// Reads one segment, keeping every valid record (see [Replay](self#replay)). Never fails on bad
/// content, only when the file cannot be read.
pub fn replay_segment(seq: u64, path: &Path) -> Result<SegmentReplay> {
    let bytes = fs::read(path).map_err(|e| Error::io("read WAL segment", path, e))?;
    Ok(replay_bytes(seq, path, &bytes))
}

fn replay_bytes(seq: u64, path: &Path, b: &[u8]) -> SegmentReplay {
    let mut out = SegmentReplay {
        seq,
        path: path.to_owned(),
        fingerprint: (b.len() as u64, crc32c::crc32c(b)),
        ..Default::default()
    };
    if b.len() < HEADER_LEN {
        out.damaged.push(Damage {
            offset: 0,
            bytes: b.len() as u64,
            lost: Lost::AtMost(0),
            reason: format!("the file is {} bytes, shorter than a segment header ({HEADER_LEN} bytes)", b.len()),
        });
        return out;
    }
    let header_seq = u64::from_le_bytes(b[8..16].try_into().unwrap());
    let whole_file = |reason: String, framing: Framing| Damage {
        offset: 0,
        bytes: b.len() as u64,
        lost: Lost::AtMost(framing.max_samples(b.len() - HEADER_LEN)),
        reason,
    };
    if &b[..8] == MAGIC_V1 {
        out.version = 1;
        if header_seq != seq {
            // Version 1 records are not bound to their segment: nothing here can be trusted.
            out.damaged
                .push(whole_file(format!("header names segment {header_seq}, file name says {seq}"), Framing::V1));
            return out;
        }
        Framing::V1.walk(b, &mut out);
        return out;
    }
    let v2 = Framing::V2 { seed: header_seed(u32_at(b, 4), seq) };
    if &b[..4] == MAGIC_V2 {
        out.version = 2;
        if header_seq != seq {
            // The records are checked against the file name's number: if they are this segment's,
            // only the header is damaged; if they belong to another segment, none is kept.
            out.damaged.push(Damage {
                offset: 8,
                bytes: 8,
                lost: Lost::Counted(0),
                reason: format!("header names segment {header_seq}, file name says {seq}"),
            });
        }
        v2.walk(b, &mut out);
        return out;
    }
    // An unrecognised header: the records behind it may still be whole (for version 2, if the
    // salt survived). Keep them if any is found.
    for (version, framing) in [(2, v2), (1, Framing::V1)] {
        let mut trial =
            SegmentReplay { seq, path: path.to_owned(), fingerprint: out.fingerprint, ..Default::default() };
        framing.walk(b, &mut trial);
        if trial.records > 0 {
            trial.version = version;
            trial.damaged.insert(
                0,
                Damage {
                    offset: 0,
                    bytes: HEADER_LEN as u64,
                    lost: Lost::Counted(0),
                    reason: "unrecognised segment header".into(),
                },
            );
            return trial;
        }
    }
    out.damaged.push(whole_file("unrecognised segment header and no valid record".into(), v2));
    out
}

/// Copies a damaged segment into `<data_dir>/quarantine/` for inspection, once: the copy is named
/// by the segment's number, size and CRC32C, so a restart before the segment is deleted (once its
/// valid records are in Parquet) finds the copy and makes no second one. Returns the copy's path
/// and whether it was made now.
pub fn quarantine_copy(data_dir: &Path, replay: &SegmentReplay) -> std::io::Result<(PathBuf, bool)> {
    let dir = data_dir.join("quarantine");
    let (len, crc) = replay.fingerprint;
    let name = format!("wal_{:020}-{len}-{crc:08x}.wal", replay.seq);
    let to = dir.join(&name);
    if to.exists() {
        return Ok((to, false));
    }
    fs::create_dir_all(&dir)?;
    // Under a temporary name until complete, so a crash mid-copy never leaves a partial copy
    // under the name that says "already copied".
    let tmp = dir.join(format!("{name}.tmp"));
    fs::copy(&replay.path, &tmp)?;
    fs::File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, &to)?;
    fs::File::open(&dir)?.sync_all()?;
    Ok((to, true))
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
    /// See [`header_seed`].
    seed: u32,
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
        let salt = new_salt(seq);
        let result = (|| {
            let mut file = vfs.create(&tmp).map_err(|e| Error::io("create WAL segment", &tmp, e))?;
            file.write_all(&segment_header(salt, seq)).map_err(|e| Error::io("write WAL header", &tmp, e))?;
            file.sync().map_err(|e| Error::io("fsync WAL segment", &tmp, e))?;
            vfs.rename(&tmp, &path).map_err(|e| Error::io("rename WAL segment", &path, e))?;
            // The new file's directory entry must be durable too, or a power cut could lose the segment.
            vfs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
            Ok(file)
        })();
        match result {
            Ok(file) => Ok(Segment { seq, seed: header_seed(salt, seq), file, len: HEADER_LEN as u64 }),
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
            encode_records(segment.seed, samples, &mut self.buf);
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
    use proptest::prelude::*;

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
        assert_eq!((r1.version, r1.records, r1.samples.len()), (2, 2, 15));
        assert_eq!((r1.damaged.len(), r1.torn_tail.is_none(), r1.summary()), (0, true, None));
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
        assert_eq!((r.samples.len(), r.summary()), (2, None));
    }

    #[tokio::test]
    async fn a_large_batch_is_written_as_several_records() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, th) = Wal::start(opts(dir.path()), Arc::new(RealFs), 1, Arc::new(Collect::default())).unwrap();
        let batch = samples(2 * MAX_RECORD_SAMPLES as u32 + 5, 0);
        wal.append(batch.clone()).await.unwrap();
        drop(wal);
        th.join().unwrap();
        let r = replay_segment(1, &segment_path(dir.path(), 1)).unwrap();
        assert_eq!((r.records, r.samples == batch), (3, true));
    }

    const SALT: u32 = 0x5EED_1234;

    /// A version-2 segment `seq` holding one record per batch; returns its bytes and the records'
    /// byte ranges.
    fn segment_v2(seq: u64, batches: &[Vec<Sample>]) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
        let mut bytes = segment_header(SALT, seq).to_vec();
        let mut ranges = Vec::new();
        for b in batches {
            let start = bytes.len();
            encode_records(header_seed(SALT, seq), b, &mut bytes);
            ranges.push(start..bytes.len());
        }
        (bytes, ranges)
    }

    /// The same in the version-1 format (written by earlier releases).
    fn segment_v1(seq: u64, batches: &[Vec<Sample>]) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
        let mut bytes = MAGIC_V1.to_vec();
        bytes.extend_from_slice(&seq.to_le_bytes());
        let mut ranges = Vec::new();
        for b in batches {
            let start = bytes.len();
            bytes.extend_from_slice(&[0; V1_RECORD_HEADER_LEN]);
            bytes.push(KIND_SAMPLES);
            bytes.extend_from_slice(&(b.len() as u32).to_le_bytes());
            encode_samples(b, &mut bytes);
            let payload = &bytes[start + V1_RECORD_HEADER_LEN..];
            let (len, crc) = (payload.len() as u32, crc32c::crc32c(payload));
            bytes[start..start + 4].copy_from_slice(&len.to_le_bytes());
            bytes[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
            ranges.push(start..bytes.len());
        }
        (bytes, ranges)
    }

    fn replay(seq: u64, bytes: &[u8]) -> SegmentReplay {
        replay_bytes(seq, Path::new("test.wal"), bytes)
    }

    fn batches(n: usize, per: u32) -> Vec<Vec<Sample>> {
        (0..n).map(|i| samples(per, i as i64 * 1000)).collect()
    }

    fn concat(batches: &[Vec<Sample>]) -> Vec<Sample> {
        batches.iter().flatten().copied().collect()
    }

    #[test]
    fn a_torn_tail_keeps_every_whole_record_and_is_reported_as_torn() {
        let b = batches(2, 4);
        for (version, (bytes, ranges)) in [(1, segment_v1(7, &b)), (2, segment_v2(7, &b))] {
            let last = ranges[1].len();
            // Cut inside the last record's samples, inside its header, and after its first byte.
            for cut in [3, 4 * SAMPLE_LEN - 2, 4 * SAMPLE_LEN + 5, last - 1] {
                let what = format!("v{version}, {cut} bytes cut");
                let r = replay(7, &bytes[..bytes.len() - cut]);
                assert_eq!(r.samples, b[0], "{what}");
                assert!(r.damaged.is_empty(), "{what}: {:?}", r.damaged);
                let torn = r.torn_tail.clone().unwrap_or_else(|| panic!("{what}: no torn tail"));
                assert_eq!((torn.offset, torn.bytes), (ranges[1].start as u64, (last - cut) as u64), "{what}");
                if version == 2 && last - cut >= RECORD_HEADER_LEN {
                    assert_eq!(torn.lost, Lost::Counted(4), "{what}: the header is whole");
                    assert_eq!(r.torn_samples(), 4);
                }
                assert!(r.summary().unwrap().contains("torn tail"), "{:?}", r.summary());
            }
            // A tail of zeros (a file extended by a crash before its data landed) is torn too.
            let mut zeros = bytes.clone();
            zeros.extend_from_slice(&[0; 100]);
            let r = replay(7, &zeros);
            assert_eq!((r.samples == concat(&b), r.damaged.len()), (true, 0), "v{version}");
            assert_eq!(r.torn_tail.map(|t| t.bytes), Some(100));
        }
    }

    #[test]
    fn a_damaged_record_costs_only_its_own_samples() {
        let b = batches(4, 10);
        for (version, (bytes, ranges)) in [(1, segment_v1(7, &b)), (2, segment_v2(7, &b))] {
            // 16 bytes flipped inside record 2 of 4 (the payload), then inside its header.
            for at in [ranges[1].start + 40, ranges[1].start] {
                let mut bad = bytes.clone();
                for x in &mut bad[at..at + 16] {
                    *x ^= 0x5A;
                }
                let r = replay(7, &bad);
                let want: Vec<Sample> = [&b[0], &b[2], &b[3]].into_iter().flatten().copied().collect();
                assert_eq!(r.samples, want, "v{version}, damage at {at}");
                assert_eq!((r.records, r.damaged.len(), r.torn_tail.is_none()), (3, 1, true), "v{version}");
                let d = &r.damaged[0];
                assert_eq!((d.offset, d.bytes), (ranges[1].start as u64, ranges[1].len() as u64), "v{version}");
                let header_intact = version == 2 && at > ranges[1].start;
                if header_intact {
                    assert_eq!(d.lost, Lost::Counted(10), "counted from the intact header");
                    assert_eq!((r.lost_counted(), r.lost_at_most()), (10, 0));
                } else {
                    assert_eq!(d.lost, Lost::AtMost(10), "v{version}: estimated from its length");
                    assert_eq!((r.lost_counted(), r.lost_at_most()), (0, 10));
                }
                let line = r.summary().unwrap();
                assert!(line.contains("kept 3 records (30 samples)"), "{line}");
                assert!(!line.contains("torn"), "{line}");
            }
        }
    }

    #[test]
    fn damaged_segment_headers() {
        let b = batches(3, 5);
        // Shorter than a header.
        let r = replay(3, &MAGIC_V1[..5]);
        assert!(r.samples.is_empty());
        assert!(r.damaged[0].reason.contains("shorter than a segment header"), "{:?}", r.damaged);
        // Version 1 names another segment: its records cannot be told apart from another file's.
        let (v1, _) = segment_v1(8, &b);
        let r = replay(7, &v1);
        assert!(r.samples.is_empty());
        assert!(r.damaged[0].reason.contains("header names segment 8"), "{:?}", r.damaged);
        // 15 samples in 354 bytes: the bound from the length alone is 16.
        assert_eq!(r.lost_at_most(), 16);
        // Version 2 with a damaged sequence number: the records are bound to the file name's.
        let (mut v2, _) = segment_v2(7, &b);
        v2[9] ^= 1;
        let r = replay(7, &v2);
        assert_eq!((r.samples == concat(&b), r.damaged.len(), r.lost_counted()), (true, 1, 0));
        // A segment of another number under this name keeps nothing.
        let (other, _) = segment_v2(8, &b);
        let r = replay(7, &other);
        assert!(r.samples.is_empty(), "records of segment 8 were read as segment 7's");
        // A damaged magic: the records are still found, for both versions.
        for (mut bytes, _) in [segment_v1(7, &b), segment_v2(7, &b)] {
            bytes[1] ^= 0xFF;
            let r = replay(7, &bytes);
            assert_eq!(r.samples, concat(&b));
            assert!(r.damaged[0].reason.contains("unrecognised segment header"), "{:?}", r.damaged);
        }
        // Garbage: nothing kept, an estimate of what was lost, no panic.
        let junk: Vec<u8> = (0..500u32).map(|i| (i * 7 + 3) as u8).collect();
        let r = replay(7, &junk);
        assert!(r.samples.is_empty());
        assert_eq!(r.lost_at_most(), ((500 - 16 - RECORD_HEADER_LEN) / SAMPLE_LEN) as u64);
    }

    #[test]
    fn a_record_is_only_found_in_the_segment_that_wrote_it() {
        // Sample values crafted to hold a whole record (as a client could push) are not taken for
        // one when the real record around them is damaged: the header checksum needs the salt.
        let (inner, _) = segment_v2(7, &[samples(3, 900)]);
        let mut crafted_bytes = inner[HEADER_LEN..].to_vec();
        crafted_bytes.resize(crafted_bytes.len().div_ceil(SAMPLE_LEN) * SAMPLE_LEN, 0);
        let mut crafted = Vec::new();
        decode_samples(&crafted_bytes, &mut crafted);
        let mut bytes = segment_header(SALT ^ 1, 7).to_vec();
        encode_records(header_seed(SALT ^ 1, 7), &crafted, &mut bytes);
        encode_records(header_seed(SALT ^ 1, 7), &samples(2, 50), &mut bytes);
        bytes[HEADER_LEN + 2] ^= 0xFF;
        let r = replay(7, &bytes);
        assert_eq!(r.samples, samples(2, 50), "only the intact record after the damaged one");
    }

    /// What random damage can do to a segment.
    #[derive(Debug, Clone)]
    enum Harm {
        /// XOR these bytes (offset as a fraction of the body, length, pattern).
        Flip(f64, usize, u8),
        /// Overwrite a stretch with zeros.
        Zero(f64, usize),
        /// Cut the file here.
        Truncate(f64),
    }

    fn harm() -> impl Strategy<Value = Harm> {
        prop_oneof![
            4 => (0.0..1.0, 1..40usize, 1..=255u8).prop_map(|(a, n, x)| Harm::Flip(a, n, x)),
            1 => (0.0..1.0, 1..300usize).prop_map(|(a, n)| Harm::Zero(a, n)),
            1 => (0.0..1.0).prop_map(Harm::Truncate),
        ]
    }

    fn check_random_damage(version: u8, sizes: &[u32], harms: &[Harm]) -> std::result::Result<(), TestCaseError> {
        let b: Vec<Vec<Sample>> = sizes.iter().enumerate().map(|(i, &n)| samples(n, i as i64 * 10_000)).collect();
        let (mut bytes, ranges) = if version == 1 { segment_v1(9, &b) } else { segment_v2(9, &b) };
        let body = bytes.len() - HEADER_LEN;
        let mut touched = vec![false; bytes.len()];
        let mut cut = bytes.len();
        for h in harms {
            let (a, n, flip) = match *h {
                Harm::Flip(a, n, x) => (a, n, Some(x)),
                Harm::Zero(a, n) => (a, n, None),
                Harm::Truncate(a) => {
                    cut = cut.min(HEADER_LEN + (a * body as f64) as usize);
                    continue;
                }
            };
            let at = HEADER_LEN + ((a * body as f64) as usize).min(body - 1);
            for i in at..(at + n).min(bytes.len()) {
                let old = bytes[i];
                bytes[i] = flip.map_or(0, |x| old ^ x);
                touched[i] |= bytes[i] != old;
            }
        }
        bytes.truncate(cut);
        let intact: Vec<bool> = ranges.iter().map(|r| r.end <= cut && !touched[r.clone()].iter().any(|&t| t)).collect();
        let r = replay(9, &bytes);
        let want: Vec<Sample> = b.iter().zip(&intact).filter(|(_, ok)| **ok).flat_map(|(s, _)| s.clone()).collect();
        // Every intact record is kept, and nothing else: no damaged record yields a sample.
        prop_assert_eq!(&r.samples, &want, "v{} intact {:?}", version, intact);
        prop_assert_eq!(r.records, intact.iter().filter(|ok| **ok).count());
        // The report's counts bracket what was lost.
        let lost: u64 = b.iter().zip(&intact).filter(|(_, ok)| !**ok).map(|(s, _)| s.len() as u64).sum();
        let counted =
            r.lost_counted() + if let Some(Damage { lost: Lost::Counted(n), .. }) = r.torn_tail { n } else { 0 };
        let bound = r.lost_at_most() + if let Some(Damage { lost: Lost::AtMost(n), .. }) = r.torn_tail { n } else { 0 };
        prop_assert!(counted <= lost, "lost {} counted {}", lost, counted);
        if cut == ranges.last().map_or(HEADER_LEN, |r| r.end) {
            // (A cut takes samples whose bytes are gone: the bound covers the bytes present.)
            prop_assert!(lost <= counted + bound, "lost {} counted {} bound {}", lost, counted, bound);
        }
        // Damage that is only a cut is a torn tail, never damage.
        if !touched.iter().any(|&t| t) {
            prop_assert!(r.damaged.is_empty(), "{:?}", r.damaged);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_damage_never_loses_an_intact_record_nor_invents_a_sample(
            version in 1..=2u8,
            sizes in proptest::collection::vec(1..60u32, 2..12),
            harms in proptest::collection::vec(harm(), 1..4),
        ) {
            check_random_damage(version, &sizes, &harms)?;
        }
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

    #[test]
    fn a_damaged_segment_is_copied_to_quarantine_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("wal")).unwrap();
        let (mut bytes, ranges) = segment_v2(7, &batches(3, 4));
        bytes[ranges[1].start + 30] ^= 1;
        let path = segment_path(&dir.path().join("wal"), 7);
        fs::write(&path, &bytes).unwrap();
        let r = replay_segment(7, &path).unwrap();
        let (first, new) = quarantine_copy(dir.path(), &r).unwrap();
        assert!(new);
        assert_eq!(fs::read(&first).unwrap(), bytes);
        let r = replay_segment(7, &path).unwrap();
        let (again, new) = quarantine_copy(dir.path(), &r).unwrap();
        assert_eq!((again, new), (first, false));
        assert_eq!(fs::read_dir(dir.path().join("quarantine")).unwrap().count(), 1);
    }
}
