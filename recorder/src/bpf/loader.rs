//! Loads the embedded BPF object, sizes and (for the daemon) pins its maps,
//! and attaches its programs.

use std::path::{Path, PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, Queue, RingBuf},
    programs::{
        FExit, RawTracePoint,
        links::{FdLink, PinnedLink},
    },
};
use recorder_common::{
    ArgKey, ArgOverflowKey, Bitmap, BoundaryState, CgroupKey, DenialKey, ExeKey, ExePath, Phase, SlotBits, learn_mode,
    names,
};

use super::btf::{BtfOffsetError, CompatProbe, KernelBtf};
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
    #[error(
        "cannot tell 32-bit tasks apart: {0}; the kernel's BTF (/sys/kernel/btf/vmlinux) lacks the fields recorder reads"
    )]
    Btf(#[source] BtfOffsetError),
    /// Learn mode's fexit on `__secure_computing` did not load or attach
    /// (the loader then pairs `sys_exit` with `sys_enter` instead).
    #[error("fexit on __secure_computing refused: {0}")]
    FexitRefused(String),
    #[error("cannot pin BPF {what} at {path}: {source}; is a bpf filesystem mounted there?")]
    Pin {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn map_err(name: &'static str) -> impl FnOnce(aya::maps::MapError) -> BpfError {
    move |source| BpfError::Map { name, source }
}

/// What to load.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// The subtree to record: this cgroup and everything below it.
    pub target: Cgroup,
    /// Treat cgroups below the target as containers and split off their
    /// runtime's setup (`recorder_common::Phase`). Cgroups that already
    /// exist are marked running.
    pub boundary: bool,
    /// Cgroups tracked at once (`recorder_common::capacity`).
    pub slots: u32,
    /// Pin the learned maps and the program links in this bpffs directory,
    /// reusing maps already pinned there (the daemon: recording goes on in
    /// the kernel while it restarts).
    pub pin: Option<PathBuf>,
    /// Also see calls a seccomp filter denied (`sys_exit` pairing).
    pub learn: bool,
    /// Keep the argument values that decide some calls' risk (`--args`).
    pub args: bool,
    /// Attribute each call to the executable that made it (`--by-exe`).
    pub by_exe: bool,
}

/// How learn mode sees the calls a seccomp filter denied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LearnHook {
    /// Learn mode is off.
    #[default]
    Off,
    /// fexit on `__secure_computing`: the filter's verdict, paid only by
    /// tasks under a filter.
    Fexit,
    /// `raw_syscalls:sys_exit` with no `sys_enter` since the task's last
    /// exit, because fexit was refused for this reason.
    Pairing { fexit_refused: String },
}

impl LearnHook {
    /// A short name, for metric labels.
    pub fn label(&self) -> &'static str {
        match self {
            LearnHook::Off => "off",
            LearnHook::Fexit => "fexit",
            LearnHook::Pairing { .. } => "sys_exit_pairing",
        }
    }

    /// One line for summaries and logs.
    pub fn describe(&self) -> String {
        match self {
            LearnHook::Off => "off".to_owned(),
            LearnHook::Fexit => format!("fexit on {}", names::SECCOMP_FN),
            LearnHook::Pairing { fexit_refused } => {
                format!(
                    "raw_syscalls:sys_exit without sys_enter (fexit on {} refused: {fexit_refused})",
                    names::SECCOMP_FN
                )
            }
        }
    }
}

/// The loaded and attached recorder.
pub struct Probe {
    // Keeps the programs (and, unpinned, their links) alive; dropping an
    // unpinned probe detaches it.
    _ebpf: Ebpf,
    pub(crate) slots: HashMap<MapData, u64, u32>,
    pub(crate) free: Queue<MapData, u32>,
    pub(crate) bits: Array<MapData, SlotBits>,
    pub(crate) state: Array<MapData, BoundaryState>,
    pub(crate) abi_bits: HashMap<MapData, CgroupKey, Bitmap>,
    pub(crate) stats: PerCpuArray<MapData, u64>,
    pub(crate) denials: Option<HashMap<MapData, DenialKey, u64>>,
    pub(crate) arg_values: Option<HashMap<MapData, ArgKey, u8>>,
    pub(crate) arg_overflow: Option<HashMap<MapData, ArgOverflowKey, u8>>,
    pub(crate) exe_bits: Option<HashMap<MapData, ExeKey, Bitmap>>,
    pub(crate) exe_paths: Option<HashMap<MapData, u64, ExePath>>,
    events: Option<RingBuf<MapData>>,
    logger: Option<Logger>,
    /// The learned maps were already pinned (a restarted daemon).
    pub adopted: bool,
    /// 32-bit tasks are tagged (the kernel has a compat ABI and BTF).
    pub compat_tagged: bool,
    /// What sees denied calls (learn mode).
    pub learn_hook: LearnHook,
}

