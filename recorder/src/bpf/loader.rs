//! Loads the embedded BPF object and attaches it.

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::RawTracePoint,
};
use recorder_common::{CgroupKey, SyscallSet, names};

use crate::{cgroup::Cgroup, syscalls::Family};

/// Byte offsets of syscall arguments 0, 1 and 2 in the kernel's `struct
/// pt_regs` (arch/*/include/asm/ptrace.h): x86_64 `di`/`si`/`dx`, arm64
/// `regs[0..3]`, riscv64 `a0`/`a1`/`a2`.
#[cfg(target_arch = "x86_64")]
const PT_REGS_ARG_OFFSETS: (u32, u32, u32) = (112, 104, 96);
#[cfg(target_arch = "aarch64")]
const PT_REGS_ARG_OFFSETS: (u32, u32, u32) = (0, 8, 16);
#[cfg(target_arch = "riscv64")]
const PT_REGS_ARG_OFFSETS: (u32, u32, u32) = (80, 88, 96);

/// The BPF object built by build.rs from recorder-ebpf.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/recorder"));

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("loading the BPF object failed: {0}; run as root on a kernel with BPF enabled")]
    Load(#[source] aya::EbpfError),
    #[error("the kernel rejected BPF program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("the kernel cannot attach a raw tracepoint to {tracepoint}: {source}; recorder needs Linux 4.17+ with CONFIG_BPF_EVENTS")]
    Attach {
        tracepoint: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("BPF object has no {0}; the build of recorder-ebpf is out of date (cargo build --release)")]
    Missing(&'static str),
    #[error("BPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// The loaded and attached recorder for one target cgroup subtree.
pub struct Probe {
    // Keeps the programs and their links alive; dropping detaches them.
    _ebpf: Ebpf,
    pub(crate) syscalls: PerCpuHashMap<MapData, CgroupKey, SyscallSet>,
    pub(crate) stats: PerCpuArray<MapData, u64>,
    pub(crate) target_set: PerCpuArray<MapData, SyscallSet>,
    pub(crate) target_key: CgroupKey,
    events: Option<RingBuf<MapData>>,
    logger: Option<Logger>,
}

/// Reads `aya-log-ebpf` records from the BPF side into `log` (and from there
/// into tracing, via tracing-log).
pub type Logger = aya_log::EbpfLogger<&'static dyn log::Log>;

impl Probe {
    /// Loads the recorder, restricted to `target` and its descendants, and
    /// attaches it to sys_enter and the process lifecycle tracepoints. With
    /// `boundary`, descendant cgroups are treated as containers and their
    /// runtime setup is split off (`recorder_common::phase`).
    pub fn attach(target: &Cgroup, boundary: bool) -> Result<Probe, BpfError> {
        let native = Family::host().native;
        let nr = |name: &str| native.number_of(name).unwrap_or(u32::MAX);
        let (nr_seccomp, nr_prctl, nr_pivot_root, nr_chroot, nr_setns) =
            (nr("seccomp"), nr("prctl"), nr("pivot_root"), nr("chroot"), nr("setns"));
        let (arg0, arg1, arg2) = PT_REGS_ARG_OFFSETS;
        let boundary = u32::from(boundary);
        let mut ebpf = EbpfLoader::new()
            .override_global(names::TARGET_CGROUP_GLOBAL, &target.id, true)
            .override_global(names::TARGET_LEVEL_GLOBAL, &target.level, true)
            .override_global(names::BOUNDARY_GLOBAL, &boundary, true)
            .override_global(names::NR_SECCOMP_GLOBAL, &nr_seccomp, true)
            .override_global(names::NR_PRCTL_GLOBAL, &nr_prctl, true)
            .override_global(names::NR_PIVOT_ROOT_GLOBAL, &nr_pivot_root, true)
            .override_global(names::NR_CHROOT_GLOBAL, &nr_chroot, true)
            .override_global(names::NR_SETNS_GLOBAL, &nr_setns, true)
            .override_global(names::ARG0_OFFSET_GLOBAL, &arg0, true)
            .override_global(names::ARG1_OFFSET_GLOBAL, &arg1, true)
            .override_global(names::ARG2_OFFSET_GLOBAL, &arg2, true)
            .load(OBJECT)
            .map_err(BpfError::Load)?;
        // Without the log map (an object built without logging) we only lose
        // the BPF side's rare diagnostics; recording is unaffected.
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(e) => {
                tracing::debug!("BPF-side logging unavailable: {e}");
                None
            }
        };
        if boundary != 0 {
            mark_running(&mut ebpf, target)?;
        }
        // Lifecycle hooks first: by the time sys_enter records anything, forks
        // and execs are being counted too.
        for (prog, tp) in [
            (names::CGROUP_ATTACH_PROG, names::CGROUP_ATTACH_TP),
            (names::TASK_NEWTASK_PROG, names::TASK_NEWTASK_TP),
            (names::PROCESS_EXEC_PROG, names::PROCESS_EXEC_TP),
            (names::SYS_ENTER_PROG, names::SYS_ENTER_TP),
        ] {
            attach_raw_tracepoint(&mut ebpf, prog, tp)?;
        }
        let syscalls = take_map(&mut ebpf, names::SYSCALLS_MAP)?;
        let syscalls = PerCpuHashMap::try_from(syscalls)
            .map_err(|source| BpfError::Map { name: names::SYSCALLS_MAP, source })?;
        let stats = PerCpuArray::try_from(take_map(&mut ebpf, names::STATS_MAP)?)
            .map_err(|source| BpfError::Map { name: names::STATS_MAP, source })?;
        let events = RingBuf::try_from(take_map(&mut ebpf, names::EVENTS_MAP)?)
            .map_err(|source| BpfError::Map { name: names::EVENTS_MAP, source })?;
        let target_set = PerCpuArray::try_from(take_map(&mut ebpf, names::TARGET_SET_MAP)?)
            .map_err(|source| BpfError::Map { name: names::TARGET_SET_MAP, source })?;
        let target_key = CgroupKey { cgroup_id: target.id, arch: recorder_common::arch::NATIVE, phase: recorder_common::phase::RUN };
        Ok(Probe { _ebpf: ebpf, syscalls, stats, target_set, target_key, events: Some(events), logger })
    }

    /// The BPF-side logger, once; the event loop flushes it.
    pub fn take_logger(&mut self) -> Option<Logger> {
        self.logger.take()
    }

    /// The ring buffer, once; the event loop owns it from then on.
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }
}

