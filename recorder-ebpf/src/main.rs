//! BPF side of `recorder`: maps, load-time globals, and one module per hook.
//!
//! Every recorded syscall lands in `SYSCALLS`, a per-CPU hash keyed by
//! (cgroup id, arch). Userspace reads that map as the source of truth; the ring
//! buffer only carries first-seen observations and lifecycle events.
#![no_std]
#![no_main]

mod boundary;
mod lifecycle;
mod sys_enter;

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    macros::map,
    maps::{HashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use recorder_common::{BoundaryState, CgroupKey, MAX_CGROUPS, RING_BUF_BYTES, SyscallSet, stat};

/// Per-(cgroup, arch) syscall bitmap and counts. Not preallocated: a recording
/// usually touches a handful of cgroups, and each value is 4 KiB per CPU.
#[map(name = "SYSCALLS")]
static SYSCALLS: PerCpuHashMap<CgroupKey, SyscallSet> =
    PerCpuHashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

/// First-seen observations and lifecycle events for userspace.
#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BUF_BYTES, 0);

/// Counters, see `recorder_common::stat`.
#[map(name = "STATS")]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(stat::COUNT, 0);

/// The target cgroup's own native syscalls, on a fast path: a per-CPU array
/// lookup is inlined by the verifier (Linux 6.10+), a hash lookup is not.
/// Descendant cgroups and other ABIs go through `SYSCALLS`.
#[map(name = "TARGET_SET")]
static TARGET_SET: PerCpuArray<SyscallSet> = PerCpuArray::with_max_entries(1, 0);

/// Per-cgroup runtime-boundary state (boundary mode), shared by all CPUs.
#[map(name = "BOUNDARY")]
static BOUNDARY: HashMap<u64, BoundaryState> = HashMap::with_max_entries(MAX_CGROUPS, 0);

/// Processes that joined a running container with `setns` (keyed by tgid),
/// with their own boundary state (`phase`, `filter_tid`).
#[map(name = "JOINERS")]
static JOINERS: HashMap<u32, BoundaryState> = HashMap::with_max_entries(1024, 0);

/// A zeroed `SyscallSet` to insert from: 4 KiB does not fit the 512-byte stack.
#[map(name = "ZERO")]
static ZERO: PerCpuArray<SyscallSet> = PerCpuArray::with_max_entries(1, 0);

/// cgroup v2 id of the recorded subtree, set by the loader.
#[unsafe(no_mangle)]
static TARGET_CGROUP: u64 = 0;

/// Level of `TARGET_CGROUP` (the root cgroup is level 0), set by the loader.
#[unsafe(no_mangle)]
static TARGET_LEVEL: u32 = 0;

/// Non-zero: descendant cgroups are containers whose runtime setup is split
/// off (see `boundary`).
#[unsafe(no_mangle)]
static BOUNDARY_MODE: u32 = 0;

/// Syscall numbers and `struct pt_regs` argument offsets of the host ABI,
/// set by the loader (the BPF object is the same on every architecture).
#[unsafe(no_mangle)]
static NR_SECCOMP: u32 = u32::MAX;
#[unsafe(no_mangle)]
static NR_PRCTL: u32 = u32::MAX;
#[unsafe(no_mangle)]
static NR_PIVOT_ROOT: u32 = u32::MAX;
#[unsafe(no_mangle)]
static NR_CHROOT: u32 = u32::MAX;
#[unsafe(no_mangle)]
static NR_SETNS: u32 = u32::MAX;
#[unsafe(no_mangle)]
static ARG0_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static ARG1_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static ARG2_OFFSET: u32 = 0;

/// Reads a loader-set global.
#[inline(always)]
fn global<T: Copy>(value: &T) -> T {
    // SAFETY: the globals are plain integers written once by the loader before
    // the program is loaded; volatile reads stop the compiler from folding the
    // initialisers.
    unsafe { core::ptr::read_volatile(value) }
}

/// Is the current task inside the recorded subtree?
///
/// `bpf_get_current_ancestor_cgroup_id` walks `task->cgroups->dfl_cgrp` up to
/// `level` (kernel/bpf/helpers.c), so tasks in child cgroups of the target
/// match too. It returns 0 when the task sits above `level`; 0 is never a
/// valid target, so that is a miss.
#[inline(always)]
fn in_target() -> bool {
    // SAFETY: the globals are plain integers written once by the loader before
    // the program is loaded; volatile reads stop the compiler from folding the
    // zero initialisers.
    let (target, level) = unsafe {
        (core::ptr::read_volatile(&TARGET_CGROUP), core::ptr::read_volatile(&TARGET_LEVEL))
    };
    // SAFETY: the helper takes a level by value and has no preconditions.
    let ancestor =
        unsafe { aya_ebpf::helpers::bpf_get_current_ancestor_cgroup_id(level as i32) };
    ancestor == target
}

/// Is the current task in the target cgroup itself (not a descendant)?
/// There is no ancestor one level below the target exactly when the task's
/// own cgroup is the target; only called after `in_target()` matched.
#[inline(always)]
fn in_target_itself() -> bool {
    // SAFETY: as in `in_target`.
    let level = unsafe { core::ptr::read_volatile(&TARGET_LEVEL) };
    // SAFETY: the helper takes a level by value and has no preconditions.
    unsafe { aya_ebpf::helpers::bpf_get_current_ancestor_cgroup_id(level as i32 + 1) == 0 }
}

/// The target's id, for events from the fast path.
#[inline(always)]
fn target_cgroup() -> u64 {
    // SAFETY: as in `in_target`.
    unsafe { core::ptr::read_volatile(&TARGET_CGROUP) }
}

/// Adds one to a statistics slot on this CPU.
#[inline(always)]
fn bump(slot: u32) {
    if let Some(counter) = STATS.get_ptr_mut(slot) {
        // SAFETY: the pointer comes from a per-CPU array lookup, so it is valid
        // and only this CPU writes it while the program runs (no preemption).
        unsafe { *counter += 1 };
    }
}

/// Sends one event; counts it when the ring buffer is full.
#[inline(always)]
fn emit(event: recorder_common::Event) {
    match EVENTS.reserve::<recorder_common::Event>(0) {
        Some(mut entry) => {
            entry.write(event);
            entry.submit(0);
        }
        None => bump(stat::RINGBUF_DROPS),
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
