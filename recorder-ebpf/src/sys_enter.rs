//! `raw_syscalls:sys_enter` as a raw tracepoint.
//!
//! The raw tracepoint gets `TP_PROTO(struct pt_regs *regs, long id)`
//! (include/trace/events/syscalls.h) without the classic tracepoint's record
//! copy, and needs no tracefs. Every syscall on the machine runs this, so the
//! path for tasks outside the target is one helper call and a compare.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use recorder_common::{
    CgroupKey, Event, MAX_SYSCALLS, SYSCALL_MASK, SyscallSet, arch, event_kind, phase, stat,
};

use crate::{SYSCALLS, TARGET_SET, ZERO, boundary, bump, classify, emit, target_cgroup};

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    match try_sys_enter(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

/// The floor for benchmarks: an empty program on the same hook.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter_empty(_ctx: RawTracePointContext) -> i32 {
    0
}

#[inline(always)]
fn try_sys_enter(ctx: &RawTracePointContext) -> Result<(), ()> {
    let Some((leaf, itself)) = classify(ctx.arg(0)) else {
        return Ok(());
    };
    let id: u64 = ctx.arg(1);
    let (arch, nr) = split_arch(id);
    if nr >= MAX_SYSCALLS as u64 {
        bump(stat::OUT_OF_RANGE);
        return Err(());
    }
    let (cgroup_id, phase, set) = if arch == arch::NATIVE && itself {
        (target_cgroup(), phase::RUN, TARGET_SET.get_ptr_mut(0).ok_or(())?)
    } else {
        let cgroup_id = leaf;
        let phase = boundary::phase_of(ctx, cgroup_id, nr);
        (cgroup_id, phase, lookup_or_insert(ctx, &CgroupKey { cgroup_id, arch, phase })?)
    };

    let nr = nr & SYSCALL_MASK;
    let word = (nr / 64) as usize;
    let bit = 1u64 << (nr % 64);
    // SAFETY: `set` points into this CPU's slot of a per-CPU map value; the
    // program is not preempted, so nothing else writes it concurrently. The
    // indexes are masked below the array lengths.
    let first_seen = unsafe {
        let set = &mut *set;
        set.counts[nr as usize] = set.counts[nr as usize].wrapping_add(1);
        let seen = set.bits[word] & bit != 0;
        set.bits[word] |= bit;
        !seen
    };
    if first_seen {
        emit(Event {
            kind: event_kind::SYSCALL,
            phase: phase as u16,
            arch,
            cgroup_id,
            nr: nr as u32,
            tgid: tgid(),
        });
    }
    Ok(())
}

/// Splits the x32 marker off a syscall number. Other architectures have no
/// such bit; their compat tasks are tagged by a later change.
#[inline(always)]
fn split_arch(id: u64) -> (u32, u64) {
    #[cfg(bpf_target_arch = "x86_64")]
    {
        use recorder_common::X32_SYSCALL_BIT;
        // -1 (no syscall, e.g. a ptrace-cancelled one) has every bit set and
        // must stay out of range rather than look like x32.
        if id & X32_SYSCALL_BIT != 0 && id < (X32_SYSCALL_BIT << 1) {
            return (arch::X32, id & !X32_SYSCALL_BIT);
        }
    }
    (arch::NATIVE, id)
}

#[inline(always)]
fn lookup_or_insert(ctx: &RawTracePointContext, key: &CgroupKey) -> Result<*mut SyscallSet, ()> {
    if let Some(set) = SYSCALLS.get_ptr_mut(key) {
        return Ok(set);
    }
    let zero = ZERO.get_ptr(0).ok_or(())?;
    // SAFETY: `zero` is a valid map value pointer; the kernel copies from it.
    let inserted = SYSCALLS.insert(key, unsafe { &*zero }, aya_ebpf::bindings::BPF_NOEXIST.into());
    match inserted {
        Ok(()) => emit(Event {
            kind: event_kind::CGROUP,
            phase: key.phase as u16,
            arch: key.arch,
            cgroup_id: key.cgroup_id,
            nr: 0,
            tgid: tgid(),
        }),
        // -EEXIST: another CPU inserted it first, which is fine.
        Err(e) if e == -17 => {}
        Err(_) => {
            bump(stat::MAP_FULL);
            // Rare (the map holds MAX_CGROUPS entries) and worth a line in the
            // daemon's log: this cgroup's syscalls are being lost.
            aya_log_ebpf::warn!(ctx, "SYSCALLS map full: cgroup {} not recorded", key.cgroup_id);
            return Err(());
        }
    }
    SYSCALLS.get_ptr_mut(key).ok_or(())
}

#[inline(always)]
pub(crate) fn tgid() -> u32 {
    (bpf_get_current_pid_tgid() >> 32) as u32
}
