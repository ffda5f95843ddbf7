//! Writing results without ever replacing what we do not own.
//!
//! Where `-o` points decides how it is written:
//! - a regular file or a new path: a temporary file in the same directory,
//!   synced and renamed over the target, so the target is either complete
//!   or untouched;
//! - a symlink: resolved, then written atomically at its target (a kubelet
//!   seccomp root or a ConfigMap-projected directory is often a symlink
//!   farm, and the link must stay a link);
//! - a character device, FIFO or socket (`/dev/null`, `mkfifo`, a listening
//!   unix socket) and the descriptors `/dev/stdout`, `/dev/stderr`,
//!   `/dev/fd/N` (`>(jq .)`): written directly, never renamed over;
//! - a directory or anything else: refused.
//!
//! One rule for directories, for every command: recorder never creates
//! one. The directory a file goes into, a `--pod -o DIR/`, the
//! `--seccomp-root` and `man --dir` must exist; otherwise the command
//! stops before it starts, saying "create it first" ([`prepare_dir`]). A
//! mistyped path then fails at once instead of growing a tree somewhere.
//!
//! Renaming over a character device is how this project once replaced the
//! machine's `/dev/null` with a regular file. Nothing is created before
//! [`Output::commit`]: preparing only checks, so a killed run leaves nothing.
//!
//! [`beneath`] writes below a root directory without following any symlink
//! (`--install` into the kubelet's seccomp root).

pub mod beneath;

use std::{
    ffi::CString,
    fs,
    io::{self, Write as _},
    os::unix::{
        ffi::OsStrExt as _,
        fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _},
    },
    path::{Component, Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use tempfile::NamedTempFile;

/// An I/O error in the user's words: without the temporary file's path
/// that `tempfile` appends (" at path ..."), which the user never named
/// and which is gone by the time they read the message.
pub fn io_cause(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" at path \"") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {}; choose a writable path with -o", io_cause(.source))]
    Unwritable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is a directory; name a file inside it, e.g. -o {}", .0.display(), inside(.0).display())]
    IsDirectory(PathBuf),
    #[error("directory {0} does not exist; create it first (mkdir -p) or choose another -o")]
    NoParent(PathBuf),
    #[error("{0} is not a directory; name a directory, ending the path with /")]
    NotADirectory(PathBuf),
    #[error("{path} is a {kind}, which recorder does not write to; name a regular file, a FIFO or a character device")]
    Unsupported { path: PathBuf, kind: &'static str },
    #[error("{0}: too many levels of symbolic links; name the file itself")]
    SymlinkLoop(PathBuf),
    #[error("standard output is closed, so the result would go nowhere; give -o FILE or keep stdout open")]
    StdoutClosed,
    #[error("{0}: file descriptor is not open in this process")]
    FdClosed(PathBuf),
    #[error("{first} and {second} are the same file; give each output its own path")]
    SameFile { first: PathBuf, second: PathBuf },
}

/// Where a result goes. Made by [`Output::prepare`], written by
/// [`Output::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// This process's standard output.
    Stdout,
    /// A regular file (existing or new), written by rename. `path` is the
    /// resolved target; `shown` is what the user gave.
    Atomic { path: PathBuf, shown: PathBuf },
    /// An open descriptor of this process (`/dev/stdout`, `/dev/fd/N`):
    /// written as is, keeping its offset and append mode.
    Fd { fd: i32, shown: PathBuf },
    /// A character device or FIFO, opened and written in place.
    Device { path: PathBuf, shown: PathBuf },
    /// A unix stream socket, connected to and written.
    Socket { path: PathBuf, shown: PathBuf },
}

/// Symlinks followed before giving up, as the kernel's `MAXSYMLINKS`.
const MAX_SYMLINKS: usize = 40;

