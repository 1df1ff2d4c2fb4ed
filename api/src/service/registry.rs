//! Stable point ids for device points: `(device name, point name)` -> id, kept in
//! `<data dir>/points.json` so a restart (or a device that moves to another address) keeps
//! writing the same series.
//!
//! Ids are handed out in order and never reused: a new point gets an id above every id the registry
//! has given and above every point id already in storage (series pushed over the API, or a registry
//! file that was lost), so a device point never continues someone else's series. The file is replaced atomically (temporary
//! file, fsync, rename, directory fsync); a damaged file stops start-up with a message naming it
//! rather than silently renumbering every point.

use anyhow::{Context, bail};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One registered point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: u32,
    pub device: String,
    pub point: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    next_id: u64,
    points: Vec<Entry>,
}

#[derive(Debug, Default)]
struct Inner {
    /// u64 so that handing out u32::MAX cannot overflow.
    next_id: u64,
    by_key: BTreeMap<(String, String), u32>,
    dirty: bool,
}

/// The registry of device point ids.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl Registry {
    /// Opens (or starts) the registry in `data_dir`; new ids start at `first_free` or above (one past
    /// the highest point id in storage).
    pub fn open(data_dir: &Path, first_free: u32) -> anyhow::Result<Registry> {
        let path = data_dir.join("points.json");
        let mut inner = Inner { next_id: 1, ..Default::default() };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let file: File = serde_json::from_slice(&bytes).with_context(|| {
                    format!("{} is damaged; restore it from a backup (point ids depend on it)", path.display())
                })?;
                if file.version != 1 {
                    bail!("{}: unknown version {}", path.display(), file.version);
                }
                for e in file.points {
                    inner.next_id = inner.next_id.max(u64::from(e.id) + 1);
                    inner.by_key.insert((e.device, e.point), e.id);
                }
                inner.next_id = inner.next_id.max(file.next_id);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        }
        inner.next_id = inner.next_id.max(u64::from(first_free));
        Ok(Registry { path, inner: Mutex::new(inner) })
    }

    /// The file the registry is kept in (`<data_dir>/points.json`), replaced atomically on save.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of a device's point, assigning the next free id to a new one (call [`Registry::save`]
    /// before using new ids for data).
    pub fn id(&self, device: &str, point: &str) -> u32 {
        let mut inner = self.inner.lock();
        if let Some(&id) = inner.by_key.get(&(device.to_owned(), point.to_owned())) {
            return id;
        }
        let id = u32::try_from(inner.next_id).expect("callers check free_ids() first");
        inner.next_id += 1;
        inner.by_key.insert((device.to_owned(), point.to_owned()), id);
        inner.dirty = true;
        id
    }

    /// Moves a device's ids to its new name, so a renamed device continues its series, and saves.
    /// Ids an earlier device of the new name had are left to their history.
    pub fn rename_device(&self, old: &str, new: &str) -> anyhow::Result<()> {
        {
            let mut inner = self.inner.lock();
            let moved: Vec<(String, u32)> =
                inner.by_key.iter().filter(|((d, _), _)| d == old).map(|((_, p), &id)| (p.clone(), id)).collect();
            inner.by_key.retain(|(d, _), _| d != old && d != new);
            for (point, id) in moved {
                inner.by_key.insert((new.to_owned(), point), id);
            }
            inner.dirty = true;
        }
        self.save()
    }

    /// Ids that can still be handed out.
    pub fn free_ids(&self) -> u64 {
        (u64::from(u32::MAX) + 1).saturating_sub(self.inner.lock().next_id)
    }

    /// The registered point with id `id`, if any.
    pub fn entry(&self, id: u32) -> Option<Entry> {
        let inner = self.inner.lock();
        inner.by_key.iter().find(|(_, i)| **i == id).map(|((device, point), &id)| Entry {
            id,
            device: device.clone(),
            point: point.clone(),
        })
    }

    /// Every registered point, by id.
    pub fn entries(&self) -> Vec<Entry> {
        let inner = self.inner.lock();
        let mut v: Vec<Entry> = inner
            .by_key
            .iter()
            .map(|((device, point), &id)| Entry { id, device: device.clone(), point: point.clone() })
            .collect();
        v.sort_by_key(|e| e.id);
        v
    }

    /// Persists new ids atomically; a no-op when nothing changed.
    pub fn save(&self) -> anyhow::Result<()> {
        let mut inner = self.inner.lock();
        if !inner.dirty {
            return Ok(());
        }
        let file = File {
            version: 1,
            next_id: inner.next_id,
            points: inner
                .by_key
                .iter()
                .map(|((device, point), &id)| Entry { id, device: device.clone(), point: point.clone() })
                .collect(),
        };
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().with_context(|| format!("write {}", self.path.display()))?;
        inner.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_across_reopen_and_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(dir.path(), 1).unwrap();
        assert_eq!(r.id("ahu-1", "IN1"), 1);
        assert_eq!(r.id("ahu-1", "IN2"), 2);
        assert_eq!(r.id("ahu-1", "IN1"), 1);
        r.save().unwrap();
        let r = Registry::open(dir.path(), 1).unwrap();
        assert_eq!(r.id("ahu-2", "IN1"), 3);
        assert_eq!(r.id("ahu-1", "IN2"), 2);
        assert_eq!(r.entries().len(), 3);
        r.save().unwrap();
        // Series pushed up to id 99 meanwhile: new points start above them, old ones keep theirs.
        let r = Registry::open(dir.path(), 100).unwrap();
        assert_eq!(r.id("ahu-1", "IN1"), 1);
        assert_eq!(r.id("ahu-3", "IN1"), 100);
    }

    #[test]
    fn a_renamed_device_keeps_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(dir.path(), 1).unwrap();
        assert_eq!(r.id("ahu-1", "IN1"), 1);
        assert_eq!(r.id("ahu-2", "IN1"), 2);
        r.rename_device("ahu-1", "ahu-2").unwrap();
        let r = Registry::open(dir.path(), 1).unwrap();
        assert_eq!(r.id("ahu-2", "IN1"), 1);
        assert_eq!(r.id("ahu-1", "IN1"), 3, "the old name is free; its ids went with the device");
    }

    #[test]
    fn damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("points.json"), b"{ not json").unwrap();
        let e = Registry::open(dir.path(), 1).unwrap_err();
        assert!(format!("{e:#}").contains("points.json is damaged"), "{e:#}");
    }
}
