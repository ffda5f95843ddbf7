//! The cgroups `record` creates: `<cgroup2 mount>/recorder/rec-<pid>-<start
//! time>-<n>`, one per recording. Dropping an [`OwnedCgroup`] kills what is
//! left inside (`cgroup.kill`) and removes the tree depth-first, so a
//! command that made sub-cgroups (systemd, a container runtime) leaves
//! nothing behind. A recorder killed with SIGKILL cannot clean up: its
//! [`DeathWatch`] kills the cgroup then, and the next recorder removes every
//! `rec-*` cgroup whose owner is gone, killing what still runs there.

use std::{
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{Cgroup, CgroupError, Hierarchy, cgroup::io_err, death_watch::DeathWatch};

/// The directory under the cgroup v2 mount that holds recordings.
pub const RECORDINGS_DIR: &str = "recorder";

/// How long leftovers get to die before their cgroup is given up on.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

impl Hierarchy {
    /// Creates a fresh, empty cgroup for one recording under
    /// `<mount>/recorder/`, after removing those of recorders that are gone.
    /// Without the right to (not root), under `recorder/` below this
    /// process's own cgroup instead: a cgroup delegated to the user
    /// (systemd's `Delegate=yes`, or a chown of the directory and its
    /// cgroup.procs), where the kernel lets the user move the command in.
    pub fn create_for_recording(&self) -> Result<OwnedCgroup, CgroupError> {
        let shared = self.mount().join(RECORDINGS_DIR);
        let denied = |e: &CgroupError| matches!(e, CgroupError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied);
        match self.create_below(&shared) {
            Err(e) if denied(&e) => {
                let own = self.cgroup_of_pid(std::process::id() as i32)?;
                self.create_below(&own.path.join(RECORDINGS_DIR))
                    .map_err(|e| if denied(&e) { CgroupError::NotDelegated { shared, own: own.path } } else { e })
            }
            other => other,
        }
    }

    fn create_below(&self, parent: &Path) -> Result<OwnedCgroup, CgroupError> {
        let parent = parent.to_path_buf();
        match fs::create_dir(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create", &parent)(e)),
        }
        remove_stale(&parent);
        let owner = Owner::myself();
        for attempt in 0u32..1000 {
            let path = parent.join(format!("rec-{}-{attempt}", owner.stamp()));
            match fs::create_dir(&path) {
                Ok(()) => {
                    let cgroup = self.open(&path)?;
                    // Before anything runs in it: what the command starts
                    // must not outlive a recorder killed with SIGKILL.
                    let watch = DeathWatch::spawn(&path)
                        .map_err(|e| {
                            tracing::warn!("no watcher for {}: {e}; a SIGKILL of the recorder would leave the command's children running", path.display())
                        })
                        .ok();
                    return Ok(OwnedCgroup(cgroup, watch));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                // Another recorder removed the shared parent as it emptied
                // (see `Drop`): make it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&parent) {
                    Ok(()) => continue,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(io_err("create", &parent)(e)),
                },
                Err(e) => return Err(io_err("create", &path)(e)),
            }
        }
        Err(io_err("create", &parent)(io::Error::new(io::ErrorKind::AlreadyExists, "no free rec-* name")))
    }
}

/// A recorder process, as named in its cgroups: a PID alone could have been
/// reused since, its start time (in clock ticks since boot) pins it down.
/// Also names `baseline`'s scratch directories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pid: u32,
    start_time: u64,
}

impl Owner {
    pub fn myself() -> Owner {
        let pid = std::process::id();
        Owner { pid, start_time: start_time(pid).unwrap_or(0) }
    }

    /// `<pid>-<start time>`, for names of things this process owns.
    pub fn stamp(self) -> String {
        format!("{}-{}", self.pid, self.start_time)
    }

    /// The owner named by `<prefix><pid>-<start time>[-...]`.
    pub fn from_name_after(name: &str, prefix: &str) -> Option<Owner> {
        let mut parts = name.strip_prefix(prefix)?.split('-');
        let pid = parts.next()?.parse().ok()?;
        let start_time = parts.next()?.parse().ok()?;
        Some(Owner { pid, start_time })
    }

    /// `rec-<pid>-<start time>-<n>`.
    fn from_name(name: &str) -> Option<Owner> {
        Owner::from_name_after(name, "rec-")
    }

    pub fn is_alive(self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// Field 22 of /proc/PID/stat: when the process started.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    super::proc_text::stat_field(&stat, 22)
}

/// Removes every `rec-*` cgroup whose recorder is gone (killed with
/// SIGKILL, or from a version that named them differently), killing any
/// process a recorded command left running there.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("rec-") || Owner::from_name(&name).is_some_and(Owner::is_alive) {
            continue;
        }
        let path = entry.path();
        let killed = kill_and_remove(&path);
        match killed {
            Ok(0) => tracing::info!("removed the cgroup of a recorder that is gone: {}", path.display()),
            Ok(n) => tracing::warn!(
                "killed {n} processes left running by a recorder that is gone, and removed {}",
                path.display()
            ),
            Err(e) => tracing::warn!("cannot remove a stale recording cgroup {}: {e}", path.display()),
        }
    }
}

