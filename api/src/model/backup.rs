//! What a backup archive says about itself: its manifest (`BACKUP.json`, the archive's last file
//! but one), listing every file a restore writes with its size and SHA-256.

use serde::{Deserialize, Serialize};

/// The manifest of a backup archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveManifest {
    /// The archive format (1).
    #[schema(minimum = 1, maximum = 1)]
    pub format: u32,
    /// Unique per archive (32 hex digits); an incremental archive names its base by it.
    #[schema(pattern = "^[0-9a-fA-F]{32}$", min_length = 32, max_length = 32)]
    pub id: String,
    /// The server version that wrote it.
    pub server_version: String,
    /// The moment the archive holds the data of (microseconds since the epoch, UTC).
    pub created_us: i64,
    /// The same moment, RFC 3339.
    pub created: String,
    /// The data directory it was taken from.
    pub source_data_dir: String,
    /// Acknowledged samples that were not yet in Parquet at that moment (in files of their own).
    pub buffered_rows: u64,
    /// For an incremental archive: the archive its unchanged data files are taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseArchive>,
    /// Every file of the restored data directory, relative to it.
    pub entries: Vec<ArchiveEntry>,
}

/// The archive an incremental archive builds on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BaseArchive {
    pub id: String,
    pub created: String,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveEntry {
    /// Relative to the data directory, with `/`.
    pub path: String,
    pub size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// For a data file (Parquet): the CRC-32C the server's manifest records, which tells a later
    /// incremental backup that it has not changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<u32>,
    /// Not in this archive: taken from the base archive (an incremental backup).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_base: bool,
}

/// The body of `POST /api/t3000/backup` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// The manifest of the previous archive, for an incremental backup: data files it holds
    /// unchanged are left out and listed as taken from it.
    #[serde(default)]
    pub base: Option<ArchiveManifest>,
}
