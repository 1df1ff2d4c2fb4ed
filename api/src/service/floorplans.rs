//! The floor-plan image store: one image per floor in `<data dir>/floorplans/<floor id>`, written
//! to a temporary file, synced and renamed, so a crash leaves the old image or the new one.

use std::path::{Path, PathBuf};

/// Largest plan image.
pub const MAX_PLAN_BYTES: usize = 8 * 1024 * 1024;

/// Why an upload is not a plan image.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A content type the plan does not take.
    #[error("a floor plan is image/png, image/jpeg, image/webp or image/svg+xml, not \"{0}\"")]
    UnsupportedType(String),
    /// The body is not an image of its declared type.
    #[error("the body is not a valid {0} image")]
    NotAnImage(&'static str),
}

/// The image type a body really is, if it is one the plan takes and matches the declared type.
pub fn check_image(declared: &str, body: &[u8]) -> Result<&'static str, PlanError> {
    let declared = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let (kind, ok) = match declared.as_str() {
        "image/png" => ("image/png", body.starts_with(b"\x89PNG\r\n\x1a\n")),
        "image/jpeg" => ("image/jpeg", body.starts_with(&[0xff, 0xd8, 0xff])),
        "image/webp" => ("image/webp", body.len() > 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WEBP"),
        "image/svg+xml" => ("image/svg+xml", std::str::from_utf8(body).is_ok_and(|t| t.contains("<svg"))),
        other => return Err(PlanError::UnsupportedType(other.to_owned())),
    };
    if !ok {
        return Err(PlanError::NotAnImage(kind));
    }
    Ok(kind)
}

/// The plan images of a data directory.
#[derive(Debug, Clone)]
pub struct PlanStore {
    dir: PathBuf,
}

impl PlanStore {
    /// The store in `<data_dir>/floorplans`.
    pub fn new(data_dir: &Path) -> PlanStore {
        PlanStore { dir: data_dir.join("floorplans") }
    }

    /// The folder of the images (one file per floor, replaced atomically).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, floor_id: i64) -> PathBuf {
        self.dir.join(floor_id.to_string())
    }

    /// Stores a floor's image, replacing the one it had (blocking; see [`PlanStore::write`]).
    pub fn write_blocking(&self, floor_id: i64, bytes: &[u8]) -> std::io::Result<()> {
        write_atomically(&self.path(floor_id), bytes)
    }

    /// Stores a floor's image on a blocking thread.
    pub async fn write(&self, floor_id: i64, bytes: bytes::Bytes) -> std::io::Result<()> {
        let path = self.path(floor_id);
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await.map_err(std::io::Error::other)?
    }

    /// A floor's image.
    pub async fn read(&self, floor_id: i64) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.path(floor_id)).await
    }

    /// Removes a floor's image file (when the floor is deleted); a missing file is fine.
    pub fn remove(&self, floor_id: i64) {
        if let Err(e) = std::fs::remove_file(self.path(floor_id))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(floor_id, error = %e, "could not remove a floor plan image");
        }
    }
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("a plan file has a folder");
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