/// Reads `aya-log-ebpf` records from the BPF side into `log` (and from there
/// into tracing, via tracing-log).
pub type Logger = aya_log::EbpfLogger<&'static dyn log::Log>;

impl Probe {
    /// Loads the recorder for `config.target` and its descendants, and
    /// attaches it to sys_enter and the process lifecycle tracepoints. In
    /// learn mode, fexit on `__secure_computing` is tried first and the
    /// `sys_exit` pairing used where the kernel refuses it
    /// ([`Probe::learn_hook`] says which runs).
    pub fn attach(config: &ProbeConfig) -> Result<Probe, BpfError> {
        if OBJECT.is_empty() {
            return Err(BpfError::NotBuilt);
        }
        // Decided once: a refused first attempt may have created the pins.
        let adopted = config.pin.as_ref().is_some_and(|dir| dir.join(names::LEARNED_MAPS[0]).exists());
        if !config.learn {
            return Self::load(config, learn_mode::OFF, adopted);
        }
        match Self::load(config, learn_mode::FEXIT, adopted) {
            Err(BpfError::FexitRefused(why)) => {
                tracing::debug!("learn mode pairs sys_exit with sys_enter: fexit refused: {why}");
                let mut probe = Self::load(config, learn_mode::PAIRING, adopted)?;
                probe.learn_hook = LearnHook::Pairing { fexit_refused: why };
                Ok(probe)
            }
            loaded => loaded,
        }
    }

