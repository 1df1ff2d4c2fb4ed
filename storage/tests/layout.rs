//! Sample files are laid out as configured: `storage.row_group_rows` rows per row group and
//! `storage.page_rows` rows per data page, as the file's own footer and offset index say.

use crate::common::*;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_storage::manifest::Table;

#[tokio::test(flavor = "multi_thread")]
async fn row_groups_and_pages_follow_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.storage.flush_rows = 100_000;
    cfg.storage.row_group_rows = 4_096;
    cfg.storage.page_rows = 1_024;
    let s = open(&cfg, &ManualClock::new(T0 + DAY));
    // One point, one sample a second for 10,000 s: one file of 10,000 rows.
    let rows = 10_000;
    s.ingest((0..rows).map(|i| Sample::good(7, T0 + i * 1_000_000, (i % 50) as f64)).collect()).await.unwrap();
    s.flush().await.unwrap();

    let files: Vec<_> = s.live_files().iter().filter(|f| f.meta.table == Table::Samples).cloned().collect();
    assert_eq!(files.len(), 1);
    let file = std::fs::File::open(&files[0].path).unwrap();
    let md = ParquetMetaDataReader::new()
        .with_offset_index_policy(PageIndexPolicy::Required)
        .parse_and_finish(&file)
        .unwrap();
    let groups: Vec<i64> = md.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(groups, [4_096, 4_096, 1_808]);
    let pages = md.page_index().expect("page index");
    for (g, group) in md.row_groups().iter().enumerate() {
        for c in 0..group.num_columns() {
            let first: Vec<i64> = pages
                .offset_index(g, c)
                .expect("offset index")
                .page_locations()
                .iter()
                .map(|l| l.first_row_index)
                .collect();
            let expected: Vec<i64> = (0..groups[g]).step_by(1_024).collect();
            assert_eq!(first, expected, "row group {g}, column {c}");
        }
    }
    s.shutdown().await.unwrap();
}
