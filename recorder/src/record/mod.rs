//! A recording: pick the cgroup, attach the probe, record until the
//! workload ends, the time is up or we are told to stop, end the workload
//! the way a runtime would (`stop`), then read the maps.

mod child;
mod session;
pub mod status;
pub mod stop;

use std::{
    collections::BTreeMap, io, os::unix::process::ExitStatusExt as _, path::PathBuf, process::ExitStatus,
    time::Duration,
};

use recorder_common::{DenialKey, capacity};

use self::{
    session::Session,
    stop::{Ending, StopPolicy},
};
use crate::{
    bpf::{BpfError, Observation, Probe, ProbeConfig, Stats},
    target::{
        CgroupError, Command, Hierarchy,
        pod::{PodError, PodSpec, PodWatch},
    },
};

/// What to record.
#[derive(Clone, Debug)]
pub enum Source {
    /// Start this command in a fresh cgroup and record it.
    Command(Command),
    /// Record an existing cgroup v2 directory (and its descendants).
    Cgroup(PathBuf),
    /// Record the cgroup this PID is in.
    Pid(i32),
    /// Record a Kubernetes pod's containers, found through the CRI.
    Pod(PodSpec),
}

#[derive(Clone, Debug)]
pub struct Options {
    pub source: Source,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// How the workload is ended when the recording is (see `stop`).
    pub stop: StopPolicy,
    /// Draw the live status line (if stderr is a terminal).
    pub status: bool,
    /// Treat cgroups below the target as containers and split off their
    /// runtime's setup (`recorder_common::phase`).
    pub boundary: bool,
    /// Also see the calls a seccomp filter denies (the workload runs under
    /// a profile): `Recording::denials`.
    pub learn: bool,
    /// Keep the argument values that decide some calls' risk (`--args`).
    pub args: bool,
    /// Attribute each call to the executable that made it (`--by-exe`).
    pub by_exe: bool,
    /// For `Source::Command`: a classic-BPF seccomp program (libseccomp's
    /// export) the command is started under, right before its exec.
    pub enforce: Option<Vec<u8>>,
}

/// Why the recording ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every process in the cgroup exited.
    Emptied,
    /// `--duration` ran out.
    Duration,
    /// SIGINT or SIGTERM.
    Signal(i32),
}

/// The result of a recording.
#[derive(Debug)]
pub struct Recording {
    pub observation: Observation,
    pub stats: Stats,
    pub stop: Stop,
    /// How the workload's life ended, as far as the recording saw.
    pub ending: Ending,
    /// Exit status of the command we started, if it exited.
    pub exit_status: Option<ExitStatus>,
    pub elapsed: Duration,
    /// Processes seen: those present at the start plus every one created.
    pub processes: u64,
    /// False when recording attached to a workload that was already running.
    pub startup_observed: bool,
    pub cgroup: PathBuf,
    /// CPU time (user + system) the recorder itself used.
    pub cpu: Duration,
    /// The pod watch, for per-container results (`Source::Pod`).
    pub pod: Option<PodWatch>,
    /// Calls a seccomp filter denied, with counts (learn mode).
    pub denials: BTreeMap<DenialKey, u64>,
    /// What saw them.
    pub learn_hook: crate::bpf::LearnHook,
}

impl Recording {
    /// The exit status `recorder record` should return: CMD's own status when
    /// it ended by itself (128+N if killed by signal N, as shells report), 0
    /// when the recording was stopped on purpose or had no command.
    pub fn exit_code(&self) -> u8 {
        match (self.stop, self.exit_status) {
            (Stop::Emptied, Some(status)) => match (status.code(), status.signal()) {
                (Some(code), _) => code as u8,
                (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
                (None, None) => 1,
            },
            _ => 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("reading BPF maps failed: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error("event loop failed: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Pod(#[from] PodError),
}

/// Runs one recording to its end.
pub fn record(options: Options) -> Result<Recording, RecordError> {
    record_with_checkpoint(options, &mut |_| {})
}

/// Runs one recording; with `--until-exit`, `checkpoint` gets the recording
/// as it stands when `--duration` ends (the workload still running), before
/// recording goes on until the workload ends.
pub fn record_with_checkpoint(
    options: Options,
    checkpoint: &mut dyn FnMut(&Recording),
) -> Result<Recording, RecordError> {
    let hierarchy = Hierarchy::find()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut watch = None;
    let (owned, cgroup) = match &options.source {
        Source::Pod(spec) => {
            let w = runtime.block_on(PodWatch::connect(spec.clone(), &hierarchy))?;
            let cgroup = w.target().clone();
            watch = Some(w);
            (None, cgroup)
        }
        Source::Command(_) => {
            let owned = hierarchy.create_for_recording()?;
            let cgroup = (*owned).clone();
            (Some(owned), cgroup)
        }
        Source::Cgroup(path) => (None, hierarchy.workload_cgroup(path)?),
        Source::Pid(pid) => (None, hierarchy.workload_of_pid(*pid)?),
    };
    if cgroup.level == 0 {
        tracing::warn!("recording the root cgroup: every process on the machine is recorded");
    }
    tracing::debug!(path = %cgroup.path.display(), id = cgroup.id, level = cgroup.level, "recording cgroup");
    let boundary = options.boundary || watch.is_some();
    // A pod's parent holds many cgroups; a command usually one.
    let slots = match options.source {
        Source::Command(_) => 256,
        Source::Cgroup(_) | Source::Pid(_) => 1024,
        Source::Pod(_) => capacity::RECORD_SLOTS,
    };
    let probe = Probe::attach(&ProbeConfig {
        target: cgroup.clone(),
        boundary,
        slots,
        pin: None,
        learn: options.learn,
        args: options.args,
        by_exe: options.by_exe,
    })?;
    // `-v` shows when the programs are in place: a caller that starts the
    // workload itself (--cgroup, --pid) knows from here on nothing is missed.
    tracing::info!(path = %cgroup.path.display(), "programs attached; recording");
    runtime
        .block_on(Session { probe, cgroup, owned, options, watch, harvested: Observation::default() }.run(checkpoint))
}