    fn load(config: &ProbeConfig, learn: u32, adopted: bool) -> Result<Probe, BpfError> {
        let btf = KernelBtf::from_sys_fs().map_err(BpfError::Btf)?;
        let compat = CompatProbe::host(&btf).map_err(BpfError::Btf)?;
        let (compat_offset, compat_bit) = compat.map_or((u32::MAX, 0), |c| (c.offset, c.bit));
        let nr_offset = if learn != learn_mode::OFF {
            super::btf::syscall_nr_offset(&btf).map_err(BpfError::Btf)?.unwrap_or(u32::MAX)
        } else {
            u32::MAX
        };
        let (by_exe, bprm_filename, task_tgid) = if config.by_exe {
            (
                1u32,
                btf.offset_of("linux_binprm", &["filename"]).map_err(BpfError::Btf)?,
                btf.offset_of("task_struct", &["tgid"]).map_err(BpfError::Btf)?,
            )
        } else {
            (0, u32::MAX, u32::MAX)
        };
        let args = u32::from(config.args);
        let native = Family::host().native;
        let nr = |name: &str| native.number_of(name).unwrap_or(u32::MAX);
        let (nr_socket, nr_clone, nr_personality, nr_ioctl, nr_fcntl, nr_mprotect, nr_mmap) =
            (nr("socket"), nr("clone"), nr("personality"), nr("ioctl"), nr("fcntl"), nr("mprotect"), nr("mmap"));
        let (nr_seccomp, nr_prctl, nr_pivot_root, nr_chroot, nr_setns) =
            (nr("seccomp"), nr("prctl"), nr("pivot_root"), nr("chroot"), nr("setns"));
        let boundary = u32::from(config.boundary);
        // fexit's context holds the parameters, then the return value.
        let seccomp_ret_index = btf.param_count(names::SECCOMP_FN).unwrap_or(1);
        // With --by-exe the attribution maps are pinned too, so a restarted
        // daemon keeps knowing which running process runs what.
        let exe_maps: &[&str] =
            if config.by_exe { &[names::TASK_EXE_MAP, names::EXE_PATHS_MAP, names::EXE_BITS_MAP] } else { &[] };
        let pins: Vec<(&str, PathBuf)> = match &config.pin {
            Some(dir) => names::LEARNED_MAPS.iter().chain(exe_maps).map(|m| (*m, dir.join(m))).collect(),
            None => Vec::new(),
        };
        let mut loader = EbpfLoader::new();
        loader
            .override_global(names::TARGET_CGROUP_GLOBAL, &config.target.id, true)
            .override_global(names::TARGET_LEVEL_GLOBAL, &config.target.level, true)
            .override_global(names::BOUNDARY_GLOBAL, &boundary, true)
            .override_global(names::NR_SECCOMP_GLOBAL, &nr_seccomp, true)
            .override_global(names::NR_PRCTL_GLOBAL, &nr_prctl, true)
            .override_global(names::NR_PIVOT_ROOT_GLOBAL, &nr_pivot_root, true)
            .override_global(names::NR_CHROOT_GLOBAL, &nr_chroot, true)
            .override_global(names::NR_SETNS_GLOBAL, &nr_setns, true)
            .override_global(names::COMPAT_STATUS_OFFSET_GLOBAL, &compat_offset, true)
            .override_global(names::COMPAT_STATUS_BIT_GLOBAL, &compat_bit, true)
            .override_global(names::LEARN_GLOBAL, &learn, true)
            .override_global(names::SYSCALL_NR_OFFSET_GLOBAL, &nr_offset, true)
            .override_global(names::SECCOMP_RET_INDEX_GLOBAL, &seccomp_ret_index, true)
            .override_global(names::ARGS_GLOBAL, &args, true)
            .override_global(names::NR_SOCKET_GLOBAL, &nr_socket, true)
            .override_global(names::NR_CLONE_GLOBAL, &nr_clone, true)
            .override_global(names::NR_PERSONALITY_GLOBAL, &nr_personality, true)
            .override_global(names::NR_IOCTL_GLOBAL, &nr_ioctl, true)
            .override_global(names::NR_FCNTL_GLOBAL, &nr_fcntl, true)
            .override_global(names::NR_MPROTECT_GLOBAL, &nr_mprotect, true)
            .override_global(names::NR_MMAP_GLOBAL, &nr_mmap, true)
            .override_global(names::BY_EXE_GLOBAL, &by_exe, true)
            .override_global(names::BPRM_FILENAME_OFFSET_GLOBAL, &bprm_filename, true)
            .override_global(names::TASK_TGID_OFFSET_GLOBAL, &task_tgid, true);
        for name in [names::SLOTS_MAP, names::FREE_SLOTS_MAP, names::BITS_MAP, names::SLOT_STATE_MAP] {
            loader.map_max_entries(name, config.slots);
        }
        for (name, path) in &pins {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(OBJECT).map_err(BpfError::Load)?;
        let links_dir = config.pin.as_ref().map(|d| d.join("links"));
        // First, so that a refusal leaves nothing attached.
        if learn == learn_mode::FEXIT {
            attach_seccomp_fexit(&mut ebpf, links_dir.as_deref())?;
        }
        // Without the log map (an object built without logging) we only lose
        // the BPF side's rare diagnostics; recording is unaffected.
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(e) => {
                tracing::debug!("BPF-side logging unavailable: {e}");
                None
            }
        };
        let mut probe = Probe {
            slots: HashMap::try_from(take_map(&mut ebpf, names::SLOTS_MAP)?).map_err(map_err(names::SLOTS_MAP))?,
            free: Queue::try_from(take_map(&mut ebpf, names::FREE_SLOTS_MAP)?)
                .map_err(map_err(names::FREE_SLOTS_MAP))?,
            bits: Array::try_from(take_map(&mut ebpf, names::BITS_MAP)?).map_err(map_err(names::BITS_MAP))?,
            state: Array::try_from(take_map(&mut ebpf, names::SLOT_STATE_MAP)?)
                .map_err(map_err(names::SLOT_STATE_MAP))?,
            abi_bits: HashMap::try_from(take_map(&mut ebpf, names::ABI_BITS_MAP)?)
                .map_err(map_err(names::ABI_BITS_MAP))?,
            stats: PerCpuArray::try_from(take_map(&mut ebpf, names::STATS_MAP)?).map_err(map_err(names::STATS_MAP))?,
            events: Some(
                RingBuf::try_from(take_map(&mut ebpf, names::EVENTS_MAP)?).map_err(map_err(names::EVENTS_MAP))?,
            ),
            denials: None,
            arg_values: None,
            arg_overflow: None,
            exe_bits: None,
            exe_paths: None,
            logger,
            adopted,
            compat_tagged: compat.is_some(),
            learn_hook: if learn == learn_mode::FEXIT { LearnHook::Fexit } else { LearnHook::Off },
            _ebpf: ebpf,
        };
        if !adopted {
            for slot in 0..config.slots {
                probe.free.push(slot, 0).map_err(map_err(names::FREE_SLOTS_MAP))?;
            }
        }
        // With the previous daemon's maps and programs still pinned, the kernel
        // kept recording: every cgroup that made a syscall has a slot, and one
        // without is new and has not started yet (it must start in setup like
        // any new container, not be taken for a running one). Marking it, as
        // the kernel may be taking a slot for it at the same moment, would
        // also race with the running programs.
        let recording_went_on = adopted && links_dir.as_ref().is_some_and(|d| d.join(names::SYS_ENTER_PROG).exists());
        if config.boundary && !recording_went_on {
            probe.mark_running(&config.target)?;
        }
        // Lifecycle hooks first: by the time sys_enter records anything, forks
        // and execs are being counted too.
        for (program, tracepoint) in names::PROGRAMS {
            attach_raw_tracepoint(&mut probe._ebpf, program, tracepoint, links_dir.as_deref())?;
        }
        if learn == learn_mode::PAIRING {
            attach_raw_tracepoint(&mut probe._ebpf, names::SYS_EXIT_PROG, names::SYS_EXIT_TP, links_dir.as_deref())?;
        }
        // A previous daemon's learn hook that this one does not run: left
        // pinned, it would count this daemon's calls as denied.
        if let Some(dir) = &links_dir {
            for (hook, mode) in
                [(names::SYS_EXIT_PROG, learn_mode::PAIRING), (names::SECCOMP_EXIT_PROG, learn_mode::FEXIT)]
            {
                if mode != learn {
                    unpin_link(&dir.join(hook))?;
                }
            }
        }
        probe.denials = Some(
            HashMap::try_from(take_map(&mut probe._ebpf, names::DENIALS_MAP)?).map_err(map_err(names::DENIALS_MAP))?,
        );
        probe.arg_values = Some(
            HashMap::try_from(take_map(&mut probe._ebpf, names::ARG_VALUES_MAP)?)
                .map_err(map_err(names::ARG_VALUES_MAP))?,
        );
        probe.arg_overflow = Some(
            HashMap::try_from(take_map(&mut probe._ebpf, names::ARG_OVERFLOW_MAP)?)
                .map_err(map_err(names::ARG_OVERFLOW_MAP))?,
        );
        if config.by_exe {
            probe.exe_bits = Some(
                HashMap::try_from(take_map(&mut probe._ebpf, names::EXE_BITS_MAP)?)
                    .map_err(map_err(names::EXE_BITS_MAP))?,
            );
            probe.exe_paths = Some(
                HashMap::try_from(take_map(&mut probe._ebpf, names::EXE_PATHS_MAP)?)
                    .map_err(map_err(names::EXE_PATHS_MAP))?,
            );
        }
        Ok(probe)
    }

