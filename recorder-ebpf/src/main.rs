//! BPF side of `recorder`: maps, load-time globals, and one module per hook.
//!
//! Every recorded syscall lands in `SYSCALLS`, a per-CPU hash keyed by
//! (cgroup id, arch). Userspace reads that map as the source of truth; the ring
//! buffer only carries first-seen observations and lifecycle events.
#![no_std]
#![no_main]
// Atomic add and or on shared map values (see `atomic`).
#![feature(core_intrinsics)]
#![expect(internal_features, reason = "the BPF target has no other way to emit atomic read-modify-write")]

mod atomic;
mod boundary;
mod lifecycle;
mod sys_enter;

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, pt_regs},
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    macros::map,
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use recorder_common::{
    BoundaryState, CgroupKey, Event, MAX_BOUNDARY_CGROUPS, MAX_CGROUP_KEYS, MAX_JOINERS, RING_BUF_BYTES, SyscallSet,
    TaskCache, stat,
};

/// Per-(cgroup, arch) syscall bitmap and counts. Not preallocated: a recording
/// usually touches a handful of cgroups, and each value is 4 KiB per CPU.
#[map(name = "SYSCALLS")]
static SYSCALLS: PerCpuHashMap<CgroupKey, SyscallSet> =
    PerCpuHashMap::with_max_entries(MAX_CGROUP_KEYS, BPF_F_NO_PREALLOC);

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
static BOUNDARY: HashMap<u64, BoundaryState> = HashMap::with_max_entries(MAX_BOUNDARY_CGROUPS, 0);

/// Processes that joined a running container with `setns` (keyed by tgid),
/// with their own boundary state (`phase`, `filter_tid`).
#[map(name = "JOINERS")]
static JOINERS: HashMap<u32, BoundaryState> = HashMap::with_max_entries(MAX_JOINERS, 0);

/// See `recorder_common::TaskCache`.
#[map(name = "TASK_CACHE")]
static TASK_CACHE: PerCpuArray<TaskCache> = PerCpuArray::with_max_entries(1, 0);

/// Bumped by every fork and cgroup migration: cached classifications made
/// before it are stale (a task may have moved; a new task may reuse a freed
/// task_struct's address).
#[map(name = "GENERATION")]
static GENERATION: Array<u64> = Array::with_max_entries(1, 0);

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

/// Syscall numbers of the host ABI that the boundary watches for, set by
/// the loader from its syscall tables (no number is written into this crate).
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

/// Reads a loader-set global.
#[inline(always)]
fn global<T: Copy>(value: &T) -> T {
    // SAFETY: the globals are plain integers written once by the loader before
    // the program is loaded; volatile reads stop the compiler from folding the
    // initialisers.
    unsafe { core::ptr::read_volatile(value) }
}

/// Where the current task stands: `None` outside the recorded subtree, else
/// its own cgroup id and whether that is the target itself. Served from the
/// per-CPU task cache when the same task calls again; otherwise two helper
/// calls decide it.
///
/// `task` identifies the calling task without a helper call: sys_enter's
/// first argument is `task_pt_regs(current)`, the user register frame at the
/// top of the task's own kernel stack, so it differs between live tasks. A
/// new task may get a dead one's stack, but it is made by a fork, and every
/// fork bumps the generation.
#[inline(always)]
fn classify(task: u64) -> Option<(u64, bool)> {
    let generation = match GENERATION.get_ptr(0) {
        // SAFETY: a valid, aligned array value that other CPUs only change
        // with atomic adds; a volatile read sees some whole value, which is
        // all the cache needs.
        Some(generation) => unsafe { core::ptr::read_volatile(generation) },
        None => 0,
    };
    let cache = TASK_CACHE.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot of a per-CPU array; not preempted meanwhile.
    let cache = unsafe { &mut *cache };
    if cache.task == task && cache.generation == generation {
        return (cache.cgroup_id != 0).then_some((cache.cgroup_id, cache.itself != 0));
    }
    let found = if in_target() {
        // SAFETY: the helper has no preconditions.
        Some((unsafe { bpf_get_current_cgroup_id() }, in_target_itself()))
    } else {
        None
    };
    *cache = TaskCache {
        task,
        generation,
        cgroup_id: found.map_or(0, |(id, _)| id),
        itself: found.map_or(0, |(_, itself)| u64::from(itself)),
    };
    found
}

