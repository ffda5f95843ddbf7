//! fexit on `__secure_computing` in learn mode, where the kernel allows
//! fexit: the filter's verdict itself. The function returns -1 when the
//! call is to be skipped (a filter's errno, trap or kill, or a tracer's
//! skip) and 0 when it runs, so only denied calls cost more than the
//! trampoline, and tasks without a filter never get here (the syscall entry
//! calls it only under SYSCALL_WORK_SECCOMP). The loader prefers this to
//! the `sys_exit` pairing and falls back to it when the program is refused
//! (this development machine refuses every fexit with EPERM).
//!
//! The syscall number is read from the task's saved registers, as
//! `sys_exit` does; `bpf_task_pt_regs` gives them (Linux 5.15+).

use aya_ebpf::{
    helpers::{bpf_get_current_task_btf, bpf_task_pt_regs},
    macros::fexit,
    programs::FExitContext,
};

use crate::{SECCOMP_RET_INDEX, global, slots, sys_exit::book_denial};

#[fexit(function = "__secure_computing")]
pub fn secure_computing_exit(ctx: FExitContext) -> i32 {
    match try_secure_computing_exit(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

#[inline(always)]
fn try_secure_computing_exit(ctx: &FExitContext) -> Result<(), ()> {
    // The return value follows the parameters; the index is a load-time
    // constant, so the verifier sees one in-bounds context read (the loader
    // set SECCOMP_RET_INDEX from the function's BTF).
    let ret: i32 = if global(&SECCOMP_RET_INDEX) == 0 { ctx.arg(0) } else { ctx.arg(1) };
    if ret != -1 {
        return Ok(());
    }
    // SAFETY: both helpers take no pointer from us but the current task,
    // which the kernel gives.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as u64;
    let place = slots::classify(regs).ok_or(())?;
    book_denial(regs, place)
}
