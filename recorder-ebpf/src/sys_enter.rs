//! `raw_syscalls:sys_enter` as a raw tracepoint.
//!
//! The raw tracepoint gets `TP_PROTO(struct pt_regs *regs, long id)`
//! (include/trace/events/syscalls.h) without the classic tracepoint's record
//! copy, and needs no tracefs. Every syscall on the machine runs this, so the
//! path for tasks outside the target is a per-CPU cache hit and a compare.

use aya_ebpf::{bindings::BPF_NOEXIST, macros::raw_tracepoint, programs::RawTracePointContext};
use recorder_common::{Abi, CgroupKey, Event, EventKind, MAX_SYSCALLS, Phase, SYSCALL_MASK, SyscallSet, stat};

use crate::{SYSCALLS, TARGET_SET, ZERO, boundary, bump, classify, emit, target_cgroup, tgid};

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    match try_sys_enter(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

#[inline(always)]
fn try_sys_enter(ctx: &RawTracePointContext) -> Result<(), ()> {
    let regs: u64 = ctx.arg(0);
    let Some((leaf, itself)) = classify(regs) else {
        return Ok(());
    };
    let id: u64 = ctx.arg(1);
    let (abi, nr) = split_abi(id);
    if nr >= MAX_SYSCALLS as u64 {
        bump(stat::OUT_OF_RANGE);
        return Err(());
    }
    let (cgroup_id, phase, set) = if abi == Abi::NATIVE && itself {
        (target_cgroup(), Phase::RUN, TARGET_SET.get_ptr_mut(0).ok_or(())?)
    } else {
        let cgroup_id = leaf;
        let phase = boundary::phase_of(regs as *const _, cgroup_id, nr);
        (cgroup_id, phase, lookup_or_insert(ctx, &CgroupKey { cgroup_id, abi, phase })?)
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
        emit(Event { kind: EventKind::SYSCALL, phase, abi, nr: nr as u32, cgroup_id, tgid: tgid(), _pad: 0 });
    }
    Ok(())
}

/// Splits the x32 marker off a syscall number. Other architectures have no
/// such bit; their compat tasks are tagged by a later change.
#[inline(always)]
fn split_abi(id: u64) -> (Abi, u64) {
    #[cfg(bpf_target_arch = "x86_64")]
    {
        use recorder_common::X32_SYSCALL_BIT;
        // -1 (no syscall, e.g. a ptrace-cancelled one) has every bit set and
        // must stay out of range rather than look like x32.
        if id & X32_SYSCALL_BIT != 0 && id < (X32_SYSCALL_BIT << 1) {
            return (Abi::X32, id & !X32_SYSCALL_BIT);
        }
    }
    (Abi::NATIVE, id)
}

#[inline(always)]
fn lookup_or_insert(ctx: &RawTracePointContext, key: &CgroupKey) -> Result<*mut SyscallSet, ()> {
    if let Some(set) = SYSCALLS.get_ptr_mut(key) {
        return Ok(set);
    }
    let zero = ZERO.get_ptr(0).ok_or(())?;
    #[expect(
        clippy::needless_borrows_for_generic_args,
        reason = "by value would copy the 4 KiB set onto the 512-byte BPF stack"
    )]
    // SAFETY: `zero` is a valid map value pointer; the kernel copies from it.
    let inserted = SYSCALLS.insert(key, unsafe { &*zero }, BPF_NOEXIST.into());
    match inserted {
        Ok(()) => emit(Event {
            kind: EventKind::CGROUP,
            phase: key.phase,
            abi: key.abi,
            nr: 0,
            cgroup_id: key.cgroup_id,
            tgid: tgid(),
            _pad: 0,
        }),
        // -EEXIST: another CPU inserted it first, which is fine.
        Err(-17) => {}
        Err(_) => {
            bump(stat::MAP_FULL);
            // Rare (the map holds MAX_CGROUP_KEYS entries) and worth a line in
            // the log: this cgroup's syscalls are being lost.
            aya_log_ebpf::warn!(ctx, "SYSCALLS map full: cgroup {} not recorded", key.cgroup_id);
            return Err(());
        }
    }
    SYSCALLS.get_ptr_mut(key).ok_or(())
}
