//! The live file set: the snapshot a query reads, manifest edits (files added, retired, quarantined),
//! checks of files before they are read, and the quarantine records.

use super::Storage;
use super::recovery::quarantine;
use crate::buffer::{Columns, RowFilter};
use crate::error::{Error, Result};
use crate::files::manifest::{FileMeta, Quarantined, Table};
use crate::files::{LiveFile, Snapshot};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

impl Storage {
    /// The live files and the buffered rows matching `filter` (sorted, last write wins), taken
    /// atomically so a concurrent flush neither hides nor doubles a sample.
    pub(super) fn snapshot(&self, filter: &RowFilter<'_>, with_buffer: bool) -> Snapshot {
        let mut cols = Columns::default();
        let files = {
            let st = self.inner.shared.state.lock();
            if with_buffer {
                for f in &st.frozen {
                    f.select(filter, &mut cols);
                }
                st.active.select(filter, &mut cols);
            }
            st.files.clone()
        };
        Snapshot { files, buffered: cols.sort_dedup() }
    }

    /// Live sample files, for the SQL endpoint and exports.
    pub fn live_files(&self) -> Arc<Vec<Arc<LiveFile>>> {
        self.inner.shared.state.lock().files.clone()
    }

    /// Applies a manifest edit: `add` files join the live set and `remove` (by seq) leave it and are
    /// deleted once no query holds them.
    pub(super) fn edit_files(&self, add: Vec<FileMeta>, remove: &HashSet<u64>) -> Result<()> {
        self.edit_manifest(add, remove, None)
    }

    /// [`Storage::edit_files`], or with `quarantined` set: `remove` leaves the live set for
    /// quarantine (moved, not deleted) and the record is kept.
    fn edit_manifest(&self, add: Vec<FileMeta>, remove: &HashSet<u64>, quarantined: Option<Quarantined>) -> Result<()> {
        let data_dir = &self.inner.data_dir;
        let mut m = self.inner.manifest.lock();
        let mut next = m.clone();
        // Retired files are listed until they are gone, so a crash before their deletion leaves
        // nothing that start-up could mistake for data.
        next.retired.retain(|rel| data_dir.join(rel).exists());
        if quarantined.is_none() {
            let gone = next.files.iter().filter(|f| remove.contains(&f.seq)).map(super::recovery::rel_string);
            next.retired.extend(gone.collect::<Vec<_>>());
        }
        next.files.retain(|f| !remove.contains(&f.seq));
        next.files.extend(add.iter().cloned());
        next.quarantined.extend(quarantined.iter().cloned());
        next.generation += 1;
        next.store(&*self.inner.vfs, data_dir)?;
        if quarantined.is_some() {
            *self.inner.quarantined.write() = Arc::new(next.quarantined.clone());
        }
        *m = next;
        let mut st = self.inner.shared.state.lock();
        let mut files: Vec<Arc<LiveFile>> = Vec::with_capacity(st.files.len() + add.len());
        for f in st.files.iter() {
            if !remove.contains(&f.meta.seq) {
                files.push(f.clone());
            } else if quarantined.is_none() {
                f.retire();
            }
        }
        files.extend(add.into_iter().map(|meta| LiveFile::new(data_dir, meta, true)));
        st.files = Arc::new(files);
        Ok(())
    }

    /// Records the checksums of files written before checksums were (by seq). Returns how many
    /// live files got one.
    pub(super) fn record_checksums(&self, crcs: &HashMap<u64, u32>) -> Result<usize> {
        let data_dir = &self.inner.data_dir;
        let mut m = self.inner.manifest.lock();
        let mut next = m.clone();
        let mut n = 0;
        for f in next.files.iter_mut() {
            if let Some(crc) = crcs.get(&f.seq).filter(|_| f.crc32c.is_none()) {
                f.crc32c = Some(*crc);
                n += 1;
            }
        }
        if n == 0 {
            return Ok(0);
        }
        next.generation += 1;
        next.store(&*self.inner.vfs, data_dir)?;
        let metas: HashMap<u64, FileMeta> = next.files.iter().map(|f| (f.seq, f.clone())).collect();
        *m = next;
        let mut st = self.inner.shared.state.lock();
        let files = st
            .files
            .iter()
            .map(|f| match metas.get(&f.meta.seq) {
                Some(meta) if meta.crc32c != f.meta.crc32c => LiveFile::new(data_dir, meta.clone(), true),
                _ => f.clone(),
            })
            .collect();
        st.files = Arc::new(files);
        Ok(n)
    }

    /// Files taken out of service because they failed a check (acknowledged ones included).
    pub fn quarantined(&self) -> Vec<Quarantined> {
        self.inner.quarantined.read().to_vec()
    }

    /// Marks the quarantine record of `file` (its relative path as listed) acknowledged: it stays
    /// listed, but no longer raises the alarm. Returns whether such a record exists.
    pub fn acknowledge_quarantined(&self, file: &str) -> Result<bool> {
        let mut m = self.inner.manifest.lock();
        let mut next = m.clone();
        let mut found = false;
        for q in next.quarantined.iter_mut().filter(|q| q.file == file) {
            found = true;
            q.acknowledged = true;
        }
        if found {
            next.generation += 1;
            next.store(&*self.inner.vfs, &self.inner.data_dir)?;
            *self.inner.quarantined.write() = Arc::new(next.quarantined.clone());
            *m = next;
        }
        Ok(found)
    }

    /// Whether data a query over `[from, to)` of `points` (all if `None`) would read is known to be
    /// missing: a quarantined sample file overlapped it.
    pub(super) fn overlaps_quarantined(&self, points: Option<&[u32]>, from: i64, to: i64) -> bool {
        self.inner.quarantined.read().iter().any(|q| {
            q.table == Table::Samples
                && q.rows > 0
                && q.max_ts >= from
                && q.min_ts < to
                && points.is_none_or(|p| p.iter().any(|p| (q.min_point..=q.max_point).contains(p)))
        })
    }

    /// Checks the files a read is about to use that this process has not checked yet (after a
    /// start). A file that fails is named in the error, which the read's retry loop quarantines.
    pub(super) async fn verify_files(&self, files: Vec<Arc<LiveFile>>) -> Result<()> {
        let unverified: Vec<Arc<LiveFile>> = files.into_iter().filter(|f| !f.is_verified()).collect();
        if unverified.is_empty() {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || {
            for f in unverified {
                f.check().map_err(|message| Error::DataFile { path: f.path.clone(), message })?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(format!("verify task: {e}")))?
    }

    /// Moves a damaged live file to quarantine and out of the live set, and keeps a record of it
    /// (what it held, why) until an operator acknowledges it.
    pub(super) fn quarantine_file(&self, file: &LiveFile, reason: &str) -> Result<()> {
        if !self.live_files().iter().any(|f| f.meta.seq == file.meta.seq) {
            // Another reader got there first (or the file was replaced meanwhile).
            return Ok(());
        }
        let rel = super::recovery::rel_string(&file.meta);
        tracing::error!(file = %rel, rows = file.meta.rows, reason, "a data file failed its check; moving it to quarantine/");
        let moved = quarantine(&self.inner.data_dir, &file.path);
        let now = self.inner.clock.now_us();
        let record = super::recovery::record(&self.inner.data_dir, rel, moved, reason.to_string(), &file.meta, now);
        self.edit_manifest(Vec::new(), &HashSet::from([file.meta.seq]), Some(record))
    }
}
