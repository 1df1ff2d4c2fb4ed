//! The metadata catalog: buildings, devices, points, schedules, users, ... and the audit log, in
//! `<data_dir>/catalog.duckdb`.
//!
//! # Model
//! Every catalog record is a JSON document of one *kind* ("building", "device", ...) with an id,
//! stored in one table `records(kind, id, body)`. The catalog does not know the record types: the
//! API registers each type once ([`Catalog::register`]), which loads its rows into memory, typed.
//! Reads are served from memory (a catalog holds thousands of rows, not millions); every change
//! is written to DuckDB in one transaction first and applied to memory only after the commit, so
//! memory never shows what the file does not hold. Several changes that belong together (a
//! building and its floors and rooms) commit together through [`Catalog::transaction`].
//!
//! Ids are never reused: each kind's next id is a row of its own, written in the same transaction.
//!
//! # Event logs
//! `events(seq, stream, key, at_us, body)` holds append-only histories that grow without bound
//! (alarm transitions: stream `alarm`, key the rule id) and are queried by key and time rather
//! than kept in memory.
//!
//! # Audit
//! `audit(seq, ts, actor, remote, action, target, old, new, result)` is append-only. An action on a
//! device is recorded as `pending` before it is attempted ([`Catalog::audit_begin`]) and its
//! result filled in afterwards ([`Catalog::audit_finish`]), so a crash in between leaves the
//! attempt on record.

use crate::error::{Error, Result};
use duckdb::{Connection, params};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A record type kept in the catalog.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The kind name in the `records` table; unique per type.
    const KIND: &'static str;
    fn id(&self) -> i64;
    fn set_id(&mut self, id: i64);
}

type Rows<T> = BTreeMap<i64, T>;

struct Inner {
    conn: Connection,
    /// kind -> `Rows<T>` of its registered type.
    tables: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
    next_id: HashMap<&'static str, i64>,
}

impl Inner {
    fn rows<T: Record>(&self) -> &Rows<T> {
        self.tables
            .get(T::KIND)
            .and_then(|t| t.downcast_ref::<Rows<T>>())
            .unwrap_or_else(|| panic!("catalog kind `{}` used before Catalog::register", T::KIND))
    }

    fn rows_mut<T: Record>(&mut self) -> &mut Rows<T> {
        self.tables
            .get_mut(T::KIND)
            .and_then(|t| t.downcast_mut::<Rows<T>>())
            .unwrap_or_else(|| panic!("catalog kind `{}` used before Catalog::register", T::KIND))
    }
}

/// The catalog; cheap to share behind an `Arc`.
pub struct Catalog {
    inner: Mutex<Inner>,
    /// The database file.
    path: PathBuf,
    /// Why the last write failed, until a write succeeds (see [`Catalog::write_failure`]).
    write_failure: Mutex<Option<String>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

/// One change staged in a [`Transaction`].
enum Op {
    Put { kind: &'static str, id: i64, body: String, apply: Box<dyn FnOnce(&mut Inner) + Send> },
    Delete { kind: &'static str, id: i64, apply: Box<dyn FnOnce(&mut Inner) + Send> },
}

/// Changes that commit together. Reads inside the transaction see the catalog as it was before
/// it (plus the ids handed out by [`Transaction::insert`]).
pub struct Transaction<'a> {
    inner: &'a Inner,
    ops: Vec<Op>,
    next_id: HashMap<&'static str, i64>,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").field("ops", &self.ops.len()).finish()
    }
}

impl Transaction<'_> {
    /// The committed rows of a kind.
    pub fn rows<T: Record>(&self) -> &BTreeMap<i64, T> {
        self.inner.rows::<T>()
    }

    /// Stages a new record; it gets the next id of its kind, which is returned.
    pub fn insert<T: Record>(&mut self, mut record: T) -> Result<T> {
        let next = self.next_id.entry(T::KIND).or_insert_with(|| self.inner.next_id.get(T::KIND).copied().unwrap_or(1));
        record.set_id(*next);
        *next += 1;
        self.put(record.clone())?;
        Ok(record)
    }

