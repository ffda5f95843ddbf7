//! Reading a workload's files as the workload sees them: through
//! `/proc/<pid>/root` or a container's rootfs, with every path (and every
//! absolute symlink on the way, such as `/lib64/ld-linux-x86-64.so.2`)
//! resolved inside that root (`openat2` with `RESOLVE_IN_ROOT`), never
//! against the host's.

use std::{
    ffi::CString,
    fs::File,
    io::Read as _,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Path, PathBuf},
};

/// Files larger than this are not read (no executable here is that big).
const MAX_FILE: u64 = 512 << 20;

/// A root directory the workload's paths are resolved in.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    fd: OwnedFd,
}

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("cannot open {path} as a root directory: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Root {
    /// `path` as the root: `/`, `/proc/<pid>/root` or a rootfs directory.
    pub fn open(path: &Path) -> Result<Root, RootError> {
        let fail = |source| RootError::Open { path: path.display().to_string(), source };
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| fail(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
        // SAFETY: a NUL-terminated path; the returned descriptor is owned below.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(fail(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just opened and belongs to no one else.
        Ok(Root { path: path.to_path_buf(), fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// The root of a running process (`/proc/<pid>/root`).
    pub fn of_pid(pid: i32) -> Result<Root, RootError> {
        Root::open(&PathBuf::from(format!("/proc/{pid}/root")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads `path` (absolute, or relative to the root) as the workload would.
    pub fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        let file = self.open_file(path)?;
        if file.metadata()?.len() > MAX_FILE {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "larger than 512 MiB"));
        }
        let mut data = Vec::new();
        file.take(MAX_FILE).read_to_end(&mut data)?;
        Ok(data)
    }

    /// Whether `path` exists as a regular file inside the root.
    pub fn has_file(&self, path: &str) -> bool {
        self.open_file(path).and_then(|f| f.metadata()).is_ok_and(|m| m.is_file())
    }

    fn open_file(&self, path: &str) -> std::io::Result<File> {
        let relative = path.trim_start_matches('/');
        let c = CString::new(if relative.is_empty() { "." } else { relative })
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: open_how is plain integers; all-zero is its documented default.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: openat2 with a valid directory fd, a NUL-terminated path and
        // an `open_how` of the size passed; the result is owned below.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = i32::try_from(fd).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        // SAFETY: `fd` was just returned by openat2 and belongs to no one else.
        Ok(unsafe { File::from_raw_fd(fd) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("lib")).expect("mkdir");
        std::fs::write(dir.path().join("lib/real"), b"inside").expect("write");
        std::os::unix::fs::symlink("/lib/real", dir.path().join("link")).expect("symlink");
        let root = Root::open(dir.path()).expect("root");
        assert_eq!(root.read("/link").expect("read"), b"inside");
        assert_eq!(root.read("lib/real").expect("read"), b"inside");
        // `..` cannot climb out either.
        assert!(root.read("/../../../../etc/hostname").is_err());
        assert!(root.has_file("/link") && !root.has_file("/lib"));
        assert!(root.read("/missing").is_err());
    }
}
