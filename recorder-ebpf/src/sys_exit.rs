//! `raw_syscalls:sys_exit` in learn mode: calls a seccomp filter denied.
//!
//! `sys_enter` runs after seccomp (arch/x86/entry/common.c,
//! `syscall_trace_enter`: `__secure_computing` first, then the tracepoint),
//! so a denied call is never seen entering. Its exit still fires, with the
//! filter's errno as the return value and the number in the saved
//! `orig_ax` (checked on this kernel: a denied `getcpu` gave no `sys_enter`
//! and two `sys_exit`). So for a recorded task, an exit with no entry since
//! its last exit is a denied call.
//!
//! Per task, `INFLIGHT` holds 1 between a seen entry and its exit, 0 after.
//! A task's first exit (a fork's child returning from clone, or a task that
//! was inside a syscall when recording began) finds no entry at all and is
//! not counted: only an exit at 0 is a denial. The map is an LRU, so its
//! memory is bounded; an evicted task misses at most one denial.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_comm, bpf_probe_read_kernel},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use recorder_common::{DenialKey, Event, EventKind, MAX_SYSCALLS, Phase, stat};

use crate::{
    DENIALS, INFLIGHT, SYSCALL_NR_OFFSET, atomic, bump, emit, global,
    slots::{self, Place},
    sys_enter::split_x32,
    tgid, tid_of_current,
};

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    match try_sys_exit(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

#[inline(always)]
fn try_sys_exit(ctx: &RawTracePointContext) -> Result<(), ()> {
    let regs: u64 = ctx.arg(0);
    let Some(place) = slots::classify(regs) else {
        return Ok(());
    };
    let tid = tid_of_current();
    let Some(state) = INFLIGHT.get_ptr_mut(tid) else {
        // First sighting: from now on, this task's exits are paired.
        let _ = INFLIGHT.insert(tid, 0, 0);
        return Ok(());
    };
    // SAFETY: a valid value of an LRU hash, written only by this task.
    let entered = unsafe { core::ptr::replace(state, 0) } != 0;
    if entered {
        return Ok(());
    }
    let ret: i64 = ctx.arg(1);
    // A denial returns an errno (or 0 for SCMP_ACT_ERRNO(0)); a positive
    // value means the call ran, so its entry was only missed.
    if ret > 0 {
        return Ok(());
    }
    book_denial(regs, place)
}

/// Counts the call that the current task's filter denied: its number from
/// the task's saved registers `regs`, per (cgroup, ABI, call, command). The
/// first of a kind is also a ring-buffer event.
#[inline(always)]
pub fn book_denial(regs: u64, place: Place) -> Result<(), ()> {
    let offset = global(&SYSCALL_NR_OFFSET);
    if offset == u32::MAX {
        return Ok(());
    }
    // SAFETY: bpf_probe_read_kernel copes with any address; the offset is
    // the syscall number's in the kernel's struct pt_regs (from BTF).
    let id: u64 = unsafe { bpf_probe_read_kernel((regs + u64::from(offset)) as *const u64) }.map_err(|_| ())?;
    let (abi, nr) = split_x32(id, place.abi);
    if nr >= MAX_SYSCALLS as u64 {
        return Ok(());
    }
    let comm = bpf_get_current_comm().map_err(|_| ())?;
    let key = DenialKey { cgroup_id: place.cgroup_id, abi, nr: nr as u32, comm };
    let count = match DENIALS.get_ptr_mut(key) {
        Some(count) => count,
        None => {
            match DENIALS.insert(key, 0, BPF_NOEXIST.into()) {
                Ok(()) => emit(Event {
                    kind: EventKind::DENIAL,
                    phase: Phase::RUN,
                    abi,
                    nr: nr as u32,
                    cgroup_id: place.cgroup_id,
                    tgid: tgid(),
                    slot: place.slot,
                }),
                Err(-17) => {}
                Err(_) => {
                    bump(stat::DENIALS_FULL);
                    return Err(());
                }
            }
            DENIALS.get_ptr_mut(key).ok_or(())?
        }
    };
    // SAFETY: a map value shared by all CPUs, changed only by atomic adds.
    unsafe { atomic::add(count, 1) };
    Ok(())
}
