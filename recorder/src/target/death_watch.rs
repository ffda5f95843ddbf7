//! A recorder killed with SIGKILL cannot clean up after itself, and
//! `PR_SET_PDEATHSIG` reaches only the command it started, not what the
//! command forked (a daemon, a `setsid` child). So each cgroup `record`
//! creates is watched by a small process forked before anything else
//! runs: it waits on a pipe whose only write end the recorder holds. The
//! kernel closes that end however the recorder dies; the watcher then
//! kills the whole cgroup (`cgroup.kill`) and removes it. A recorder that
//! ends normally sends one byte first, and the watcher leaves without
//! touching anything.

use std::{
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
};

/// How long the watcher retries removing the cgroup while its processes die.
const REMOVE_TRIES: u32 = 500;

/// The recorder's side of the watch. Dropping it disarms the watcher (the
/// owner has cleaned up) and reaps it.
#[derive(Debug)]
pub struct DeathWatch {
    write_end: OwnedFd,
    pid: libc::pid_t,
}

impl DeathWatch {
    /// Forks the watcher for the cgroup directory `dir`.
    pub fn spawn(dir: &Path) -> io::Result<DeathWatch> {
        // Everything the child needs is made before the fork: after it, the
        // child may only make async-signal-safe calls.
        let kill = CString::new(dir.join("cgroup.kill").as_os_str().as_bytes())?;
        let cgroup = CString::new(dir.as_os_str().as_bytes())?;
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: the child runs only `watch`, which makes async-signal-safe
        // calls on memory that was set up before the fork, and `_exit`s.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            // SAFETY: as above; `watch` never returns.
            0 => unsafe { watch(read_end.as_raw_fd(), &kill, &cgroup) },
            pid => Ok(DeathWatch { write_end, pid }),
        }
    }
}

impl Drop for DeathWatch {
    fn drop(&mut self) {
        // SAFETY: a one-byte write from a live buffer to our own pipe, and
        // waitpid on our own child.
        unsafe {
            libc::write(self.write_end.as_raw_fd(), b"x".as_ptr().cast(), 1);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The watcher: own process group (a terminal's Ctrl-C is the recorder's to
/// handle), no inherited descriptor but the pipe (it must not keep the
/// recorder's BPF objects or output pipes open), then wait.
///
/// # Safety
/// Call only in a freshly forked child.
unsafe fn watch(read_fd: libc::c_int, kill: &CString, cgroup: &CString) -> ! {
    // SAFETY: setpgid, dup2, close_range, read, open, write, close, rmdir,
    // nanosleep and _exit are async-signal-safe; the pointers are to memory
    // the parent set up before the fork.
    unsafe {
        libc::setpgid(0, 0);
        libc::dup2(read_fd, 0);
        libc::syscall(libc::SYS_close_range, 1, libc::c_uint::MAX, 0);
        let mut byte = 0u8;
        let n = loop {
            let n = libc::read(0, (&mut byte as *mut u8).cast(), 1);
            if n >= 0 || *libc::__errno_location() != libc::EINTR {
                break n;
            }
        };
        if n == 1 {
            // Disarmed: the recorder cleaned up itself.
            libc::_exit(0);
        }
        let fd = libc::open(kill.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, b"1".as_ptr().cast(), 1);
            libc::close(fd);
        }
        // The cgroup can be removed once its last process is gone; what the
        // command nested below it is left to the next recorder.
        let pause = libc::timespec { tv_sec: 0, tv_nsec: 10_000_000 };
        for _ in 0..REMOVE_TRIES {
            if libc::rmdir(cgroup.as_ptr()) == 0 || *libc::__errno_location() == libc::ENOENT {
                break;
            }
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
        libc::_exit(0)
    }
}
