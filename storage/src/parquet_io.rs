//! Writing sample files: sorted, zstd, statistics and page indexes, published atomically.

use crate::buffer::{as_ts, as_u32, sample_schema};
use crate::error::{Error, Result};
use crate::vfs::Vfs;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::path::Path;

/// How sample files are encoded.
#[derive(Debug, Clone, Copy)]
pub struct ParquetOptions {
    pub row_group_rows: usize,
    pub zstd_level: i32,
}

fn properties(o: ParquetOptions) -> Result<WriterProperties> {
    let zstd = ZstdLevel::try_new(o.zstd_level)?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(Some(o.row_group_rows))
        // Small pages make the page index selective: a one-point query reads little beyond its rows.
        .set_data_page_row_count_limit(8192)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(vec![
            SortingColumn { column_idx: 0, descending: false, nulls_first: false },
            SortingColumn { column_idx: 1, descending: false, nulls_first: false },
        ]))
        // point_id is sorted, so runs compress to almost nothing with RLE dictionary encoding;
        // timestamps at a regular poll rate delta-encode to a few bits each.
        .set_column_dictionary_enabled(ColumnPath::from("ts"), false)
        .set_column_encoding(ColumnPath::from("ts"), Encoding::DELTA_BINARY_PACKED)
        .set_column_dictionary_enabled(ColumnPath::from("value"), false)
        .set_column_encoding(ColumnPath::from("value"), Encoding::BYTE_STREAM_SPLIT)
        .build())
}

/// What a published file holds; recorded in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStats {
    pub rows: u64,
    pub bytes: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_point: u32,
    pub max_point: u32,
}

/// Computes the stats of sorted sample batches.
pub fn stats_of(batches: &[RecordBatch]) -> FileStats {
    let mut s = FileStats { min_ts: i64::MAX, max_ts: i64::MIN, min_point: u32::MAX, ..Default::default() };
    for b in batches {
        s.rows += b.num_rows() as u64;
        for &t in as_ts(b.column(1)).values().iter() {
            s.min_ts = s.min_ts.min(t);
            s.max_ts = s.max_ts.max(t);
        }
        for &p in as_u32(b.column(0)).values().iter() {
            s.min_point = s.min_point.min(p);
            s.max_point = s.max_point.max(p);
        }
    }
    s
}

/// Writes `batches` (already sorted by point, ts) to `path` atomically: a temporary name, fsync,
/// rename, fsync of the directory. A crash leaves either nothing at `path` or a whole file.
pub fn write_atomic(vfs: &dyn Vfs, path: &Path, batches: &[RecordBatch], o: ParquetOptions) -> Result<FileStats> {
    write_atomic_stream(vfs, path, sample_schema(), batches.iter().cloned().map(Ok), o)
}

/// [`write_atomic`] over a stream of batches with `schema` (whose first two columns are point_id
/// and ts), holding one batch in memory at a time. Batches are re-labelled with `schema` (DuckDB
/// marks every column nullable; nulls in a non-nullable column are refused).
pub fn write_atomic_stream(
    vfs: &dyn Vfs,
    path: &Path,
    schema: arrow::datatypes::SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>>,
    o: ParquetOptions,
) -> Result<FileStats> {
    let dir = path.parent().ok_or_else(|| Error::Internal(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let tmp = path.with_extension("parquet.tmp");
    let file = vfs.create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties(o)?))?;
    let mut stats = FileStats { min_ts: i64::MAX, max_ts: i64::MIN, min_point: u32::MAX, ..Default::default() };
    for b in batches {
        let b = RecordBatch::try_new(schema.clone(), b?.columns().to_vec())?;
        let s = stats_of(std::slice::from_ref(&b));
        stats.rows += s.rows;
        stats.min_ts = stats.min_ts.min(s.min_ts);
        stats.max_ts = stats.max_ts.max(s.max_ts);
        stats.min_point = stats.min_point.min(s.min_point);
        stats.max_point = stats.max_point.max(s.max_point);
        writer.write(&b)?;
    }
    let mut file = writer.into_inner()?;
    file.sync().map_err(|e| Error::io("fsync", &tmp, e))?;
    drop(file);
    vfs.rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))?;
    vfs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
    stats.bytes = std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?.len();
    Ok(stats)
}

/// Checks that a file has a readable Parquet footer with the expected row count.
pub fn verify(path: &Path, expected_rows: u64) -> std::result::Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(file).map_err(|e| e.to_string())?;
    use parquet::file::reader::FileReader;
    let rows = reader.metadata().file_metadata().num_rows() as u64;
    if rows != expected_rows {
        return Err(format!("footer says {rows} rows, manifest says {expected_rows}"));
    }
    Ok(())
}

/// Reads a whole file, its page index and every page: catches damage inside the data that a
/// footer check cannot see. Used when a query has failed, to find the file to blame.
pub fn verify_deep(path: &Path, expected_rows: u64) -> std::result::Result<(), String> {
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    verify(path, expected_rows)?;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let options = ArrowReaderOptions::new().with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional);
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    let mut rows = 0u64;
    for batch in reader {
        rows += batch.map_err(|e| e.to_string())?.num_rows() as u64;
    }
    if rows != expected_rows {
        return Err(format!("decoded {rows} rows, manifest says {expected_rows}"));
    }
    Ok(())
}
