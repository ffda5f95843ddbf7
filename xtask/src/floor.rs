//! The cost floor for `cargo xtask bench`: an empty raw tracepoint program
//! (`r0 = 0; exit`) on `sys_enter`, loaded with two bpf(2) calls. Nothing
//! on that hook can cost less, so every other row is compared with it. It
//! lives here, not in the product binary: only the benchmark needs it.

use std::{
    io::Write as _,
    os::fd::{FromRawFd as _, OwnedFd},
};

use anyhow::{Result, bail};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;

/// `mov64 r0, 0` and `exit`, as `struct bpf_insn` bytes.
const EMPTY_PROGRAM: [u64; 2] =
    [u64::from_le_bytes([0xb7, 0, 0, 0, 0, 0, 0, 0]), u64::from_le_bytes([0x95, 0, 0, 0, 0, 0, 0, 0])];

/// The leading fields of `union bpf_attr` for BPF_PROG_LOAD
/// (include/uapi/linux/bpf.h); the rest stays zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    _rest: [u64; 12],
}

/// `union bpf_attr` for BPF_RAW_TRACEPOINT_OPEN.
#[repr(C)]
#[derive(Default)]
struct RawTracepointOpen {
    name: u64,
    prog_fd: u32,
    _pad: u32,
    cookie: u64,
    _rest: [u64; 13],
}

/// The loaded and attached empty program; dropping it detaches it.
pub struct Floor {
    _link: OwnedFd,
    _prog: OwnedFd,
}

impl Floor {
    pub fn attach() -> Result<Floor> {
        let license = c"GPL";
        let mut name = [0u8; 16];
        name[..5].copy_from_slice(b"floor");
        let load = ProgLoad {
            prog_type: BPF_PROG_TYPE_RAW_TRACEPOINT,
            insn_cnt: EMPTY_PROGRAM.len() as u32,
            insns: EMPTY_PROGRAM.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name: name,
            ..ProgLoad::default()
        };
        let prog = bpf(BPF_PROG_LOAD, &load, "loading the empty program")?;
        let tracepoint = c"sys_enter";
        let open = RawTracepointOpen {
            name: tracepoint.as_ptr() as u64,
            prog_fd: std::os::fd::AsRawFd::as_raw_fd(&prog) as u32,
            ..RawTracepointOpen::default()
        };
        let link = bpf(BPF_RAW_TRACEPOINT_OPEN, &open, "attaching it to sys_enter")?;
        Ok(Floor { _link: link, _prog: prog })
    }
}

fn bpf<T>(cmd: libc::c_long, attr: &T, what: &str) -> Result<OwnedFd> {
    // SAFETY: bpf(2) reads `size_of::<T>()` bytes of a repr(C) attr whose
    // pointers (instructions, license, name) outlive the call; unused fields
    // are zero as the kernel requires.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *const T, std::mem::size_of::<T>()) };
    if fd < 0 {
        bail!("{what} failed: {}; run as root on a kernel with BPF", std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `cargo xtask floor`: attach, say so on stdout, hold until SIGINT/SIGTERM.
pub fn run() -> Result<()> {
    let _floor = Floor::attach()?;
    println!("attached");
    std::io::stdout().flush()?;
    // SAFETY: sigset operations on a local set, then sigwait for the two
    // signals this process blocks for the purpose.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut signal = 0;
        libc::sigwait(&set, &mut signal);
    }
    Ok(())
}
