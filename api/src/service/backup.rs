//! Backups of a running server and their restore.
//!
//! # The archive
//! A plain tar of the data directory as a server started on it needs it: `manifest.json` and the
//! Parquet files it lists (the samples not yet in Parquet among them, written out as files of their
//! own: see [`t3_storage::BackupSnapshot`]), `catalog.duckdb` (a consistent copy), `points.json`,
//! `floorplans/`, and `t3000.effective.toml` (the configuration the server ran with, its
//! secrets replaced by `<redacted>`). Then `BACKUP.json`, the archive's
//! manifest ([`ArchiveManifest`]: every file's path, size and SHA-256), and `BACKUP.sha256`, the
//! SHA-256 of `BACKUP.json`. The manifest comes last because the checksums are computed as the
//! files stream out; an archive that ends before it (a broken download, a full disk) is
//! therefore never mistaken for a whole one.
//!
//! An incremental archive ([`ArchiveManifest::base`]) leaves out the data files its base archive
//! holds unchanged (same path, size and CRC-32C: data files are never rewritten in place) and
//! lists them as `in_base`; restoring it takes the base archive(s) too.
//!
//! # Restore
//! [`restore`] reads every archive of the chain in full first, checks each file against the
//! manifest and the chain's links and that it is a file a backup writes, and only then writes:
//! into a hidden folder inside the target whose files are moved into place once all are written,
//! so the target (empty, or not there yet) is never left half written. Whatever is wrong is named: a truncated archive, a file whose checksum differs, a missing
//! file, a base archive that is needed.

use crate::model::backup::{ArchiveEntry, ArchiveManifest, BaseArchive};
use crate::service::floorplans::PlanStore;
use crate::service::registry::Registry;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use t3_core::config::Config;
use t3_storage::catalog::Catalog;
use t3_storage::{BackupSnapshot, Storage};

/// The archive format this server writes and reads.
pub const FORMAT: u32 = 1;
/// The archive's manifest.
pub const MANIFEST_ENTRY: &str = "BACKUP.json";
/// The SHA-256 of [`MANIFEST_ENTRY`], the archive's last file.
pub const MANIFEST_SUM_ENTRY: &str = "BACKUP.sha256";
/// The configuration the server ran with, secrets redacted.
pub const CONFIG_ENTRY: &str = "t3000.effective.toml";
/// At most this many problems are named when an archive is refused.
const MAX_PROBLEMS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The previous archive's manifest (for an incremental backup) cannot be used.
    #[error("base: {0}")]
    BadBase(String),
    /// An archive (or the target directory) that a restore refuses, and why.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Storage(#[from] t3_storage::Error),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

/// One file to write into the archive.
#[derive(Debug)]
struct Item {
    rel: String,
    path: PathBuf,
    crc32c: Option<u32>,
}

/// A backup whose moment has been taken: the files it will copy are pinned or staged, ready for
/// [`Backup::write_to`]. Dropping it lets them go.
#[derive(Debug)]
pub struct Backup {
    snapshot: BackupSnapshot,
    items: Vec<Item>,
    /// Files the base archive holds unchanged, listed but not copied.
    from_base: Vec<ArchiveEntry>,
    /// The manifest without its entries.
    head: ArchiveManifest,
}

/// What a backup reads from.
#[derive(Debug, Clone)]
pub struct Sources {
    pub storage: Storage,
    pub catalog: Arc<Catalog>,
    pub registry: Arc<Registry>,
    pub plans: PlanStore,
    /// The configuration the server runs with.
    pub config: Config,
}

