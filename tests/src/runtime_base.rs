//! Syscalls an OCI runtime itself makes after installing the container's seccomp filter.
//!
//! The runtime loads the container's filter into its own init process shortly before it
//! execs the entrypoint, so the last few syscalls of runc/crun init run under the container's
//! profile. A profile recorded from the workload alone then kills the container before the
//! workload runs (`ensure /proc/self/fd is on procfs: operation not permitted`). Profiles
//! enforced through a runtime must therefore allow the runtime's post-filter set too.
//!
//! # How the sets were derived (details and numbers: docs/containers-harness.md)
//!
//! Script: `tests/scripts/derive-runtime-base.py --runtime runc|crun [--kill-default]`,
//! which runs the runtime directly on a `runc spec` bundle (the same init code as under
//! containerd's shim) whose entrypoint is a static program (write "hello", uname, exit).
//!
//! 1. Observation: `strace -f`, profile allowing everything, 30 runs; the syscalls of the
//!    thread that installed the filter (`prctl(PR_SET_SECCOMP)` for runc,
//!    `seccomp(SECCOMP_SET_MODE_FILTER)` for crun) from that call up to `execve` of the
//!    entrypoint. Their union is `*_OBSERVED`.
//! 2. Elimination: profile = the program's own syscalls + everything observed, default
//!    `SCMP_ACT_ERRNO` (EPERM); for each observed syscall, 40 runs without it. Needed when
//!    some run fails before the program runs.
//! 3. Confirmation: 200 runs with the program's syscalls + the needed set; failures there
//!    (runc: 3/200 "futexwakeup ... returned -1") are resolved by adding back the observed
//!    syscall that removes them.
//!
//! The result is checked by `tests/tests/containers_harness.rs` (`runtime_base_*`,
//! `*_round_trip`), through containerd and ctr.
//!
//! The `*_POST_FILTER` sets are what a profile with an errno default action needs. A
//! profile whose default action kills (`SCMP_ACT_KILL*`) needs every `*_OBSERVED` syscall
//! (checked with `--kill-default`): runc calls `getpid` and `epoll_ctl` there and crun
//! `close`, and each merely tolerates their failure.

/// Minimal post-filter set for Debian's runc 1.1.5+ds1-1+deb12u1 (go1.19.8), errno default.
///
/// runc installs the filter with `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)` on the
/// OS thread locked to its init goroutine; `noNewPrivileges` (ctr's and CRI's default) makes
/// it do so as late as possible. No `SECCOMP_FILTER_FLAG_TSYNC`: the Go runtime's other
/// threads stay unfiltered, and execve then leaves only the filtered thread. On that thread
/// after the filter (libcontainer/standard_init_linux.go, Debian's CVE-2024-21626 backport):
///
/// - `close`: closes the log pipe and sync fds ("close log pipe fd 4").
/// - `openat`, `write`: open the exec fifo through `/proc/self/fd/N` and write `"0"` to it
///   ("open exec fifo", then "cannot start an already running container" when `write` is
///   denied). So a runc-enforced profile can never deny `write`.
/// - `fstatfs`, `getdents64`: `UnsafeCloseFrom` checks that `/proc/self/fd` is procfs and
///   lists it to close leaked fds ("ensure /proc/self/fd is on procfs", "readdirent").
/// - `execve`: the entrypoint.
/// - `futex`: the Go runtime sometimes wakes another thread from this one
///   (`futexwakeup`); a failure is fatal ("futexwakeup addr=... returned -1", then SIGSEGV
///   at 0x1006). Denied, 1-4% of runs fail here (27/30 runs call it under strace, which
///   slows the thread down).
/// - `rt_sigreturn`: Go's async preemption sends SIGURG to the thread; returning from the
///   handler fails, the thread faults in a loop and the container dies with SIGSEGV (exit
///   139). Denied, 7-25% of runs fail here.
pub const RUNC_1_1_5_POST_FILTER: &[&str] =
    &["close", "execve", "fstatfs", "futex", "getdents64", "openat", "rt_sigreturn", "write"];

/// Everything runc 1.1.5 was seen calling on the filtered thread before execve:
/// [`RUNC_1_1_5_POST_FILTER`] plus `getpid` and `epoll_ctl` (Go registering the
/// `/proc/self/fd` directory with its poller; it fails with EPERM even unfiltered).
pub const RUNC_1_1_5_OBSERVED: &[&str] =
    &["close", "epoll_ctl", "execve", "fstatfs", "futex", "getdents64", "getpid", "openat", "rt_sigreturn", "write"];

/// Minimal post-filter set for Debian's crun 1.8.1, errno default.
///
/// crun (single-threaded C) installs the filter with `seccomp(SECCOMP_SET_MODE_FILTER,
/// SECCOMP_FILTER_FLAG_SPEC_ALLOW)` and then only closes the fd it read the compiled filter
/// from (its failure is ignored) and execs the entrypoint.
pub const CRUN_1_8_1_POST_FILTER: &[&str] = &["execve"];

/// Everything crun 1.8.1 was seen calling after its filter: `close`, `execve`.
pub const CRUN_1_8_1_OBSERVED: &[&str] = &["close", "execve"];
