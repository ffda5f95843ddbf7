//! cgroup v2: find the hierarchy, resolve targets, create and tear down the
//! cgroup a recorded command runs in.
//!
//! The BPF side keys everything by cgroup v2 id, which is the inode number of
//! the cgroup's directory (kernfs node id), and filters by the target's level
//! in the hierarchy (`bpf_get_current_ancestor_cgroup_id`).

use std::{
    fs,
    io::{self, Write as _},
    os::unix::fs::MetadataExt as _,
    path::{Component, Path, PathBuf},
    time::{Duration, Instant},
};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup v2 hierarchy is mounted; mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified` (hybrid hosts) or boot with systemd.unified_cgroup_hierarchy=1")]
    NoV2,
    #[error("cannot read /proc/self/mountinfo: {0}")]
    MountInfo(#[source] procfs::ProcError),
    #[error("{path} is not a cgroup v2 directory under {mount}; pass a directory such as {mount}/my.slice")]
    NotACgroup { path: PathBuf, mount: PathBuf },
    #[error("no process with PID {0}; check the PID with `ps -p {0}`")]
    NoSuchPid(i32),
    #[error("PID {pid} has no cgroup v2 membership in /proc/{pid}/cgroup")]
    NoV2Membership { pid: i32 },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { what, path, source }
}

/// The cgroup v2 hierarchy as this process sees it.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    mount: PathBuf,
    /// Depth of the mount's root inside the hierarchy (non-zero for bind
    /// mounts of a sub-tree).
    root_level: u32,
}

impl Hierarchy {
    /// Finds the cgroup v2 mount in /proc/self/mountinfo. Hybrid hosts have it
    /// at /sys/fs/cgroup/unified, pure v2 hosts at /sys/fs/cgroup.
    pub fn find() -> Result<Hierarchy, CgroupError> {
        let me = procfs::process::Process::myself().map_err(CgroupError::MountInfo)?;
        let mounts = me.mountinfo().map_err(CgroupError::MountInfo)?;
        let mount = mounts
            .into_iter()
            .filter(|m| m.fs_type == "cgroup2")
            // The shortest mount point wins if there are several (bind mounts).
            .min_by_key(|m| m.mount_point.as_os_str().len())
            .ok_or(CgroupError::NoV2)?;
        Ok(Hierarchy { root_level: depth(Path::new(&mount.root)), mount: mount.mount_point })
    }

    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// Opens an existing cgroup directory.
    pub fn open(&self, path: &Path) -> Result<Cgroup, CgroupError> {
        let not_cgroup = || CgroupError::NotACgroup { path: path.to_path_buf(), mount: self.mount.clone() };
        let path = fs::canonicalize(path).map_err(|_| not_cgroup())?;
        let rel = path.strip_prefix(&self.mount).map_err(|_| not_cgroup())?;
        if !path.join("cgroup.procs").exists() {
            return Err(not_cgroup());
        }
        let id = fs::metadata(&path).map_err(io_err("stat", &path))?.ino();
        Ok(Cgroup { level: self.root_level + depth(rel), path, id })
    }

    /// The cgroup v2 that `pid` is in, from /proc/PID/cgroup (`0::/path`).
    pub fn cgroup_of_pid(&self, pid: i32) -> Result<Cgroup, CgroupError> {
        let file = PathBuf::from(format!("/proc/{pid}/cgroup"));
        let text = fs::read_to_string(&file).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CgroupError::NoSuchPid(pid),
            _ => CgroupError::Io { what: "read", path: file.clone(), source: e },
        })?;
        let rel = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or(CgroupError::NoV2Membership { pid })?;
        self.open(&self.mount.join(rel.trim_start_matches('/')))
    }

    /// Creates a fresh, empty cgroup for one recording under `<mount>/recorder/`.
    pub fn create_for_recording(&self) -> Result<OwnedCgroup, CgroupError> {
        let parent = self.mount.join("recorder");
        match fs::create_dir(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create", &parent)(e)),
        }
        let pid = std::process::id();
        for attempt in 0u32.. {
            let path = parent.join(format!("rec-{pid}-{attempt}"));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(OwnedCgroup(self.open(&path)?)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => continue,
                Err(e) => return Err(io_err("create", &path)(e)),
            }
        }
        unreachable!("the loop returns on success or error")
    }
}

/// Number of normal components in a path.
fn depth(path: &Path) -> u32 {
    path.components().filter(|c| matches!(c, Component::Normal(_))).count() as u32
}

/// A cgroup v2 directory.
#[derive(Clone, Debug)]
pub struct Cgroup {
    pub path: PathBuf,
    /// cgroup id (the directory's inode number).
    pub id: u64,
    /// Level in the hierarchy; the root cgroup is 0.
    pub level: u32,
}

impl Cgroup {
    /// Is any process in this cgroup or below? (`populated` in cgroup.events)
    pub fn populated(&self) -> Result<bool, CgroupError> {
        let file = self.path.join("cgroup.events");
        let text = fs::read_to_string(&file).map_err(io_err("read", &file))?;
        Ok(text.lines().any(|l| l == "populated 1"))
    }

    /// PIDs directly in this cgroup.
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let file = self.path.join("cgroup.procs");
        let text = fs::read_to_string(&file).map_err(io_err("read", &file))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Opens cgroup.procs for writing: writing "0" to it moves the writer in.
    pub fn procs_writer(&self) -> Result<fs::File, CgroupError> {
        let file = self.path.join("cgroup.procs");
        fs::OpenOptions::new().write(true).open(&file).map_err(io_err("open", &file))
    }
}

/// A cgroup this process created. Dropping it kills what is left inside and
/// removes the directory.
#[derive(Debug)]
pub struct OwnedCgroup(Cgroup);

impl std::ops::Deref for OwnedCgroup {
    type Target = Cgroup;
    fn deref(&self) -> &Cgroup {
        &self.0
    }
}

impl OwnedCgroup {
    /// Kills every process in the cgroup (cgroup.kill, Linux 5.14+, falling
    /// back to SIGKILL per PID) and waits up to `timeout` for it to empty.
    pub fn kill_all(&self, timeout: Duration) -> Result<(), CgroupError> {
        let kill_file = self.path.join("cgroup.kill");
        let killed_at_once = fs::OpenOptions::new()
            .write(true)
            .open(&kill_file)
            .and_then(|mut f| f.write_all(b"1"))
            .is_ok();
        let deadline = Instant::now() + timeout;
        while self.populated()? && Instant::now() < deadline {
            if !killed_at_once {
                for pid in self.procs()? {
                    // SAFETY: kill(2) with a PID read from cgroup.procs; at worst
                    // the process is already gone and we get ESRCH.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Sends `signal` to every process in the cgroup.
    pub fn signal_all(&self, signal: i32) -> Result<(), CgroupError> {
        for pid in self.procs()? {
            // SAFETY: as in kill_all; a vanished PID yields ESRCH, nothing else.
            unsafe { libc::kill(pid, signal) };
        }
        Ok(())
    }
}

impl Drop for OwnedCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.kill_all(Duration::from_secs(5)) {
            tracing::warn!("cleaning up {}: {e}", self.path.display());
        }
        if let Err(e) = fs::remove_dir(&self.path) {
            tracing::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_components() {
        assert_eq!(depth(Path::new("/")), 0);
        assert_eq!(depth(Path::new("a/b")), 2);
        assert_eq!(depth(Path::new("/recorder/rec-1-0")), 2);
    }
}
