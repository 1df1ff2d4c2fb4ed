//! The export entry point: [`Storage::export_blocking`] runs an export ([`crate::query::export`]) over the
//! engine's history, one chunk query at a time.

use super::Storage;
use crate::buffer::{DAY_US, RowFilter};
use crate::error::Result;
use crate::files::manifest::Table;
use crate::query::export::{self, ExportProgress, ExportRequest, ExportSummary, PointLabel, Source, Tuning};
use crate::query::{HistoryRequest, HistoryResult};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;

impl Storage {
    /// Writes the history of `req.points` over `[req.from, req.to)` to `out` in `req.format`,
    /// calling `progress` with the rows written and the time covered so far after every chunk.
    ///
    /// Blocks: call it inside `tokio::task::spawn_blocking`, passing a handle of the runtime
    /// the storage runs on; the chunk queries run with `handle.block_on`. CSV and Parquet bytes
    /// reach `out` as the chunks are done; an xlsx file is a zip assembled at the end, so it
    /// reaches `out` only then. Points without a label are named `point <id>` without a unit.
    ///
    /// A range whose `from` is not before its `to` holds nothing: the file has its header and
    /// no rows.
    ///
    /// Errors: [`Error::InvalidQuery`](crate::Error::InvalidQuery) for no points, a bucket that
    /// is not positive or more points than an Excel sheet can hold;
    /// [`Error::TooManyRows`](crate::Error::TooManyRows) for more points than one bucket of a
    /// bucketed export may hold; an I/O error writing `out` (e.g. the client went away) stops
    /// the export. [`Storage::check_export`] finds the refusals before anything is written.
    pub fn export_blocking(
        &self,
        handle: &tokio::runtime::Handle,
        req: &ExportRequest,
        labels: &HashMap<u32, PointLabel>,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(ExportProgress),
    ) -> Result<ExportSummary> {
        self.export_tuned(handle, req, labels, out, progress, Tuning::default())
    }

    /// Refuses an export that [`Storage::export_blocking`] would refuse before writing anything:
    /// callers that stream the file check first, so the refusal can be an answer of its own
    /// rather than a broken file.
    pub fn check_export(&self, req: &ExportRequest) -> Result<()> {
        export::check(req, self.config().query.max_rows)
    }

    fn export_tuned(
        &self,
        handle: &tokio::runtime::Handle,
        req: &ExportRequest,
        labels: &HashMap<u32, PointLabel>,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(ExportProgress),
        tuning: Tuning,
    ) -> Result<ExportSummary> {
        let source = Chunks { storage: self, handle };
        export::export(&source, req, labels, out, progress, tuning)
    }

    /// UTC days (since the epoch) on which any of `points` (sorted) may have rows in `[from, to)`:
    /// from the live files' metadata and the write buffer. Queries for other days would only
    /// come back empty.
    fn occupied_days(&self, points: &[u32], from: i64, to: i64) -> BTreeSet<i64> {
        let filter = RowFilter { points: Some(points), from, to };
        let snap = self.snapshot(&filter, true);
        let mut days = BTreeSet::new();
        for f in snap.files.iter() {
            let m = &f.meta;
            if m.table != Table::Samples || m.max_ts < from || m.min_ts >= to {
                continue;
            }
            let i = points.partition_point(|&p| p < m.min_point);
            if i == points.len() || points[i] > m.max_point {
                continue;
            }
            // A sample file holds one day; walking its [min, max] keeps this right if it ever did not.
            let first = m.min_ts.max(from).div_euclid(DAY_US);
            let last = m.max_ts.min(to - 1).div_euclid(DAY_US);
            days.extend(first..=last);
        }
        days.extend(snap.buffered.ts.iter().map(|t| t.div_euclid(DAY_US)));
        days
    }
}

/// The engine as an export's source: chunk queries run on the storage's runtime (`handle`).
struct Chunks<'a> {
    storage: &'a Storage,
    handle: &'a tokio::runtime::Handle,
}