impl Backup {
    /// Takes the moment: the storage engine's snapshot, then a consistent copy of the catalog,
    /// the point registry, the floor plans and the configuration. With `base` (the previous
    /// archive's manifest) the data files it holds unchanged are left out.
    pub async fn start(src: &Sources, base: Option<ArchiveManifest>) -> Result<Backup, BackupError> {
        if let Some(b) = &base {
            check_base(b)?;
        }
        let snapshot = src.storage.backup_snapshot().await?;
        let staging = snapshot.staging_dir().to_owned();
        let (catalog, registry, plans) = (src.catalog.clone(), src.registry.clone(), src.plans.clone());
        let config_text = effective_config(&src.config);
        let extra =
            tokio::task::spawn_blocking(move || stage_extras(&staging, &catalog, &registry, &plans, &config_text))
                .await
                .map_err(|e| BackupError::Io { what: "backup task".into(), source: std::io::Error::other(e) })??;
        let base_files: HashMap<&str, &ArchiveEntry> =
            base.iter().flat_map(|b| b.entries.iter()).map(|e| (e.path.as_str(), e)).collect();
        let mut items = Vec::new();
        let mut from_base = Vec::new();
        let (manifest_file, data_files) = snapshot.files.split_first().expect("a snapshot lists its manifest");
        items.push(Item { rel: manifest_file.rel.clone(), path: manifest_file.path.clone(), crc32c: None });
        items.extend(extra);
        for f in data_files {
            let size = std::fs::metadata(&f.path).map_err(io(format!("read {}", f.path.display())))?.len();
            match base_files.get(f.rel.as_str()) {
                Some(e) if f.crc32c.is_some() && e.crc32c == f.crc32c && e.size == size => {
                    from_base.push(ArchiveEntry { in_base: true, ..(*e).clone() });
                }
                _ => items.push(Item { rel: f.rel.clone(), path: f.path.clone(), crc32c: f.crc32c }),
            }
        }
        let created_us = snapshot.taken_us;
        let head = ArchiveManifest {
            format: FORMAT,
            id: new_id(),
            server_version: env!("CARGO_PKG_VERSION").to_string(),
            created_us,
            created: chrono::DateTime::from_timestamp_micros(created_us).map(|t| t.to_rfc3339()).unwrap_or_default(),
            source_data_dir: src.storage.data_dir().display().to_string(),
            buffered_rows: snapshot.buffered_rows as u64,
            base: base.map(|b| BaseArchive { id: b.id, created: b.created }),
            entries: Vec::new(),
        };
        Ok(Backup { snapshot, items, from_base, head })
    }

    /// The archive's id.
    pub fn id(&self) -> &str {
        &self.head.id
    }

    /// The moment the archive holds, RFC 3339.
    pub fn created(&self) -> &str {
        &self.head.created
    }

    /// Files the archive will hold (the base's not counted).
    pub fn file_count(&self) -> usize {
        self.items.len()
    }

    /// Writes the archive to `out` (blocking: run it on a blocking thread) and returns its
    /// manifest. An error leaves an archive without a manifest, which a restore refuses.
    pub fn write_to<W: Write>(self, out: W) -> Result<ArchiveManifest, BackupError> {
        let mut tar = tar::Builder::new(out);
        let mtime = u64::try_from(self.head.created_us / 1_000_000).unwrap_or(0);
        let mut entries = Vec::with_capacity(self.items.len() + self.from_base.len());
        for item in &self.items {
            let file = std::fs::File::open(&item.path).map_err(io(format!("open {}", item.path.display())))?;
            let size = file.metadata().map_err(io(format!("read {}", item.path.display())))?.len();
            let mut reader = Hashing::new(file.take(size));
            tar.append(&header(&item.rel, size, mtime)?, &mut reader).map_err(io(format!("archive {}", item.rel)))?;
            if reader.bytes != size {
                return Err(BackupError::Refused(format!("{} changed size while it was copied", item.rel)));
            }
            entries.push(ArchiveEntry {
                path: item.rel.clone(),
                size,
                sha256: reader.hex(),
                crc32c: item.crc32c,
                in_base: false,
            });
        }
        entries.extend(self.from_base.iter().cloned());
        let manifest = ArchiveManifest { entries, ..self.head.clone() };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Refused(e.to_string()))?;
        let sum = format!("{}\n", hex(&Sha256::digest(&json)));
        tar.append(&header(MANIFEST_ENTRY, json.len() as u64, mtime)?, json.as_slice())
            .map_err(io(format!("archive {MANIFEST_ENTRY}")))?;
        tar.append(&header(MANIFEST_SUM_ENTRY, sum.len() as u64, mtime)?, sum.as_bytes())
            .map_err(io(format!("archive {MANIFEST_SUM_ENTRY}")))?;
        tar.into_inner().and_then(|mut w| w.flush()).map_err(io("finish the archive"))?;
        drop(self.snapshot);
        Ok(manifest)
    }
}

