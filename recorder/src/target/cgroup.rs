//! cgroup v2: find the hierarchy, resolve targets, walk a subtree.
//!
//! The BPF side keys everything by cgroup v2 id, which is the inode number of
//! the cgroup's directory (kernfs node id), and filters by the target's level
//! in the hierarchy (`bpf_get_current_ancestor_cgroup_id`).

use std::{
    fs, io,
    os::unix::fs::MetadataExt as _,
    path::{Component, Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "no cgroup v2 hierarchy is mounted; mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified` (hybrid hosts) or boot with systemd.unified_cgroup_hierarchy=1"
    )]
    NoV2,
    #[error("cannot read /proc/self/mountinfo: {0}")]
    MountInfo(#[source] procfs::ProcError),
    #[error("{path} is not a cgroup v2 directory under {mount}; pass a directory such as {mount}/my.slice")]
    NotACgroup { path: PathBuf, mount: PathBuf },
    #[error("--host-cgroup-root {path} is not the root of the host's cgroup v2 hierarchy: {why}")]
    NotHostRoot { path: PathBuf, why: &'static str },
    #[error(
        "cannot create a cgroup for the recording in {shared} or below this process's own cgroup {own} (permission denied); without root, run recorder in a cgroup delegated to you, e.g. `systemd-run --user --scope -p Delegate=yes recorder record ...`"
    )]
    NotDelegated { shared: PathBuf, own: PathBuf },
    #[error("no process with PID {0}; check the PID with `ps -p {0}`")]
    NoSuchPid(i32),
    #[error("PID {pid} has no cgroup v2 membership in /proc/{pid}/cgroup")]
    NoV2Membership { pid: i32 },
    #[error(
        "PID {pid} is a kernel thread ({comm}): it makes no syscalls of its own to record; pass the PID of a user-space process"
    )]
    KernelThread { pid: i32, comm: String },
    #[error(
        "{what} the root cgroup, so recording it would record the whole machine; pass a cgroup below it (--cgroup), or start the workload with `recorder record -- CMD`"
    )]
    WholeMachine { what: String },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub(super) fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CgroupError {
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

    /// The host's cgroup v2 hierarchy mounted at `path`, for a process in a
    /// private cgroup namespace (a pod): its own `/sys/fs/cgroup` shows only
    /// its own cgroup as the root, while the BPF side compares the global
    /// ids (inode numbers, the same through any mount) and levels (depth
    /// from the real root). `path` must be the real root: a bind mount of
    /// the host's `/sys/fs/cgroup` (pure v2), or its `unified` directory
    /// (hybrid hosts; tried when `path` itself is not cgroup v2).
    pub fn at_root(path: &Path) -> Result<Hierarchy, CgroupError> {
        let not_root = |why: &'static str| CgroupError::NotHostRoot { path: path.to_path_buf(), why };
        let unified = path.join("unified");
        let mount = if is_cgroup2(path) {
            path.to_path_buf()
        } else if is_cgroup2(&unified) {
            unified
        } else {
            return Err(not_root("it is not a cgroup v2 filesystem, nor is its unified/ directory"));
        };
        // Only the root cgroup lacks cgroup.type (CFTYPE_NOT_ON_ROOT in
        // kernel/cgroup/cgroup.c): a namespaced or sub-tree mount has it.
        if mount.join("cgroup.type").exists() || !mount.join("cgroup.procs").exists() {
            return Err(not_root(
                "it is a cgroup below the root (mount the host's /sys/fs/cgroup itself, not a pod's view of it)",
            ));
        }
        Ok(Hierarchy { mount, root_level: 0 })
    }

    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// The kubelet's parent cgroup of all pods: `explicit` (a path under the
    /// mount, or relative to it), else `kubepods.slice` (systemd driver) or
    /// `kubepods` (cgroupfs driver). `None` when there is none.
    pub fn pods_parent(&self, explicit: Option<&Path>) -> Result<Option<Cgroup>, CgroupError> {
        if let Some(path) = explicit {
            let path = if path.is_absolute() && path.starts_with(&self.mount) {
                path.to_path_buf()
            } else {
                self.mount.join(path.strip_prefix("/").unwrap_or(path))
            };
            return self.open(&path).map(Some);
        }
        for name in ["kubepods.slice", "kubepods"] {
            let dir = self.mount.join(name);
            if dir.is_dir() {
                return self.open(&dir).map(Some);
            }
        }
        Ok(None)
    }

    /// The cgroup at the mount point (the root cgroup on most hosts).
    pub fn root(&self) -> Result<Cgroup, CgroupError> {
        self.open(&self.mount)
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

    /// The cgroup of a workload to record, by path: the root cgroup is
    /// refused (it holds every process on the machine).
    pub fn workload_cgroup(&self, path: &Path) -> Result<Cgroup, CgroupError> {
        let cgroup = self.open(path)?;
        if cgroup.level == 0 {
            return Err(CgroupError::WholeMachine { what: format!("{} is", path.display()) });
        }
        Ok(cgroup)
    }

    /// The cgroup of a workload to record, by one of its PIDs: kernel
    /// threads (all in the root cgroup, `0::/`) and processes in the root
    /// cgroup are refused.
    pub fn workload_of_pid(&self, pid: i32) -> Result<Cgroup, CgroupError> {
        let comm = || fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim().to_owned()).unwrap_or_default();
        if is_kernel_thread(pid) {
            return Err(CgroupError::KernelThread { pid, comm: comm() });
        }
        let cgroup = self.cgroup_of_pid(pid)?;
        if cgroup.level == 0 {
            return Err(CgroupError::WholeMachine { what: format!("PID {pid} ({}) is in", comm()) });
        }
        Ok(cgroup)
    }

    /// The cgroup v2 that `pid` is in, from /proc/PID/cgroup (`0::/path`).
    pub fn cgroup_of_pid(&self, pid: i32) -> Result<Cgroup, CgroupError> {
        let file = PathBuf::from(format!("/proc/{pid}/cgroup"));
        let text = fs::read_to_string(&file).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CgroupError::NoSuchPid(pid),
            _ => CgroupError::Io { what: "read", path: file.clone(), source: e },
        })?;
        let rel = super::proc_text::v2_path(&text).ok_or(CgroupError::NoV2Membership { pid })?;
        self.open(&self.mount.join(rel.trim_start_matches('/')))
    }
}

