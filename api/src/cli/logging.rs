//! Where log lines go: standard error always, and the `[log] file` when one is set, rotated daily
//! or by size with `[log] keep` old files ([`RotatingFile`]). [`init`] installs the process-wide
//! subscriber and returns a [`LogHandle`] that can change the level filter and the file while the
//! server runs (the format is fixed at start).

use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use t3_core::config::{LogConfig, LogFormat, LogRotation};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// Changes what the installed subscriber logs, and where, after start.
#[derive(Debug, Clone)]
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    file: FileSlot,
}

impl LogHandle {
    /// Replaces the level filter (`[log] level`, an EnvFilter directive).
    pub fn set_level(&self, directive: &str) -> Result<(), String> {
        let filter = EnvFilter::try_new(directive).map_err(|e| format!("log.level `{directive}`: {e}"))?;
        self.filter.reload(filter).map_err(|e| format!("log.level: {e}"))
    }

    /// Opens the file of `cfg` (or none) and sends the following lines there instead of the
    /// current file.
    pub fn set_file(&self, cfg: &LogConfig) -> Result<(), String> {
        self.file.replace(open_configured(cfg)?);
        Ok(())
    }
}

/// Installs the subscriber for `cfg` (see [`subscriber`]) for the whole process.
pub fn init(cfg: &LogConfig) -> Result<LogHandle, String> {
    let (subscriber, handle) = subscriber(cfg, std::env::var("RUST_LOG").ok())?;
    // A second `init` in one process (tests) keeps the first subscriber.
    let _ = subscriber.try_init();
    Ok(handle)
}

/// The subscriber for `cfg`: the level (`rust_log`, the variable `RUST_LOG`, wins when set and
/// valid), standard error (with colours on a terminal) and the file; the error names `log.file`
/// when it cannot be opened.
fn subscriber(
    cfg: &LogConfig,
    rust_log: Option<String>,
) -> Result<(impl tracing::Subscriber + Send + Sync + 'static, LogHandle), String> {
    let filter = rust_log
        .filter(|v| !v.trim().is_empty())
        .and_then(|d| EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| EnvFilter::new(&cfg.level));
    let (filter, filter_handle) = reload::Layer::new(filter);
    let file = FileSlot::default();
    file.replace(open_configured(cfg)?);
    use std::io::IsTerminal;
    let stderr = fmt_layer(cfg.format, std::io::stderr, std::io::stderr().is_terminal());
    let to_file = fmt_layer(cfg.format, file.clone(), false);
    let subscriber = tracing_subscriber::registry().with(filter).with(stderr).with(to_file);
    Ok((subscriber, LogHandle { filter: filter_handle, file }))
}

/// One formatting layer writing to `writer`.
fn fmt_layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi);
    match format {
        LogFormat::Json => layer.json().boxed(),
        LogFormat::Text => layer.boxed(),
    }
}

/// The file `cfg` asks for, opened; `None` when it asks for none.
fn open_configured(cfg: &LogConfig) -> Result<Option<RotatingFile>, String> {
    let Some(path) = &cfg.file else { return Ok(None) };
    let rotation = cfg.rotation().map_err(|e| format!("log.rotate: {e}"))?;
    RotatingFile::open(path, rotation, cfg.keep, SystemTime::now())
        .map(Some)
        .map_err(|e| format!("log.file: cannot write the log file {}: {e}", path.display()))
}

/// The log file the file layer writes to, swappable while the server runs; lines are dropped while
/// it holds none.
#[derive(Debug, Clone, Default)]
struct FileSlot(Arc<Mutex<Option<RotatingFile>>>);

impl FileSlot {
    fn replace(&self, file: Option<RotatingFile>) {
        *self.0.lock() = file;
    }
}

impl<'a> MakeWriter<'a> for FileSlot {
    type Writer = FileSlot;

    fn make_writer(&'a self) -> FileSlot {
        self.clone()
    }
}

/// One log line (the formatter writes each event with one `write_all`) goes to the file in one
/// piece, after a rotation if it is due.
impl Write for FileSlot {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(file) = self.0.lock().as_mut() {
            file.write_line(buf, SystemTime::now())?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An append-only log file that is rotated daily or before it grows past a size: the current
/// file becomes `<path>.1`, `<path>.1` becomes `<path>.2`, ..., and files past `keep` are deleted.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    rotation: LogRotation,
    keep: u32,
    file: File,
    /// The open file's device and inode, to notice it was deleted or moved away.
    id: (u64, u64),
    /// When the path was last compared with the open file (at most once a second: a `stat` per
    /// line would be one more system call for every request logged).
    looked: SystemTime,
    /// Bytes in the current file.
    size: u64,
    /// The day (UTC, days since 1970) the current file's lines were written on.
    day: u64,
}

const SECS_PER_DAY: u64 = 86_400;

fn day_of(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() / SECS_PER_DAY)
}