impl Output {
    /// `None` or `-` means stdout. Otherwise checks that `path` can be
    /// written the way its kind requires; creates nothing.
    pub fn prepare(path: Option<&Path>) -> Result<Output, OutputError> {
        let Some(shown) = path.filter(|p| *p != Path::new("-")) else {
            return if fd_is_open(1) { Ok(Output::Stdout) } else { Err(OutputError::StdoutClosed) };
        };
        if let Some(fd) = own_descriptor(shown) {
            if !fd_is_open(fd) {
                return Err(OutputError::FdClosed(shown.to_path_buf()));
            }
            return Ok(Output::Fd { fd, shown: shown.to_path_buf() });
        }
        let path = resolve_symlinks(shown)?;
        let shown = shown.to_path_buf();
        match fs::metadata(&path) {
            Ok(meta) => {
                let kind = meta.file_type();
                if kind.is_file() {
                    check_writable(&path)?;
                    check_writable(&parent_of(&path))?;
                    Ok(Output::Atomic { path, shown })
                } else if kind.is_dir() {
                    Err(OutputError::IsDirectory(shown))
                } else if kind.is_char_device() || kind.is_fifo() {
                    check_writable(&path)?;
                    Ok(Output::Device { path, shown })
                } else if kind.is_socket() {
                    Ok(Output::Socket { path, shown })
                } else {
                    Err(OutputError::Unsupported { path: shown, kind: "block device" })
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = parent_of(&path);
                if !dir.is_dir() {
                    return Err(OutputError::NoParent(dir));
                }
                check_writable(&dir)?;
                Ok(Output::Atomic { path, shown })
            }
            Err(source) => Err(OutputError::Unwritable { path: shown, source }),
        }
    }

    /// Refuses two outputs that would write the same file (`-o p.json
    /// --coverage p.json`): the second would silently replace the first.
    pub fn ensure_distinct(&self, other: &Output) -> Result<(), OutputError> {
        let same = match (self, other) {
            (Output::Stdout, Output::Stdout) => true,
            (Output::Atomic { path: a, .. }, Output::Atomic { path: b, .. }) => same_file(a, b),
            (Output::Device { path: a, .. }, Output::Device { path: b, .. }) => same_file(a, b) && !is_dev_null(a),
            (Output::Fd { fd: a, .. }, Output::Fd { fd: b, .. }) => a == b,
            _ => false,
        };
        if same {
            return Err(OutputError::SameFile { first: self.shown(), second: other.shown() });
        }
        Ok(())
    }

    /// Writes `contents` to the destination.
    pub fn commit(self, contents: &str) -> Result<(), OutputError> {
        let shown = self.shown();
        let unwritable = |source| OutputError::Unwritable { path: shown.clone(), source };
        match self {
            Output::Stdout => write_fd(1, contents.as_bytes()).map_err(unwritable),
            Output::Fd { fd, .. } => write_fd(fd, contents.as_bytes()).map_err(unwritable),
            Output::Device { path, .. } => {
                let mut file = fs::OpenOptions::new().write(true).open(&path).map_err(unwritable)?;
                file.write_all(contents.as_bytes()).and_then(|()| file.flush()).map_err(unwritable)
            }
            Output::Socket { path, .. } => {
                let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(unwritable)?;
                stream.write_all(contents.as_bytes()).and_then(|()| stream.flush()).map_err(unwritable)
            }
            Output::Atomic { path, .. } => write_atomically(&path, contents.as_bytes()).map_err(unwritable),
        }
    }

    /// The path the user gave (or `-`), for messages.
    pub fn shown(&self) -> PathBuf {
        match self {
            Output::Stdout => PathBuf::from("-"),
            Output::Atomic { shown, .. }
            | Output::Fd { shown, .. }
            | Output::Device { shown, .. }
            | Output::Socket { shown, .. } => shown.clone(),
        }
    }

    /// The destination, for summaries: `stdout` or the path given.
    pub fn describe(&self) -> String {
        match self {
            Output::Stdout => "stdout".to_owned(),
            other => other.shown().display().to_string(),
        }
    }
}

/// A directory results are written into (`record --pod -o DIR/`,
/// `--seccomp-root`, `man --dir`): it must exist and be writable. Like the
/// directory of a file output, it is never created.
pub fn prepare_dir(dir: &Path) -> Result<(), OutputError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => check_writable(dir),
        Ok(_) => Err(OutputError::NotADirectory(dir.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(OutputError::NoParent(dir.to_path_buf())),
        Err(source) => Err(OutputError::Unwritable { path: dir.to_path_buf(), source }),
    }
}

/// Writes `contents` to `path` through a temporary file in the same
/// directory: synced, given the mode (and, as root, the owner) of the file
/// it replaces (0644 for a new one: runtimes and the kubelet must read
/// profiles), renamed into place, and the directory synced.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = parent_of(path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(&dir)?;
    tmp.write_all(contents)?;
    let previous = fs::metadata(path).ok();
    let mode = previous.as_ref().map_or(0o644, |m| m.mode() & 0o7777);
    tmp.as_file().set_permissions(fs::Permissions::from_mode(mode))?;
    if let Some(meta) = &previous {
        // Keeps a user's file theirs when root rewrites it; refused (and
        // harmless) when we are not root.
        let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()));
    }
    tmp.as_file().sync_all()?;
    persist(tmp, path)?;
    fs::File::open(&dir)?.sync_all()
}