/// A base manifest must be of this format. (Its entries are only compared with the live files:
/// one that names no live file leaves nothing out.)
fn check_base(b: &ArchiveManifest) -> Result<(), BackupError> {
    if b.format != FORMAT {
        return Err(BackupError::BadBase(format!("archive format {} is not {FORMAT}", b.format)));
    }
    // An id this server wrote (32 hex digits): it is recorded in the new archive.
    if b.id.len() != 32 || !b.id.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(BackupError::BadBase(format!("id `{}` is not an archive id (32 hex digits)", b.id.escape_debug())));
    }
    // JSON integers as the document states them: at most i64::MAX.
    if b.buffered_rows > i64::MAX as u64 {
        return Err(BackupError::BadBase(format!("buffered_rows {} is out of range", b.buffered_rows)));
    }
    if let Some(e) = b.entries.iter().find(|e| e.size > i64::MAX as u64) {
        return Err(BackupError::BadBase(format!("entry `{}`: size {} is out of range", e.path, e.size)));
    }
    Ok(())
}

/// Copies what belongs with the storage snapshot into its staging folder (the catalog, the
/// registry, the floor plans, the configuration) and lists them.
fn stage_extras(
    staging: &Path,
    catalog: &Catalog,
    registry: &Registry,
    plans: &PlanStore,
    config_text: &str,
) -> Result<Vec<Item>, BackupError> {
    let mut items = Vec::new();
    let mut add = |rel: String| items.push(Item { path: staging.join(&rel), rel, crc32c: None });
    catalog.copy_to(&staging.join("catalog.duckdb"))?;
    add("catalog.duckdb".into());
    // Both are replaced atomically when they change: a copy is always a whole file.
    if copy_if_present(registry.path(), &staging.join("points.json"))? {
        add("points.json".into());
    }
    if let Ok(dir) = std::fs::read_dir(plans.dir()) {
        std::fs::create_dir_all(staging.join("floorplans")).map_err(io("create the staging folder"))?;
        let mut names: Vec<String> = dir
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".tmp"))
            .collect();
        names.sort();
        for name in names {
            let rel = format!("floorplans/{name}");
            if copy_if_present(&plans.dir().join(&name), &staging.join(&rel))? {
                add(rel);
            }
        }
    }
    std::fs::write(staging.join(CONFIG_ENTRY), config_text).map_err(io(format!("write {CONFIG_ENTRY}")))?;
    add(CONFIG_ENTRY.into());
    Ok(items)
}

/// Copies `from` to `to`; `false` if `from` does not exist (a floor plan deleted meanwhile).
fn copy_if_present(from: &Path, to: &Path) -> Result<bool, BackupError> {
    match std::fs::copy(from, to) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(BackupError::Io { what: format!("copy {}", from.display()), source: e }),
    }
}

/// The configuration as TOML, its secrets redacted ([`Config::without_secrets`]): the archive may
/// travel further than the server's own files.
pub fn effective_config(cfg: &Config) -> String {
    let header = "# The configuration the server ran with when the backup was taken (secrets redacted).\n\
                  # To run on the restored data, set [storage] data_dir and put the secrets back.\n";
    match toml::to_string(&cfg.without_secrets()) {
        Ok(text) => format!("{header}{text}"),
        Err(e) => format!("{header}# (could not be written as TOML: {e})\n"),
    }
}

fn header(path: &str, size: u64, mtime: u64) -> Result<tar::Header, BackupError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(io(format!("archive {path}")))?;
    h.set_size(size);
    h.set_mode(0o640);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hashes and counts what goes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing { inner, hasher: Sha256::new(), bytes: 0 }
    }

    fn hex(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// `rel` if it is a relative path of plain names (nothing that could leave the target directory).
fn safe_path(rel: &str) -> Option<&Path> {
    let p = Path::new(rel);
    let plain = !rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    plain.then_some(p)
}

/// Whether `rel` is a file a backup writes: the layout of a data directory a server starts on and
/// nothing else, so a crafted archive (its checksums are its own) cannot place a plugin library,
/// WAL segments or a lock file into the restored directory.
fn restorable(rel: &str) -> bool {
    if safe_path(rel).is_none() {
        return false;
    }
    let parts: Vec<&str> = rel.split('/').collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["manifest.json" | "catalog.duckdb" | "points.json"] => true,
        [CONFIG_ENTRY] => true,
        ["floorplans", floor] => digits(floor),
        ["samples" | "rollups_1m" | "rollups_1h", day, part] => {
            day.strip_prefix("day=")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'+'))
                && part.strip_prefix("part-").and_then(|p| p.strip_suffix(".parquet")).is_some_and(digits)
        }
        _ => false,
    }
}

