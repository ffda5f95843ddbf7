//! Writing a file strictly beneath a root directory: no component of the
//! relative path may be a symlink or leave the root, whatever the tree
//! looks like (a tenant-controlled name can never make us write elsewhere).
//!
//! Every directory is opened with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` relative to the one above it, missing directories
//! are created with `mkdirat`, and the file is written to a temporary name
//! in the final directory and renamed over the target with `renameat`. A
//! symlink (or anything but a regular file) already at the target is
//! refused rather than replaced.

use std::{
    ffi::{CString, OsStr},
    io::{self, Write as _},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Component, Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    #[error("cannot open {root}: {source}; create it or pass another root")]
    Root {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is outside {root} or goes through a symlink; refusing to write there")]
    Escapes { root: PathBuf, path: PathBuf },
    #[error("{path} already exists and is not a regular file (a symlink?); remove it first")]
    NotRegular { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes `contents` to `root/rel` (mode 0644), creating missing
/// directories (0755) beneath `root`. `rel` must be relative and plain:
/// no `..`, no root, no `.`.
pub fn write(root: &Path, rel: &Path, contents: &[u8]) -> Result<PathBuf, BeneathError> {
    let full = root.join(rel);
    let escapes = || BeneathError::Escapes { root: root.to_path_buf(), path: full.clone() };
    let parts: Vec<&OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(escapes()),
        })
        .collect::<Result<_, _>>()?;
    let Some((name, dirs)) = parts.split_last() else { return Err(escapes()) };
    let io = |source| BeneathError::Io { path: full.clone(), source };
    let mut dir = open_root(root).map_err(|source| BeneathError::Root { root: root.to_path_buf(), source })?;
    for part in dirs {
        let c = cstring(part).map_err(io)?;
        // SAFETY: `dir` is an open directory fd and `c` a valid C string.
        if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) } != 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::AlreadyExists {
                return Err(io(err));
            }
        }
        dir = open_beneath(&dir, &c, libc::O_DIRECTORY | libc::O_RDONLY).map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP | libc::EXDEV | libc::ENOTDIR) => escapes(),
            _ => io(e),
        })?;
    }
    let target = cstring(name).map_err(io)?;
    match stat_at(&dir, &target) {
        Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFREG => {
            return Err(BeneathError::NotRegular { path: full });
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let (tmp_name, file) = create_temp(&dir, name).map_err(io)?;
    let written = (|| {
        let mut file = std::fs::File::from(file);
        file.write_all(contents)?;
        file.sync_all()?;
        // SAFETY: both names are valid C strings relative to the open `dir`.
        if unsafe { libc::renameat(dir.as_raw_fd(), tmp_name.as_ptr(), dir.as_raw_fd(), target.as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fsync on an open directory fd.
        unsafe { libc::fsync(dir.as_raw_fd()) };
        Ok(())
    })();
    if let Err(e) = written {
        // SAFETY: removes our own temporary name relative to `dir`.
        unsafe { libc::unlinkat(dir.as_raw_fd(), tmp_name.as_ptr(), 0) };
        return Err(io(e));
    }
    Ok(full)
}

fn cstring(part: &OsStr) -> io::Result<CString> {
    CString::new(part.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains a NUL byte"))
}

fn open_root(root: &Path) -> io::Result<OwnedFd> {
    let c = cstring(root.as_os_str())?;
    // SAFETY: `c` is a valid C string; the returned fd is owned below.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// openat2(dir, name, flags, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS).
fn open_beneath(dir: &OwnedFd, name: &CString, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain integers; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: openat2 with a valid dir fd, C string and open_how of the size
    // passed; the returned fd is owned below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn stat_at(dir: &OwnedFd, name: &CString) -> io::Result<libc::stat> {
    // SAFETY: a zeroed stat is a valid out-buffer for fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid dir fd, C string and out-buffer; AT_SYMLINK_NOFOLLOW
    // reports a symlink itself.
    if unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// `.NAME.<pid>.<n>.tmp`, created exclusively in `dir`.
fn create_temp(dir: &OwnedFd, name: &OsStr) -> io::Result<(CString, OwnedFd)> {
    for n in 0u32..1000 {
        let tmp = format!(".{}.{}.{n}.tmp", name.to_string_lossy(), std::process::id());
        let c = cstring(OsStr::new(&tmp))?;
        match open_beneath(dir, &c, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW) {
            Ok(fd) => {
                // SAFETY: fchmod on the fd we just created (openat2 ignores
                // `mode` unless set in open_how, and the umask applies).
                unsafe { libc::fchmod(fd.as_raw_fd(), 0o644) };
                return Ok((c, fd));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_beneath_the_root() {
        let root = tempfile::tempdir().expect("tmp");
        let rel = Path::new("recorder/default/web/nginx.json");
        let path = write(root.path(), rel, b"one").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"one");
        write(root.path(), rel, b"two").expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("dir")).expect("ls").collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left");
    }

    #[test]
    fn symlinked_directory_inside_the_root_is_refused() {
        let root = tempfile::tempdir().expect("tmp");
        let outside = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(root.path().join("recorder")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), root.path().join("recorder/default")).expect("symlink");
        let err = write(root.path(), Path::new("recorder/default/p/c.json"), b"x").expect_err("refused");
        assert!(matches!(err, BeneathError::Escapes { .. }), "{err}");
        assert_eq!(std::fs::read_dir(outside.path()).expect("ls").count(), 0, "nothing written outside");
    }

    #[test]
    fn symlink_at_the_target_is_refused_not_followed() {
        let root = tempfile::tempdir().expect("tmp");
        let outside = tempfile::tempdir().expect("tmp");
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "keep").expect("write");
        std::fs::create_dir_all(root.path().join("a")).expect("mkdir");
        std::os::unix::fs::symlink(&victim, root.path().join("a/c.json")).expect("symlink");
        let err = write(root.path(), Path::new("a/c.json"), b"x").expect_err("refused");
        assert!(matches!(err, BeneathError::NotRegular { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
    }

    #[test]
    fn dot_dot_and_absolute_paths_are_refused() {
        let root = tempfile::tempdir().expect("tmp");
        for bad in ["../x.json", "a/../../x.json", "/etc/x.json", "", "."] {
            assert!(matches!(write(root.path(), Path::new(bad), b"x"), Err(BeneathError::Escapes { .. })), "{bad}");
        }
    }
}
