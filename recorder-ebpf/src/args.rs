//! `--args`: the argument values that decide how risky some calls are,
//! kept per (cgroup, syscall) so a profile can allow just them:
//! - `socket`: the family (arg0) and the type without its flags (arg1);
//! - `clone`: the namespace flags (`CLONE_NEW*` of arg0; `clone3` cannot be
//!   filtered by argument and keeps its ENOSYS rule);
//! - `personality`: the persona (arg0); `prctl`: the option (arg0);
//! - `ioctl`: the request (arg1); `fcntl`: the command (arg1);
//! - `mprotect`/`mmap`: whether `PROT_EXEC` is asked (arg2).
//!
//! Each value is one key in `ARG_VALUES`; when that map is full the
//! (cgroup, syscall) goes to `ARG_OVERFLOW`, and its profile allows any
//! arguments (userspace says so).

use aya_ebpf::bindings::{BPF_NOEXIST, pt_regs};
use recorder_common::{ArgKey, ArgOverflowKey, arg_reduce, stat};

use crate::{
    ARG_OVERFLOW, ARG_VALUES, NR_CLONE, NR_FCNTL, NR_IOCTL, NR_MMAP, NR_MPROTECT, NR_PERSONALITY, NR_PRCTL, NR_SOCKET,
    bump, global, syscall_arg,
};

/// The reduced value of call `nr`'s arguments, for the calls `--args`
/// watches.
#[inline(always)]
fn reduce(regs: *const pt_regs, nr: u32) -> Option<u64> {
    if nr == global(&NR_SOCKET) {
        let family = syscall_arg(regs, 0)? & 0xffff;
        let kind = syscall_arg(regs, 1)? & arg_reduce::SOCK_TYPE_MASK;
        Some((family << 32) | kind)
    } else if nr == global(&NR_CLONE) {
        Some(syscall_arg(regs, 0)? & arg_reduce::CLONE_NEW_MASK)
    } else if nr == global(&NR_PERSONALITY) || nr == global(&NR_PRCTL) {
        Some(syscall_arg(regs, 0)? & 0xffff_ffff)
    } else if nr == global(&NR_IOCTL) || nr == global(&NR_FCNTL) {
        Some(syscall_arg(regs, 1)? & 0xffff_ffff)
    } else if nr == global(&NR_MPROTECT) || nr == global(&NR_MMAP) {
        Some(syscall_arg(regs, 2)? & arg_reduce::PROT_EXEC)
    } else {
        None
    }
}

/// Keeps the argument value of this call, if `nr` is a watched call.
#[inline(always)]
pub fn note(regs: *const pt_regs, cgroup_id: u64, nr: u32) {
    let Some(value) = reduce(regs, nr) else { return };
    let key = ArgKey { cgroup_id, nr, _pad: 0, value };
    if ARG_VALUES.get_ptr(key).is_some() {
        return;
    }
    match ARG_VALUES.insert(key, 1, BPF_NOEXIST.into()) {
        // -EEXIST: another CPU inserted it first, which is fine.
        Ok(()) | Err(-17) => {}
        Err(_) => {
            bump(stat::ARGS_FULL);
            let _ = ARG_OVERFLOW.insert(ArgOverflowKey { cgroup_id, nr, _pad: 0 }, 1, 0);
        }
    }
}