/// An archive read through and checked against its own manifest.
#[derive(Debug)]
pub struct Checked {
    pub path: PathBuf,
    pub manifest: ArchiveManifest,
    /// The manifest's bytes, written into the restored directory.
    manifest_bytes: Vec<u8>,
}

/// Reads the archive at `path` to its end, hashing every file, and checks it against its
/// manifest: complete (nothing missing, nothing unknown, not cut short) and every checksum right.
/// Writes nothing.
pub fn check_archive(path: &Path) -> Result<Checked, BackupError> {
    let name = path.display().to_string();
    if path.is_dir() {
        return Err(BackupError::Refused(format!("{name} is a directory, not a backup archive")));
    }
    let file = std::fs::File::open(path).map_err(io(format!("open {name}")))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let refused = |what: String| BackupError::Refused(format!("{name}: {what}"));
    let truncated = |after: &str, e: &dyn std::fmt::Display| {
        refused(format!("the archive is truncated or damaged after `{after}` ({e})"))
    };
    let mut seen: HashMap<String, (u64, String)> = HashMap::new();
    let mut problems = Vec::new();
    let (mut manifest_bytes, mut sum) = (None::<Vec<u8>>, None::<String>);
    let mut last = String::from("(the start)");
    let entries = archive.entries().map_err(|e| truncated(&last, &e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| truncated(&last, &e))?;
        let rel = entry.path().map(|p| p.to_string_lossy().into_owned()).map_err(|e| truncated(&last, &e))?;
        let size = entry.size();
        let mut content = Vec::new();
        let mut reader = Hashing::new(&mut entry);
        let n = if rel == MANIFEST_ENTRY || rel == MANIFEST_SUM_ENTRY {
            reader.read_to_end(&mut content).map(|n| n as u64)
        } else {
            std::io::copy(&mut reader, &mut std::io::sink())
        }
        .map_err(|e| truncated(&last, &e))?;
        let sha = reader.hex();
        if n != size {
            return Err(truncated(&rel, &format!("it ends after {n} of the {size} bytes of `{rel}`")));
        }
        if sum.is_some() {
            problems.push(format!("unexpected file `{rel}` after the manifest"));
        } else if rel == MANIFEST_SUM_ENTRY {
            sum = Some(String::from_utf8_lossy(&content).trim().to_string());
        } else if manifest_bytes.is_some() {
            problems.push(format!("unexpected file `{rel}` between {MANIFEST_ENTRY} and {MANIFEST_SUM_ENTRY}"));
        } else if rel == MANIFEST_ENTRY {
            manifest_bytes = Some(content);
        } else if safe_path(&rel).is_none() || entry.header().entry_type() != tar::EntryType::Regular {
            problems.push(format!("`{rel}` is not a plain file inside the data directory"));
        } else if !restorable(&rel) {
            problems.push(format!("`{rel}` is not a file a backup holds"));
        } else if seen.insert(rel.clone(), (size, sha)).is_some() {
            problems.push(format!("`{rel}` is in the archive twice"));
        }
        last = rel;
    }
    let (Some(bytes), Some(sum)) = (manifest_bytes, sum) else {
        return Err(refused(format!(
            "the archive is partial: it ends (after `{last}`) before its manifest ({MANIFEST_ENTRY} and {MANIFEST_SUM_ENTRY}), \
             so the backup did not finish or the file was cut short"
        )));
    };
    if hex(&Sha256::digest(&bytes)) != sum {
        return Err(refused(format!(
            "{MANIFEST_ENTRY} is damaged: its SHA-256 is not the one in {MANIFEST_SUM_ENTRY}"
        )));
    }
    let manifest: ArchiveManifest = serde_json::from_slice(&bytes)
        .map_err(|e| refused(format!("{MANIFEST_ENTRY} cannot be read ({e}); is this a t3000 backup?")))?;
    if manifest.format != FORMAT {
        return Err(refused(format!(
            "archive format {} is not {FORMAT} (written by t3000 {})",
            manifest.format, manifest.server_version
        )));
    }
    let mut listed = HashSet::new();
    for e in &manifest.entries {
        listed.insert(e.path.as_str());
        if safe_path(&e.path).is_none() {
            problems.push(format!("the manifest lists `{}`, which is not a path inside the data directory", e.path));
        } else if !restorable(&e.path) {
            problems.push(format!("the manifest lists `{}`, which is not a file a backup holds", e.path));
        } else if e.in_base {
            if manifest.base.is_none() {
                problems
                    .push(format!("`{}` is listed as taken from a base archive, but the archive names none", e.path));
            }
        } else {
            match seen.get(&e.path) {
                None => problems.push(format!("file `{}` is missing", e.path)),
                Some((size, _)) if *size != e.size => {
                    problems.push(format!("file `{}` has {size} bytes, the manifest says {}", e.path, e.size))
                }
                Some((_, sha)) if *sha != e.sha256 => problems.push(format!("file `{}`: checksum mismatch", e.path)),
                Some(_) => {}
            }
        }
    }
    let mut unknown: Vec<&String> = seen.keys().filter(|k| !listed.contains(k.as_str())).collect();
    unknown.sort();
    problems.extend(unknown.into_iter().map(|k| format!("file `{k}` is not in the manifest")));
    if !problems.is_empty() {
        let more = problems.len().saturating_sub(MAX_PROBLEMS);
        problems.truncate(MAX_PROBLEMS);
        let tail = if more > 0 { format!("; and {more} more") } else { String::new() };
        return Err(refused(format!("the archive is damaged: {}{tail}", problems.join("; "))));
    }
    Ok(Checked { path: path.to_owned(), manifest, manifest_bytes: bytes })
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub id: String,
    pub created: String,
    pub files: usize,
    pub bytes: u64,
    /// The base archives used, nearest first.
    pub bases: Vec<String>,
    /// Archives passed as bases that the chain does not need.
    pub unused: Vec<PathBuf>,
}

