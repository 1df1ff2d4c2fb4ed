//! The file operations that durability depends on, behind a trait so tests can inject failures.
//!
//! Everything the WAL and the Parquet persister write goes through [`Vfs`]. [`RealFs`] is the
//! operating system; [`FaultyFs`] wraps it and fails creations, writes or fsyncs on demand, the way a
//! full disk, a dying device or a process out of file descriptors would.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A file opened for writing.
pub trait VFile: Write + Send + Debug {
    /// Flushes the file's data to stable storage (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
}

/// File-system operations used on the durability path.
pub trait Vfs: Debug + Send + Sync + 'static {
    /// Creates (truncating) a file for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn VFile>>;
    /// Atomically renames `from` to `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes a directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

#[derive(Debug)]
struct OsFile(File);

impl Write for OsFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl VFile for OsFile {
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl Vfs for RealFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn VFile>> {
        let f = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
        Ok(Box::new(OsFile(f)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Switches that make [`FaultyFs`] fail. Shared, so a test can flip them while the engine runs.
#[derive(Debug, Default)]
pub struct Faults {
    /// Every write fails with EIO.
    pub fail_writes: AtomicBool,
    /// Every fsync (of files and directories) fails with EIO.
    pub fail_syncs: AtomicBool,
    /// Every file creation fails with ENOSPC.
    pub fail_creates: AtomicBool,
    /// Creating a Parquet file fails with ENOSPC (the WAL still works): a flush that cannot write.
    pub fail_parquet_creates: AtomicBool,
    /// Every file creation fails with EMFILE: the process is out of file descriptors.
    pub no_descriptors: AtomicBool,
}

impl Faults {
    pub fn set_fail_writes(&self, on: bool) {
        self.fail_writes.store(on, Ordering::SeqCst)
    }
    pub fn set_fail_syncs(&self, on: bool) {
        self.fail_syncs.store(on, Ordering::SeqCst)
    }
    pub fn set_fail_creates(&self, on: bool) {
        self.fail_creates.store(on, Ordering::SeqCst)
    }
    pub fn set_fail_parquet_creates(&self, on: bool) {
        self.fail_parquet_creates.store(on, Ordering::SeqCst)
    }
    pub fn set_no_descriptors(&self, on: bool) {
        self.no_descriptors.store(on, Ordering::SeqCst)
    }
}

/// A [`RealFs`] that fails on demand (see [`Faults`]).
#[derive(Debug, Clone, Default)]
pub struct FaultyFs {
    pub faults: Arc<Faults>,
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure (EIO)"))
}

#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn VFile>,
    faults: Arc<Faults>,
}

impl Write for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.faults.fail_writes.load(Ordering::SeqCst) {
            return Err(eio("write"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl VFile for FaultyFile {
    fn sync(&mut self) -> io::Result<()> {
        if self.faults.fail_syncs.load(Ordering::SeqCst) {
            return Err(eio("fsync"));
        }
        self.inner.sync()
    }
}

impl Vfs for FaultyFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn VFile>> {
        if self.faults.no_descriptors.load(Ordering::SeqCst) {
            // EMFILE, as the operating system reports it ("Too many open files").
            return Err(io::Error::from_raw_os_error(24));
        }
        let parquet = path.to_string_lossy().contains(".parquet");
        if self.faults.fail_creates.load(Ordering::SeqCst)
            || (parquet && self.faults.fail_parquet_creates.load(Ordering::SeqCst))
        {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "injected ENOSPC"));
        }
        Ok(Box::new(FaultyFile { inner: RealFs.create(path)?, faults: self.faults.clone() }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.faults.fail_syncs.load(Ordering::SeqCst) {
            return Err(eio("directory fsync"));
        }
        RealFs.sync_dir(dir)
    }
}
