//! BPF side of `recorder`: maps, load-time globals, and one module per hook.
//!
//! Every recorded cgroup gets a slot on its first syscall (`slots`). A
//! native-ABI syscall sets one bit in the slot's bitmap for its phase
//! (`BITS`); other ABIs go to `ABI_BITS`. The maps are the source of truth;
//! the ring buffer only carries first-seen observations and lifecycle
//! events. Hook files (`sys_enter`, `lifecycle`) import from here, never
//! from each other.
#![no_std]
#![no_main]
// Atomic add and or on shared map values (see `atomic`).
#![feature(core_intrinsics)]
#![expect(internal_features, reason = "the BPF target has no other way to emit atomic read-modify-write")]

mod args;
mod atomic;
mod boundary;
mod exe;
mod lifecycle;
mod seccomp_exit;
mod slots;
mod sys_enter;
mod sys_exit;

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, pt_regs},
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, Queue, RingBuf},
};
use recorder_common::{
    ArgKey, ArgOverflowKey, Bitmap, BoundaryState, CgroupKey, DenialKey, Event, ExeKey, ExePath, RING_BUF_BYTES,
    SlotBits, TaskCache, capacity, stat,
};

/// cgroup id -> slot, for every cgroup that made a syscall. The slot maps
/// below are resized to the same capacity by the loader.
#[map(name = "SLOTS")]
static SLOTS: HashMap<u64, u32> = HashMap::with_max_entries(capacity::RECORD_SLOTS, 0);

/// Slots not in use; the loader fills it, the daemon and `record` give a
/// slot back once its cgroup is gone and its set is saved.
#[map(name = "FREE_SLOTS")]
static FREE_SLOTS: Queue<u32> = Queue::with_max_entries(capacity::RECORD_SLOTS, 0);

/// Slot -> the cgroup's native-ABI bitmaps, one per phase. Shared by all
/// CPUs: bits are only set, atomically, and only when clear.
#[map(name = "BITS")]
static BITS: Array<SlotBits> = Array::with_max_entries(capacity::RECORD_SLOTS, 0);

/// Slot -> the cgroup's runtime-boundary state and flags.
#[map(name = "SLOT_STATE")]
static SLOT_STATE: Array<BoundaryState> = Array::with_max_entries(capacity::RECORD_SLOTS, 0);

/// (cgroup, ABI, phase) -> bitmap, for compat (ia32) and x32 calls.
#[map(name = "ABI_BITS")]
static ABI_BITS: HashMap<CgroupKey, Bitmap> = HashMap::with_max_entries(capacity::ABI_KEYS, BPF_F_NO_PREALLOC);

/// First-seen observations and lifecycle events for userspace.
#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BUF_BYTES, 0);

/// Counters, see `recorder_common::stat`.
#[map(name = "STATS")]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(stat::COUNT, 0);

/// Processes that joined a running container with `setns` (keyed by tgid),
/// with their own boundary state (`phase`, `filter_tid`).
#[map(name = "JOINERS")]
static JOINERS: HashMap<u32, BoundaryState> = HashMap::with_max_entries(capacity::JOINERS, 0);

/// Learn mode: tid -> 1 while the task is inside a syscall whose entry was
/// seen, 0 once it left it. An exit when the task is at 0 had no entry: a
/// seccomp filter refused the call before `sys_enter` ran.
#[map(name = "INFLIGHT")]
static INFLIGHT: LruHashMap<u32, u32> = LruHashMap::with_max_entries(capacity::INFLIGHT, 0);

/// Learn mode: how often each (cgroup, ABI, call, process name) was denied.
#[map(name = "DENIALS")]
static DENIALS: HashMap<DenialKey, u64> = HashMap::with_max_entries(capacity::DENIAL_KEYS, 0);

/// `--args`: argument values per (cgroup, syscall) (see `args`).
#[map(name = "ARG_VALUES")]
static ARG_VALUES: HashMap<ArgKey, u8> = HashMap::with_max_entries(capacity::ARG_KEYS, BPF_F_NO_PREALLOC);

/// `--args`: (cgroup, syscall) pairs whose values did not fit.
#[map(name = "ARG_OVERFLOW")]
static ARG_OVERFLOW: HashMap<ArgOverflowKey, u8> = HashMap::with_max_entries(capacity::ARG_OVERFLOWS, 0);