fn persist(tmp: NamedTempFile, path: &Path) -> io::Result<()> {
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// `dir/profile.json`, however many slashes `dir` was typed with.
fn inside(dir: &Path) -> PathBuf {
    dir.components().collect::<PathBuf>().join("profile.json")
}

/// The directory a path is in (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Follows symlinks at `path` itself (not in its directories, which the
/// kernel resolves on open and rename) until it names something that is not
/// a symlink, or nothing.
fn resolve_symlinks(path: &Path) -> Result<PathBuf, OutputError> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current)
                    .map_err(|source| OutputError::Unwritable { path: path.to_path_buf(), source })?;
                current = if target.is_absolute() { target } else { parent_of(&current).join(target) };
            }
            _ => return Ok(current),
        }
    }
    Err(OutputError::SymlinkLoop(path.to_path_buf()))
}

/// `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N` and
/// `/proc/<our pid>/fd/N` name a descriptor of this process, which must be
/// written as it is (a pipe, a terminal, or a file the shell opened for
/// appending) rather than reopened or renamed over.
pub fn own_descriptor(path: &Path) -> Option<i32> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => n.to_str(),
            _ => None,
        })
        .collect();
    if !path.is_absolute() {
        return None;
    }
    let me = std::process::id().to_string();
    match parts.as_slice() {
        ["dev", "stdout"] => Some(1),
        ["dev", "stderr"] => Some(2),
        ["dev", "stdin"] => Some(0),
        ["dev", "fd", n] => n.parse().ok(),
        ["proc", pid, "fd", n] if *pid == "self" || *pid == me => n.parse().ok(),
        _ => None,
    }
}

/// Set when stdout was closed at exec (`>&-`) and the runtime put
/// /dev/null there: stdout counts as closed.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Tells this module that stdout was closed when the process started
/// (`main` learns it before Rust's runtime reopens it on /dev/null).
pub fn stdout_was_closed() {
    STDOUT_CLOSED.store(true, Ordering::Relaxed);
}

fn fd_is_open(fd: i32) -> bool {
    if fd == 1 && STDOUT_CLOSED.load(Ordering::Relaxed) {
        return false;
    }
    // SAFETY: F_GETFD only reads the descriptor table; any fd value is fine.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Writes all of `bytes` to a descriptor we do not own (it stays open).
fn write_fd(fd: i32, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable buffer of the given length;
        // write(2) does not keep it.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        bytes = bytes.get(n as usize..).unwrap_or_default();
    }
    Ok(())
}

/// Can this process write `path`? (access(2): also false on a read-only
/// file system, even for root.)
pub fn check_writable(path: &Path) -> Result<(), OutputError> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| OutputError::Unwritable {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(OutputError::Unwritable { path: path.to_path_buf(), source: io::Error::last_os_error() })
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        // Neither exists yet: compare where they would be created.
        _ => {
            fs::canonicalize(parent_of(a)).ok().map(|d| d.join(a.file_name().unwrap_or_default()))
                == fs::canonicalize(parent_of(b)).ok().map(|d| d.join(b.file_name().unwrap_or_default()))
        }
    }
}

/// Several outputs may all go to /dev/null.
fn is_dev_null(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == libc::makedev(1, 3))
}

#[cfg(test)]
mod tests;