    /// The BPF-side logger, once; the event loop flushes it.
    pub fn take_logger(&mut self) -> Option<Logger> {
        self.logger.take()
    }

    /// The ring buffer, once; the event loop owns it from then on.
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }

    /// Boundary mode: cgroups that already exist below the target hold
    /// containers that are already running, so their calls are the
    /// workload's (`RUN`), not a runtime's setup. Done before attaching; a
    /// cgroup that appears later starts in `SETUP` at its first syscall.
    fn mark_running(&mut self, target: &Cgroup) -> Result<(), BpfError> {
        for (id, _) in target.descendants() {
            if self.slots.get(&id, 0).is_ok() {
                continue;
            }
            let Ok(slot) = self.free.pop(0) else {
                tracing::warn!("no free slot for the running cgroup {id}; it is recorded once one frees");
                break;
            };
            let running = BoundaryState { phase: Phase::RUN, ..BoundaryState::default() };
            self.state.set(slot, running, 0).map_err(map_err(names::SLOT_STATE_MAP))?;
            if self.slots.insert(id, slot, 0).is_err() {
                self.free.push(slot, 0).map_err(map_err(names::FREE_SLOTS_MAP))?;
            }
        }
        Ok(())
    }
}

/// Attaches one program; with `links_dir`, pins its link there in place of
/// the previous daemon's (which is detached only once the new one runs, so
/// no syscall goes unrecorded across a restart).
fn attach_raw_tracepoint(
    ebpf: &mut Ebpf,
    name: &'static str,
    tracepoint: &'static str,
    links_dir: Option<&Path>,
) -> Result<(), BpfError> {
    let program: &mut RawTracePoint = ebpf
        .program_mut(name)
        .ok_or(BpfError::Missing(name))?
        .try_into()
        .map_err(|source| BpfError::Program { name, source })?;
    program.load().map_err(|source| BpfError::Program { name, source })?;
    let link_id = program.attach(tracepoint).map_err(|source| BpfError::Attach { tracepoint, source })?;
    let Some(dir) = links_dir else { return Ok(()) };
    let link = program.take_link(link_id).map_err(|source| BpfError::Program { name, source })?;
    pin_link(FdLink::from(link), dir, name)
}

