//! Types and constants shared by the BPF programs and the userspace daemon.
//!
//! Everything here is `#[repr(C)]`, `Copy` and free of implicit padding, so the
//! same bytes mean the same thing on both sides. Sizes are asserted at compile
//! time. Names of maps, programs and globals are defined once, here.
#![no_std]

use core::mem::size_of;

/// Syscall numbers that fit in one per-cgroup bitmap. x86_64 tops out below
/// 512 and x32's own calls sit at 512..548 once the x32 bit is masked off, so
/// 1024 covers every architecture the tables know with room to grow.
pub const MAX_SYSCALLS: usize = 1024;
/// `MAX_SYSCALLS` as a mask (it is a power of two), for verifier-friendly indexing.
pub const SYSCALL_MASK: u64 = (MAX_SYSCALLS as u64) - 1;
/// 64-bit words in a syscall bitmap.
pub const BITMAP_WORDS: usize = MAX_SYSCALLS / 64;

/// Ring buffer size in bytes: a power of two and a multiple of the page size.
/// Only first-seen observations and lifecycle events travel through it.
pub const RING_BUF_BYTES: u32 = 256 * 1024;
/// Capacity of `SYSCALLS`: distinct (cgroup, ABI, phase) keys one load holds.
pub const MAX_CGROUP_KEYS: u32 = 4096;
/// Capacity of `BOUNDARY`: containers whose boundary state is tracked.
pub const MAX_BOUNDARY_CGROUPS: u32 = 4096;
/// Capacity of `JOINERS`: processes joining running containers at once.
pub const MAX_JOINERS: u32 = 1024;

/// On x86_64, x32 syscalls carry this bit in the syscall number
/// (`__X32_SYSCALL_BIT` in arch/x86/include/uapi/asm/unistd.h).
pub const X32_SYSCALL_BIT: u64 = 0x4000_0000;

/// Defines a `#[repr(transparent)]` newtype over an integer with named
/// values. The kernel and userspace exchange these through maps and ring
/// buffer records, where any bit pattern can arrive, so they are newtypes
/// (every value is valid) rather than enums (where an unknown value would be
/// undefined behaviour).
macro_rules! tag {
    ($(#[$meta:meta])* $name:ident($repr:ty) { $($(#[$vmeta:meta])* $value:ident = $n:expr,)* }) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $repr);

        impl $name {
            $($(#[$vmeta])* pub const $value: $name = $name($n);)*

            /// The value's name, or `None` for a value this build does not know.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($n => Some(stringify!($value)),)*
                    _ => None,
                }
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }
    };
}

tag! {
    /// The ABI a syscall was made through, relative to the kernel's own
    /// architecture. Userspace names it per host (`syscalls::Family`).
    Abi(u32) {
        /// The kernel's native ABI (x86_64 on an x86_64 kernel).
        NATIVE = 0,
        /// The x32 ABI (x86_64 only): native registers, 32-bit pointers.
        X32 = 1,
        /// 32-bit compat tasks (ia32 on x86_64, arm on aarch64).
        COMPAT = 2,
    }
}

tag! {
    /// Phase of a container's life a syscall belongs to (boundary mode only;
    /// without it every syscall is `RUN`).
    ///
    /// A container's cgroup also sees the runtime's own init (runc init, crun)
    /// setting the container up: mount, pivot_root, sethostname, setns, ... The
    /// boundary is observed, never inferred from process names:
    /// - the runtime installs the container's filter with `seccomp()` or
    ///   `prctl(PR_SET_SECCOMP)`: that thread's later calls are `FILTERED`
    ///   (the runtime's post-filter calls, which the profile must allow);
    /// - a successful exec after the filter, or after the root was switched
    ///   (`pivot_root`/`chroot`), starts the workload: `RUN` from then on.
    Phase(u32) {
        /// The workload itself.
        RUN = 0,
        /// Runtime setup before the boundary: not part of the profile.
        SETUP = 1,
        /// The filter-installing thread after its seccomp call, before exec.
        FILTERED = 2,
    }
}

tag! {
    /// Kinds of ring buffer records.
    EventKind(u32) {
        /// A syscall seen for the first time in a (cgroup, ABI, phase).
        SYSCALL = 1,
        /// A cgroup under the target made its first syscall.
        CGROUP = 2,
        /// A new process (not a thread) was created in the target.
        FORK = 3,
        /// A process in the target called execve successfully.
        EXEC = 4,
        /// A cgroup crossed the runtime boundary into the workload (`RUN`).
        BOUNDARY = 5,
    }
}

/// Per-cgroup boundary state (boundary mode), shared by all CPUs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoundaryState {
    pub phase: Phase,
    /// Thread that installed the seccomp filter (`FILTERED` only).
    pub filter_tid: u32,
    /// Non-zero once `pivot_root` or `chroot` was called in the cgroup.
    pub rooted: u32,
    pub _pad: u32,
    /// Processes that joined the running container from outside (`runc
    /// exec`, `crun exec`, `nsenter`: they call `setns`) and have not exec'd
    /// yet; their calls are setup too. Tracked per process in `JOINERS`.
    /// 64 bits so it can be changed with an atomic add on any kernel.
    pub joiners: u64,
}
const _: () = assert!(size_of::<BoundaryState>() == 24);
const _: () = assert!(core::mem::offset_of!(BoundaryState, joiners) % 8 == 0);

/// Per-CPU cache of the last task's classification, so a task making
/// syscalls back to back pays no helper call (each costs tens of ns on
/// kernels with return-thunk mitigations). Invalidated by a global
/// generation that every fork and every cgroup migration bumps.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskCache {
    /// The cached task's user register frame (`task_pt_regs`) address,
    /// unique among live tasks (0: empty).
    pub task: u64,
    /// Generation the entry was made in.
    pub generation: u64,
    /// The task's own cgroup id if it is recorded, else 0.
    pub cgroup_id: u64,
    /// Non-zero if that cgroup is the target itself (not a descendant).
    pub itself: u64,
}
const _: () = assert!(size_of::<TaskCache>() == 32);