/// The empty program on sys_enter: the cost floor that benchmarks compare
/// against. Detached when dropped.
pub struct Floor {
    _ebpf: Ebpf,
}

impl Floor {
    pub fn attach() -> Result<Floor, BpfError> {
        let mut ebpf = EbpfLoader::new().load(OBJECT).map_err(BpfError::Load)?;
        attach_raw_tracepoint(&mut ebpf, names::SYS_ENTER_EMPTY_PROG, names::SYS_ENTER_TP)?;
        Ok(Floor { _ebpf: ebpf })
    }
}

fn attach_raw_tracepoint(
    ebpf: &mut Ebpf,
    name: &'static str,
    tracepoint: &'static str,
) -> Result<(), BpfError> {
    let program: &mut RawTracePoint = ebpf
        .program_mut(name)
        .ok_or(BpfError::Missing(name))?
        .try_into()
        .map_err(|source| BpfError::Program { name, source })?;
    program.load().map_err(|source| BpfError::Program { name, source })?;
    program.attach(tracepoint).map_err(|source| BpfError::Attach { tracepoint, source })?;
    Ok(())
}

/// Boundary mode: cgroups that already exist below the target hold
/// containers that are already running, so their calls are the workload's
/// (`RUN`), not a runtime's setup. Done before attaching; a cgroup that
/// appears later starts in `SETUP` at its first syscall.
fn mark_running(ebpf: &mut Ebpf, target: &Cgroup) -> Result<(), BpfError> {
    use std::os::unix::fs::MetadataExt as _;

    use recorder_common::{BoundaryState, phase};
    let map = ebpf.map_mut(names::BOUNDARY_MAP).ok_or(BpfError::Missing(names::BOUNDARY_MAP))?;
    let mut states: aya::maps::HashMap<_, u64, BoundaryState> =
        aya::maps::HashMap::try_from(map).map_err(|source| BpfError::Map { name: names::BOUNDARY_MAP, source })?;
    let running = BoundaryState { phase: phase::RUN, ..BoundaryState::default() };
    let mut stack = vec![target.path.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if let Ok(meta) = entry.metadata()
                && meta.is_dir()
            {
                states
                    .insert(meta.ino(), running, 0)
                    .map_err(|source| BpfError::Map { name: names::BOUNDARY_MAP, source })?;
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, BpfError> {
    ebpf.take_map(name).ok_or(BpfError::Missing(name))
}
