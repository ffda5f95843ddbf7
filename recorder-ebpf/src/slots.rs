//! Which cgroup slot the calling task records into, decided once per task
//! and cached per CPU.
//!
//! A task's classification (in the target subtree or not, its cgroup and
//! slot, its ABI) is made on a miss of the per-CPU task cache: two helper
//! calls decide whether the task is in the subtree and which cgroup it is
//! in, a hash lookup finds the cgroup's slot, or a free one is taken from
//! `FREE_SLOTS` on the cgroup's first syscall. A task making syscalls back
//! to back then pays one per-CPU array lookup and a compare.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_task, bpf_probe_read_kernel,
    },
};
use recorder_common::{Abi, Event, EventKind, NO_SLOT, Phase, TaskCache, stat};

use crate::{
    COMPAT_STATUS_BIT, COMPAT_STATUS_OFFSET, FREE_SLOTS, GENERATION, SLOTS, TARGET_CGROUP, TARGET_LEVEL, TASK_CACHE,
    atomic, boundary, bump, emit, global, tgid,
};

/// Where the current task records: its cgroup, slot and ABI.
#[derive(Clone, Copy)]
pub struct Place {
    pub cgroup_id: u64,
    pub slot: u32,
    pub abi: Abi,
}

/// The current task's place, or `None` outside the recorded subtree (or when
/// no slot was free). Served from the per-CPU task cache when the same task
/// calls again.
///
/// `task` identifies the calling task without a helper call: sys_enter's
/// first argument is `task_pt_regs(current)`, the user register frame at the
/// top of the task's own kernel stack, so it differs between live tasks. A
/// new task may get a dead one's stack, but it is made by a fork, and every
/// fork bumps the generation.
#[inline(always)]
pub fn classify(task: u64) -> Option<Place> {
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
        return (cache.slot != NO_SLOT).then_some(Place {
            cgroup_id: cache.cgroup_id,
            slot: cache.slot,
            abi: cache.abi,
        });
    }
    let place = if in_target() {
        // SAFETY: the helper has no preconditions.
        let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
        slot_of(cgroup_id).map(|slot| Place { cgroup_id, slot, abi: current_abi() })
    } else {
        None
    };
    *cache = TaskCache {
        task,
        generation,
        cgroup_id: place.map_or(0, |p| p.cgroup_id),
        slot: place.map_or(NO_SLOT, |p| p.slot),
        abi: place.map_or(Abi::NATIVE, |p| p.abi),
    };
    place
}

/// Invalidates every CPU's task cache.
#[inline(always)]
pub fn bump_generation() {
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
pub fn in_target() -> bool {
    let (target, level) = (global(&TARGET_CGROUP), global(&TARGET_LEVEL));
    // SAFETY: the helper takes a level by value and has no preconditions.
    let ancestor = unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) };
    ancestor == target
}

/// The slot of `cgroup_id`, taking a free one on its first syscall.
#[inline(always)]
fn slot_of(cgroup_id: u64) -> Option<u32> {
    if let Some(slot) = SLOTS.get_ptr(cgroup_id) {
        // SAFETY: a valid map value; slots are written once, at insert.
        return Some(unsafe { *slot });
    }
    let Ok(Some(slot)) = FREE_SLOTS.pop() else {
        bump(stat::SLOTS_FULL);
        return None;
    };
    // The slot is ours alone until it is published in SLOTS.
    boundary::init_slot(slot);
    match SLOTS.insert(cgroup_id, slot, BPF_NOEXIST.into()) {
        Ok(()) => {
            emit(Event {
                kind: EventKind::CGROUP,
                phase: Phase::RUN,
                abi: Abi::NATIVE,
                nr: 0,
                cgroup_id,
                tgid: tgid(),
                slot,
            });
            Some(slot)
        }
        Err(_) => {
            // Another CPU took a slot for this cgroup first (or the map is
            // full): give ours back and use theirs.
            boundary::clear_slot(slot);
            let _ = FREE_SLOTS.push(slot, 0);
            match SLOTS.get_ptr(cgroup_id) {
                // SAFETY: as above.
                Some(theirs) => Some(unsafe { *theirs }),
                None => {
                    bump(stat::SLOTS_FULL);
                    None
                }
            }
        }
    }
}

/// `Abi::COMPAT` for a 32-bit task (ia32 on x86_64: `TS_COMPAT` is set in
/// `task->thread_info.status` while it is in a syscall), else native.
/// Read on a cache miss only; every exec bumps the generation, so a task
/// that changes ABI by exec is classified again.
#[inline(always)]
fn current_abi() -> Abi {
    let offset = global(&COMPAT_STATUS_OFFSET);
    if offset == u32::MAX {
        return Abi::NATIVE;
    }
    // SAFETY: the helper has no preconditions.
    let task = unsafe { bpf_get_current_task() };
    let status = (task + u64::from(offset)) as *const u32;
    // SAFETY: bpf_probe_read_kernel copes with any address; the offset comes
    // from the running kernel's BTF for `struct task_struct`.
    match unsafe { bpf_probe_read_kernel(status) } {
        Ok(status) if status & global(&COMPAT_STATUS_BIT) != 0 => Abi::COMPAT,
        _ => Abi::NATIVE,
    }
}