impl RotatingFile {
    /// Opens (or creates, with its folder) the file at `path` for appending; an existing file last
    /// written on an earlier day is rotated first when rotating daily. Rotated files past `keep` are
    /// deleted (`keep` may have been lowered).
    pub fn open(path: &Path, rotation: LogRotation, keep: u32, now: SystemTime) -> io::Result<RotatingFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = append(path)?;
        let meta = file.metadata()?;
        let day = if meta.len() > 0 { meta.modified().map_or(day_of(now), day_of) } else { day_of(now) };
        let id = (meta.dev(), meta.ino());
        let mut f =
            RotatingFile { path: path.to_owned(), rotation, keep, file, id, looked: now, size: meta.len(), day };
        f.prune()?;
        if f.due(0, now) {
            f.rotate(now)?;
        }
        Ok(f)
    }

    /// Appends one line, rotating first when it is due. A file deleted or moved away (by hand, or
    /// by logrotate) is noticed within a second and created again at its path, so lines do not go
    /// on to a file nobody sees.
    pub fn write_line(&mut self, line: &[u8], now: SystemTime) -> io::Result<()> {
        if now.duration_since(self.looked).is_ok_and(|d| d >= std::time::Duration::from_secs(1)) {
            self.looked = now;
            let here = std::fs::metadata(&self.path).ok().map(|m| (m.dev(), m.ino()));
            if here != Some(self.id) {
                self.reopen()?;
            }
        }
        if self.due(line.len() as u64, now) {
            self.rotate(now)?;
        }
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Whether the current file must be rotated before `more` bytes are written at `now`. An empty
    /// file never is (a line longer than the size limit gets a file of its own).
    fn due(&self, more: u64, now: SystemTime) -> bool {
        self.size > 0
            && match self.rotation {
                LogRotation::Daily => day_of(now) != self.day,
                LogRotation::Size(max) => self.size + more > max,
            }
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Shifts the rotated files by one, makes the current file `<path>.1` and starts a new one.
    fn rotate(&mut self, now: SystemTime) -> io::Result<()> {
        if self.keep == 0 {
            remove_if_present(&self.path)?;
        } else {
            remove_if_present(&self.numbered(self.keep))?;
            for n in (1..self.keep).rev() {
                let from = self.numbered(n);
                if from.exists() {
                    std::fs::rename(&from, self.numbered(n + 1))?;
                }
            }
            match std::fs::rename(&self.path, self.numbered(1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.reopen()?;
        self.day = day_of(now);
        Ok(())
    }

    /// Opens (creating) the file at the path again, to append to.
    fn reopen(&mut self) -> io::Result<()> {
        self.file = append(&self.path)?;
        let meta = self.file.metadata()?;
        self.id = (meta.dev(), meta.ino());
        self.size = meta.len();
        Ok(())
    }

    /// Deletes the rotated files numbered above `keep`.
    fn prune(&self) -> io::Result<()> {
        let mut n = self.keep + 1;
        while self.numbered(n).exists() {
            std::fs::remove_file(self.numbered(n))?;
            n += 1;
        }
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(day: u64, secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(day * SECS_PER_DAY + secs)
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The file deleted (by hand) or moved away (logrotate without copytruncate): the next line
    /// creates it again, and the rotated files are kept.
    #[test]
    fn a_deleted_or_moved_file_is_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t3000.log");
        let mut f = RotatingFile::open(&path, LogRotation::Size(10), 2, at(1, 0)).unwrap();
        for line in ["aaaa\n", "bbbb\n", "cccc\n"] {
            f.write_line(line.as_bytes(), at(1, 0)).unwrap();
        }
        std::fs::remove_file(&path).unwrap();
        f.write_line(b"dddd\n", at(1, 1)).unwrap();
        assert_eq!(read(&path), "dddd\n");
        assert_eq!(read(&f.numbered(1)), "aaaa\nbbbb\n");
        std::fs::rename(&path, dir.path().join("moved.log")).unwrap();
        f.write_line(b"eeee\n", at(1, 2)).unwrap();
        assert_eq!(read(&path), "eeee\n");
        assert_eq!(read(&dir.path().join("moved.log")), "dddd\n");
        assert_eq!(read(&f.numbered(1)), "aaaa\nbbbb\n", "the rotated files are kept");
    }

    #[test]
    fn size_rotation_shifts_the_files_and_keeps_as_many_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/t3000.log");
        let mut f = RotatingFile::open(&path, LogRotation::Size(10), 2, at(1, 0)).unwrap();
        for line in ["aaaa\n", "bbbb\n", "cccc\n", "dddd\n", "eeee\n", "ffff\n", "gggg\n"] {
            f.write_line(line.as_bytes(), at(1, 0)).unwrap();
        }
        assert_eq!(read(&path), "gggg\n");
        assert_eq!(read(&f.numbered(1)), "eeee\nffff\n");
        assert_eq!(read(&f.numbered(2)), "cccc\ndddd\n");
        assert!(!f.numbered(3).exists(), "a third rotated file was kept");
        // A line longer than the limit gets a file of its own.
        f.write_line(b"0123456789abcdef\n", at(1, 0)).unwrap();
        assert_eq!(read(&path), "0123456789abcdef\n");
        assert_eq!(read(&f.numbered(1)), "gggg\n");
    }

    #[test]
    fn daily_rotation_happens_on_the_first_line_of_a_new_day_and_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t3000.log");
        let mut f = RotatingFile::open(&path, LogRotation::Daily, 3, at(5, 10)).unwrap();
        f.write_line(b"day five\n", at(5, 10)).unwrap();
        f.write_line(b"still five\n", at(5, SECS_PER_DAY - 1)).unwrap();
        f.write_line(b"day six\n", at(6, 0)).unwrap();
        assert_eq!(read(&path), "day six\n");
        assert_eq!(read(&f.numbered(1)), "day five\nstill five\n");
        drop(f);
        // Written today (by the file system's clock): opening it "tomorrow" rotates it.
        let tomorrow = SystemTime::now() + Duration::from_secs(SECS_PER_DAY);
        let f = RotatingFile::open(&path, LogRotation::Daily, 3, tomorrow).unwrap();
        assert_eq!(read(&path), "");
        assert_eq!(read(&f.numbered(1)), "day six\n");
        assert_eq!(read(&f.numbered(2)), "day five\nstill five\n");
    }

    #[test]
    fn keep_zero_truncates_and_a_lower_keep_deletes_the_extra_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t3000.log");
        let mut f = RotatingFile::open(&path, LogRotation::Size(4), 3, at(1, 0)).unwrap();
        for line in ["111\n", "222\n", "333\n", "444\n"] {
            f.write_line(line.as_bytes(), at(1, 0)).unwrap();
        }
        assert!(f.numbered(3).exists());
        drop(f);
        let mut f = RotatingFile::open(&path, LogRotation::Size(4), 1, at(1, 0)).unwrap();
        assert!(f.numbered(1).exists() && !f.numbered(2).exists() && !f.numbered(3).exists());
        drop(f);
        f = RotatingFile::open(&path, LogRotation::Size(4), 0, at(1, 0)).unwrap();
        f.write_line(b"555\n", at(1, 0)).unwrap();
        assert_eq!(read(&path), "555\n");
    }

    #[test]
    fn an_unwritable_folder_is_an_error_naming_log_file() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where the folder should be.
        let blocker = dir.path().join("not-a-folder");
        std::fs::write(&blocker, "").unwrap();
        let cfg = LogConfig { file: Some(blocker.join("t3000.log")), ..LogConfig::default() };
        let e = open_configured(&cfg).unwrap_err();
        assert!(e.starts_with("log.file: cannot write the log file") && e.contains("not-a-folder"), "{e}");
        assert!(open_configured(&LogConfig::default()).unwrap().is_none());
    }

    #[test]
    fn the_handle_changes_the_level_and_the_file_of_a_running_subscriber() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let cfg =
            LogConfig { level: "warn".into(), format: LogFormat::Json, file: Some(a.clone()), ..LogConfig::default() };
        let (subscriber, handle) = subscriber(&cfg, None).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("hidden at warn");
            tracing::warn!(n = 1, "shown at warn");
            handle.set_level("info").unwrap();
            tracing::info!("shown at info");
            assert!(handle.set_level("info,[").is_err(), "a bad directive was taken");
            handle.set_file(&LogConfig { file: Some(b.clone()), ..cfg.clone() }).unwrap();
            tracing::info!("in the second file");
        });
        let messages = |p: &Path| -> Vec<String> {
            read(p)
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["fields"]["message"].to_string())
                .collect()
        };
        assert_eq!(messages(&a), ["\"shown at warn\"", "\"shown at info\""]);
        assert_eq!(messages(&b), ["\"in the second file\""]);
    }

    #[test]
    fn the_slot_writes_to_the_file_it_holds_and_drops_lines_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let cfg = |p: &Path| LogConfig { file: Some(p.to_owned()), ..LogConfig::default() };
        let mut slot = FileSlot::default();
        slot.write_all(b"nowhere\n").unwrap();
        slot.replace(open_configured(&cfg(&a)).unwrap());
        slot.write_all(b"to a\n").unwrap();
        slot.replace(open_configured(&cfg(&b)).unwrap());
        slot.write_all(b"to b\n").unwrap();
        assert_eq!((read(&a), read(&b)), ("to a\n".to_owned(), "to b\n".to_owned()));
    }
}