/// Names of maps, programs and load-time globals in the BPF object.
pub mod names {
    pub const SYSCALLS_MAP: &str = "SYSCALLS";
    pub const EVENTS_MAP: &str = "EVENTS";
    pub const STATS_MAP: &str = "STATS";
    pub const ZERO_MAP: &str = "ZERO";
    pub const TARGET_SET_MAP: &str = "TARGET_SET";
    pub const BOUNDARY_MAP: &str = "BOUNDARY";
    pub const JOINERS_MAP: &str = "JOINERS";
    pub const TASK_CACHE_MAP: &str = "TASK_CACHE";
    pub const GENERATION_MAP: &str = "GENERATION";
    pub const CGROUP_ATTACH_PROG: &str = "cgroup_attach_task";
    pub const CGROUP_ATTACH_TP: &str = "cgroup_attach_task";

    pub const SYS_ENTER_PROG: &str = "sys_enter";
    pub const TASK_NEWTASK_PROG: &str = "task_newtask";
    pub const PROCESS_EXEC_PROG: &str = "sched_process_exec";

    pub const SYS_ENTER_TP: &str = "sys_enter";
    pub const TASK_NEWTASK_TP: &str = "task_newtask";
    pub const PROCESS_EXEC_TP: &str = "sched_process_exec";

    /// cgroup v2 id every recorded task must descend from.
    pub const TARGET_CGROUP_GLOBAL: &str = "TARGET_CGROUP";
    /// Level of `TARGET_CGROUP` in the hierarchy (root is 0).
    pub const TARGET_LEVEL_GLOBAL: &str = "TARGET_LEVEL";
    /// Non-zero: split descendant cgroups' syscalls by container phase.
    pub const BOUNDARY_GLOBAL: &str = "BOUNDARY_MODE";
    /// The host ABI's syscall numbers the boundary watches for (set by the
    /// loader from the syscall tables, so the BPF side stays arch-neutral).
    pub const NR_SECCOMP_GLOBAL: &str = "NR_SECCOMP";
    pub const NR_PRCTL_GLOBAL: &str = "NR_PRCTL";
    pub const NR_PIVOT_ROOT_GLOBAL: &str = "NR_PIVOT_ROOT";
    pub const NR_CHROOT_GLOBAL: &str = "NR_CHROOT";
    pub const NR_SETNS_GLOBAL: &str = "NR_SETNS";

