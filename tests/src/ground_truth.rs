//! The syscalls tests/programs/ground_truth.c makes, by context.

/// Main thread, before the threads and processes start.
pub const MAIN: &[&str] = &[
    "getcwd",
    "uname",
    "getrusage",
    "times",
    "getpgrp",
    "getpriority",
    "sched_getscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "getitimer",
    "umask",
    "getresuid",
    "getresgid",
    "getgroups",
    "capget",
    "sched_getaffinity",
    "timerfd_create",
    "eventfd2",
    "epoll_create1",
    "pipe2",
    "dup",
    "dup3",
    "memfd_create",
    "ftruncate",
    "flock",
    "fsync",
    "fdatasync",
    "lseek",
    "statfs",
    "fstatfs",
    "clock_getres",
    "mincore",
    "madvise",
    "msync",
    "futex",
];
/// The second thread.
pub const THREAD: &[&str] = &["getrlimit", "sched_getparam", "ioprio_get"];
/// The forked child.
pub const CHILD: &[&str] = &["setpgid", "getpgid", "alarm"];
/// The grandchild, after execve.
pub const GRANDCHILD: &[&str] = &["statx", "readlinkat", "faccessat2"];
/// The double-forked, setsid daemon, 1.5 s after its parent exited.
pub const DAEMON: &[&str] = &["setsid", "syncfs", "fadvise64"];
/// Main thread, after a 1 s sleep.
pub const AFTER_SLEEP: &[&str] = &["getcpu", "rt_sigpending"];

/// Every context's calls.
pub fn all() -> Vec<&'static str> {
    [MAIN, THREAD, CHILD, GRANDCHILD, DAEMON, AFTER_SLEEP].concat()
}
