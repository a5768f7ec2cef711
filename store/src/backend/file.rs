//! A store in a local directory, laid out like the S3 one (`file:///abs/path`).

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{BackendError, ObjectInfo};

pub struct FileBackend {
    root: PathBuf,
}

const TMP_DIR: &str = ".tmp";

fn io<'a>(op: &'static str, key: &'a str) -> impl FnOnce(std::io::Error) -> BackendError + 'a {
    move |source| {
        if source.kind() == std::io::ErrorKind::NotFound && op != "put" {
            BackendError::NotFound {
                key: key.to_string(),
            }
        } else {
            BackendError::Io {
                op,
                key: key.to_string(),
                source,
            }
        }
    }
}

impl FileBackend {
    pub fn new(path: &str) -> Result<Self, BackendError> {
        let root = PathBuf::from(path);
        if !root.is_absolute() {
            return Err(BackendError::BadUrl {
                url: format!("file://{path}"),
            });
        }
        sweep_tmp(&root.join(TMP_DIR), TMP_MAX_AGE);
        Ok(FileBackend { root })
    }

    pub fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub async fn put(&self, key: &str, data: Bytes) -> Result<(), BackendError> {
        let (path, tmp_dir) = (self.path(key), self.root.join(TMP_DIR));
        blocking("put", key, move || put_atomic(&tmp_dir, &path, &data)).await
    }

    /// Removes an object; one already gone is not an error.
    pub async fn remove(&self, key: &str) -> Result<(), BackendError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", key)(e)),
            _ => Ok(()),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, BackendError> {
        tokio::fs::read(self.path(key))
            .await
            .map(Bytes::from)
            .map_err(io("get", key))
    }

    pub async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, BackendError> {
        let path = self.path(key);
        blocking("get", key, move || read_range(&path, offset, len)).await
    }

    pub async fn size(&self, key: &str) -> Result<u64, BackendError> {
        tokio::fs::metadata(self.path(key))
            .await
            .map(|m| m.len())
            .map_err(io("stat", key))
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        let (root, p) = (self.root.clone(), prefix.to_string());
        blocking("list", prefix, move || {
            let mut out = Vec::new();
            walk(&root, &root, &p, &mut out)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }
}

/// Runs blocking file I/O off the async threads; errors name the operation and key.
async fn blocking<T: Send + 'static>(
    op: &'static str,
    key: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, BackendError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(io(op, key)),
        Err(e) => Err(BackendError::Io {
            op,
            key: key.to_string(),
            source: std::io::Error::other(e),
        }),
    }
}

/// Temporary files older than this are left by killed writers (a put takes seconds).
const TMP_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Removes temporary files that a killed writer left (best effort: a store that cannot
/// be swept still opens).
fn sweep_tmp(dir: &Path, max_age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > max_age);
        if old && std::fs::remove_file(e.path()).is_ok() {
            tracing::info!(file = %e.path().display(), "removed a temporary file a killed writer left");
        }
    }
}

/// Creates `dir` and any missing parents, fsyncing the parent of each one created, so
/// that a new directory survives a crash as the object renamed into it does.
fn create_dir_durable(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Write to a temporary file, fsync, rename into place, fsync the directory: after a
/// crash the object is either absent or complete.
fn put_atomic(tmp_dir: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    create_dir_durable(tmp_dir)?;
    let dir = path.parent().unwrap_or(tmp_dir);
    create_dir_durable(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

fn read_range(path: &Path, offset: u64, len: u64) -> std::io::Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    let end = offset.saturating_add(len).min(size);
    let mut buf = vec![0u8; end.saturating_sub(offset) as usize];
    f.read_exact_at(&mut buf, offset)?;
    Ok(Bytes::from(buf))
}

fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<ObjectInfo>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        if rel == TMP_DIR {
            continue;
        }
        let ft = entry.file_type()?;
        if ft.is_dir() {
            let as_dir = format!("{rel}/");
            // Descend only where keys with the prefix can be.
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(root, &path, prefix, out)?;
            }
        } else if rel.starts_with(prefix) {
            out.push(ObjectInfo {
                key: rel,
                size: entry.metadata()?.len(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_list() {
        let dir = tempfile::tempdir().unwrap();
        let b = FileBackend::new(dir.path().to_str().unwrap()).unwrap();
        b.put("packs/ab/abc", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        b.put("points/h/1", Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(&b.get("packs/ab/abc").await.unwrap()[..], b"hello");
        assert_eq!(
            &b.get_range("packs/ab/abc", 1, 3).await.unwrap()[..],
            b"ell"
        );
        let l = b.list("packs/").await.unwrap();
        assert_eq!(
            l,
            vec![ObjectInfo {
                key: "packs/ab/abc".into(),
                size: 5
            }]
        );
        assert_eq!(b.list("points/h/").await.unwrap().len(), 1);
        assert!(matches!(
            b.get("nope").await,
            Err(BackendError::NotFound { .. })
        ));
        assert!(FileBackend::new("relative/path").is_err());
    }

    #[test]
    fn old_temporary_files_are_swept_and_new_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let tmp = d.path().join(TMP_DIR);
        std::fs::create_dir_all(&tmp).unwrap();
        let (old, new) = (tmp.join("old"), tmp.join("new"));
        std::fs::write(&old, b"x").unwrap();
        std::fs::write(&new, b"y").unwrap();
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        FileBackend::new(d.path().to_str().unwrap()).unwrap();
        assert!(!old.exists() && new.exists());
    }

    #[test]
    fn puts_create_their_directories() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("a/b/c/obj");
        put_atomic(&d.path().join(TMP_DIR), &path, b"data").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }
}
