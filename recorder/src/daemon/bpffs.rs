//! The bpf filesystem the daemon pins its maps and links in. Many hosts do
//! not mount it (this one does not): mount it where it belongs, as bpftool
//! and Cilium do, and say so.

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

/// `BPF_FS_MAGIC` from include/uapi/linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, thiserror::Error)]
pub enum BpffsError {
    #[error(
        "cannot mount a bpf filesystem at {path}: {source}; mount one (`mount -t bpf bpf {path}`) or pass --pin-dir under a bpffs"
    )]
    Mount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: a zeroed statfs is a valid out-buffer; `c` is a C string.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::statfs(c.as_ptr(), &mut buf) } == 0) && buf.f_type as i64 == BPF_FS_MAGIC
}

/// Makes `pin_dir` a directory on a bpffs: when its parent is not one, a
/// bpffs is mounted on the parent (normally /sys/fs/bpf).
pub fn ensure(pin_dir: &Path) -> Result<(), BpffsError> {
    let parent = pin_dir.parent().unwrap_or(Path::new("/")).to_path_buf();
    if !is_bpffs(&parent) && !is_bpffs(pin_dir) {
        std::fs::create_dir_all(&parent).map_err(|source| BpffsError::Create { path: parent.clone(), source })?;
        let target = CString::new(parent.as_os_str().as_bytes())
            .map_err(|_| BpffsError::Mount { path: parent.clone(), source: std::io::ErrorKind::InvalidInput.into() })?;
        // SAFETY: mount(2) with valid C strings and no data.
        let rc = unsafe { libc::mount(c"bpf".as_ptr(), target.as_ptr(), c"bpf".as_ptr(), 0, std::ptr::null()) };
        if rc != 0 {
            return Err(BpffsError::Mount { path: parent, source: std::io::Error::last_os_error() });
        }
        tracing::warn!("no bpf filesystem at {}: mounted one there to pin the recorder's maps", parent.display());
    }
    std::fs::create_dir_all(pin_dir).map_err(|source| BpffsError::Create { path: pin_dir.to_path_buf(), source })
}

/// Removes the pins in `pin_dir` (links first, which detaches the programs,
/// then the maps): the kernel stops recording and forgets what it learned
/// since the last snapshot. Returns how many pins were removed.
pub fn remove_pins(pin_dir: &Path) -> Result<usize, BpffsError> {
    let mut removed = 0;
    for dir in [pin_dir.join("links"), pin_dir.to_path_buf()] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                continue;
            }
            std::fs::remove_file(&path).map_err(|source| BpffsError::Create { path: path.clone(), source })?;
            removed += 1;
        }
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(removed)
}
