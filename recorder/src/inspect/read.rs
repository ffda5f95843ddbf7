//! Reading a running process's seccomp state from outside: the mode,
//! filter count and `no_new_privs` from `/proc/<pid>/status`, and each
//! filter's classic-BPF program with `PTRACE_SECCOMP_GET_FILTER` (Linux
//! 4.4+, needs CAP_SYS_ADMIN and a ptrace-stopped tracee: the process is
//! seized, interrupted, read and detached; it sees an interruption, no
//! signal, and nothing in it runs on our behalf).

use super::cbpf::Insn;

/// `/proc/<pid>/status`'s view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// `Seccomp:` 0 disabled, 1 strict, 2 filter.
    pub mode: u8,
    /// `Seccomp_filters:` (Linux 5.9+).
    pub filters: Option<u32>,
    pub no_new_privs: bool,
    /// `Name:`.
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no process {0}")]
    NoSuchProcess(i32),
    #[error("cannot read /proc/{pid}/status: {source}")]
    Status {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot read the seccomp filters of process {pid} ({step}): {source}; this needs root (CAP_SYS_ADMIN and CAP_SYS_PTRACE), a process that is not already traced, and recorder itself not under seccomp"
    )]
    Ptrace {
        pid: i32,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
}

pub fn status(pid: i32) -> Result<Status, ReadError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ReadError::NoSuchProcess(pid)
        } else {
            ReadError::Status { pid, source }
        }
    })?;
    Ok(parse_status(&text))
}

pub fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match key {
            "Seccomp" => s.mode = value.parse().unwrap_or(0),
            "Seccomp_filters" => s.filters = value.parse().ok(),
            "NoNewPrivs" => s.no_new_privs = value == "1",
            "Name" => s.name = value.to_owned(),
            _ => {}
        }
    }
    s
}

const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;

/// Detaches from the tracee when dropped, whatever happened in between.
struct Seized(i32);

impl Drop for Seized {
    fn drop(&mut self) {
        // SAFETY: PTRACE_DETACH on a process we seized; no pointers.
        unsafe { libc::ptrace(libc::PTRACE_DETACH, self.0, 0usize, 0usize) };
    }
}

/// Every filter of `pid`, the most recently installed first (index 0, as
/// the kernel numbers them). Empty when it has none.
pub fn filters(pid: i32) -> Result<Vec<Vec<Insn>>, ReadError> {
    let fail = |step| ReadError::Ptrace { pid, step, source: std::io::Error::last_os_error() };
    // SAFETY: PTRACE_SEIZE with no options; no pointers are passed.
    if unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0usize, 0usize) } != 0 {
        return Err(fail("PTRACE_SEIZE"));
    }
    let _seized = Seized(pid);
    // SAFETY: PTRACE_INTERRUPT on our own tracee; no pointers.
    if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0usize, 0usize) } != 0 {
        return Err(fail("PTRACE_INTERRUPT"));
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for our tracee's stop; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid && libc::WIFSTOPPED(status) {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(fail("waitpid"));
        }
        if r == pid && (libc::WIFEXITED(status) || libc::WIFSIGNALED(status)) {
            return Err(ReadError::NoSuchProcess(pid));
        }
    }
    let mut out = Vec::new();
    for index in 0usize.. {
        // SAFETY: with a NULL buffer the kernel only returns the length.
        let len = unsafe { libc::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, std::ptr::null_mut::<u8>()) };
        if len < 0 {
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                // No filter at this index: the end of the stack.
                Some(libc::ENOENT) => break,
                // Not in filter mode: no filters at all.
                Some(libc::EINVAL) if index == 0 => break,
                _ => return Err(ReadError::Ptrace { pid, step: "PTRACE_SECCOMP_GET_FILTER", source: err }),
            }
        }
        let count = usize::try_from(len).unwrap_or(0);
        let mut buf = vec![0u8; count * 8];
        // SAFETY: `buf` holds `count` sock_filter entries (8 bytes each), the
        // length the kernel just reported for this index.
        let got = unsafe { libc::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, buf.as_mut_ptr()) };
        if got < 0 {
            return Err(fail("PTRACE_SECCOMP_GET_FILTER"));
        }
        out.push(Insn::parse_all(&buf));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let s = parse_status("Name:\tnginx\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t3\n");
        assert_eq!(s, Status { mode: 2, filters: Some(3), no_new_privs: true, name: "nginx".into() });
        assert_eq!(parse_status("Seccomp:\t0\n").mode, 0);
    }
}
