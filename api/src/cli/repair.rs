//! `t3000 repair`: a data directory the server refuses to start on made usable again.

use super::{Failure, init_tracing, runtime, settings};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use t3_core::clock::SystemClock;
use t3_storage::Storage;
use t3_storage::vfs::RealFs;

pub(super) fn repair(data_dir: PathBuf) -> Result<(), Failure> {
    let mut cfg = settings::parse("", "<defaults>").map_err(Failure::Config)?;
    cfg.storage.data_dir = data_dir.clone();
    cfg.log.level = "warn".into();
    init_tracing(&cfg);
    if !data_dir.is_dir() {
        return Err(Failure::Config(format!("{} is not a directory", data_dir.display())));
    }
    match t3_storage::manifest::Manifest::load(&data_dir) {
        Ok(_) => say!("t3000 repair: the manifest reads; checking it against the files"),
        Err(t3_storage::Error::Corrupt { message, .. }) => {
            let moved =
                t3_storage::recovery::set_aside_manifest(&data_dir).context("move the damaged manifest aside")?;
            say!("t3000 repair: the manifest is damaged ({message}); moved it to {}", moved.unwrap_or_default());
        }
        Err(e) => return Err(Failure::Runtime(anyhow::Error::new(e).context("read the manifest"))),
    }
    let rt = runtime()?;
    let report = rt.block_on(async {
        let storage = Storage::open(&cfg, Arc::new(RealFs), Arc::new(SystemClock))
            .with_context(|| format!("open the data directory {}", data_dir.display()))?;
        let report = storage.recovery().clone();
        storage.shutdown().await.context("flush what the WAL held")?;
        anyhow::Ok(report)
    })?;
    let json = serde_json::to_string_pretty(&report).map_err(|e| Failure::Runtime(e.into()))?;
    say!("t3000 repair: done; what start-up recovery did:\n{json}");
    Ok(())
}
