//! Checks that turn kernel and permission problems into one-line errors
//! before anything is started.

use std::path::Path;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "recording needs root, or CAP_BPF and CAP_PERFMON: this process lacks {missing} (in a pod: securityContext.capabilities.add; for a user: setpriv --ambient-caps, see the README's capability table)"
    )]
    NotPrivileged {
        /// The capabilities the kernel will refuse without, e.g. `CAP_PERFMON`
        /// or `CAP_BPF and CAP_PERFMON`.
        missing: String,
    },
    #[error(
        "the kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing); use a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.4+)"
    )]
    NoBtf,
    #[error("cannot read this process's capabilities: {0}")]
    Caps(#[source] procfs::ProcError),
    #[error(
        "too many open files (limit {limit}): recording needs at least {needed}; raise `ulimit -n`, e.g. `ulimit -n 1024`"
    )]
    TooManyFiles { limit: u64, needed: u64 },
}

/// Descriptors a recording needs: `record -- CMD` holds about 40 (BPF maps,
/// programs and links, BTF, the event loop, the child's pipes), a pod or
/// the daemon a few more (CRI connection, HTTP); twice that leaves room.
pub const MIN_OPEN_FILES: u64 = 64;

/// The soft open-file limit (RLIMIT_NOFILE), when it can be read.
pub fn open_files_limit() -> Option<u64> {
    // SAFETY: a zeroed rlimit is a valid out-buffer; getrlimit only writes it.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: RLIMIT_NOFILE is a valid resource and `limit` outlives the call.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

/// Refuses to start with fewer than `needed` descriptors allowed: below
/// that, loading fails half-way with errors that name the wrong cause.
pub fn check_open_files(needed: u64) -> Result<(), PreflightError> {
    match open_files_limit() {
        Some(limit) if limit < needed => Err(PreflightError::TooManyFiles { limit, needed }),
        _ => Ok(()),
    }
}

/// The capabilities loading and attaching tracing programs needs that an
/// effective set `capeff` lacks (Linux 5.8+ split them out of CAP_SYS_ADMIN,
/// which still implies both: `bpf_capable()` and `perfmon_capable()` in
/// include/linux/capability.h). Empty when nothing is missing.
pub fn missing_capabilities(capeff: u64) -> Vec<&'static str> {
    let has = |cap: u32| capeff & (1u64 << cap) != 0;
    let admin = has(CAP_SYS_ADMIN);
    let mut missing = Vec::new();
    // Map creation and program loading (kernel/bpf/syscall.c).
    if !admin && !has(CAP_BPF) {
        missing.push("CAP_BPF");
    }
    // Tracing program types and bpf_probe_read_kernel (kernel/bpf/syscall.c,
    // bpf_prog_load: `is_perfmon_prog_type`).
    if !admin && !has(CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    missing
}

/// Root, or the capabilities that loading tracing programs needs. The error
/// names each missing one.
pub fn check_privileges() -> Result<(), PreflightError> {
    let status = procfs::process::Process::myself().and_then(|p| p.status()).map_err(PreflightError::Caps)?;
    let missing = missing_capabilities(status.capeff);
    if missing.is_empty() { Ok(()) } else { Err(PreflightError::NotPrivileged { missing: missing.join(" and ") }) }
}

/// BTF lets the loader check the program against the running kernel.
pub fn check_btf() -> Result<(), PreflightError> {
    if Path::new("/sys/kernel/btf/vmlinux").exists() { Ok(()) } else { Err(PreflightError::NoBtf) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_missing_capability() {
        let cap = |c: u32| 1u64 << c;
        assert_eq!(missing_capabilities(0), ["CAP_BPF", "CAP_PERFMON"]);
        assert_eq!(missing_capabilities(cap(CAP_BPF)), ["CAP_PERFMON"]);
        assert_eq!(missing_capabilities(cap(CAP_PERFMON)), ["CAP_BPF"]);
        assert!(missing_capabilities(cap(CAP_BPF) | cap(CAP_PERFMON)).is_empty());
        assert!(missing_capabilities(cap(CAP_SYS_ADMIN)).is_empty());
    }
}
