//! Starting the recorded command inside its cgroup.
//!
//! The child moves itself into the cgroup in `pre_exec`, right before
//! execve: the write to cgroup.procs enters the kernel while the child is
//! still outside, so the only syscall of ours the recording sees is the
//! execve of CMD itself. Before that it asks for SIGKILL when the recorder
//! dies (`PR_SET_PDEATHSIG`), so a recorder killed with SIGKILL does not
//! leave CMD running unnoticed; what CMD started in the meantime stays in
//! the cgroup, which the next recorder cleans up (`target::owned`).

use std::{io, os::fd::AsRawFd as _};

use crate::target::{Cgroup, Command};

/// Starts `command` in `cgroup`; with `filter` (a classic-BPF seccomp
/// program as libseccomp exports it), under that filter, installed with
/// no_new_privs right before exec as a container runtime does.
pub fn spawn_into(command: &Command, cgroup: &Cgroup, filter: Option<&[u8]>) -> io::Result<tokio::process::Child> {
    let procs = cgroup.procs_writer().map_err(io::Error::other)?;
    let fd = procs.as_raw_fd();
    let recorder = std::process::id() as i32;
    // The program as the kernel wants it, built before the fork: the child
    // may only make async-signal-safe calls.
    let program: Option<Vec<libc::sock_filter>> = filter.map(|bytes| {
        bytes
            .chunks_exact(8)
            .map(|b| libc::sock_filter {
                code: u16::from_ne_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            })
            .collect()
    });
    // As an address and a length: the closure must be Send, a raw pointer
    // is not. `program` outlives the spawn (dropped after it, below).
    let fprog = program.as_ref().map(|p| (p.as_ptr() as usize, p.len() as u16));
    let mut cmd = tokio::process::Command::new(&command.program);
    cmd.args(&command.args);
    // SAFETY: the closure runs in the forked child before exec and only calls
    // setpgid(2), prctl(2), getppid(2), write(2) and seccomp(2), which are
    // async-signal-safe;
    // `procs` outlives the spawn call (it is dropped at the end of this
    // function, after spawn returned).
    unsafe {
        cmd.pre_exec(move || {
            // Its own process group: a terminal's Ctrl-C reaches only the
            // recorder, which then stops CMD the way a runtime would.
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // CMD never inherits the capabilities a non-root recorder was
            // given as ambient ones (CAP_BPF, CAP_PERFMON): as a non-root
            // user it then execs with none.
            if libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The recorder may have died before the prctl took effect.
            if libc::getppid() != recorder {
                return Err(io::Error::other("the recorder exited while starting the command"));
            }
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            if written != 1 {
                return Err(io::Error::last_os_error());
            }
            if let Some((filter, len)) = fprog {
                let fprog = libc::sock_fprog { len, filter: filter as *mut libc::sock_filter };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // SECCOMP_SET_MODE_FILTER (1), no flags.
                if libc::syscall(libc::SYS_seccomp, 1, 0, &fprog as *const libc::sock_fprog) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(procs);
    // The program must outlive the fork (the child reads it before exec).
    drop(program);
    child
}
