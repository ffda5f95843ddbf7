//! A recording session: pick the cgroup, attach the probe, run until the
//! workload ends, the time is up or we are told to stop, then read the map.

mod child;
pub mod status;

use std::{
    collections::BTreeSet,
    io,
    os::unix::process::ExitStatusExt as _,
    path::PathBuf,
    process::ExitStatus,
    time::{Duration, Instant},
};

use recorder_common::{Abi, Event, EventKind};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
};

use self::status::{Progress, StatusLine};
use crate::{
    bpf::{BpfError, Observation, Probe, Stats, events},
    target::{
        Cgroup, CgroupError, Command, Hierarchy, OwnedCgroup,
        pod::{PodError, PodSpec, PodWatch, WatchState},
    },
    text,
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
    /// On a deliberate stop of a command we started: how long its processes
    /// get after SIGTERM (still recorded) before they are killed.
    pub grace: Duration,
    /// Draw the live status line (if stderr is a terminal).
    pub status: bool,
    /// Treat cgroups below the target as containers and split off their
    /// runtime's setup (`recorder_common::phase`).
    pub boundary: bool,
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
        Source::Cgroup(path) => (None, hierarchy.open(path)?),
        Source::Pid(pid) => (None, hierarchy.cgroup_of_pid(*pid)?),
    };
    if cgroup.level == 0 {
        tracing::warn!("recording the root cgroup: every process on the machine is recorded");
    }
    tracing::debug!(path = %cgroup.path.display(), id = cgroup.id, level = cgroup.level, "recording cgroup");
    let boundary = options.boundary || watch.is_some();
    let probe = Probe::attach(&cgroup, boundary)?;
    runtime.block_on(Session { probe, cgroup, owned, options, watch }.run())
}

struct Session {
    probe: Probe,
    cgroup: Cgroup,
    owned: Option<OwnedCgroup>,
    options: Options,
    watch: Option<PodWatch>,
}

/// How often the status line refreshes and the cgroup is checked.
const TICK: Duration = Duration::from_millis(100);
/// How often the map is re-read so the live count covers lost events.
const RECONCILE_EVERY: u32 = 10;

