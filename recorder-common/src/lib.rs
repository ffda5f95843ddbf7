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

/// Capacities. Each map's size is one constant here; the slot maps are
/// resized at load time (`SLOTS` of them) by the loader.
pub mod capacity {
    /// Cgroups a `recorder daemon` tracks at once by default: 16,384 slots
    /// of 408 bytes (bitmaps and boundary state) is 6.4 MiB of kernel
    /// memory, whatever the CPU count. Slots of cgroups that are gone are
    /// reused once their sets are on disk.
    pub const DAEMON_SLOTS: u32 = 16_384;
    /// Cgroups one `record` run tracks at once (its own, or a pod parent's
    /// children); gone ones are harvested and their slots reused.
    pub const RECORD_SLOTS: u32 = 4_096;
    /// (cgroup, ABI, phase) keys for the compat and x32 ABIs (`ABI_BITS`).
    pub const ABI_KEYS: u32 = 8_192;
    /// Processes joining running containers at once (`JOINERS`).
    pub const JOINERS: u32 = 1_024;
    /// Tasks whose syscall entry/exit pairing is tracked at once in learn
    /// mode (`INFLIGHT`, an LRU: an evicted task only misses a denial).
    pub const INFLIGHT: u32 = 16_384;
    /// (cgroup, ABI, syscall, process name) keys of denied calls (`DENIALS`).
    pub const DENIAL_KEYS: u32 = 4_096;
    /// (cgroup, syscall, argument value) keys (`ARG_VALUES`, `--args`).
    pub const ARG_KEYS: u32 = 16_384;
    /// (cgroup, syscall) pairs whose values did not fit (`ARG_OVERFLOW`).
    pub const ARG_OVERFLOWS: u32 = 4_096;
    /// Processes whose executable is known at once (`TASK_EXE`, an LRU: an
    /// evicted process's calls are booked under "exec not seen").
    pub const TASK_EXES: u32 = 65_536;
    /// Distinct executable paths (`EXE_PATHS`, `--by-exe`).
    pub const EXE_PATHS: u32 = 4_096;
    /// (cgroup, executable, ABI) bitmaps (`EXE_BITS`, `--by-exe`).
    pub const EXE_KEYS: u32 = 16_384;
}

/// Bytes of an executable path `--by-exe` keeps (longer ones are cut).
pub const EXE_PATH_LEN: usize = 256;

/// The executable id of processes whose exec was not seen (they were
/// running before the recording started).
pub const EXE_NOT_SEEN: u64 = 0;

/// Phases a slot holds a bitmap for (`Phase::RUN`, `SETUP`, `FILTERED`).
pub const PHASES: usize = 3;

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
        /// A call was denied by a seccomp filter (learn mode), first time
        /// for its key.
        DENIAL = 6,
    }
}

/// Per-cgroup boundary state (boundary mode), shared by all CPUs; one per
/// slot in `SLOT_STATE`, and one per joining process in `JOINERS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoundaryState {
    pub phase: Phase,
    /// Thread that installed the seccomp filter (`FILTERED` only).
    pub filter_tid: u32,
    /// Non-zero once `pivot_root` or `chroot` was called in the cgroup.
    pub rooted: u32,
    /// [`slot_flags`], set by userspace.
    pub flags: u32,
    /// Processes that joined the running container from outside (`runc
    /// exec`, `crun exec`, `nsenter`: they call `setns`) and have not exec'd
    /// yet; their calls are setup too. Tracked per process in `JOINERS`.
    /// 64 bits so it can be changed with an atomic add on any kernel.
    pub joiners: u64,
}
const _: () = assert!(size_of::<BoundaryState>() == 24);
const _: () = assert!(core::mem::offset_of!(BoundaryState, joiners) % 8 == 0);

/// `BoundaryState::flags`.
pub mod slot_flags {
    /// The cgroup is not wanted (`recorder daemon --namespace/--selector`):
    /// its calls are dropped in the kernel. Set by userspace.
    pub const IGNORED: u32 = 1;
    /// A process joined the running container from outside (`kubectl
    /// exec`). Set by the BPF side.
    pub const EXEC_SESSION: u32 = 2;
}