/// Kills everything in the cgroup tree at `path` and removes it
/// depth-first. Returns how many processes were still in it.
fn kill_and_remove(path: &Path) -> Result<usize, CgroupError> {
    let cgroup = Cgroup { path: path.to_path_buf(), id: 0, level: 0 };
    let left = count_procs(&cgroup);
    kill(&cgroup, KILL_TIMEOUT)?;
    remove_tree(&cgroup)?;
    Ok(left)
}

fn count_procs(cgroup: &Cgroup) -> usize {
    let own = cgroup.procs().map(|p| p.len()).unwrap_or(0);
    own + cgroup
        .descendants()
        .iter()
        .map(|(_, dir)| cgroup_at(dir).procs().map(|p| p.len()).unwrap_or(0))
        .sum::<usize>()
}

fn cgroup_at(dir: &Path) -> Cgroup {
    Cgroup { path: dir.to_path_buf(), id: 0, level: 0 }
}

/// Kills every process in the tree (cgroup.kill, Linux 5.14+, falling back
/// to SIGKILL per PID in every cgroup of the tree) and waits up to
/// `timeout` for it to empty.
fn kill(cgroup: &Cgroup, timeout: Duration) -> Result<(), CgroupError> {
    let killed_at_once = fs::OpenOptions::new()
        .write(true)
        .open(cgroup.path.join("cgroup.kill"))
        .and_then(|mut f| f.write_all(b"1"))
        .is_ok();
    let deadline = Instant::now() + timeout;
    while cgroup.populated()? && Instant::now() < deadline {
        if !killed_at_once {
            let dirs = std::iter::once(cgroup.path.clone()).chain(cgroup.descendants().into_iter().map(|(_, d)| d));
            for dir in dirs {
                for pid in cgroup_at(&dir).procs().unwrap_or_default() {
                    // SAFETY: kill(2) with a PID read from cgroup.procs; at
                    // worst the process is already gone and we get ESRCH.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Removes a cgroup and everything below it, deepest first (a cgroup with
/// children cannot be removed: EBUSY).
fn remove_tree(cgroup: &Cgroup) -> Result<(), CgroupError> {
    let mut dirs: Vec<PathBuf> = cgroup.descendants().into_iter().map(|(_, d)| d).collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.push(cgroup.path.clone());
    for dir in dirs {
        match fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &dir)(e)),
        }
    }
    Ok(())
}

/// A cgroup this process created. Dropping it kills what is left inside and
/// removes the tree, then disarms its watcher.
#[derive(Debug)]
pub struct OwnedCgroup(
    Cgroup,
    #[expect(dead_code, reason = "held for its Drop, which disarms the watcher after the cleanup above")]
    Option<DeathWatch>,
);

impl std::ops::Deref for OwnedCgroup {
    type Target = Cgroup;
    fn deref(&self) -> &Cgroup {
        &self.0
    }
}

impl OwnedCgroup {
    /// Kills every process in the cgroup tree and waits up to `timeout` for
    /// it to empty.
    pub fn kill_all(&self, timeout: Duration) -> Result<(), CgroupError> {
        kill(&self.0, timeout)
    }

    /// Sends `signal` to every process directly in the cgroup.
    pub fn signal_all(&self, signal: i32) -> Result<(), CgroupError> {
        for pid in self.procs()? {
            // SAFETY: as in `kill`; a vanished PID yields ESRCH, nothing else.
            unsafe { libc::kill(pid, signal) };
        }
        Ok(())
    }
}

impl Drop for OwnedCgroup {
    fn drop(&mut self) {
        if let Err(e) = kill(&self.0, KILL_TIMEOUT) {
            tracing::warn!("cleaning up {}: {e}", self.path.display());
        }
        if let Err(e) = remove_tree(&self.0) {
            tracing::warn!("cannot remove {}: {e}", self.path.display());
        }
        // The shared `recorder/` parent goes too once empty, so nothing is
        // left behind; a parent with another recorder's cgroup in it is
        // busy (EBUSY) and stays.
        if let Some(parent) = self.path.parent() {
            let _ = fs::remove_dir(parent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_names_round_trip_and_this_process_is_alive() {
        let me = Owner::myself();
        assert!(me.start_time > 0);
        assert_eq!(Owner::from_name(&format!("rec-{}-{}-3", me.pid, me.start_time)), Some(me));
        assert!(me.is_alive());
        assert!(!Owner { pid: me.pid, start_time: me.start_time + 1 }.is_alive(), "a reused PID is not the owner");
        // The old naming (rec-<pid>-<n>) reads <n> as a start time that no
        // live process has: such cgroups count as stale.
        assert!(Owner::from_name(&format!("rec-{}-0", me.pid)).is_some_and(|o| !o.is_alive()));
        assert_eq!(Owner::from_name("other"), None);
    }
}
