//! Which processes pass through a cgroup sub-tree, and as what executable: a tight polling
//! loop over `cgroup.procs` for measuring where runtimes put their init processes.
//!
//! Polling can miss a process that enters and leaves between two reads (tens of
//! microseconds apart); it never reports one that was not there.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::anyhow;

/// One process seen in a cgroup, once per distinct (cgroup, pid, executable): a process
/// that execs while inside shows up again with its new executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSeen {
    /// cgroup directory relative to the watched root (empty for the root itself).
    pub cgroup: PathBuf,
    pub pid: i32,
    /// Target of `/proc/PID/exe` (e.g. `/usr/sbin/runc`, `/memfd:runc_cloned:/proc/self/exe
    /// (deleted)`), empty if it could not be read (kernel thread, or already gone).
    pub exe: String,
    /// `/proc/PID/comm`.
    pub comm: String,
    /// `/proc/PID/cmdline` with NULs as spaces.
    pub cmdline: String,
    /// When it was first seen like this, since the watch started.
    pub at: Duration,
}

/// A background thread recording every process in `root` and the cgroups below it.
pub struct CgroupWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<ProcessSeen>>,
}

impl CgroupWatch {
    /// Starts watching `root`, which need not exist yet.
    pub fn start(root: PathBuf) -> CgroupWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let started = Instant::now();
            let mut seen: Vec<ProcessSeen> = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                poll(&root, &root, started, &mut seen);
                thread::yield_now();
            }
            seen
        });
        CgroupWatch { stop, thread }
    }

    /// Stops the watch and returns what it saw, in order.
    pub fn finish(self) -> anyhow::Result<Vec<ProcessSeen>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow!("the cgroup watch thread panicked"))
    }
}

fn poll(root: &Path, dir: &Path, started: Instant, seen: &mut Vec<ProcessSeen>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        let cgroup = dir.strip_prefix(root).unwrap_or(dir).to_path_buf();
        for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let exe = fs::read_link(format!("/proc/{pid}/exe")).map(|p| p.display().to_string()).unwrap_or_default();
            if seen.iter().any(|s| s.pid == pid && s.exe == exe && s.cgroup == cgroup) {
                continue;
            }
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            seen.push(ProcessSeen {
                cgroup: cgroup.clone(),
                pid,
                exe,
                comm: comm.trim_end().to_owned(),
                cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " ").trim_end().to_owned(),
                at: started.elapsed(),
            });
        }
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            poll(root, &entry.path(), started, seen);
        }
    }
}