/// Per-CPU cache of the last task's classification, so a task making
/// syscalls back to back pays no helper call (each costs tens of ns on
/// kernels with return-thunk mitigations). Invalidated by a global
/// generation that every fork, exec and cgroup migration bumps.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskCache {
    /// The cached task's user register frame (`task_pt_regs`) address,
    /// unique among live tasks (0: empty).
    pub task: u64,
    /// Generation the entry was made in.
    pub generation: u64,
    /// The task's own cgroup id (when recorded).
    pub cgroup_id: u64,
    /// Its cgroup's slot, or [`NO_SLOT`] when the task is not recorded.
    pub slot: u32,
    /// Its ABI for non-x32 calls (`Abi::NATIVE` or `Abi::COMPAT`).
    pub abi: Abi,
}
const _: () = assert!(size_of::<TaskCache>() == 32);

/// `TaskCache::slot` of a task outside the recorded subtree.
pub const NO_SLOT: u32 = u32::MAX;

/// One cgroup's syscalls on the native ABI: a bitmap per phase, shared by
/// all CPUs. A bit is read first and set with an atomic OR only when it is
/// clear, so once learning settles there are no writes at all.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SlotBits {
    pub phases: [[u64; BITMAP_WORDS]; PHASES],
}
const _: () = assert!(size_of::<SlotBits>() == 384);

impl SlotBits {
    pub const fn zeroed() -> SlotBits {
        SlotBits { phases: [[0; BITMAP_WORDS]; PHASES] }
    }
}

/// One bitmap, for a (cgroup, ABI, phase) key on another ABI (`ABI_BITS`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Bitmap {
    pub bits: [u64; BITMAP_WORDS],
}
const _: () = assert!(size_of::<Bitmap>() == 128);

impl Bitmap {
    pub const fn zeroed() -> Bitmap {
        Bitmap { bits: [0; BITMAP_WORDS] }
    }
}

/// Names of maps, programs and load-time globals in the BPF object.
pub mod names {
    /// cgroup id -> slot.
    pub const SLOTS_MAP: &str = "SLOTS";
    /// Free slot numbers (a queue the loader fills).
    pub const FREE_SLOTS_MAP: &str = "FREE_SLOTS";
    /// Slot -> native-ABI bitmaps (`SlotBits`).
    pub const BITS_MAP: &str = "BITS";
    /// Slot -> boundary state (`BoundaryState`).
    pub const SLOT_STATE_MAP: &str = "SLOT_STATE";
    /// (cgroup, ABI, phase) -> bitmap for the compat and x32 ABIs.
    pub const ABI_BITS_MAP: &str = "ABI_BITS";
    pub const EVENTS_MAP: &str = "EVENTS";
    pub const STATS_MAP: &str = "STATS";
    pub const JOINERS_MAP: &str = "JOINERS";
    /// tid -> in a syscall (1) or not (0), for entry/exit pairing.
    pub const INFLIGHT_MAP: &str = "INFLIGHT";
    /// `DenialKey` -> count.
    pub const DENIALS_MAP: &str = "DENIALS";
    /// `ArgKey` -> 1.
    pub const ARG_VALUES_MAP: &str = "ARG_VALUES";
    /// `ArgOverflowKey` -> 1.
    pub const ARG_OVERFLOW_MAP: &str = "ARG_OVERFLOW";
    /// `--by-exe`: process (tgid) -> executable id.
    pub const TASK_EXE_MAP: &str = "TASK_EXE";
    /// `--by-exe`: executable id -> path.
    pub const EXE_PATHS_MAP: &str = "EXE_PATHS";
    /// `--by-exe`: (cgroup, executable, ABI) -> calls.
    pub const EXE_BITS_MAP: &str = "EXE_BITS";
    /// `--by-exe`: a per-CPU buffer for the path being read.
    pub const EXE_SCRATCH_MAP: &str = "EXE_SCRATCH";
    pub const TASK_CACHE_MAP: &str = "TASK_CACHE";
    pub const GENERATION_MAP: &str = "GENERATION";