/// How deep below a cgroup [`Cgroup::descendants`] looks.
pub const MAX_DEPTH: usize = 12;

impl crate::cri::CgroupLookup for Hierarchy {
    fn cgroup_of_pid(&self, pid: u32) -> Result<Option<PathBuf>, Box<dyn std::error::Error + Send + Sync>> {
        let Ok(pid) = i32::try_from(pid) else { return Ok(None) };
        match Hierarchy::cgroup_of_pid(self, pid) {
            Ok(cgroup) => Ok(Some(cgroup.path)),
            // Exited since the runtime answered; a directory that vanished
            // in between reads as "not a cgroup".
            Err(CgroupError::NoSuchPid(_) | CgroupError::NotACgroup { .. }) => Ok(None),
            Err(e) => Err(Box::new(e)),
        }
    }

    fn root(&self) -> &Path {
        &self.mount
    }
}

/// PF_KTHREAD in the flags of /proc/PID/stat (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;

/// Is `pid` a kernel thread? (Field 9 of /proc/PID/stat, the task flags.)
fn is_kernel_thread(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    super::proc_text::stat_field::<u64>(&stat, 9).is_some_and(|f| f & PF_KTHREAD != 0)
}

/// `CGROUP2_SUPER_MAGIC` from include/uapi/linux/magic.h.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Is `path` on a cgroup v2 filesystem?
fn is_cgroup2(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: a zeroed statfs is a valid out-buffer.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `buf` a valid out-buffer,
    // both alive for the call.
    (unsafe { libc::statfs(c.as_ptr(), &mut buf) } == 0) && buf.f_type as i64 == CGROUP2_SUPER_MAGIC
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
        Ok(super::proc_text::populated(&text))
    }

    /// PIDs directly in this cgroup.
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let file = self.path.join("cgroup.procs");
        let text = fs::read_to_string(&file).map_err(io_err("read", &file))?;
        Ok(super::proc_text::pids(&text))
    }

    /// Every cgroup below this one (not itself), at most [`MAX_DEPTH`]
    /// levels down, with its id. The one walker of cgroup trees: a container
    /// cgroup sits at most 4 levels below a kubelet's parent
    /// (kubepods.slice/kubepods-burstable.slice/...-pod<uid>.slice/<ctr>.scope),
    /// plus a runtime's own sub-cgroups.
    ///
    /// No syscall per entry: a cgroup directory holds a few dozen control
    /// files, and the daemon walks its tree on every poll. cgroupfs
    /// (kernfs) fills in `d_type` and `d_ino` in `getdents64`, and `d_ino`
    /// is the cgroup id, as `st_ino` is (`kernfs_ino`).
    pub fn descendants(&self) -> Vec<(u64, PathBuf)> {
        use std::os::unix::fs::DirEntryExt as _;
        let mut found = Vec::new();
        let mut stack = vec![(self.path.clone(), 0)];
        while let Some((dir, depth)) = stack.pop() {
            if depth >= MAX_DEPTH {
                continue;
            }
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let path = entry.path();
                    found.push((entry.ino(), path.clone()));
                    stack.push((path, depth + 1));
                }
            }
        }
        found
    }

    /// Opens cgroup.procs for writing: writing "0" to it moves the writer in.
    pub fn procs_writer(&self) -> Result<fs::File, CgroupError> {
        let file = self.path.join("cgroup.procs");
        fs::OpenOptions::new().write(true).open(&file).map_err(io_err("open", &file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_threads_are_told_apart() {
        assert!(is_kernel_thread(2), "kthreadd");
        assert!(!is_kernel_thread(std::process::id() as i32));
        assert!(!is_kernel_thread(i32::MAX), "no such process");
    }

    #[test]
    fn depth_counts_components() {
        assert_eq!(depth(Path::new("/")), 0);
        assert_eq!(depth(Path::new("a/b")), 2);
        assert_eq!(depth(Path::new("/recorder/rec-1-0")), 2);
    }
}