    /// Stages a record to be written under its id (insert or replace).
    pub fn put<T: Record>(&mut self, record: T) -> Result<()> {
        let body = serde_json::to_string(&record).map_err(|e| Error::Internal(format!("encode {}: {e}", T::KIND)))?;
        let id = record.id();
        self.ops.push(Op::Put {
            kind: T::KIND,
            id,
            body,
            apply: Box::new(move |inner| {
                inner.rows_mut::<T>().insert(id, record);
            }),
        });
        Ok(())
    }

    /// Stages the removal of a record (nothing happens if there is none).
    pub fn delete<T: Record>(&mut self, id: i64) {
        self.ops.push(Op::Delete {
            kind: T::KIND,
            id,
            apply: Box::new(move |inner| {
                inner.rows_mut::<T>().remove(&id);
            }),
        });
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    /// Epoch microseconds.
    pub ts: i64,
    /// The user or token name, or `system`.
    pub actor: String,
    /// The client's address.
    pub remote: Option<String>,
    /// What was done: `login`, `point.write`, `device.create`, ...
    pub action: String,
    /// What it was done to: `point:1234`, `device:7`, ...
    pub target: Option<String>,
    pub old: Option<serde_json::Value>,
    pub new: Option<serde_json::Value>,
    /// `pending` until the action finished, then `ok` or the error.
    pub result: String,
}

/// What [`Catalog::audit`] returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub actor: Option<String>,
    /// A prefix of the action (`point.` for every point action).
    pub action: Option<String>,
    pub target: Option<String>,
    /// Newest first; at most this many.
    pub limit: usize,
    /// Entries with a smaller seq than this (paging backwards).
    pub before_seq: Option<i64>,
}

/// Which events [`Catalog::events`] returns.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub key: Option<i64>,
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub before_seq: Option<i64>,
    /// Newest first; at most this many.
    pub limit: usize,
}

impl Catalog {
    /// Opens (or creates) `<data_dir>/catalog.duckdb`.
    pub fn open(data_dir: &Path) -> Result<Catalog> {
        let config = duckdb::Config::default().threads(1)?.max_memory("64MB")?.enable_autoload_extension(false)?;
        let path = data_dir.join("catalog.duckdb");
        let conn = Connection::open_with_flags(&path, config)?;
        conn.execute_batch(
            "SET autoinstall_known_extensions = false;
             SET autoload_known_extensions = false;
             CREATE TABLE IF NOT EXISTS records (kind VARCHAR NOT NULL, id BIGINT NOT NULL, body VARCHAR NOT NULL,
                 PRIMARY KEY (kind, id));
             CREATE TABLE IF NOT EXISTS next_ids (kind VARCHAR PRIMARY KEY, next BIGINT NOT NULL);
             CREATE TABLE IF NOT EXISTS events (seq BIGINT PRIMARY KEY, stream VARCHAR NOT NULL, key BIGINT NOT NULL,
                 at_us BIGINT NOT NULL, body VARCHAR NOT NULL);
             CREATE TABLE IF NOT EXISTS audit (seq BIGINT PRIMARY KEY, ts BIGINT NOT NULL, actor VARCHAR NOT NULL,
                 remote VARCHAR, action VARCHAR NOT NULL, target VARCHAR, old VARCHAR, new VARCHAR,
                 result VARCHAR NOT NULL);",
        )?;
        Ok(Catalog {
            inner: Mutex::new(Inner { conn, tables: HashMap::new(), next_id: HashMap::new() }),
            path,
            write_failure: Mutex::new(None),
        })
    }

