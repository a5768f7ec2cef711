//! What `restore --to PATH` writes to: a regular file (new or replaced, through a
//! partial file and a rename), or a block device (written in place, never replaced by
//! a file). A symlink is followed to what it names; anything else is refused.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A regular file, or nothing yet: written whole and renamed into place.
    File(PathBuf),
    /// A block device: written in place.
    Device(PathBuf),
}

/// What `to` is (following symlinks to what they name).
pub fn classify(to: &Path) -> Result<Target> {
    let meta = match std::fs::symlink_metadata(to) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Target::File(to.to_path_buf()))
        }
        Err(e) => return Err(e).with_context(|| format!("looking at {}", to.display())),
    };
    let (path, ft) = if meta.file_type().is_symlink() {
        let real = std::fs::canonicalize(to).with_context(|| {
            format!(
                "{} is a symlink to something that does not exist",
                to.display()
            )
        })?;
        let ft = std::fs::metadata(&real)
            .with_context(|| format!("looking at {}", real.display()))?
            .file_type();
        (real, ft)
    } else {
        (to.to_path_buf(), meta.file_type())
    };
    if ft.is_file() {
        Ok(Target::File(path))
    } else if ft.is_block_device() {
        Ok(Target::Device(path))
    } else {
        let kind = if ft.is_dir() {
            "a directory"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_fifo() {
            "a named pipe"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        bail!(
            "{} is {kind}: restore --to writes a regular file or a block device",
            path.display()
        )
    }
}

/// Opens a block device for writing in place, exclusively: Linux refuses an exclusive
/// open of a device that is mounted or held open exclusively (EBUSY). Returns the file
/// and the device's size.
pub fn open_device(path: &Path) -> Result<(File, u64)> {
    let mut f = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => bail!(
            "{} is in use (mounted, or part of an LVM volume or RAID set): unmount it first; nothing was written",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let size = f
        .seek(SeekFrom::End(0))
        .with_context(|| format!("sizing {}", path.display()))?;
    Ok((f, size))
}

/// BLAKE3 of the first `len` bytes of `f`, read from the device (not the page cache),
/// as `b3sum` prints it.
pub fn hash_prefix(f: &File, len: u64) -> Result<String> {
    use std::os::fd::AsRawFd;
    // SAFETY: advisory call on a descriptor we own; failing only leaves pages cached.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut at = 0u64;
    while at < len {
        let want = buf.len().min((len - at) as usize);
        let n = f
            .read_at(&mut buf[..want], at)
            .with_context(|| format!("reading back at offset {at}"))?;
        if n == 0 {
            bail!("the target ended at {at} bytes, before the image's {len}");
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(h.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_symlinks_and_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let new = d.path().join("new.img");
        assert_eq!(classify(&new).unwrap(), Target::File(new.clone()));
        std::fs::write(&new, b"x").unwrap();
        let link = d.path().join("link.img");
        std::os::unix::fs::symlink(&new, &link).unwrap();
        let real = std::fs::canonicalize(&new).unwrap();
        assert_eq!(classify(&link).unwrap(), Target::File(real));
        let e = classify(d.path()).unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
        let e = classify(Path::new("/dev/null")).unwrap_err().to_string();
        assert!(e.contains("a character device"), "{e}");
        let dangling = d.path().join("dangling");
        std::os::unix::fs::symlink(d.path().join("gone"), &dangling).unwrap();
        assert!(classify(&dangling).is_err());
    }

    #[test]
    fn hash_of_a_prefix() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"hello world").unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(
            hash_prefix(&f, 5).unwrap(),
            blake3::hash(b"hello").to_hex().to_string()
        );
        let f = File::open(&p).unwrap();
        assert!(hash_prefix(&f, 100).is_err());
    }
}
