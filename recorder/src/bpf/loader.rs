//! Loads the embedded BPF object and attaches it.

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::RawTracePoint,
};
use recorder_common::{Abi, BoundaryState, CgroupKey, Phase, SyscallSet, names};

use crate::{syscalls::Family, target::Cgroup};

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
    #[error(
        "the kernel cannot attach a raw tracepoint to {tracepoint}: {source}; recorder needs Linux 4.17+ with CONFIG_BPF_EVENTS"
    )]
    Attach {
        tracepoint: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error(
        "this recorder was built without its BPF programs (AYA_BUILD_SKIP); rebuild it with `cargo build --release` after `cargo xtask setup`"
    )]
    NotBuilt,
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
        if OBJECT.is_empty() {
            return Err(BpfError::NotBuilt);
        }
        let native = Family::host().native;
        let nr = |name: &str| native.number_of(name).unwrap_or(u32::MAX);
        let (nr_seccomp, nr_prctl, nr_pivot_root, nr_chroot, nr_setns) =
            (nr("seccomp"), nr("prctl"), nr("pivot_root"), nr("chroot"), nr("setns"));
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
        let syscalls =
            PerCpuHashMap::try_from(syscalls).map_err(|source| BpfError::Map { name: names::SYSCALLS_MAP, source })?;
        let stats = PerCpuArray::try_from(take_map(&mut ebpf, names::STATS_MAP)?)
            .map_err(|source| BpfError::Map { name: names::STATS_MAP, source })?;
        let events = RingBuf::try_from(take_map(&mut ebpf, names::EVENTS_MAP)?)
            .map_err(|source| BpfError::Map { name: names::EVENTS_MAP, source })?;
        let target_set = PerCpuArray::try_from(take_map(&mut ebpf, names::TARGET_SET_MAP)?)
            .map_err(|source| BpfError::Map { name: names::TARGET_SET_MAP, source })?;
        let target_key = CgroupKey { cgroup_id: target.id, abi: Abi::NATIVE, phase: Phase::RUN };
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

fn attach_raw_tracepoint(ebpf: &mut Ebpf, name: &'static str, tracepoint: &'static str) -> Result<(), BpfError> {
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
    let map = ebpf.map_mut(names::BOUNDARY_MAP).ok_or(BpfError::Missing(names::BOUNDARY_MAP))?;
    let mut states: aya::maps::HashMap<_, u64, BoundaryState> =
        aya::maps::HashMap::try_from(map).map_err(|source| BpfError::Map { name: names::BOUNDARY_MAP, source })?;
    let running = BoundaryState { phase: Phase::RUN, ..BoundaryState::default() };
    for (id, _) in target.descendants() {
        states.insert(id, running, 0).map_err(|source| BpfError::Map { name: names::BOUNDARY_MAP, source })?;
    }
    Ok(())
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, BpfError> {
    ebpf.take_map(name).ok_or(BpfError::Missing(name))
}

#[cfg(test)]
mod tests {
    use object::{Object as _, ObjectSymbol as _};

    use super::*;

    /// Every map, program and global that userspace names is in the object
    /// build.rs embedded: a name typed differently on the two sides fails
    /// here, not at run time.
    #[test]
    fn embedded_object_has_every_name_userspace_uses() {
        assert!(!OBJECT.is_empty(), "built with AYA_BUILD_SKIP: no BPF object to check");
        let parsed = aya_obj::Object::parse(OBJECT).expect("the embedded object parses");
        for map in names::MAPS {
            assert!(parsed.maps.contains_key(map), "map {map} missing; have {:?}", parsed.maps.keys());
        }
        for program in names::PROGRAMS {
            assert!(parsed.programs.contains_key(program), "program {program} missing");
        }
        let elf = object::File::parse(OBJECT).expect("ELF");
        let symbols: Vec<&str> = elf.symbols().filter_map(|s| s.name().ok()).collect();
        for global in names::GLOBALS {
            assert!(symbols.contains(&global), "global {global} missing");
        }
    }
}
