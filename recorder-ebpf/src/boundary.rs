//! The runtime boundary: which syscalls of a container's cgroup belong to
//! the runtime's setup and which to the workload (see
//! `recorder_common::Phase`). Only active in boundary mode, and only on the
//! descendant path (containers under a recorded parent cgroup).
//!
//! The state lives in a regular (not per-CPU) hash, because a phase change
//! on one CPU must be seen by all. Several CPUs can run threads of one
//! container at once, so the state is never borrowed as `&mut`: every field
//! is read and written through [`Shared`], with relaxed atomic loads, stores
//! and adds. Two threads of one container crossing the same boundary at the
//! same moment both store the same value, so that race is benign.

use core::mem::offset_of;

use aya_ebpf::{
    bindings::{BPF_NOEXIST, pt_regs},
    helpers::bpf_get_current_pid_tgid,
};
use recorder_common::{BoundaryState, Event, EventKind, Phase, slot_flags};

use crate::{
    BOUNDARY_MODE, JOINERS, NR_CHROOT, NR_PIVOT_ROOT, NR_PRCTL, NR_SECCOMP, NR_SETNS, SLOT_STATE, atomic, emit, global,
    syscall_arg, tgid,
};

/// `SECCOMP_SET_MODE_FILTER` (include/uapi/linux/seccomp.h).
const SECCOMP_SET_MODE_FILTER: u64 = 1;
/// `PR_SET_SECCOMP` (include/uapi/linux/prctl.h).
const PR_SET_SECCOMP: u64 = 22;
/// `SECCOMP_MODE_FILTER`.
const SECCOMP_MODE_FILTER: u64 = 2;

/// A `BoundaryState` inside a shared map value. It is never borrowed as
/// `&mut`: fields are read and written with volatile accesses (each a single
/// aligned 4-byte load or store, which the BPF ISA makes atomic), and the
/// joiner count with an atomic add.
#[derive(Clone, Copy)]
struct Shared(*mut BoundaryState);

impl Shared {
    /// The `u32` field at `offset`.
    #[inline(always)]
    fn at(self, offset: usize) -> *mut u32 {
        // SAFETY: pointer arithmetic only; `offset` is that of a field of
        // the value `self.0` points to, so the result stays inside it.
        unsafe { self.0.cast::<u8>().add(offset).cast::<u32>() }
    }
    #[inline(always)]
    fn load(self, offset: usize) -> u32 {
        // SAFETY: the pointer comes from a map lookup, so it is valid and
        // aligned while the program runs (map values are freed only after an
        // RCU grace period); other CPUs only store whole aligned u32s.
        unsafe { core::ptr::read_volatile(self.at(offset)) }
    }
    #[inline(always)]
    fn store(self, offset: usize, value: u32) {
        // SAFETY: as in `load`.
        unsafe { core::ptr::write_volatile(self.at(offset), value) }
    }
    fn phase(self) -> Phase {
        Phase(self.load(offset_of!(BoundaryState, phase)))
    }
    fn set_phase(self, phase: Phase) {
        self.store(offset_of!(BoundaryState, phase), phase.0);
    }
    fn filter_tid(self) -> u32 {
        self.load(offset_of!(BoundaryState, filter_tid))
    }
    fn set_filter_tid(self, tid: u32) {
        self.store(offset_of!(BoundaryState, filter_tid), tid);
    }
    fn flags(self) -> u32 {
        self.load(offset_of!(BoundaryState, flags))
    }
    fn set_flags(self, flags: u32) {
        self.store(offset_of!(BoundaryState, flags), flags);
    }
    fn rooted(self) -> bool {
        self.load(offset_of!(BoundaryState, rooted)) != 0
    }
    fn set_rooted(self) {
        self.store(offset_of!(BoundaryState, rooted), 1);
    }
    fn joiners(self) -> u64 {
        // SAFETY: as in `load`; the field is 8-byte aligned (asserted in
        // recorder-common) and only changed by atomic adds.
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*self.0).joiners)) }
    }
    /// Adds `delta` (wrapping: `u64::MAX` subtracts one).
    fn add_joiners(self, delta: u64) {
        // SAFETY: as in `joiners`.
        unsafe { atomic::add(core::ptr::addr_of_mut!((*self.0).joiners), delta) }
    }
}

