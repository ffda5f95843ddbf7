//! Process lifecycle hooks: they count processes for the live status and tell
//! userspace when something new starts. They fire per fork/exec, not per
//! syscall, so their cost does not matter.

use aya_ebpf::{helpers::bpf_get_current_cgroup_id, macros::raw_tracepoint, programs::RawTracePointContext};
use recorder_common::{Abi, Event, EventKind, NO_SLOT, Phase, stat};

use crate::{
    BY_EXE_MODE, boundary, bump, emit, exe, global,
    slots::{bump_generation, classify, in_target},
    tgid,
};

/// `CLONE_THREAD` from include/uapi/linux/sched.h.
const CLONE_THREAD: u64 = 0x0001_0000;

/// `task:task_newtask`, `TP_PROTO(struct task_struct *task, u64 clone_flags)`
/// (include/trace/events/task.h). Runs in the parent, whose cgroup the child
/// inherits, so the parent's cgroup decides.
#[raw_tracepoint(tracepoint = "task_newtask")]
pub fn task_newtask(ctx: RawTracePointContext) -> i32 {
    // A new task may reuse a freed task_struct's address: drop cached
    // classifications (forks are rare next to syscalls).
    bump_generation();
    let clone_flags: u64 = ctx.arg(1);
    if clone_flags & CLONE_THREAD == 0 && in_target() {
        bump(stat::FORKS);
        lifecycle_event(EventKind::FORK, NO_SLOT);
        if global(&BY_EXE_MODE) != 0 {
            exe::on_fork(ctx.arg(0));
        }
    }
    0
}

/// `cgroup:cgroup_attach_task`, fired after a task (or thread group) moved
/// to another cgroup (kernel/cgroup/cgroup.c, after `cgroup_migrate`): the
/// moved tasks' cached classification is stale.
#[raw_tracepoint(tracepoint = "cgroup_attach_task")]
pub fn cgroup_attach_task(_ctx: RawTracePointContext) -> i32 {
    bump_generation();
    0
}

/// `sched:sched_process_exec`, fired after a successful exec in the new image,
/// `TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)`.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> i32 {
    // The new image may run another ABI (a 32-bit program): classify again.
    bump_generation();
    if in_target() {
        bump(stat::EXECS);
        lifecycle_event(EventKind::EXEC, NO_SLOT);
        if global(&BY_EXE_MODE) != 0 {
            exe::on_exec(ctx.arg(2));
        }
        // The task's slot (taken now if this is its cgroup's first event).
        // The cache key is any per-task value: exec runs on the task itself.
        // SAFETY: the helper has no preconditions.
        let task = unsafe { aya_ebpf::helpers::bpf_get_current_task() };
        if let Some(place) = classify(task) {
            boundary::on_exec(place.slot, place.cgroup_id);
        }
    }
    0
}

#[inline(always)]
fn lifecycle_event(kind: EventKind, slot: u32) {
    emit(Event {
        kind,
        phase: Phase::RUN,
        abi: Abi::NATIVE,
        nr: 0,
        // SAFETY: the helper has no preconditions.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        tgid: tgid(),
        slot,
    });
}
