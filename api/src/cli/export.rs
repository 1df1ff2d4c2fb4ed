//! `t3000 export`: history to a file, from a data directory the server is not running on.

use super::{Failure, init_tracing, runtime, settings};
use crate::model::device::DeviceRecord;
use crate::model::point::{PointRecord, display_name};
use crate::service::registry::Registry;
use anyhow::Context;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use t3_core::clock::{Clock, SystemClock};
use t3_drivers::collector::DeviceSpec;
use t3_drivers::profile::ProfileLibrary;
use t3_storage::Storage;
use t3_storage::catalog::Catalog;
use t3_storage::export::PointLabel;
use t3_storage::vfs::RealFs;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Configuration file naming the data directory.
    #[arg(long, short, conflicts_with = "data_dir")]
    pub config: Option<PathBuf>,
    /// The data directory (instead of --config).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Comma-separated point ids.
    #[arg(long)]
    pub points: String,
    /// Start: RFC 3339, epoch microseconds, now or now-7d.
    #[arg(long, default_value = "now-24h")]
    pub from: String,
    /// End (exclusive).
    #[arg(long, default_value = "now")]
    pub to: String,
    /// csv, xlsx or parquet.
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// long or wide.
    #[arg(long, default_value = "long")]
    pub layout: String,
    /// Average per bucket (15m, 1h, ...; at least 1s) instead of raw rows.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Output file.
    #[arg(long, short)]
    pub output: PathBuf,
}

pub(super) fn export(args: ExportArgs) -> Result<(), Failure> {
    let mut cfg = match (&args.config, &args.data_dir) {
        (Some(path), _) => settings::load_file(path).map_err(Failure::Config)?,
        (None, Some(dir)) => {
            let mut c = settings::parse("", "<defaults>").map_err(Failure::Config)?;
            c.storage.data_dir = dir.clone();
            c
        }
        (None, None) => return Err(Failure::Config("give --config FILE or --data-dir DIR".into())),
    };
    cfg.log.level = "warn".into();
    init_tracing(&cfg);
    let params = crate::http::routes::export::ExportParams {
        points: args.points,
        from: Some(args.from),
        to: Some(args.to),
        format: Some(args.format),
        layout: Some(args.layout),
        bucket: args.bucket,
    };
    let req = crate::http::routes::export::export_request(&params, SystemClock.now_us()).map_err(Failure::Config)?;
    let rt = runtime()?;
    let storage = rt
        .block_on(async { Storage::open(&cfg, Arc::new(RealFs), Arc::new(SystemClock)) })
        .with_context(|| format!("open the data directory {}", cfg.storage.data_dir.display()))?;
    let labels = offline_labels(&storage).context("read the point names from the catalog")?;
    let file = std::fs::File::create(&args.output).with_context(|| format!("create {}", args.output.display()))?;
    let mut out = std::io::BufWriter::new(file);
    // A bar over the exported time range (seconds), with the rows written as its message.
    let span_secs = ((req.to - req.from) / 1_000_000).max(1) as u64;
    let bar = indicatif::ProgressBar::new(span_secs);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {percent:>3}% of the range, {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let from = req.from;
    let handle = rt.handle().clone();
    let summary = {
        let storage = storage.clone();
        let bar = bar.clone();
        rt.block_on(async move {
            tokio::task::spawn_blocking(move || {
                let mut progress = |p: t3_storage::export::ExportProgress| {
                    bar.set_position(((p.done_until - from) / 1_000_000).max(0) as u64);
                    bar.set_message(format!("{} rows", p.rows));
                };
                let r = storage.export_blocking(&handle, &req, &labels, &mut out, &mut progress);
                use std::io::Write;
                r.map_err(anyhow::Error::from).and_then(|s| out.flush().map(|_| s).map_err(Into::into))
            })
            .await
        })
        .context("export task")??
    };
    bar.finish_with_message(format!("{} rows written to {}", summary.rows, args.output.display()));
    rt.block_on(storage.shutdown()).context("close storage")?;
    Ok(())
}

/// The names and units of the points, as the server gives them, from the catalog and the point
/// registry in the data directory: a point's label, else `<device> <point>`; the units of its
/// label, else its profile's. (The units of a T3000 range code and a T3 panel's own labels are
/// read from the device while the server runs and are not kept, so an offline export does not
/// have them.) A data directory
/// without a catalog (only pushed series) gives no names.
fn offline_labels(storage: &Storage) -> anyhow::Result<HashMap<u32, PointLabel>> {
    let dir = storage.data_dir();
    let mut out = HashMap::new();
    if !dir.join("catalog.duckdb").exists() {
        return Ok(out);
    }
    let catalog = Catalog::open(dir).with_context(|| format!("open the catalog in {}", dir.display()))?;
    crate::model::register(&catalog)?;
    let first_free = storage.latest(&[]).last().map_or(1, |(id, _)| id.saturating_add(1));
    // Read only: ids it would hand out to points never polled are not saved.
    let registry = Registry::open(dir, first_free)?;
    let records = catalog.list::<PointRecord>();
    let record = |id: u32| records.iter().find(|r| r.id == i64::from(id));
    for d in catalog.list::<DeviceRecord>() {
        let Some(profile) = ProfileLibrary::builtin().get(&d.config.profile).cloned() else { continue };
        let name = d.config.name.clone();
        let Ok(spec) = DeviceSpec::new(d.config.clone(), profile, |p| registry.id(&name, &p.name)) else { continue };
        for cp in &spec.points {
            let p = spec.point_of(cp);
            let r = record(cp.id);
            let name = display_name(Some(&d.config.name), &p.name, r.and_then(|r| r.label.as_deref()));
            let unit = r.and_then(|r| r.units.clone()).or_else(|| p.unit.clone()).unwrap_or_default();
            out.insert(cp.id, PointLabel { name, unit });
        }
    }
    for r in records.iter().filter(|r| r.device_id.is_none()) {
        let name = display_name(None, &r.name, r.label.as_deref());
        out.insert(r.id as u32, PointLabel { name, unit: r.units.clone().unwrap_or_default() });
    }
    Ok(out)
}