/// Invalidates every CPU's task cache.
#[inline(always)]
fn bump_generation() {
    if let Some(generation) = GENERATION.get_ptr_mut(0) {
        // SAFETY: a valid, aligned array value shared by all CPUs; it is only
        // ever accessed atomically or by volatile reads (`classify`).
        unsafe { atomic::add(generation, 1) };
    }
}

/// Is the current task inside the recorded subtree?
///
/// `bpf_get_current_ancestor_cgroup_id` walks `task->cgroups->dfl_cgrp` up to
/// `level` (kernel/bpf/helpers.c), so tasks in child cgroups of the target
/// match too. It returns 0 when the task sits above `level`; 0 is never a
/// valid target, so that is a miss.
#[inline(always)]
fn in_target() -> bool {
    let (target, level) = (global(&TARGET_CGROUP), global(&TARGET_LEVEL));
    // SAFETY: the helper takes a level by value and has no preconditions.
    let ancestor = unsafe { aya_ebpf::helpers::bpf_get_current_ancestor_cgroup_id(level as i32) };
    ancestor == target
}

/// Is the current task in the target cgroup itself (not a descendant)?
/// There is no ancestor one level below the target exactly when the task's
/// own cgroup is the target; only called after `in_target()` matched.
#[inline(always)]
fn in_target_itself() -> bool {
    let level = global(&TARGET_LEVEL);
    // SAFETY: the helper takes a level by value and has no preconditions.
    unsafe { aya_ebpf::helpers::bpf_get_current_ancestor_cgroup_id(level as i32 + 1) == 0 }
}

/// The target's id, for events from the fast path.
#[inline(always)]
fn target_cgroup() -> u64 {
    global(&TARGET_CGROUP)
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

/// Thread group id (the process id) of the current task.
#[inline(always)]
fn tgid() -> u32 {
    (bpf_get_current_pid_tgid() >> 32) as u32
}

/// Syscall argument `n` (0-based) from the `struct pt_regs *` that
/// `sys_enter` gets, read with the layout of aya-ebpf's per-architecture
/// bindings (the registers libbpf's `PT_REGS_PARM*` name). The pointer is a
/// kernel address, not the program's context, so the field is copied with
/// `bpf_probe_read_kernel` rather than dereferenced.
#[inline(always)]
fn syscall_arg(regs: *const pt_regs, n: usize) -> Option<u64> {
    #[cfg(bpf_target_arch = "x86_64")]
    // SAFETY: only computes field addresses (no read happens here).
    let field = unsafe {
        match n {
            0 => core::ptr::addr_of!((*regs).rdi),
            1 => core::ptr::addr_of!((*regs).rsi),
            2 => core::ptr::addr_of!((*regs).rdx),
            _ => return None,
        }
    };
    #[cfg(bpf_target_arch = "aarch64")]
    // SAFETY: as above.
    let field = unsafe {
        match n {
            0..=2 => core::ptr::addr_of!((*regs).regs[n]),
            _ => return None,
        }
    };
    #[cfg(bpf_target_arch = "riscv64")]
    // SAFETY: as above.
    let field = unsafe {
        match n {
            0 => core::ptr::addr_of!((*regs).a0),
            1 => core::ptr::addr_of!((*regs).a1),
            2 => core::ptr::addr_of!((*regs).a2),
            _ => return None,
        }
    };
    // SAFETY: bpf_probe_read_kernel copes with any address; `regs` is the
    // kernel's pt_regs for this syscall.
    unsafe { bpf_probe_read_kernel(field) }.ok()
}

/// Sends one event; counts it when the ring buffer is full.
#[inline(always)]
fn emit(event: Event) {
    match EVENTS.reserve::<Event>(0) {
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
