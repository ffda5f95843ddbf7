//! `raw_syscalls:sys_enter` as a raw tracepoint.
//!
//! The raw tracepoint gets `TP_PROTO(struct pt_regs *regs, long id)`
//! (include/trace/events/syscalls.h) without the classic tracepoint's record
//! copy, and needs no tracefs. Every syscall on the machine runs this, so the
//! path for tasks outside the target is a per-CPU cache hit and a compare,
//! and for recorded tasks an array lookup and a bit test once their
//! syscalls are known.

use aya_ebpf::{bindings::BPF_NOEXIST, macros::raw_tracepoint, programs::RawTracePointContext};
use recorder_common::{Abi, Bitmap, CgroupKey, Event, EventKind, MAX_SYSCALLS, Phase, SYSCALL_MASK, learn_mode, stat};

use crate::{
    ABI_BITS, ARGS_MODE, BITS, BY_EXE_MODE, INFLIGHT, LEARN_MODE, args, atomic, boundary, bump, emit, exe, global,
    slots, tgid, tid_of_current,
};

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    match try_sys_enter(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

#[inline(always)]
fn try_sys_enter(ctx: &RawTracePointContext) -> Result<(), ()> {
    let regs: u64 = ctx.arg(0);
    let Some(place) = slots::classify(regs) else {
        return Ok(());
    };
    if global(&LEARN_MODE) == learn_mode::PAIRING {
        // In a syscall that a filter let through (see `sys_exit`).
        let tid = tid_of_current();
        match INFLIGHT.get_ptr_mut(tid) {
            // SAFETY: a valid value of an LRU hash, written only by this task.
            Some(state) => unsafe { *state = 1 },
            None => {
                let _ = INFLIGHT.insert(tid, 1, 0);
            }
        }
    }
    let id: u64 = ctx.arg(1);
    let (abi, nr) = split_x32(id, place.abi);
    if nr >= MAX_SYSCALLS as u64 {
        bump(stat::OUT_OF_RANGE);
        return Err(());
    }
    let Some(phase) = boundary::phase_of(regs as *const _, place.slot, nr) else {
        return Ok(());
    };
    if global(&ARGS_MODE) != 0 && abi == Abi::NATIVE && phase != Phase::SETUP {
        args::note(regs as *const _, place.cgroup_id, nr as u32);
    }
    if global(&BY_EXE_MODE) != 0 && phase != Phase::SETUP {
        exe::note(place.cgroup_id, abi, nr);
    }
    let word = ((nr & SYSCALL_MASK) / 64) as usize;
    let bit = 1u64 << (nr % 64);
    let bits: *mut u64 = if abi == Abi::NATIVE {
        let set = BITS.get_ptr_mut(place.slot).ok_or(())?;
        // SAFETY: only computes an address inside the slot's value; the
        // indexes are bounds-checked by `get_mut`.
        unsafe {
            match (*set).phases.get_mut(phase.0 as usize).and_then(|p| p.get_mut(word)) {
                Some(w) => w as *mut u64,
                None => return Err(()),
            }
        }
    } else {
        let set = abi_bitmap(&CgroupKey { cgroup_id: place.cgroup_id, abi, phase })?;
        // SAFETY: as above, inside one bitmap.
        unsafe {
            match (*set).bits.get_mut(word) {
                Some(w) => w as *mut u64,
                None => return Err(()),
            }
        }
    };
    // SAFETY: `bits` points into a map value shared by all CPUs, which is
    // only ever read volatile or changed with an atomic OR. Read first: once
    // the bit is set there is no write at all, so the cache line stays
    // shared between CPUs.
    let seen = unsafe { core::ptr::read_volatile(bits) } & bit != 0;
    if seen {
        return Ok(());
    }
    // SAFETY: as above.
    let before = unsafe { atomic::fetch_or(bits, bit) };
    if before & bit == 0 {
        // The first time anywhere: tell userspace.
        emit(Event {
            kind: EventKind::SYSCALL,
            phase,
            abi,
            nr: nr as u32,
            cgroup_id: place.cgroup_id,
            tgid: tgid(),
            slot: place.slot,
        });
    }
    Ok(())
}

/// Splits the x32 marker off a syscall number; other calls keep the task's
/// ABI. Only x86_64 has such a bit.
#[inline(always)]
pub fn split_x32(id: u64, task_abi: Abi) -> (Abi, u64) {
    #[cfg(bpf_target_arch = "x86_64")]
    {
        use recorder_common::X32_SYSCALL_BIT;
        // -1 (no syscall, e.g. a ptrace-cancelled one) has every bit set and
        // must stay out of range rather than look like x32.
        if id & X32_SYSCALL_BIT != 0 && id < (X32_SYSCALL_BIT << 1) {
            return (Abi::X32, id & !X32_SYSCALL_BIT);
        }
    }
    (task_abi, id)
}

/// The compat or x32 bitmap for `key`, made on first use.
#[inline(always)]
fn abi_bitmap(key: &CgroupKey) -> Result<*mut Bitmap, ()> {
    if let Some(set) = ABI_BITS.get_ptr_mut(key) {
        return Ok(set);
    }
    // 128 bytes: fits the 512-byte stack.
    let zero = Bitmap::zeroed();
    match ABI_BITS.insert(key, zero, BPF_NOEXIST.into()) {
        // -EEXIST: another CPU inserted it first, which is fine.
        Ok(()) | Err(-17) => {}
        Err(_) => {
            bump(stat::ABI_FULL);
            return Err(());
        }
    }
    ABI_BITS.get_ptr_mut(key).ok_or(())
}
