//! Checks that turn kernel and permission problems into one-line errors
//! before anything is started.

use std::path::Path;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("recording needs root (or CAP_BPF and CAP_PERFMON, plus write access to cgroupfs); run with sudo")]
    NotPrivileged,
    #[error(
        "the kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing); use a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.4+)"
    )]
    NoBtf,
    #[error("cannot read this process's capabilities: {0}")]
    Caps(#[source] procfs::ProcError),
}

/// Root, or the capabilities that loading tracing programs needs (Linux 5.8+
/// split them out of CAP_SYS_ADMIN).
pub fn check_privileges() -> Result<(), PreflightError> {
    let status = procfs::process::Process::myself().and_then(|p| p.status()).map_err(PreflightError::Caps)?;
    let has = |cap: u32| status.capeff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) { Ok(()) } else { Err(PreflightError::NotPrivileged) }
}

/// BTF lets the loader check the program against the running kernel.
pub fn check_btf() -> Result<(), PreflightError> {
    if Path::new("/sys/kernel/btf/vmlinux").exists() { Ok(()) } else { Err(PreflightError::NoBtf) }
}