    pub const SYS_ENTER_PROG: &str = "sys_enter";
    pub const TASK_NEWTASK_PROG: &str = "task_newtask";
    pub const PROCESS_EXEC_PROG: &str = "sched_process_exec";
    pub const CGROUP_ATTACH_PROG: &str = "cgroup_attach_task";
    /// Learn mode only.
    pub const SYS_EXIT_PROG: &str = "sys_exit";
    /// Learn mode only, where the kernel allows fexit.
    pub const SECCOMP_EXIT_PROG: &str = "secure_computing_exit";
    /// The kernel function `SECCOMP_EXIT_PROG` attaches to.
    pub const SECCOMP_FN: &str = "__secure_computing";

    pub const SYS_ENTER_TP: &str = "sys_enter";
    pub const TASK_NEWTASK_TP: &str = "task_newtask";
    pub const PROCESS_EXEC_TP: &str = "sched_process_exec";
    pub const CGROUP_ATTACH_TP: &str = "cgroup_attach_task";
    pub const SYS_EXIT_TP: &str = "sys_exit";

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
    /// Byte offset of `thread_info.status` in `struct task_struct` (from the
    /// kernel's BTF), or `u32::MAX` where compat tasks are not tagged.
    pub const COMPAT_STATUS_OFFSET_GLOBAL: &str = "COMPAT_STATUS_OFFSET";
    /// The `TS_COMPAT` bit of `thread_info.status`.
    pub const COMPAT_STATUS_BIT_GLOBAL: &str = "COMPAT_STATUS_BIT";
    /// Non-zero: pair syscall entries and exits to see denied calls.
    pub const LEARN_GLOBAL: &str = "LEARN_MODE";
    /// Non-zero: keep argument values of the calls whose arguments decide
    /// their risk (`--args`).
    pub const ARGS_GLOBAL: &str = "ARGS_MODE";
    /// Native numbers of those calls (from the loader's tables).
    pub const NR_SOCKET_GLOBAL: &str = "NR_SOCKET";
    pub const NR_CLONE_GLOBAL: &str = "NR_CLONE";
    pub const NR_PERSONALITY_GLOBAL: &str = "NR_PERSONALITY";
    pub const NR_IOCTL_GLOBAL: &str = "NR_IOCTL";
    pub const NR_FCNTL_GLOBAL: &str = "NR_FCNTL";
    pub const NR_MPROTECT_GLOBAL: &str = "NR_MPROTECT";
    pub const NR_MMAP_GLOBAL: &str = "NR_MMAP";
    /// Byte offset of the syscall number in the kernel's `struct pt_regs`
    /// (`orig_ax` on x86_64, `syscallno` on arm64), from BTF.
    pub const SYSCALL_NR_OFFSET_GLOBAL: &str = "SYSCALL_NR_OFFSET";
    /// Where fexit finds `__secure_computing`'s return value: after its
    /// parameters (1 before Linux 6.15, 0 since).
    pub const SECCOMP_RET_INDEX_GLOBAL: &str = "SECCOMP_RET_INDEX";
    /// Non-zero: attribute calls to executables (`--by-exe`).
    pub const BY_EXE_GLOBAL: &str = "BY_EXE_MODE";
    /// Byte offset of `filename` in `struct linux_binprm`, from BTF.
    pub const BPRM_FILENAME_OFFSET_GLOBAL: &str = "BPRM_FILENAME_OFFSET";
    /// Byte offset of `tgid` in `struct task_struct`, from BTF.
    pub const TASK_TGID_OFFSET_GLOBAL: &str = "TASK_TGID_OFFSET";