    /// Writes a consistent copy of the database to `dest` (for a backup): everything committed is
    /// checkpointed into the database file, which is copied while no write can start (writes go
    /// through the connection this holds).
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        let inner = self.inner.lock();
        inner.conn.execute_batch("CHECKPOINT")?;
        std::fs::copy(&self.path, dest).map_err(|e| Error::io("copy", &self.path, e))?;
        Ok(())
    }

    /// Why the last write to the catalog failed, if it did and no write has succeeded since (a
    /// full disk: reads go on from memory, writes fail with [`Error::CatalogUnavailable`]).
    pub fn write_failure(&self) -> Option<String> {
        self.write_failure.lock().clone()
    }

    /// Notes the outcome of a write for [`Catalog::write_failure`], and tells a failure the disk or
    /// the process caused (full, out of file descriptors), which a retry can get past, from others.
    fn wrote<T>(&self, result: Result<T>) -> Result<T> {
        let mut failure = self.write_failure.lock();
        match result {
            Ok(v) => {
                if failure.take().is_some() {
                    tracing::info!("the catalog can be written again");
                }
                Ok(v)
            }
            Err(e) => {
                let text = e.to_string();
                if failure.is_none() {
                    tracing::warn!(error = %text, "a catalog write failed");
                }
                *failure = Some(text.clone());
                const CONDITIONS: [&str; 4] =
                    ["No space left on device", "Disk quota exceeded", "Too many open files", "Read-only file system"];
                if CONDITIONS.iter().any(|c| text.contains(c)) { Err(Error::CatalogUnavailable(text)) } else { Err(e) }
            }
        }
    }

    /// Loads the rows of `T`'s kind; must be called once per type before it is used. A row that
    /// no longer parses as `T` is an error naming the kind and id (nothing is dropped silently).
    pub fn register<T: Record>(&self) -> Result<()> {
        let mut inner = self.inner.lock();
        let mut rows: Rows<T> = BTreeMap::new();
        {
            let mut stmt = inner.conn.prepare("SELECT id, body FROM records WHERE kind = ? ORDER BY id")?;
            let found = stmt.query_map(params![T::KIND], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            for row in found {
                let (id, body) = row?;
                let mut record: T = serde_json::from_str(&body).map_err(|e| Error::Corrupt {
                    path: "catalog.duckdb".into(),
                    message: format!("{} {id}: {e}", T::KIND),
                })?;
                record.set_id(id);
                rows.insert(id, record);
            }
        }
        let stored: Option<i64> =
            inner.conn.query_row("SELECT next FROM next_ids WHERE kind = ?", params![T::KIND], |r| r.get(0)).ok();
        let next = stored.unwrap_or(1).max(rows.keys().next_back().map_or(1, |id| id + 1));
        inner.next_id.insert(T::KIND, next);
        inner.tables.insert(T::KIND, Box::new(rows));
        Ok(())
    }

    /// Reads the rows of a kind under the catalog's lock (keep `f` short).
    pub fn read<T: Record, R>(&self, f: impl FnOnce(&BTreeMap<i64, T>) -> R) -> R {
        f(self.inner.lock().rows::<T>())
    }

    /// One record by id.
    pub fn get<T: Record>(&self, id: i64) -> Option<T> {
        self.read::<T, _>(|rows| rows.get(&id).cloned())
    }

    /// Every record of a kind, by id.
    pub fn list<T: Record>(&self) -> Vec<T> {
        self.read::<T, _>(|rows| rows.values().cloned().collect())
    }

    /// Runs `f` to stage changes, then commits them in one DuckDB transaction and applies them to
    /// memory. If `f` fails nothing is written; if the commit fails nothing changes.
    pub fn transaction<R>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<R>) -> Result<R> {
        let mut inner = self.inner.lock();
        let (out, ops, next_id) = {
            let mut tx = Transaction { inner: &inner, ops: Vec::new(), next_id: HashMap::new() };
            let out = f(&mut tx)?;
            (out, tx.ops, tx.next_id)
        };
        if ops.is_empty() && next_id.is_empty() {
            return Ok(out);
        }
        let write = |conn: &Connection| -> Result<()> {
            conn.execute_batch("BEGIN TRANSACTION")?;
            let run = || -> Result<()> {
                for op in &ops {
                    match op {
                        Op::Put { kind, id, body, .. } => {
                            conn.execute(
                                "INSERT OR REPLACE INTO records (kind, id, body) VALUES (?, ?, ?)",
                                params![kind, id, body],
                            )?;
                        }
                        Op::Delete { kind, id, .. } => {
                            conn.execute("DELETE FROM records WHERE kind = ? AND id = ?", params![kind, id])?;
                        }
                    }
                }
                for (kind, next) in &next_id {
                    conn.execute("INSERT OR REPLACE INTO next_ids (kind, next) VALUES (?, ?)", params![kind, next])?;
                }
                Ok(())
            };
            match run() {
                Ok(()) => Ok(conn.execute_batch("COMMIT")?),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        };
        self.wrote(write(&inner.conn))?;
        for op in ops {
            match op {
                Op::Put { apply, .. } | Op::Delete { apply, .. } => apply(&mut inner),
            }
        }
        inner.next_id.extend(next_id);
        Ok(out)
    }

    /// Inserts one record with a new id and returns it.
    pub fn insert<T: Record>(&self, record: T) -> Result<T> {
        self.transaction(|tx| tx.insert(record))
    }

    /// Writes one record under its id.
    pub fn put<T: Record>(&self, record: T) -> Result<()> {
        self.transaction(|tx| tx.put(record))
    }

    /// Deletes one record; returns whether it existed.
    pub fn delete<T: Record>(&self, id: i64) -> Result<bool> {
        self.transaction(|tx| {
            let existed = tx.rows::<T>().contains_key(&id);
            tx.delete::<T>(id);
            Ok(existed)
        })
    }

    /// Appends an event to a stream's history; returns its seq.
    pub fn append_event(&self, stream: &str, key: i64, at_us: i64, body: &serde_json::Value) -> Result<i64> {
        let inner = self.inner.lock();
        let seq: i64 = inner.conn.query_row("SELECT coalesce(max(seq), 0) + 1 FROM events", [], |r| r.get(0))?;
        self.wrote(
            inner
                .conn
                .execute(
                    "INSERT INTO events (seq, stream, key, at_us, body) VALUES (?, ?, ?, ?, ?)",
                    params![seq, stream, key, at_us, body.to_string()],
                )
                .map_err(Error::from),
        )?;
        Ok(seq)
    }

    /// Events of a stream, newest first: `(seq, key, at_us, body)`.
    pub fn events(&self, stream: &str, filter: &EventFilter) -> Result<Vec<(i64, i64, i64, serde_json::Value)>> {
        let mut sql = String::from("SELECT seq, key, at_us, body FROM events WHERE stream = ?");
        let mut args: Vec<duckdb::types::Value> = vec![stream.to_owned().into()];
        for (cond, v) in [
            (" AND key = ?", filter.key),
            (" AND at_us >= ?", filter.from_us),
            (" AND at_us < ?", filter.to_us),
            (" AND seq < ?", filter.before_seq),
        ] {
            if let Some(v) = v {
                sql.push_str(cond);
                args.push(v.into());
            }
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", filter.limit.max(1)));
        let inner = self.inner.lock();
        let mut stmt = inner.conn.prepare(&sql)?;
        let rows = stmt.query_map(duckdb::params_from_iter(args), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, key, at, body) = row?;
            let body = serde_json::from_str(&body)
                .map_err(|e| Error::Corrupt { path: "catalog.duckdb".into(), message: format!("event {seq}: {e}") })?;
            out.push((seq, key, at, body));
        }
        Ok(out)
    }

    /// Records an action before it is attempted (`result` = `pending`); returns its seq.
    pub fn audit_begin(&self, mut entry: AuditEntry) -> Result<i64> {
        let inner = self.inner.lock();
        let seq: i64 = inner.conn.query_row("SELECT coalesce(max(seq), 0) + 1 FROM audit", [], |r| r.get(0))?;
        entry.seq = seq;
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        let written = inner.conn.execute(
            "INSERT INTO audit (seq, ts, actor, remote, action, target, old, new, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                entry.seq,
                entry.ts,
                entry.actor,
                entry.remote,
                entry.action,
                entry.target,
                json(&entry.old),
                json(&entry.new),
                entry.result
            ],
        );
        self.wrote(written.map_err(Error::from))?;
        Ok(seq)
    }

    /// Fills in the result of an action recorded with [`Catalog::audit_begin`], and optionally its
    /// new value (what the device confirmed).
    pub fn audit_finish(&self, seq: i64, result: &str, new: Option<&serde_json::Value>) -> Result<()> {
        let inner = self.inner.lock();
        let written = match new {
            Some(v) => inner
                .conn
                .execute("UPDATE audit SET result = ?, new = ? WHERE seq = ?", params![result, v.to_string(), seq]),
            None => inner.conn.execute("UPDATE audit SET result = ? WHERE seq = ?", params![result, seq]),
        };
        self.wrote(written.map_err(Error::from))?;
        Ok(())
    }

    /// Records a finished action in one step.
    pub fn audit_record(&self, mut entry: AuditEntry) -> Result<i64> {
        if entry.result == "pending" {
            entry.result = "ok".into();
        }
        self.audit_begin(entry)
    }

    /// Audit entries matching `filter`, newest first.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut sql =
            String::from("SELECT seq, ts, actor, remote, action, target, old, new, result FROM audit WHERE true");
        let mut args: Vec<duckdb::types::Value> = Vec::new();
        if let Some(v) = filter.from_us {
            sql.push_str(" AND ts >= ?");
            args.push(v.into());
        }
        if let Some(v) = filter.to_us {
            sql.push_str(" AND ts < ?");
            args.push(v.into());
        }
        if let Some(v) = &filter.actor {
            sql.push_str(" AND actor = ?");
            args.push(v.clone().into());
        }
        if let Some(v) = &filter.action {
            sql.push_str(" AND starts_with(action, ?)");
            args.push(v.clone().into());
        }
        if let Some(v) = &filter.target {
            sql.push_str(" AND target = ?");
            args.push(v.clone().into());
        }
        if let Some(v) = filter.before_seq {
            sql.push_str(" AND seq < ?");
            args.push(v.into());
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", filter.limit.max(1)));
        let inner = self.inner.lock();
        let mut stmt = inner.conn.prepare(&sql)?;
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        let rows = stmt.query_map(duckdb::params_from_iter(args), |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                ts: r.get(1)?,
                actor: r.get(2)?,
                remote: r.get(3)?,
                action: r.get(4)?,
                target: r.get(5)?,
                old: parse(r.get(6)?),
                new: parse(r.get(7)?),
                result: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Thing {
        #[serde(default)]
        id: i64,
        name: String,
    }

    impl Record for Thing {
        const KIND: &'static str = "thing";
        fn id(&self) -> i64 {
            self.id
        }
        fn set_id(&mut self, id: i64) {
            self.id = id;
        }
    }

    fn thing(name: &str) -> Thing {
        Thing { id: 0, name: name.into() }
    }

    #[test]
    fn records_survive_reopen_and_ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Catalog::open(dir.path()).unwrap();
            c.register::<Thing>().unwrap();
            let a = c.insert(thing("a")).unwrap();
            let b = c.insert(thing("b")).unwrap();
            assert_eq!((a.id, b.id), (1, 2));
            assert!(c.delete::<Thing>(b.id).unwrap());
            assert!(!c.delete::<Thing>(b.id).unwrap());
            c.put(Thing { id: 1, name: "a2".into() }).unwrap();
        }
        let c = Catalog::open(dir.path()).unwrap();
        c.register::<Thing>().unwrap();
        assert_eq!(c.list::<Thing>(), vec![Thing { id: 1, name: "a2".into() }]);
        assert_eq!(c.insert(thing("c")).unwrap().id, 3, "id 2 was used once and is not handed out again");
    }

    #[test]
    fn a_failed_transaction_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path()).unwrap();
        c.register::<Thing>().unwrap();
        c.insert(thing("a")).unwrap();
        let r: Result<()> = c.transaction(|tx| {
            tx.insert(thing("b"))?;
            tx.delete::<Thing>(1);
            Err(Error::InvalidQuery("no".into()))
        });
        assert!(r.is_err());
        assert_eq!(c.list::<Thing>().len(), 1);
        // Several changes commit together.
        c.transaction(|tx| {
            tx.insert(thing("b"))?;
            tx.insert(thing("c"))?;
            tx.delete::<Thing>(1);
            Ok(())
        })
        .unwrap();
        let names: Vec<String> = c.list::<Thing>().into_iter().map(|t| t.name).collect();
        assert_eq!(names, vec!["b", "c"]);
    }

    #[test]
    fn a_write_the_disk_refuses_is_retryable_and_reported_until_one_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path()).unwrap();
        c.register::<Thing>().unwrap();
        let full = std::io::Error::from_raw_os_error(28);
        let err = c.wrote::<()>(Err(Error::io("write", "catalog.duckdb.wal", full))).unwrap_err();
        assert!(matches!(err, Error::CatalogUnavailable(_)) && err.is_retryable(), "{err}");
        assert!(c.write_failure().unwrap().contains("No space left on device"));
        // Any other failure passes as it is, and is reported too.
        let err = c.wrote::<()>(Err(Error::Internal("a bug".into()))).unwrap_err();
        assert!(matches!(err, Error::Internal(_)), "{err}");
        assert!(c.write_failure().unwrap().contains("a bug"));
        c.insert(thing("a")).unwrap();
        assert_eq!(c.write_failure(), None, "a write succeeded since");
    }

    #[test]
    fn events_are_kept_per_stream_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path()).unwrap();
        c.append_event("alarm", 1, 100, &serde_json::json!({"to": "active"})).unwrap();
        c.append_event("alarm", 2, 200, &serde_json::json!({"to": "active"})).unwrap();
        c.append_event("alarm", 1, 300, &serde_json::json!({"to": "cleared"})).unwrap();
        c.append_event("other", 1, 300, &serde_json::json!({})).unwrap();
        let one = c.events("alarm", &EventFilter { key: Some(1), limit: 10, ..Default::default() }).unwrap();
        assert_eq!(one.iter().map(|e| e.2).collect::<Vec<_>>(), vec![300, 100], "newest first");
        assert_eq!(one[0].3["to"], "cleared");
        let late = c.events("alarm", &EventFilter { from_us: Some(150), limit: 10, ..Default::default() }).unwrap();
        assert_eq!(late.len(), 2);
        let page =
            c.events("alarm", &EventFilter { limit: 1, before_seq: Some(one[0].0), ..Default::default() }).unwrap();
        assert_eq!(page[0].2, 200);
    }

    #[test]
    fn audit_entries_are_recorded_before_and_finished_after() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path()).unwrap();
        let entry = |action: &str, ts: i64| AuditEntry {
            seq: 0,
            ts,
            actor: "alice".into(),
            remote: Some("127.0.0.1".into()),
            action: action.into(),
            target: Some("point:7".into()),
            old: Some(serde_json::json!(1.0)),
            new: Some(serde_json::json!(2.0)),
            result: "pending".into(),
        };
        let s1 = c.audit_begin(entry("point.write", 10)).unwrap();
        let s2 = c.audit_record(entry("login", 20)).unwrap();
        assert_eq!(c.audit(&AuditFilter { limit: 10, ..Default::default() }).unwrap()[1].result, "pending");
        c.audit_finish(s1, "ok", Some(&serde_json::json!(2.5))).unwrap();
        let all = c.audit(&AuditFilter { limit: 10, ..Default::default() }).unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![s2, s1]);
        assert_eq!(all[1].result, "ok");
        assert_eq!(all[1].new, Some(serde_json::json!(2.5)));
        assert_eq!(all[0].result, "ok");
        let points = c.audit(&AuditFilter { action: Some("point.".into()), limit: 10, ..Default::default() }).unwrap();
        assert_eq!(points.len(), 1);
        let late = c.audit(&AuditFilter { from_us: Some(15), limit: 10, ..Default::default() }).unwrap();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].action, "login");
    }
}
