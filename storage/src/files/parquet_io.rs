//! Writing sample files: sorted, zstd, statistics and page indexes, published atomically, each
//! with its [`FileTag`] in the key-value metadata and a CRC-32C of its bytes.

use crate::buffer::{as_ts, as_u32, sample_schema};
use crate::error::{Error, Result};
use crate::files::manifest::{FileStats, FileTag};
use crate::vfs::{VFile, Vfs};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::path::Path;

/// How sample files are encoded.
#[derive(Debug, Clone, Copy)]
pub struct ParquetOptions {
    pub row_group_rows: usize,
    pub page_rows: usize,
    pub zstd_level: i32,
}

fn properties(o: ParquetOptions, tag: &FileTag) -> Result<WriterProperties> {
    let zstd = ZstdLevel::try_new(o.zstd_level)?;
    Ok(WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(FileTag::KEY.to_string(), tag.to_json())]))
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(Some(o.row_group_rows))
        // Small pages keep the page index selective (a one-point history reads little beyond its
        // rows); larger ones make whole-store scans cheaper (`storage.page_rows`).
        .set_data_page_row_count_limit(o.page_rows)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(vec![
            SortingColumn { column_idx: 0, descending: false, nulls_first: false },
            SortingColumn { column_idx: 1, descending: false, nulls_first: false },
        ]))
        // point_id is sorted, so runs compress to almost nothing with RLE dictionary encoding;
        // timestamps at a regular poll rate delta-encode to a few bits each. Values are plain: a
        // controller reports at a fixed resolution (tenths, hundredths), so the same eight bytes
        // recur and zstd finds them; byte-stream-split made such pages larger and slower to scan.
        .set_column_dictionary_enabled(ColumnPath::from("ts"), false)
        .set_column_encoding(ColumnPath::from("ts"), Encoding::DELTA_BINARY_PACKED)
        .set_column_dictionary_enabled(ColumnPath::from("value"), false)
        .set_column_encoding(ColumnPath::from("value"), Encoding::PLAIN)
        .build())
}

/// Computes the stats of sorted sample batches.
pub fn stats_of(batches: &[RecordBatch]) -> FileStats {
    let mut s = FileStats::empty();
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
pub fn write_atomic(
    vfs: &dyn Vfs,
    path: &Path,
    tag: &FileTag,
    batches: &[RecordBatch],
    o: ParquetOptions,
) -> Result<FileStats> {
    write_atomic_stream(vfs, path, tag, sample_schema(), batches.iter().cloned().map(Ok), o)
}

/// A file being written, with the CRC-32C of every byte that went through it.
#[derive(Debug)]
struct Checksummed {
    inner: Box<dyn VFile>,
    crc: u32,
}

impl std::io::Write for Checksummed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// [`write_atomic`] over a stream of batches with `schema` (whose first two columns are point_id
/// and ts), holding one batch in memory at a time. Batches are re-labelled with `schema` (DuckDB
/// marks every column nullable; nulls in a non-nullable column are refused).
pub fn write_atomic_stream(
    vfs: &dyn Vfs,
    path: &Path,
    tag: &FileTag,
    schema: arrow::datatypes::SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>>,
    o: ParquetOptions,
) -> Result<FileStats> {
    let dir = path.parent().ok_or_else(|| Error::Internal(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let tmp = path.with_extension("parquet.tmp");
    let file = Checksummed { inner: vfs.create(&tmp).map_err(|e| Error::io("create", &tmp, e))?, crc: 0 };
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties(o, tag)?))?;
    let mut stats = FileStats::empty();
    for b in batches {
        let b = RecordBatch::try_new(schema.clone(), b?.columns().to_vec())?;
        stats.add(&stats_of(std::slice::from_ref(&b)));
        writer.write(&b)?;
    }
    let mut file = writer.into_inner()?;
    file.inner.sync().map_err(|e| Error::io("fsync", &tmp, e))?;
    stats.crc32c = Some(file.crc);
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

/// Reads the whole file and compares its CRC-32C with the one recorded when it was written: catches
/// any damage, including inside compressed pages where it would decode to wrong values silently.
pub fn verify_checksum(path: &Path, expected: u32) -> std::result::Result<(), String> {
    let crc = checksum(path).map_err(|e| e.to_string())?;
    if crc != expected {
        return Err(format!("checksum mismatch: CRC-32C {crc:08x}, recorded {expected:08x}"));
    }
    Ok(())
}

/// The CRC-32C of a whole file.
pub fn checksum(path: &Path) -> std::io::Result<u32> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = 0u32;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

/// What a file says about itself: its [`FileTag`] (if it has one) and the statistics of its rows,
/// from the footer and a pass over the key columns. Used to rebuild a lost manifest.
pub fn describe(path: &Path) -> std::result::Result<(Option<FileTag>, FileStats), String> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let tag = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == FileTag::KEY))
        .and_then(|k| k.value.as_deref())
        .and_then(|v| serde_json::from_str::<FileTag>(v).ok());
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [0, 1]);
    let reader = builder.with_projection(mask).build().map_err(|e| e.to_string())?;
    let mut stats = FileStats::empty();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        stats.add(&stats_of(std::slice::from_ref(&batch)));
    }
    stats.bytes = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    stats.crc32c = Some(checksum(path).map_err(|e| e.to_string())?);
    Ok((tag, stats))
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