/// Learn mode's fexit on `__secure_computing`; any failure is
/// [`BpfError::FexitRefused`], so the caller can fall back.
fn attach_seccomp_fexit(ebpf: &mut Ebpf, links_dir: Option<&Path>) -> Result<(), BpfError> {
    // Without the verifier's log, which is empty when the load is refused
    // outright (EPERM) and too long for one line otherwise.
    let refused = |e: &dyn std::fmt::Display| {
        let text = e.to_string();
        BpfError::FexitRefused(text.split(". Verifier output:").next().unwrap_or(&text).to_owned())
    };
    let btf = aya::Btf::from_sys_fs().map_err(|e| refused(&e))?;
    let program: &mut FExit = ebpf
        .program_mut(names::SECCOMP_EXIT_PROG)
        .ok_or(BpfError::Missing(names::SECCOMP_EXIT_PROG))?
        .try_into()
        .map_err(|e| refused(&e))?;
    program.load(names::SECCOMP_FN, &btf).map_err(|e| refused(&e))?;
    let link_id = program.attach().map_err(|e| refused(&e))?;
    let Some(dir) = links_dir else { return Ok(()) };
    let link = program.take_link(link_id).map_err(|e| refused(&e))?;
    pin_link(FdLink::from(link), dir, names::SECCOMP_EXIT_PROG)
}

fn pin_error(path: &Path) -> impl FnOnce(std::io::Error) -> BpfError {
    let path = path.to_path_buf();
    move |source| BpfError::Pin { what: "link", path, source }
}

/// Pins `link` as `dir/name`, in place of the previous daemon's.
fn pin_link(link: FdLink, dir: &Path, name: &str) -> Result<(), BpfError> {
    std::fs::create_dir_all(dir).map_err(pin_error(dir))?;
    let path = dir.join(name);
    unpin_link(&path)?;
    link.pin(&path).map_err(|e| BpfError::Pin {
        what: "link",
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    Ok(())
}

/// Removes the pinned link at `path`, if any: its program is detached once
/// nothing else holds it.
fn unpin_link(path: &Path) -> Result<(), BpfError> {
    if !path.exists() {
        return Ok(());
    }
    match PinnedLink::from_pin(path) {
        Ok(old) => drop(old.unpin().map_err(pin_error(path))?),
        Err(e) => {
            tracing::warn!("replacing an unreadable pinned link {}: {e}", path.display());
            std::fs::remove_file(path).map_err(pin_error(path))?;
        }
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
        for (program, _) in names::PROGRAMS {
            assert!(parsed.programs.contains_key(program), "program {program} missing");
        }
        assert!(parsed.programs.contains_key(names::SYS_EXIT_PROG));
        assert!(parsed.programs.contains_key(names::SECCOMP_EXIT_PROG));
        let elf = object::File::parse(OBJECT).expect("ELF");
        let symbols: Vec<&str> = elf.symbols().filter_map(|s| s.name().ok()).collect();
        for global in names::GLOBALS {
            assert!(symbols.contains(&global), "global {global} missing");
        }
    }
}
