//! The runtime boundary: which syscalls of a container's cgroup belong to
//! the runtime's setup and which to the workload (see
//! `recorder_common::phase`). Only active in boundary mode, and only on the
//! descendant path (containers under a recorded parent cgroup).
//!
//! The state lives in a regular (not per-CPU) hash, because a phase change
//! on one CPU must be seen by all. Writes are plain stores: the only race is
//! two threads of one container crossing the same boundary at once, and both
//! write the same value.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    programs::RawTracePointContext,
};
use recorder_common::{BoundaryState, event_kind, phase};

use crate::{
    ARG0_OFFSET, ARG1_OFFSET, ARG2_OFFSET, BOUNDARY, BOUNDARY_MODE, JOINERS, NR_CHROOT, NR_PIVOT_ROOT,
    NR_PRCTL, NR_SECCOMP, NR_SETNS, emit, global, sys_enter::tgid,
};

/// `SECCOMP_SET_MODE_FILTER` (include/uapi/linux/seccomp.h).
const SECCOMP_SET_MODE_FILTER: u64 = 1;
/// `PR_SET_SECCOMP` (include/uapi/linux/prctl.h).
const PR_SET_SECCOMP: u64 = 22;
/// `SECCOMP_MODE_FILTER`.
const SECCOMP_MODE_FILTER: u64 = 2;

/// The phase syscall `nr`, made now by the current thread in `cgroup_id`,
/// belongs to; advances the cgroup's state on boundary events.
#[inline(always)]
pub fn phase_of(ctx: &RawTracePointContext, cgroup_id: u64, nr: u64) -> u32 {
    if global(&BOUNDARY_MODE) == 0 {
        return phase::RUN;
    }
    let state = match BOUNDARY.get_ptr_mut(&cgroup_id) {
        Some(state) => state,
        None => {
            // First syscall of a new cgroup under the parent: a container
            // being set up.
            let fresh = BoundaryState { phase: phase::SETUP, ..BoundaryState::default() };
            if BOUNDARY.insert(&cgroup_id, &fresh, 0).is_err() {
                return phase::RUN;
            }
            match BOUNDARY.get_ptr_mut(&cgroup_id) {
                Some(state) => state,
                None => return phase::RUN,
            }
        }
    };
    // SAFETY: a valid map value pointer for this key; see the module comment
    // on concurrent writes.
    let state = unsafe { &mut *state };
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    let nr = nr as u32;
    if state.phase != phase::RUN {
        return advance(ctx, state, tid, nr);
    }
    // A running container. A process joining it from outside (`runc exec`
    // and friends) calls setns: from then until its exec it is setup again.
    if nr == global(&NR_SETNS) {
        let joiner = BoundaryState { phase: phase::SETUP, ..BoundaryState::default() };
        if JOINERS.insert(&tgid, &joiner, BPF_NOEXIST.into()).is_ok() {
            state.joiners = state.joiners.saturating_add(1);
        }
        return phase::SETUP;
    }
    if state.joiners == 0 {
        return phase::RUN;
    }
    match JOINERS.get_ptr_mut(&tgid) {
        // SAFETY: a valid map value pointer; only this process writes it.
        Some(joiner) => advance(ctx, unsafe { &mut *joiner }, tid, nr),
        None => phase::RUN,
    }
}

/// Setup until the filter goes on or the root is switched; then the
/// filter-installing thread's calls are `FILTERED` until exec.
#[inline(always)]
fn advance(ctx: &RawTracePointContext, state: &mut BoundaryState, tid: u32, nr: u32) -> u32 {
    match state.phase {
        phase::SETUP => {
            if nr == global(&NR_PIVOT_ROOT) || nr == global(&NR_CHROOT) {
                state.rooted = 1;
            } else if installs_filter(ctx, nr) {
                // The seccomp call itself is setup; what this thread does
                // after it runs under the container's filter.
                state.filter_tid = tid;
                state.phase = phase::FILTERED;
            }
            phase::SETUP
        }
        // Other runtime threads are not under the filter (runc installs it
        // without TSYNC) and end at exec: their calls are setup.
        phase::FILTERED if tid == state.filter_tid => phase::FILTERED,
        phase::FILTERED => phase::SETUP,
        _ => phase::RUN,
    }
}

/// Does this call install a seccomp filter? `seccomp(SECCOMP_SET_MODE_FILTER,
/// flags, prog)` (crun) or `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)`
/// (runc). A NULL `prog` is a probe, not an install: runc asks the kernel
/// which filter flags it supports with `seccomp(SET_MODE_FILTER, flag, NULL)`
/// early in its setup (libcontainer/seccomp/patchbpf).
#[inline(always)]
fn installs_filter(ctx: &RawTracePointContext, nr: u32) -> bool {
    let installs = if nr == global(&NR_SECCOMP) {
        arg(ctx, global(&ARG0_OFFSET)) == Some(SECCOMP_SET_MODE_FILTER)
    } else if nr == global(&NR_PRCTL) {
        arg(ctx, global(&ARG0_OFFSET)) == Some(PR_SET_SECCOMP)
            && arg(ctx, global(&ARG1_OFFSET)) == Some(SECCOMP_MODE_FILTER)
    } else {
        return false;
    };
    installs && arg(ctx, global(&ARG2_OFFSET)).is_some_and(|prog| prog != 0)
}

/// A syscall argument from the `struct pt_regs *` the raw tracepoint gets
/// as its first argument, at a loader-supplied offset.
#[inline(always)]
fn arg(ctx: &RawTracePointContext, offset: u32) -> Option<u64> {
    let regs: u64 = ctx.arg(0);
    let field = (regs + u64::from(offset)) as *const u64;
    // SAFETY: bpf_probe_read_kernel copes with any address; `regs` is the
    // kernel's pt_regs for this syscall and the offset is within it.
    unsafe { bpf_probe_read_kernel(field) }.ok()
}

/// Called on a successful exec in `cgroup_id`: after the filter went on, or
/// after the root was switched, the exec'd program is the workload.
#[inline(always)]
pub fn on_exec(cgroup_id: u64) {
    if global(&BOUNDARY_MODE) == 0 {
        return;
    }
    let Some(state) = BOUNDARY.get_ptr_mut(&cgroup_id) else { return };
    // SAFETY: as in `phase_of`.
    let state = unsafe { &mut *state };
    if state.phase == phase::RUN {
        // A joining process that execs is part of the workload from now on
        // (whether or not its runtime installed a filter first).
        let tgid = tgid();
        if state.joiners > 0 && JOINERS.remove(&tgid).is_ok() {
            state.joiners -= 1;
        }
        return;
    }
    let crosses = match state.phase {
        phase::FILTERED => true,
        phase::SETUP => state.rooted != 0,
        _ => false,
    };
    if crosses {
        state.phase = phase::RUN;
        emit(recorder_common::Event {
            kind: event_kind::BOUNDARY,
            phase: phase::RUN as u16,
            arch: 0,
            cgroup_id,
            nr: 0,
            tgid: tgid(),
        });
    }
}