    /// Every map userspace opens or that the programs need.
    pub const MAPS: [&str; 9] = [
        SYSCALLS_MAP,
        EVENTS_MAP,
        STATS_MAP,
        ZERO_MAP,
        TARGET_SET_MAP,
        BOUNDARY_MAP,
        JOINERS_MAP,
        TASK_CACHE_MAP,
        GENERATION_MAP,
    ];
    /// Every program userspace attaches.
    pub const PROGRAMS: [&str; 4] = [SYS_ENTER_PROG, TASK_NEWTASK_PROG, PROCESS_EXEC_PROG, CGROUP_ATTACH_PROG];
    /// Every global the loader sets.
    pub const GLOBALS: [&str; 8] = [
        TARGET_CGROUP_GLOBAL,
        TARGET_LEVEL_GLOBAL,
        BOUNDARY_GLOBAL,
        NR_SECCOMP_GLOBAL,
        NR_PRCTL_GLOBAL,
        NR_PIVOT_ROOT_GLOBAL,
        NR_CHROOT_GLOBAL,
        NR_SETNS_GLOBAL,
    ];
}

/// Key of the per-cgroup syscall map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CgroupKey {
    /// cgroup v2 id (the cgroup directory's inode number).
    pub cgroup_id: u64,
    pub abi: Abi,
    pub phase: Phase,
}
const _: () = assert!(size_of::<CgroupKey>() == 16);

/// Per-cgroup, per-CPU aggregate: which syscalls were seen and how often.
/// Userspace ORs the bitmaps and sums the counts over CPUs.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SyscallSet {
    pub bits: [u64; BITMAP_WORDS],
    pub counts: [u32; MAX_SYSCALLS],
}
const _: () = assert!(size_of::<SyscallSet>() == BITMAP_WORDS * 8 + MAX_SYSCALLS * 4);

impl SyscallSet {
    pub const fn zeroed() -> Self {
        Self { bits: [0; BITMAP_WORDS], counts: [0; MAX_SYSCALLS] }
    }
}

/// One ring buffer record. Events are hints for live status; the map is the
/// source of truth, so a lost event never loses a syscall.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// `SYSCALL` events: the phase and ABI the call was booked under.
    pub phase: Phase,
    pub abi: Abi,
    /// Syscall number for `SYSCALL`, zero otherwise.
    pub nr: u32,
    pub cgroup_id: u64,
    /// Thread group id of the task that caused the event.
    pub tgid: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<Event>() == 32);

/// Slots of the per-CPU statistics array.
pub mod stat {
    /// Ring buffer reservations that failed (the buffer was full).
    pub const RINGBUF_DROPS: u32 = 0;
    /// Inserts into the syscall map that failed (the map was full).
    pub const MAP_FULL: u32 = 1;
    /// Syscall numbers at or above `MAX_SYSCALLS` (not recorded).
    pub const OUT_OF_RANGE: u32 = 2;
    /// New processes created in the target.
    pub const FORKS: u32 = 3;
    /// Successful execs in the target.
    pub const EXECS: u32 = 4;
    /// Number of slots.
    pub const COUNT: u32 = 8;
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: CgroupKey is repr(C), Copy, and has no implicit padding (asserted above).
    unsafe impl aya::Pod for super::CgroupKey {}
    // SAFETY: SyscallSet is repr(C), Copy, plain integer arrays, no padding.
    unsafe impl aya::Pod for super::SyscallSet {}
    // SAFETY: Event is repr(C), Copy, and has no implicit padding (asserted above).
    unsafe impl aya::Pod for super::Event {}
    // SAFETY: BoundaryState is repr(C), Copy, integer fields with explicit padding.
    unsafe impl aya::Pod for super::BoundaryState {}
}