impl Source for Chunks<'_> {
    fn max_rows(&self) -> usize {
        self.storage.config().query.max_rows
    }

    fn zstd_level(&self) -> i32 {
        self.storage.config().storage.zstd_level
    }

    fn occupied_days(&self, points: &[u32], from: i64, to: i64) -> BTreeSet<i64> {
        self.storage.occupied_days(points, from, to)
    }

    fn history(&self, req: HistoryRequest) -> Result<HistoryResult> {
        self.handle.block_on(self.storage.history(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::query::HistoryMode;
    use crate::query::analytics::Agg;
    use crate::query::export::{Chunk, CsvWriter, ExportFormat, FormatWriter, Layout, Shape, parquet_schema};
    use crate::vfs::RealFs;
    use arrow::array::Array;
    use arrow::array::RecordBatch;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Arc;
    use t3_core::clock::SystemClock;
    use t3_core::config::Config;
    use t3_core::{Quality, Sample};

    /// 2026-11-26T00:00:00Z.
    const D1: i64 = 1_795_651_200_000_000;
    const D2: i64 = D1 + DAY_US;
    const H: i64 = 3_600_000_000;
    const MIN: i64 = 60_000_000;
    const S: i64 = 1_000_000;
    const NAME1: &str = "Supply air, \"AHU-1\"";

    fn open(dir: &std::path::Path, max_rows: Option<usize>) -> Storage {
        let mut cfg = Config::default();
        cfg.storage.data_dir = dir.to_path_buf();
        if let Some(m) = max_rows {
            cfg.query.max_rows = m;
        }
        Storage::open(&cfg, Arc::new(RealFs), Arc::new(SystemClock)).unwrap()
    }

    /// Two points over two days: day 1 flushed to Parquet, day 2 still in the write buffer, with a
    /// bad sample (no value) on day 2.
    async fn seeded(dir: &std::path::Path, max_rows: Option<usize>) -> Storage {
        let storage = open(dir, max_rows);
        storage
            .ingest(vec![
                Sample::good(1, D1 + 10 * H + 15 * MIN, 21.5),
                Sample::good(2, D1 + 10 * H + 15 * MIN, 3.0),
                Sample::good(1, D1 + 23 * H + 59 * MIN + 30 * S, 22.25),
            ])
            .await
            .unwrap();
        storage.flush().await.unwrap();
        storage
            .ingest(vec![
                Sample::new(1, D2 + 30 * S, f64::NAN, Quality::BAD_COMM_FAILURE),
                Sample::good(2, D2 + 30 * S, 4.0),
                Sample::good(2, D2 + 10 * MIN, 5.0),
            ])
            .await
            .unwrap();
        storage
    }

    fn labels() -> HashMap<u32, PointLabel> {
        HashMap::from([(1, PointLabel { name: NAME1.into(), unit: "°C".into() })])
    }

    fn request(format: ExportFormat, layout: Layout, points: &[u32], bucket_us: Option<i64>) -> ExportRequest {
        ExportRequest { points: points.to_vec(), from: D1, to: D2 + DAY_US, format, layout, bucket_us }
    }

    async fn run_tuned(
        storage: &Storage,
        req: ExportRequest,
        tuning: Tuning,
    ) -> Result<(Vec<u8>, ExportSummary, Vec<u64>)> {
        let storage = storage.clone();
        tokio::task::spawn_blocking(move || {
            let handle = tokio::runtime::Handle::current();
            let mut out = Vec::new();
            let mut progress = Vec::new();
            let summary =
                storage.export_tuned(&handle, &req, &labels(), &mut out, &mut |p| progress.push(p.rows), tuning)?;
            Ok((out, summary, progress))
        })
        .await
        .unwrap()
    }

    async fn run(storage: &Storage, req: ExportRequest) -> Result<(Vec<u8>, ExportSummary, Vec<u64>)> {
        run_tuned(storage, req, Tuning::default()).await
    }

    async fn csv(storage: &Storage, req: ExportRequest) -> (String, ExportSummary, Vec<u64>) {
        let (out, summary, progress) = run(storage, req).await.unwrap();
        (String::from_utf8(out).unwrap(), summary, progress)
    }

    const LONG_RAW: &str = "\
ts,point_id,point_name,unit,value,quality,quality_name
2026-11-26T10:15:00.000000Z,1,\"Supply air, \"\"AHU-1\"\"\",°C,21.5,192,good
2026-11-26T10:15:00.000000Z,2,point 2,,3,192,good
2026-11-26T23:59:30.000000Z,1,\"Supply air, \"\"AHU-1\"\"\",°C,22.25,192,good
2026-11-27T00:00:30.000000Z,1,\"Supply air, \"\"AHU-1\"\"\",°C,,24,bad/comm_failure
2026-11-27T00:00:30.000000Z,2,point 2,,4,192,good
2026-11-27T00:10:00.000000Z,2,point 2,,5,192,good
";

    const LONG_HOURLY: &str = "\
ts,point_id,point_name,unit,avg,min,max,count
2026-11-26T10:00:00.000000Z,1,\"Supply air, \"\"AHU-1\"\"\",°C,21.5,21.5,21.5,1
2026-11-26T10:00:00.000000Z,2,point 2,,3,3,3,1
2026-11-26T23:00:00.000000Z,1,\"Supply air, \"\"AHU-1\"\"\",°C,22.25,22.25,22.25,1
2026-11-27T00:00:00.000000Z,2,point 2,,4.5,4,5,2
";

    #[tokio::test(flavor = "multi_thread")]
    async fn csv_long_raw_across_a_day_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), None).await;
        let (text, summary, progress) = csv(&storage, request(ExportFormat::Csv, Layout::Long, &[2, 1, 2], None)).await;
        assert_eq!(text, LONG_RAW);
        assert_eq!(summary, ExportSummary { rows: 6, partial: false });
        // One query per day: day 1 from Parquet, day 2 from the write buffer.
        assert_eq!(progress, vec![3, 6]);
        storage.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn csv_wide_raw_follows_the_requested_column_order() {
        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), None).await;
        let (text, summary, _) = csv(&storage, request(ExportFormat::Csv, Layout::Wide, &[2, 1], None)).await;
        assert_eq!(
            text,
            "\
ts,point 2,\"Supply air, \"\"AHU-1\"\" (°C)\"
2026-11-26T10:15:00.000000Z,3,21.5
2026-11-26T23:59:30.000000Z,,22.25
2026-11-27T00:00:30.000000Z,4,
2026-11-27T00:10:00.000000Z,5,
"
        );
        assert_eq!(summary.rows, 4);
        storage.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn csv_bucketed_long_and_wide() {
        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), None).await;
        let (text, summary, progress) = csv(&storage, request(ExportFormat::Csv, Layout::Long, &[1, 2], Some(H))).await;
        assert_eq!(text, LONG_HOURLY);
        assert_eq!(summary.rows, 4);
        assert_eq!(progress, vec![3, 4]);

        let (text, _, _) = csv(&storage, request(ExportFormat::Csv, Layout::Wide, &[1, 2], Some(H))).await;
        assert_eq!(
            text,
            "\
ts,\"Supply air, \"\"AHU-1\"\" (°C)\",point 2
2026-11-26T10:00:00.000000Z,21.5,3
2026-11-26T23:00:00.000000Z,22.25,
2026-11-27T00:00:00.000000Z,,4.5
"
        );
        storage.shutdown().await.unwrap();
    }

    /// Chunks of whole buckets: a bucket that straddles midnight (7 h buckets are not aligned
    /// to days) comes out exactly as one query over the whole range computes it.
    #[tokio::test(flavor = "multi_thread")]
    async fn bucketed_chunks_never_split_a_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), None).await;
        let bucket = 7 * H;
        let (text, _, _) = csv(&storage, request(ExportFormat::Csv, Layout::Long, &[1, 2], Some(bucket))).await;

        let whole = storage
            .history(HistoryRequest {
                points: vec![1, 2],
                from: D1,
                to: D2 + DAY_US,
                mode: HistoryMode::Aggregate {
                    bucket_us: bucket,
                    aggs: vec![Agg::Avg, Agg::Min, Agg::Max, Agg::Count],
                },
                prior: false,
            })
            .await
            .unwrap();
        let shape = Shape::new(&request(ExportFormat::Csv, Layout::Long, &[1, 2], Some(bucket)), &labels());
        let chunk = Chunk::from_series(whole.series, &shape).unwrap();
        let mut expected = Vec::new();
        let mut w: Box<dyn FormatWriter + '_> = Box::new(CsvWriter::new(&mut expected, &shape).unwrap());
        w.write_chunk(&chunk).unwrap();
        w.finish().unwrap();
        assert_eq!(text, String::from_utf8(expected).unwrap());
        // The 21:00 bucket of day 1 holds samples from both days (23:59:30 and 00:00:30 + 00:10).
        assert!(text.contains("2026-11-26T21:00:00.000000Z,2,point 2,,4.5,4,5,2\n"), "{text}");
        storage.shutdown().await.unwrap();
    }

    /// A tiny row limit forces raw days to be split and bucketed chunks to shrink; the output is
    /// the same.
    #[tokio::test(flavor = "multi_thread")]
    async fn row_limit_splits_chunks_without_changing_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), Some(2)).await;
        let (text, summary, progress) = csv(&storage, request(ExportFormat::Csv, Layout::Long, &[1, 2], None)).await;
        assert_eq!(text, LONG_RAW);
        assert_eq!(summary.rows, 6);
        assert!(progress.len() > 2, "{progress:?}");
        assert_eq!(progress.last(), Some(&6));
        storage.shutdown().await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), Some(20)).await;
        let (text, _, progress) = csv(&storage, request(ExportFormat::Csv, Layout::Long, &[1, 2], Some(H))).await;
        assert_eq!(text, LONG_HOURLY);
        // 20 rows / 2 points -> 9 one-hour buckets per query.
        assert!(progress.len() >= 3, "{progress:?}");
        storage.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn parquet_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), None).await;
        let read = |bytes: Vec<u8>| {
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(&bytes).unwrap();
            let builder = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
            let kv = builder.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
            let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
            (batches, kv)
        };

        let (bytes, summary, _) =
            run(&storage, request(ExportFormat::Parquet, Layout::Wide, &[1, 2], None)).await.unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        let (batches, kv) = read(bytes);
        // (The schema read back also carries the footer's key-value metadata.)
        assert_eq!(batches[0].schema().fields(), parquet_schema(false).fields());
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows as u64, summary.rows);
        assert_eq!(rows, 6);
        let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let points = all.column(1).as_any().downcast_ref::<arrow::array::UInt32Array>().unwrap();
        assert_eq!(points.values().to_vec(), vec![1, 2, 1, 1, 2, 2]);
        let values = all.column(2).as_any().downcast_ref::<arrow::array::Float64Array>().unwrap();
        assert_eq!(values.null_count(), 1, "the bad sample has no value");
        let ts = all.column(0).as_any().downcast_ref::<arrow::array::TimestampMicrosecondArray>().unwrap();
        assert_eq!(ts.value(0), D1 + 10 * H + 15 * MIN);
        let labels = kv.iter().find(|k| k.key == "t3000.points").and_then(|k| k.value.clone()).unwrap();
        assert!(labels.contains("AHU-1") && labels.contains("point 2"), "{labels}");

        let (bytes, summary, _) =
            run(&storage, request(ExportFormat::Parquet, Layout::Long, &[1, 2], Some(H))).await.unwrap();
        let (batches, _) = read(bytes);
        assert_eq!(batches[0].schema().fields(), parquet_schema(true).fields());
        let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        assert_eq!(all.num_rows() as u64, summary.rows);
        assert_eq!(all.num_rows(), 4);
        let count = all.column(5).as_any().downcast_ref::<arrow::array::UInt64Array>().unwrap();
        assert_eq!(count.values().to_vec(), vec![1, 1, 1, 2]);
        storage.shutdown().await.unwrap();
    }

    /// Which zip entries a file has, from the names stored uncompressed in its headers.
    fn has_entry(bytes: &[u8], name: &str) -> bool {
        bytes.windows(name.len()).any(|w| w == name.as_bytes())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn xlsx_has_data_and_chart_sheets() {
        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), None).await;
        for layout in [Layout::Long, Layout::Wide] {
            for bucket in [None, Some(H)] {
                let (bytes, summary, _) =
                    run(&storage, request(ExportFormat::Xlsx, layout, &[1, 2], bucket)).await.unwrap();
                assert!(bytes.starts_with(b"PK"), "{layout} {bucket:?}");
                assert!(bytes.len() > 2000, "{layout} {bucket:?}: {} bytes", bytes.len());
                assert!(summary.rows > 0);
                // Data, Chart, Chart data (hidden).
                assert!(has_entry(&bytes, "xl/worksheets/sheet3.xml"), "{layout} {bucket:?}");
                assert!(!has_entry(&bytes, "xl/worksheets/sheet4.xml"), "{layout} {bucket:?}");
                assert!(has_entry(&bytes, "xl/charts/chart1.xml"), "{layout} {bucket:?}");
            }
        }
        storage.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn xlsx_splits_sheets_at_the_row_limit() {
        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), None).await;
        let tuning = Tuning { xlsx_rows_per_sheet: 2 };
        let (bytes, summary, _) =
            run_tuned(&storage, request(ExportFormat::Xlsx, Layout::Long, &[1, 2], None), tuning).await.unwrap();
        assert_eq!(summary.rows, 6);
        // Data, Data 2, Data 3, Chart, Chart data.
        assert!(has_entry(&bytes, "xl/worksheets/sheet5.xml"));
        assert!(!has_entry(&bytes, "xl/worksheets/sheet6.xml"));
        storage.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn xlsx_without_data_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), None).await;
        let mut req = request(ExportFormat::Xlsx, Layout::Wide, &[7], None);
        req.from = D1 - 10 * DAY_US;
        let (bytes, summary, progress) = run(&storage, req).await.unwrap();
        assert_eq!(summary.rows, 0);
        assert!(progress.is_empty(), "days without data are not queried");
        assert!(bytes.starts_with(b"PK"));
        assert!(has_entry(&bytes, "xl/worksheets/sheet2.xml"));
        assert!(!has_entry(&bytes, "xl/charts/chart1.xml"));
        storage.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn invalid_requests_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), None).await;
        let mut no_points = request(ExportFormat::Csv, Layout::Long, &[], None);
        no_points.points.clear();
        for req in [no_points, request(ExportFormat::Csv, Layout::Long, &[1], Some(0))] {
            let err = run(&storage, req.clone()).await.unwrap_err();
            assert!(matches!(err, Error::InvalidQuery(_)), "{req:?}: {err}");
        }
        storage.shutdown().await.unwrap();
    }

    /// `[from, to)` with `from >= to` holds nothing: the file has its header and no rows, in
    /// every format and layout.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_empty_range_exports_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let storage = seeded(dir.path(), None).await;
        for (from, to) in [(D1, D1), (D2 + DAY_US, D1)] {
            for layout in [Layout::Long, Layout::Wide] {
                for bucket in [None, Some(H)] {
                    let req = ExportRequest { from, to, ..request(ExportFormat::Csv, layout, &[1, 2], bucket) };
                    let (text, summary, _) = csv(&storage, req).await;
                    assert_eq!(summary.rows, 0, "{layout:?} {bucket:?}");
                    assert_eq!(text.lines().count(), 1, "{layout:?} {bucket:?}: {text}");
                    assert!(text.starts_with("ts,"), "{text}");
                }
                for format in [ExportFormat::Xlsx, ExportFormat::Parquet] {
                    let req = ExportRequest { from, to, ..request(format, layout, &[1, 2], None) };
                    let (bytes, summary, _) = run(&storage, req).await.unwrap();
                    assert_eq!(summary.rows, 0, "{format:?} {layout:?}");
                    assert!(!bytes.is_empty());
                }
            }
        }
        storage.shutdown().await.unwrap();
    }
}
