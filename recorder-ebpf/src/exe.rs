//! `--by-exe`: which executable made each call. Information only: a seccomp
//! filter is per process tree, not per executable, so the profile does not
//! change.
//!
//! The exec'd path (`bprm->filename` at `sched_process_exec`, as the caller
//! of execve gave it) is hashed into an id (`recorder_common::exe_id`); the
//! path goes to `EXE_PATHS` once, and the process (tgid) to `TASK_EXE`, an
//! LRU. A fork copies the parent's id to the child. Each call then sets one
//! bit in `EXE_BITS[(cgroup, id, ABI)]`. Processes whose exec was not seen
//! book their calls under `EXE_NOT_SEEN`.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes},
};
use recorder_common::{Abi, Bitmap, EXE_NOT_SEEN, EXE_PATH_LEN, ExeKey, exe_id, stat};

use crate::{
    BPRM_FILENAME_OFFSET, EXE_BITS, EXE_PATHS, EXE_SCRATCH, TASK_EXE, TASK_TGID_OFFSET, atomic, bump, global, tgid,
};

/// `sched_process_exec`: the current process now runs the program at
/// `bprm->filename`.
#[inline(always)]
pub fn on_exec(bprm: u64) {
    let offset = global(&BPRM_FILENAME_OFFSET);
    if offset == u32::MAX {
        return;
    }
    // SAFETY: bpf_probe_read_kernel copes with any address; `bprm` is the
    // tracepoint's `struct linux_binprm *` and `offset` its `filename`
    // member, from BTF.
    let Ok(filename) = (unsafe { bpf_probe_read_kernel((bprm + offset as u64) as *const u64) }) else {
        return;
    };
    let Some(buf) = EXE_SCRATCH.get_ptr_mut(0) else { return };
    // SAFETY: `buf` is this CPU's scratch value (EXE_PATH_LEN bytes, 8-byte
    // aligned as every map value is); nothing else runs on this CPU while
    // the program does. Zeroed first so the bytes after the NUL are equal
    // for equal paths.
    let path = unsafe {
        let words = buf as *mut u64;
        for i in 0..EXE_PATH_LEN / 8 {
            *words.add(i) = 0;
        }
        let _ = bpf_probe_read_kernel_str_bytes(filename as *const u8, &mut (*buf).bytes);
        &*buf
    };
    let id = exe_id(&path.bytes);
    match EXE_PATHS.insert(id, path, BPF_NOEXIST.into()) {
        // -EEXIST: seen before.
        Ok(()) | Err(-17) => {}
        Err(_) => bump(stat::EXE_FULL),
    }
    let _ = TASK_EXE.insert(tgid(), id, 0);
}

/// `task_newtask` for a new process: it runs its parent's executable until
/// it execs. The child's entry is always written, so a reused pid never
/// inherits a stale one.
#[inline(always)]
pub fn on_fork(child: u64) {
    let offset = global(&TASK_TGID_OFFSET);
    if offset == u32::MAX {
        return;
    }
    // SAFETY: as in `on_exec`; `child` is the new `struct task_struct *`.
    let Ok(child_tgid) = (unsafe { bpf_probe_read_kernel((child + offset as u64) as *const u32) }) else {
        return;
    };
    // SAFETY: a plain copy out of an LRU hash value.
    let id = unsafe { TASK_EXE.get(tgid()) }.copied().unwrap_or(EXE_NOT_SEEN);
    let _ = TASK_EXE.insert(child_tgid, id, 0);
}

/// Books call `nr` under the current process's executable.
#[inline(always)]
pub fn note(cgroup_id: u64, abi: Abi, nr: u64) {
    // SAFETY: a plain copy out of an LRU hash value.
    let exe = unsafe { TASK_EXE.get(tgid()) }.copied().unwrap_or(EXE_NOT_SEEN);
    let key = ExeKey { cgroup_id, exe, abi, _pad: 0 };
    let bits = match EXE_BITS.get_ptr_mut(key) {
        Some(bits) => bits,
        None => {
            match EXE_BITS.insert(key, Bitmap::zeroed(), BPF_NOEXIST.into()) {
                Ok(()) | Err(-17) => {}
                Err(_) => {
                    bump(stat::EXE_FULL);
                    return;
                }
            }
            let Some(bits) = EXE_BITS.get_ptr_mut(key) else { return };
            bits
        }
    };
    let word = (nr / 64) as usize;
    let bit = 1u64 << (nr % 64);
    // SAFETY: only computes an address inside the bitmap; `get_mut` checks
    // the index.
    let Some(word) = (unsafe { (*bits).bits.get_mut(word) }) else { return };
    let word = word as *mut u64;
    // SAFETY: a map value shared by all CPUs, read volatile and changed only
    // with an atomic OR (as `sys_enter` does with `BITS`).
    if unsafe { core::ptr::read_volatile(word) } & bit == 0 {
        // SAFETY: as above.
        unsafe { atomic::fetch_or(word, bit) };
    }
}