/// Restores `archive` (and, for an incremental one, its chain of base archives among `bases`)
/// into `dir`, which must be empty or not exist. Every archive is checked in full before anything
/// is written.
pub fn restore(archive: &Path, bases: &[PathBuf], dir: &Path) -> Result<Restored, BackupError> {
    check_target(dir)?;
    let nothing = |e: BackupError| BackupError::Refused(format!("{e}; nothing was restored"));
    let top = check_archive(archive).map_err(nothing)?;
    let others = bases.iter().map(|b| check_archive(b)).collect::<Result<Vec<_>, _>>().map_err(nothing)?;
    let chain = chain(&top, &others)?;
    let plan = plan(&chain)?;
    // Written into a hidden folder inside the target (the same filesystem, also when the target
    // is a mount point) whose files are moved into place once all are written: a restore that
    // fails (a full disk, an archive changed meanwhile) leaves the target as it was.
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let staging = dir.join(format!(".restoring-{}", std::process::id()));
    let written = (|| -> Result<u64, BackupError> {
        std::fs::create_dir(&staging).map_err(io(format!("create {}", staging.display())))?;
        let mut bytes = 0;
        for (k, archive) in chain.iter().enumerate() {
            let wanted: HashMap<&str, &ArchiveEntry> =
                plan.iter().filter(|(_, at)| *at == k).map(|(e, _)| (e.path.as_str(), *e)).collect();
            if !wanted.is_empty() {
                bytes += extract(archive, &wanted, &staging)?;
            }
        }
        write_file(&staging.join(MANIFEST_ENTRY), &top.manifest_bytes)?;
        sync_dir(&staging)?;
        for entry in std::fs::read_dir(&staging).map_err(io(format!("read {}", staging.display())))? {
            let from = entry.map_err(io(format!("read {}", staging.display())))?.path();
            let to = dir.join(from.file_name().expect("a directory entry has a name"));
            std::fs::rename(&from, &to).map_err(io(format!("move {} to {}", from.display(), to.display())))?;
        }
        std::fs::remove_dir(&staging).map_err(io(format!("remove {}", staging.display())))?;
        sync_dir(dir)?;
        Ok(bytes)
    })();
    let bytes = written.map_err(|e| {
        let _ = std::fs::remove_dir_all(&staging);
        if created {
            let _ = std::fs::remove_dir(dir);
        }
        BackupError::Refused(format!("{e}; nothing was restored ({} is as it was)", dir.display()))
    })?;
    let used: HashSet<&Path> = chain.iter().map(|c| c.path.as_path()).collect();
    Ok(Restored {
        id: top.manifest.id.clone(),
        created: top.manifest.created.clone(),
        files: plan.len(),
        bytes,
        bases: chain[1..].iter().map(|c| c.manifest.id.clone()).collect(),
        unused: bases.iter().filter(|b| !used.contains(b.as_path())).cloned().collect(),
    })
}