/// The phase syscall `nr`, made now by the current thread in the cgroup of
/// `slot`, belongs to; advances the cgroup's state on boundary events.
/// `None`: the cgroup is ignored (its calls are dropped here).
#[inline(always)]
pub fn phase_of(regs: *const pt_regs, slot: u32, nr: u64) -> Option<Phase> {
    if global(&BOUNDARY_MODE) == 0 {
        return Some(Phase::RUN);
    }
    let state = Shared(SLOT_STATE.get_ptr_mut(slot)?);
    if state.flags() & slot_flags::IGNORED != 0 {
        return None;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    let nr = nr as u32;
    if state.phase() != Phase::RUN {
        return Some(advance(regs, state, tid, nr));
    }
    // A running container. A process joining it from outside (`runc exec`
    // and friends) calls setns: from then until its exec it is setup again.
    if nr == global(&NR_SETNS) {
        let joiner = BoundaryState { phase: Phase::SETUP, ..BoundaryState::default() };
        if JOINERS.insert(tgid, joiner, BPF_NOEXIST.into()).is_ok() {
            state.add_joiners(1);
            // Not atomic with userspace's IGNORED; userspace sets that
            // again on every poll, and a lost EXEC_SESSION is only a report.
            state.set_flags(state.flags() | slot_flags::EXEC_SESSION);
        }
        return Some(Phase::SETUP);
    }
    if state.joiners() == 0 {
        return Some(Phase::RUN);
    }
    Some(match JOINERS.get_ptr_mut(tgid) {
        Some(joiner) => advance(regs, Shared(joiner), tid, nr),
        None => Phase::RUN,
    })
}

/// The state a new cgroup's slot starts in: a container being set up (in
/// boundary mode). Written before the slot is published in `SLOTS`.
#[inline(always)]
pub fn init_slot(slot: u32) {
    if global(&BOUNDARY_MODE) == 0 {
        return;
    }
    if let Some(state) = SLOT_STATE.get_ptr_mut(slot) {
        Shared(state).set_phase(Phase::SETUP);
    }
}

/// Clears a slot's state before it goes back to the free queue unused.
#[inline(always)]
pub fn clear_slot(slot: u32) {
    if let Some(state) = SLOT_STATE.get_ptr_mut(slot) {
        Shared(state).set_phase(Phase::RUN);
    }
}

/// Setup until the filter goes on or the root is switched; then the
/// filter-installing thread's calls are `FILTERED` until exec.
#[inline(always)]
fn advance(regs: *const pt_regs, state: Shared, tid: u32, nr: u32) -> Phase {
    match state.phase() {
        Phase::SETUP => {
            if nr == global(&NR_PIVOT_ROOT) || nr == global(&NR_CHROOT) {
                state.set_rooted();
            } else if installs_filter(regs, nr) {
                // The seccomp call itself is setup; what this thread does
                // after it runs under the container's filter.
                state.set_filter_tid(tid);
                state.set_phase(Phase::FILTERED);
            }
            Phase::SETUP
        }
        // Other runtime threads are not under the filter (runc installs it
        // without TSYNC) and end at exec: their calls are setup.
        Phase::FILTERED if tid == state.filter_tid() => Phase::FILTERED,
        Phase::FILTERED => Phase::SETUP,
        _ => Phase::RUN,
    }
}

/// Does this call install a seccomp filter? `seccomp(SECCOMP_SET_MODE_FILTER,
/// flags, prog)` (crun) or `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)`
/// (runc). A NULL `prog` is a probe, not an install: runc asks the kernel
/// which filter flags it supports with `seccomp(SET_MODE_FILTER, flag, NULL)`
/// early in its setup (libcontainer/seccomp/patchbpf).
#[inline(always)]
fn installs_filter(regs: *const pt_regs, nr: u32) -> bool {
    let installs = if nr == global(&NR_SECCOMP) {
        syscall_arg(regs, 0) == Some(SECCOMP_SET_MODE_FILTER)
    } else if nr == global(&NR_PRCTL) {
        syscall_arg(regs, 0) == Some(PR_SET_SECCOMP) && syscall_arg(regs, 1) == Some(SECCOMP_MODE_FILTER)
    } else {
        return false;
    };
    installs && syscall_arg(regs, 2).is_some_and(|prog| prog != 0)
}

/// Called on a successful exec by a task recorded in `slot`: after the
/// filter went on, or after the root was switched, the exec'd program is
/// the workload.
#[inline(always)]
pub fn on_exec(slot: u32, cgroup_id: u64) {
    if global(&BOUNDARY_MODE) == 0 {
        return;
    }
    let Some(state) = SLOT_STATE.get_ptr_mut(slot).map(Shared) else { return };
    let phase = state.phase();
    if phase == Phase::RUN {
        // A joining process that execs is part of the workload from now on
        // (whether or not its runtime installed a filter first).
        if state.joiners() > 0 && JOINERS.remove(tgid()).is_ok() {
            state.add_joiners(u64::MAX); // wrapping: minus one
        }
        return;
    }
    let crosses = match phase {
        Phase::FILTERED => true,
        Phase::SETUP => state.rooted(),
        _ => false,
    };
    if crosses {
        state.set_phase(Phase::RUN);
        emit(Event {
            kind: EventKind::BOUNDARY,
            phase: Phase::RUN,
            abi: recorder_common::Abi::NATIVE,
            nr: 0,
            cgroup_id,
            tgid: tgid(),
            slot,
        });
    }
}