    /// Every map userspace opens or that the programs need.
    pub const MAPS: [&str; 18] = [
        SLOTS_MAP,
        FREE_SLOTS_MAP,
        BITS_MAP,
        SLOT_STATE_MAP,
        ABI_BITS_MAP,
        EVENTS_MAP,
        STATS_MAP,
        JOINERS_MAP,
        TASK_CACHE_MAP,
        GENERATION_MAP,
        INFLIGHT_MAP,
        DENIALS_MAP,
        ARG_VALUES_MAP,
        ARG_OVERFLOW_MAP,
        TASK_EXE_MAP,
        EXE_PATHS_MAP,
        EXE_BITS_MAP,
        EXE_SCRATCH_MAP,
    ];
    /// The maps that hold what was learned. The daemon pins them in bpffs
    /// so the kernel keeps recording while it restarts.
    pub const LEARNED_MAPS: [&str; 6] =
        [SLOTS_MAP, FREE_SLOTS_MAP, BITS_MAP, SLOT_STATE_MAP, ABI_BITS_MAP, JOINERS_MAP];
    /// Every program userspace attaches, with its tracepoint.
    pub const PROGRAMS: [(&str, &str); 4] = [
        (CGROUP_ATTACH_PROG, CGROUP_ATTACH_TP),
        (TASK_NEWTASK_PROG, TASK_NEWTASK_TP),
        (PROCESS_EXEC_PROG, PROCESS_EXEC_TP),
        (SYS_ENTER_PROG, SYS_ENTER_TP),
    ];
    /// Every global the loader sets.
    pub const GLOBALS: [&str; 24] = [
        TARGET_CGROUP_GLOBAL,
        TARGET_LEVEL_GLOBAL,
        BOUNDARY_GLOBAL,
        NR_SECCOMP_GLOBAL,
        NR_PRCTL_GLOBAL,
        NR_PIVOT_ROOT_GLOBAL,
        NR_CHROOT_GLOBAL,
        NR_SETNS_GLOBAL,
        COMPAT_STATUS_OFFSET_GLOBAL,
        COMPAT_STATUS_BIT_GLOBAL,
        LEARN_GLOBAL,
        SYSCALL_NR_OFFSET_GLOBAL,
        SECCOMP_RET_INDEX_GLOBAL,
        ARGS_GLOBAL,
        NR_SOCKET_GLOBAL,
        NR_CLONE_GLOBAL,
        NR_PERSONALITY_GLOBAL,
        NR_IOCTL_GLOBAL,
        NR_FCNTL_GLOBAL,
        NR_MPROTECT_GLOBAL,
        NR_MMAP_GLOBAL,
        BY_EXE_GLOBAL,
        BPRM_FILENAME_OFFSET_GLOBAL,
        TASK_TGID_OFFSET_GLOBAL,
    ];
}

/// Values of `names::LEARN_GLOBAL`: how calls a seccomp filter denied are
/// seen.
pub mod learn_mode {
    /// Not at all.
    pub const OFF: u32 = 0;
    /// `sys_exit` without a `sys_enter` since the task's last exit.
    pub const PAIRING: u32 = 1;
    /// fexit on `__secure_computing` returning -1 (skip the call).
    pub const FEXIT: u32 = 2;
}

/// Key of `ABI_BITS`, and of an observation read back in userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CgroupKey {
    /// cgroup v2 id (the cgroup directory's inode number).
    pub cgroup_id: u64,
    pub abi: Abi,
    pub phase: Phase,
}
const _: () = assert!(size_of::<CgroupKey>() == 16);

/// Key of `DENIALS`: a call a seccomp filter denied, by whom.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DenialKey {
    pub cgroup_id: u64,
    pub abi: Abi,
    /// Syscall number (x32: without the x32 bit).
    pub nr: u32,
    /// The process's name (`comm`), NUL-padded.
    pub comm: [u8; 16],
}
const _: () = assert!(size_of::<DenialKey>() == 32);

/// Key of `ARG_VALUES`: an argument value a cgroup used with a syscall
/// (native ABI), as `args` reduces it (e.g. a socket's family and type).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArgKey {
    pub cgroup_id: u64,
    pub nr: u32,
    pub _pad: u32,
    pub value: u64,
}
const _: () = assert!(size_of::<ArgKey>() == 24);

/// Key of `ARG_OVERFLOW`: a (cgroup, syscall) whose values did not fit.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArgOverflowKey {
    pub cgroup_id: u64,
    pub nr: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<ArgOverflowKey>() == 16);

/// Key of `EXE_BITS`: the calls one executable made in one cgroup, on one
/// ABI (`--by-exe`). `exe` is the FNV-1a hash of the exec'd path
/// (`EXE_PATHS` maps it back), or `EXE_NOT_SEEN`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExeKey {
    pub cgroup_id: u64,
    pub exe: u64,
    pub abi: Abi,
    pub _pad: u32,
}
const _: () = assert!(size_of::<ExeKey>() == 24);