/// The target must be an empty directory, or not exist yet.
fn check_target(dir: &Path) -> Result<(), BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::Refused(format!(
                    "{} is not empty: restore only into an empty directory (or one that does not exist yet)",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackupError::Io { what: format!("read {}", dir.display()), source: e }),
    }
}

/// The archive and the bases it builds on, nearest first.
fn chain<'a>(top: &'a Checked, others: &'a [Checked]) -> Result<Vec<&'a Checked>, BackupError> {
    let mut chain = vec![top];
    while let Some(base) = &chain[chain.len() - 1].manifest.base {
        let Some(found) = others.iter().find(|o| o.manifest.id == base.id) else {
            let of = &chain[chain.len() - 1];
            return Err(BackupError::Refused(format!(
                "{} is an incremental backup: it needs its base archive {} (taken {}); pass it with --base",
                of.path.display(),
                base.id,
                base.created
            )));
        };
        if chain.iter().any(|c| c.manifest.id == found.manifest.id) {
            return Err(BackupError::Refused(format!("the base archives form a loop at {}", base.id)));
        }
        chain.push(found);
    }
    Ok(chain)
}

/// Each file of the restored directory and the archive of the chain that holds it, checked
/// link by link: a file taken from a base must be there with the same checksum.
fn plan<'a>(chain: &[&'a Checked]) -> Result<Vec<(&'a ArchiveEntry, usize)>, BackupError> {
    let mut out = Vec::new();
    for entry in &chain[0].manifest.entries {
        let (mut e, mut k) = (entry, 0);
        while e.in_base {
            k += 1;
            let base = chain[k];
            let found = base.manifest.entries.iter().find(|b| b.path == e.path);
            match found {
                Some(b) if b.sha256 == e.sha256 && b.size == e.size => e = b,
                Some(_) => {
                    return Err(BackupError::Refused(format!(
                        "file `{}` in base archive {} ({}) is not the one {} expects (checksum)",
                        e.path,
                        base.manifest.id,
                        base.path.display(),
                        chain[k - 1].manifest.id
                    )));
                }
                None => {
                    return Err(BackupError::Refused(format!(
                        "file `{}` is not in base archive {} ({}): wrong base archive?",
                        e.path,
                        base.manifest.id,
                        base.path.display()
                    )));
                }
            }
        }
        out.push((e, k));
    }
    Ok(out)
}

