//! `t3000 backup` (a client of a running server: `POST /api/t3000/backup`, written to a file) and
//! `t3000 restore` (an archive, checked in full, into an empty data directory; no server needed).

use super::client::{ServerArgs, json_answer};
use crate::service::backup::{check_archive, restore};
use anyhow::{Context, bail};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The archive to write (a tar); it must not exist yet.
    pub file: PathBuf,
    /// The previous archive of this server: only the data files it does not hold are included
    /// (an incremental backup; restoring it needs the previous archive too).
    #[arg(long, value_name = "PREVIOUS_ARCHIVE")]
    pub incremental: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive to restore.
    pub file: PathBuf,
    /// The data directory to restore into: empty, or not existing yet.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The base archive of an incremental archive (repeat for each archive of a chain).
    #[arg(long = "base", value_name = "ARCHIVE")]
    pub bases: Vec<PathBuf>,
}

/// Downloads a backup into `FILE.partial`, renamed to `FILE` once the server has sent all of it
/// and it has been checked.
pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let file = &args.file;
    if file.exists() {
        bail!("{} exists: name a new file (a backup never overwrites one)", file.display());
    }
    let base = match &args.incremental {
        Some(prev) => Some(check_archive(prev).map_err(|e| anyhow::anyhow!("--incremental: {e}"))?.manifest),
        None => None,
    };
    let client = reqwest::Client::new();
    let resp = args
        .server
        .request(&client, reqwest::Method::POST, "/api/t3000/backup")?
        .json(&serde_json::json!({ "base": base }))
        .send()
        .await
        .with_context(|| format!("connect to {}", args.server.url))?;
    if !resp.status().is_success() {
        json_answer(resp).await?;
        bail!("the server refused the backup");
    }
    let partial = PathBuf::from(format!("{}.partial", file.display()));
    if let Err(e) = download(resp, &partial).await {
        let _ = std::fs::remove_file(&partial);
        return Err(e.context("the backup did not finish; no archive was written"));
    }
    std::fs::rename(&partial, file).with_context(|| format!("rename {} to {}", partial.display(), file.display()))?;
    let checked = check_archive(file).map_err(|e| anyhow::anyhow!("the archive written is not whole: {e}"))?;
    let m = &checked.manifest;
    let in_base = m.entries.iter().filter(|e| e.in_base).count();
    let bytes = std::fs::metadata(file).map(|md| md.len()).unwrap_or(0);
    let base = match &m.base {
        Some(b) => format!(" ({in_base} of them in base archive {})", b.id),
        None => String::new(),
    };
    say!(
        "backup {}: the data as of {}, {} files{base}, {} samples that were not yet in Parquet; {bytes} bytes in {}",
        m.id,
        m.created,
        m.entries.len(),
        m.buffered_rows,
        file.display()
    );
    Ok(())
}

async fn download(mut resp: reqwest::Response, to: &Path) -> anyhow::Result<()> {
    // Readable by its owner only: the archive holds the catalog's password and token hashes.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .with_context(|| format!("create {}", to.display()))?;
    while let Some(chunk) = resp.chunk().await.context("the server broke off the transfer")? {
        out.write_all(&chunk).with_context(|| format!("write {}", to.display()))?;
    }
    out.sync_all().with_context(|| format!("fsync {}", to.display()))?;
    Ok(())
}

/// Restores an archive (and its bases) into an empty data directory.
pub fn run_restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let r = restore(&args.file, &args.bases, &args.data_dir).map_err(|e| anyhow::anyhow!("refused: {e}"))?;
    let bases =
        if r.bases.is_empty() { String::new() } else { format!(" with base archive(s) {}", r.bases.join(", ")) };
    say!(
        "restored backup {}{bases} (the data as of {}): {} files, {} bytes into {}",
        r.id,
        r.created,
        r.files,
        r.bytes,
        args.data_dir.display()
    );
    for u in &r.unused {
        say!("note: {} is not part of this archive's chain and was not used", u.display());
    }
    say!(
        "start it with a configuration whose [storage] data_dir is {} (the server's own, secrets redacted, is in {}/{})",
        args.data_dir.display(),
        args.data_dir.display(),
        crate::service::backup::CONFIG_ENTRY
    );
    Ok(())
}
