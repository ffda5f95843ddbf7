//! Starting the recorded command inside its cgroup.
//!
//! The child moves itself into the cgroup in `pre_exec`, right before
//! execve: the write to cgroup.procs enters the kernel while the child is
//! still outside, so the only syscall of ours the recording sees is the
//! execve of CMD itself.

use std::{io, os::fd::AsRawFd as _};

use crate::{cgroup::Cgroup, target::Command};

pub fn spawn_into(command: &Command, cgroup: &Cgroup) -> io::Result<tokio::process::Child> {
    let procs = cgroup.procs_writer().map_err(io::Error::other)?;
    let fd = procs.as_raw_fd();
    let mut cmd = tokio::process::Command::new(&command.program);
    cmd.args(&command.args);
    // SAFETY: the closure runs in the forked child before exec and only calls
    // write(2), which is async-signal-safe; `procs` outlives the spawn call
    // (it is dropped at the end of this function, after spawn returned).
    unsafe {
        cmd.pre_exec(move || {
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            if written == 1 { Ok(()) } else { Err(io::Error::last_os_error()) }
        });
    }
    let child = cmd.spawn();
    drop(procs);
    child
}