/// Writes the `wanted` files of `archive` under `dir`, checking each checksum again as it is
/// written (the archive could have changed since it was checked). Returns the bytes written.
fn extract(archive: &Checked, wanted: &HashMap<&str, &ArchiveEntry>, dir: &Path) -> Result<u64, BackupError> {
    let name = archive.path.display().to_string();
    let file = std::fs::File::open(&archive.path).map_err(io(format!("open {name}")))?;
    let mut tar = tar::Archive::new(std::io::BufReader::new(file));
    let mut written = 0;
    let mut done = 0;
    for entry in tar.entries().map_err(io(format!("read {name}")))? {
        let mut entry = entry.map_err(io(format!("read {name}")))?;
        let rel = entry.path().map_err(io(format!("read {name}")))?.to_string_lossy().into_owned();
        let Some(expected) = wanted.get(rel.as_str()) else { continue };
        let to = dir.join(safe_path(&rel).expect("checked by check_archive"));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
        }
        let mut out = std::fs::File::create(&to).map_err(io(format!("create {}", to.display())))?;
        let mut reader = Hashing::new(&mut entry);
        std::io::copy(&mut reader, &mut out).map_err(io(format!("write {}", to.display())))?;
        out.sync_all().map_err(io(format!("fsync {}", to.display())))?;
        if reader.hex() != expected.sha256 {
            return Err(BackupError::Refused(format!(
                "{name} changed while it was restored (`{rel}` no longer matches its checksum)"
            )));
        }
        written += reader.bytes;
        done += 1;
    }
    if done != wanted.len() {
        return Err(BackupError::Refused(format!("{name} changed while it was restored (files went missing)")));
    }
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut f = std::fs::File::create(path).map_err(io(format!("create {}", path.display())))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(format!("write {}", path.display())))
}

/// Fsyncs every directory under `dir` (and `dir`), so the restored files' names are durable.
fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    let entries = std::fs::read_dir(dir).map_err(io(format!("read {}", dir.display())))?;
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            sync_dir(&e.path())?;
        }
    }
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io(format!("fsync {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        let mut cfg = Config::default();
        cfg.auth.admin_password = "correct horse battery".into();
        let text = effective_config(&cfg);
        assert!(!text.contains("correct horse"), "{text}");
        assert!(text.contains(&format!("admin_password = \"{}\"", t3_core::config::REDACTED)), "{text}");
        let parsed: toml::Value = toml::from_str(&text).expect("the effective configuration is TOML");
        assert!(parsed.get("storage").is_some());
    }

    #[test]
    fn only_plain_relative_paths_are_safe() {
        assert!(safe_path("samples/day=2026-01-01/part-1.parquet").is_some());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "./a"] {
            assert!(safe_path(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_the_files_of_a_backup_are_restorable() {
        for good in [
            "manifest.json",
            "catalog.duckdb",
            "points.json",
            CONFIG_ENTRY,
            "floorplans/12",
            "samples/day=2026-01-01/part-00000000000000000001.parquet",
            "rollups_1h/day=2026-12-31/part-7.parquet",
        ] {
            assert!(restorable(good), "{good}");
        }
        for bad in [
            "plugins/libevil.so",
            "wal/00000000000000000001.wal",
            "LOCK",
            "catalog.duckdb.wal",
            "floorplans/12.tmp",
            "samples/day=2026-01-01/part-1.so",
            "samples/part-1.parquet",
            "quarantine/x.parquet",
            "tmp/a",
        ] {
            assert!(!restorable(bad), "{bad}");
        }
    }

    /// An archive whose own checksums are right but that holds a file no backup writes (a plugin
    /// library) is refused before anything is written.
    #[test]
    fn a_crafted_archive_with_a_plugin_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crafted.tar");
        let evil = b"\x7fELF not really".to_vec();
        let entries = vec![ArchiveEntry {
            path: "plugins/libevil.so".into(),
            size: evil.len() as u64,
            sha256: hex(&Sha256::digest(&evil)),
            crc32c: None,
            in_base: false,
        }];
        let manifest = ArchiveManifest {
            format: FORMAT,
            id: "x".into(),
            server_version: "0".into(),
            created_us: 0,
            created: String::new(),
            source_data_dir: String::new(),
            buffered_rows: 0,
            base: None,
            entries,
        };
        let json = serde_json::to_vec(&manifest).unwrap();
        let sum = hex(&Sha256::digest(&json));
        let mut tar = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (name, bytes) in
            [("plugins/libevil.so", &evil), (MANIFEST_ENTRY, &json), (MANIFEST_SUM_ENTRY, &sum.into_bytes())]
        {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, bytes.as_slice()).unwrap();
        }
        tar.finish().unwrap();
        drop(tar);
        let target = dir.path().join("restored");
        let e = restore(&path, &[], &target).unwrap_err().to_string();
        assert!(e.contains("plugins/libevil.so") && e.contains("not a file a backup holds"), "{e}");
        assert!(!target.exists());
    }
}