impl Session {
    async fn run(mut self) -> Result<Recording, RecordError> {
        let started = Instant::now();
        let status = StatusLine::new(self.options.status);
        let ring = self.probe.take_events().ok_or(BpfError::Missing("EVENTS ring buffer"))?;
        // SAFETY: the RingBuf owns its map fd and nothing else closes or
        // replaces it while the AsyncFd holds it.
        let mut ring = unsafe { AsyncFd::register(ring) }.map_err(|e| e.into_parts().1)?;
        let mut logger = match self.probe.take_logger() {
            // SAFETY: the logger owns its ring buffer map fd; nothing else
            // closes or replaces it while the AsyncFd holds it.
            Some(l) => Some(unsafe { AsyncFd::register(l) }.map_err(|e| e.into_parts().1)?),
            None => None,
        };
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;

        let initial_procs = self.cgroup.procs()?.len() as u64;
        let startup_observed = match &self.watch {
            Some(w) => !w.already_running,
            None => matches!(self.options.source, Source::Command(_)),
        };
        let mut child = match &self.options.source {
            Source::Command(command) => Some(
                child::spawn_into(command, &self.cgroup)
                    .map_err(|source| RecordError::Spawn { program: command.program.display().to_string(), source })?,
            ),
            _ => None,
        };
        let base_procs = if child.is_some() { 1 } else { initial_procs };

        let deadline = self.options.duration.map(|d| tokio::time::Instant::now() + d);
        let sleep = tokio::time::sleep_until(deadline.unwrap_or_else(far_future));
        tokio::pin!(sleep);
        let mut tick = tokio::time::interval(TICK);
        let mut seen: BTreeSet<(Abi, u32)> = BTreeSet::new();
        let mut exit_status = None;
        let mut ticks = 0u32;
        let mut was_populated = child.is_some() || initial_procs > 0;

        let stop = loop {
            tokio::select! {
                guard = ring.readable_mut() => {
                    let mut guard = guard?;
                    while let Some(item) = guard.get_inner_mut().next() {
                        if let Some(event) = events::decode(&item) {
                            note_event(&event, &mut seen);
                            if event.kind == EventKind::CGROUP && let Some(w) = self.watch.as_mut() {
                                w.note_new_cgroup();
                            }
                        }
                    }
                    guard.clear_ready();
                }
                guard = logger_ready(&mut logger) => {
                    let mut guard = guard?;
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
                result = wait_child(&mut child), if child.is_some() && exit_status.is_none() => {
                    exit_status = Some(result?);
                }
                _ = sigint.recv() => break Stop::Signal(libc::SIGINT),
                _ = sigterm.recv() => break Stop::Signal(libc::SIGTERM),
                _ = &mut sleep, if deadline.is_some() => break Stop::Duration,
                _ = tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    if ticks.is_multiple_of(RECONCILE_EVERY) {
                        seen.extend(self.probe.observe()?.distinct());
                    }
                    let forks = self.probe.stats()?.forks;
                    let progress = Progress {
                        elapsed: started.elapsed(),
                        remaining: self.options.duration.map(|d| d.saturating_sub(started.elapsed())),
                        syscalls: seen.len(),
                        processes: base_procs + forks,
                    };
                    if let Some(w) = self.watch.as_mut() {
                        match w.tick().await? {
                            WatchState::Waiting => {
                                status.message(&format!("waiting for pod {} ({}; --wait-timeout)", w.display_name(), text::human(started.elapsed())));
                                continue;
                            }
                            WatchState::Gone => break Stop::Emptied,
                            WatchState::Recording { .. } => {}
                        }
                        status.update(progress);
                        continue;
                    }
                    status.update(progress);
                    // A cgroup that has not held a process yet (a parent
                    // waiting for containers) is not "empty" in this sense.
                    let populated = self.cgroup.populated()?;
                    was_populated |= populated;
                    let command_done = child.is_none() || exit_status.is_some();
                    if command_done && was_populated && !populated {
                        break Stop::Emptied;
                    }
                }
            }
        };

        if let (true, Some(owned)) = (stop != Stop::Emptied, &self.owned) {
            status.message("stopping: SIGTERM sent to the recorded processes");
            self.graceful_stop(owned, &mut sigint, &mut sigterm).await?;
        }
        if let (Some(c), None) = (child.as_mut(), exit_status) {
            // The command may have ended during the graceful stop.
            exit_status = c.try_wait()?;
        }
        // The map is the source of truth; read it once everything is done.
        let observation = self.probe.observe()?;
        let stats = self.probe.stats()?;
        status.finish();
        let cgroup = self.cgroup.path.clone();
        // Kill leftovers and remove our cgroup before returning.
        drop(self.owned.take());
        if let (Some(mut c), None) = (child, exit_status) {
            exit_status = c.wait().await.ok();
        }
        Ok(Recording {
            observation,
            stats,
            stop,
            exit_status,
            elapsed: started.elapsed(),
            processes: base_procs + stats.forks,
            startup_observed,
            cgroup,
            cpu: own_cpu_time(),
            pod: self.watch.take(),
        })
    }

    /// SIGTERM everything we started and keep recording until it exits, the
    /// grace period ends, or a second signal arrives.
    async fn graceful_stop(
        &self,
        owned: &OwnedCgroup,
        sigint: &mut tokio::signal::unix::Signal,
        sigterm: &mut tokio::signal::unix::Signal,
    ) -> Result<(), RecordError> {
        owned.signal_all(libc::SIGTERM)?;
        let grace = tokio::time::sleep(self.options.grace);
        tokio::pin!(grace);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                _ = &mut grace => return Ok(()),
                _ = sigint.recv() => return Ok(()),
                _ = sigterm.recv() => return Ok(()),
                _ = tick.tick() => if !owned.populated()? { return Ok(()) },
            }
        }
    }
}

fn note_event(event: &Event, seen: &mut BTreeSet<(Abi, u32)>) {
    match event.kind {
        EventKind::SYSCALL => {
            seen.insert((event.abi, event.nr));
        }
        EventKind::CGROUP => tracing::debug!(cgroup = event.cgroup_id, "new cgroup in the recording"),
        EventKind::FORK => tracing::trace!(parent = event.tgid, "fork"),
        EventKind::EXEC => tracing::debug!(pid = event.tgid, comm = %comm(event.tgid), "exec"),
        EventKind::BOUNDARY => {
            tracing::debug!(cgroup = event.cgroup_id, pid = event.tgid, comm = %comm(event.tgid), "container workload starts")
        }
        other => tracing::debug!(kind = ?other, "unknown event"),
    }
}

async fn logger_ready(
    logger: &mut Option<AsyncFd<crate::bpf::loader::Logger>>,
) -> io::Result<tokio::io::unix::AsyncFdReadyMutGuard<'_, crate::bpf::loader::Logger>> {
    match logger {
        Some(l) => l.readable_mut().await,
        None => std::future::pending().await,
    }
}

async fn wait_child(child: &mut Option<tokio::process::Child>) -> io::Result<ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// User + system CPU time of this process (not its children).
fn own_cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}