/// An exec'd path as `sched_process_exec` has it (`bprm->filename`),
/// NUL-padded.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExePath {
    pub bytes: [u8; EXE_PATH_LEN],
}
const _: () = assert!(size_of::<ExePath>() == EXE_PATH_LEN);

impl ExePath {
    pub const fn zeroed() -> ExePath {
        ExePath { bytes: [0; EXE_PATH_LEN] }
    }
}

/// FNV-1a, 64 bits: the id of an executable path (bytes up to the first
/// NUL). 0 is reserved for `EXE_NOT_SEEN`, so a path hashing to it gets 1.
#[inline(always)]
pub fn exe_id(bytes: &[u8; EXE_PATH_LEN]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < EXE_PATH_LEN {
        let b = bytes[i];
        if b == 0 {
            break;
        }
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    if hash == EXE_NOT_SEEN { 1 } else { hash }
}

/// The reduced value `--args` keeps, per syscall: what decides its risk.
pub mod arg_reduce {
    /// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
    /// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET` (moby's mask).
    pub const CLONE_NEW_MASK: u64 = 0x7E02_0000;
    /// `SOCK_TYPE_MASK`: the type without SOCK_NONBLOCK/SOCK_CLOEXEC.
    pub const SOCK_TYPE_MASK: u64 = 0xf;
    /// `PROT_EXEC`.
    pub const PROT_EXEC: u64 = 0x4;
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
    /// The cgroup's slot (`SYSCALL` and `CGROUP` events on the native ABI).
    pub slot: u32,
}
const _: () = assert!(size_of::<Event>() == 32);

/// Slots of the per-CPU statistics array.
pub mod stat {
    /// Ring buffer reservations that failed (the buffer was full).
    pub const RINGBUF_DROPS: u32 = 0;
    /// Cgroups that found no free slot (their syscalls are not recorded).
    pub const SLOTS_FULL: u32 = 1;
    /// Syscall numbers at or above `MAX_SYSCALLS` (not recorded).
    pub const OUT_OF_RANGE: u32 = 2;
    /// New processes created in the target.
    pub const FORKS: u32 = 3;
    /// Successful execs in the target.
    pub const EXECS: u32 = 4;
    /// Compat or x32 calls that found `ABI_BITS` full (not recorded).
    pub const ABI_FULL: u32 = 5;
    /// Denied calls that found `DENIALS` full (not counted).
    pub const DENIALS_FULL: u32 = 6;
    /// Argument values that found `ARG_VALUES` full (that syscall then
    /// allows any arguments).
    pub const ARGS_FULL: u32 = 7;
    /// `--by-exe` attributions lost: `EXE_BITS` or `EXE_PATHS` full.
    pub const EXE_FULL: u32 = 8;
    /// Number of slots.
    pub const COUNT: u32 = 9;
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: CgroupKey is repr(C), Copy, and has no implicit padding (asserted above).
    unsafe impl aya::Pod for super::CgroupKey {}
    // SAFETY: SlotBits is repr(C), Copy, plain integer arrays, no padding.
    unsafe impl aya::Pod for super::SlotBits {}
    // SAFETY: Bitmap is repr(C), Copy, a plain integer array.
    unsafe impl aya::Pod for super::Bitmap {}
    // SAFETY: DenialKey is repr(C), Copy, integer fields, no padding (asserted).
    unsafe impl aya::Pod for super::DenialKey {}
    // SAFETY: ArgKey is repr(C), Copy, integer fields with explicit padding.
    unsafe impl aya::Pod for super::ArgKey {}
    // SAFETY: ArgOverflowKey is repr(C), Copy, integer fields with explicit padding.
    unsafe impl aya::Pod for super::ArgOverflowKey {}
    // SAFETY: Event is repr(C), Copy, and has no implicit padding (asserted above).
    unsafe impl aya::Pod for super::Event {}
    // SAFETY: ExeKey is repr(C), Copy, integer fields with explicit padding (asserted).
    unsafe impl aya::Pod for super::ExeKey {}
    // SAFETY: ExePath is repr(C), Copy, a plain byte array.
    unsafe impl aya::Pod for super::ExePath {}
    // SAFETY: BoundaryState is repr(C), Copy, integer fields with explicit padding.
    unsafe impl aya::Pod for super::BoundaryState {}
}
