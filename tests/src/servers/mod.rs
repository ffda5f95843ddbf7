//! Real servers and real clients for the lifecycle tests: a local nginx,
//! the processes of a server (its master, its workers), and the clients
//! that prove it serves (a loop of HTTP GETs, wrk, redis-benchmark,
//! pgbench). The container images of redis and postgres are in
//! [`crate::cri::databases`].

pub mod clients;
pub mod nginx;

use std::{
    fs,
    net::{Ipv4Addr, TcpListener},
    process::{Child, ExitStatus},
    thread,
    time::{Duration, Instant},
};

/// A TCP port on 127.0.0.1 that nothing listens on now, from `preferred`
/// up. Tests in one binary use bases far enough apart not to collide;
/// other programs on the machine (a colleague's measurements, the host's
/// own servers) are stepped over.
pub fn free_port(preferred: u16) -> u16 {
    (preferred..preferred.saturating_add(50))
        .find(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, *port)).is_ok())
        .unwrap_or_else(|| panic!("no free TCP port on 127.0.0.1 in {preferred}..{}", preferred.saturating_add(50)))
}

/// The PIDs whose parent is `pid` (from /proc/PID/stat: this kernel has no
/// /proc/PID/task/TID/children).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    let mut found: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| parent_of(*p) == Some(pid))
        .collect();
    found.sort_unstable();
    found
}

/// Field 4 of /proc/PID/stat.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// Sends `signal` to `pid` alone (never a process group).
pub fn signal(pid: u32, signal: i32) {
    let pid = i32::try_from(pid).expect("a PID fits in pid_t");
    assert!(pid > 0, "refusing to signal PID {pid}");
    // SAFETY: kill(2) takes plain integers; the PID is one of a process
    // this test started (or its child), and it is positive, so it never
    // names a process group.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
}

/// Waits up to `timeout` for `child` to exit; returns its status and how
/// long it took, or `None` when it still runs.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<(ExitStatus, Duration)> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return Some((status, started.elapsed()));
        }
        if started.elapsed() > timeout {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `done` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Every descendant of `pid`, children first.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for c in children(p) {
            out.push(c);
            queue.push(c);
        }
    }
    out
}

/// A child process that is ended when dropped, so a failing assertion
/// leaves nothing running: first `polite` (e.g. SIGINT to a recorder, which
/// then stops its workload and removes its cgroup) with up to 15 s to exit,
/// then SIGKILL for it and every descendant it still has (nginx workers
/// outlive a killed master).
pub struct Guarded {
    pub child: Child,
    polite: Option<i32>,
}

impl Guarded {
    pub fn new(child: Child) -> Guarded {
        Guarded { child, polite: None }
    }

    /// Ended with `signal` first when dropped.
    pub fn polite(child: Child, signal: i32) -> Guarded {
        Guarded { child, polite: Some(signal) }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = self.child.id();
        if let Some(sig) = self.polite {
            // SAFETY: kill(2) on our own unreaped child (positive PID).
            unsafe { libc::kill(pid as i32, sig) };
            if wait_exit(&mut self.child, Duration::from_secs(15)).is_some() {
                return;
            }
        }
        let tree = descendants(pid);
        let _ = self.child.kill();
        for p in tree {
            // SAFETY: kill(2) on a descendant of our child, found just now
            // by its parent PID; a PID that went away meanwhile is ESRCH.
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}