/// `--by-exe`: process (tgid) -> executable id (see `exe`).
#[map(name = "TASK_EXE")]
static TASK_EXE: LruHashMap<u32, u64> = LruHashMap::with_max_entries(capacity::TASK_EXES, 0);

/// `--by-exe`: executable id -> the exec'd path.
#[map(name = "EXE_PATHS")]
static EXE_PATHS: HashMap<u64, ExePath> = HashMap::with_max_entries(capacity::EXE_PATHS, BPF_F_NO_PREALLOC);

/// `--by-exe`: (cgroup, executable, ABI) -> the calls it made.
#[map(name = "EXE_BITS")]
static EXE_BITS: HashMap<ExeKey, Bitmap> = HashMap::with_max_entries(capacity::EXE_KEYS, BPF_F_NO_PREALLOC);

/// `--by-exe`: room to read a path into (too big for the stack).
#[map(name = "EXE_SCRATCH")]
static EXE_SCRATCH: PerCpuArray<ExePath> = PerCpuArray::with_max_entries(1, 0);

/// See `recorder_common::TaskCache`.
#[map(name = "TASK_CACHE")]
static TASK_CACHE: PerCpuArray<TaskCache> = PerCpuArray::with_max_entries(1, 0);

/// Bumped by every fork, exec and cgroup migration: cached classifications
/// made before it are stale (a task may have moved or changed ABI; a new
/// task may reuse a freed task_struct's address).
#[map(name = "GENERATION")]
static GENERATION: Array<u64> = Array::with_max_entries(1, 0);

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

/// Where `thread_info.status` is in `struct task_struct`, from the kernel's
/// BTF (`u32::MAX`: compat tasks are not told apart on this kernel), and its
/// `TS_COMPAT` bit. Set by the loader: aya's Rust side has no CO-RE.
#[unsafe(no_mangle)]
static COMPAT_STATUS_OFFSET: u32 = u32::MAX;
#[unsafe(no_mangle)]
static COMPAT_STATUS_BIT: u32 = 0;

/// Non-zero: keep argument values (see `args`).
#[unsafe(no_mangle)]
static ARGS_MODE: u32 = 0;
#[unsafe(no_mangle)]
static NR_SOCKET: u32 = u32::MAX;
#[unsafe(no_mangle)]
static NR_CLONE: u32 = u32::MAX;
#[unsafe(no_mangle)]
static NR_PERSONALITY: u32 = u32::MAX;
#[unsafe(no_mangle)]
static NR_IOCTL: u32 = u32::MAX;
#[unsafe(no_mangle)]
static NR_FCNTL: u32 = u32::MAX;
#[unsafe(no_mangle)]
static NR_MPROTECT: u32 = u32::MAX;
#[unsafe(no_mangle)]
static NR_MMAP: u32 = u32::MAX;

/// Non-zero: attribute calls to executables (see `exe`), with the offsets
/// of `linux_binprm.filename` and `task_struct.tgid` from BTF.
#[unsafe(no_mangle)]
static BY_EXE_MODE: u32 = 0;
#[unsafe(no_mangle)]
static BPRM_FILENAME_OFFSET: u32 = u32::MAX;
#[unsafe(no_mangle)]
static TASK_TGID_OFFSET: u32 = u32::MAX;

/// How denied calls are seen (`recorder_common::learn_mode`): by pairing
/// syscall entries and exits (see `sys_exit`) or by fexit on
/// `__secure_computing` (see `seccomp_exit`).
#[unsafe(no_mangle)]
static LEARN_MODE: u32 = 0;

/// `__secure_computing`'s return value's index in the fexit context.
#[unsafe(no_mangle)]
static SECCOMP_RET_INDEX: u32 = 1;

/// Where the syscall number is in the kernel's `struct pt_regs` (`orig_ax`
/// on x86_64, `syscallno` on arm64), from BTF; read at `sys_exit`, which
/// gets no number of its own.
#[unsafe(no_mangle)]
static SYSCALL_NR_OFFSET: u32 = u32::MAX;

/// Reads a loader-set global.
#[inline(always)]
fn global<T: Copy>(value: &T) -> T {
    // SAFETY: the globals are plain integers written once by the loader before
    // the program is loaded; volatile reads stop the compiler from folding the
    // initialisers.
    unsafe { core::ptr::read_volatile(value) }
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

/// Thread id of the current task.
#[inline(always)]
fn tid_of_current() -> u32 {
    bpf_get_current_pid_tgid() as u32
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
