//! The event loop of one recording. [`Session::watch_until`] records until
//! the workload ends, a deadline passes or we are told to stop; `run`
//! strings those waits together: the recording itself, the exercise
//! signals, the stop signal and its grace period, and (`--until-exit`) the
//! wait for a workload recorder does not own to end by itself.

use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    process::ExitStatus,
    time::{Duration, Instant},
};

use recorder_common::{Abi, Event, EventKind};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{Signal as SignalStream, SignalKind, signal},
};

use super::{
    Options, RecordError, Recording, Source, Stop, child,
    status::{Progress, StatusLine},
    stop::{self, Ending, Exercise},
};
use crate::{
    bpf::{BpfError, Observation, Probe, events, loader::Logger},
    target::{Cgroup, OwnedCgroup, pod::PodWatch, pod::WatchState},
    text,
};

/// How often the status line refreshes and the cgroup is checked.
const TICK: Duration = Duration::from_millis(100);
/// How often the map is re-read so the live count covers lost events.
const RECONCILE_EVERY: u32 = 10;

pub(super) struct Session {
    pub probe: Probe,
    pub cgroup: Cgroup,
    pub owned: Option<OwnedCgroup>,
    pub options: Options,
    pub watch: Option<PodWatch>,
    /// What cgroups that are gone recorded; their slots were freed.
    pub harvested: Observation,
}

/// What the waits share.
struct Loop {
    ring: AsyncFd<aya::maps::RingBuf<aya::maps::MapData>>,
    logger: Option<AsyncFd<Logger>>,
    sigint: SignalStream,
    sigterm: SignalStream,
    status: StatusLine,
    started: Instant,
    child: Option<tokio::process::Child>,
    exit_status: Option<ExitStatus>,
    seen: BTreeSet<(Abi, u32)>,
    ticks: u32,
    was_populated: bool,
    base_procs: u64,
}

impl Session {
    pub async fn run(mut self, checkpoint: &mut dyn FnMut(&Recording)) -> Result<Recording, RecordError> {
        let ring = self.probe.take_events().ok_or(BpfError::Missing("EVENTS ring buffer"))?;
        // SAFETY: the RingBuf owns its map fd and nothing else closes or
        // replaces it while the AsyncFd holds it.
        let ring = unsafe { AsyncFd::register(ring) }.map_err(|e| e.into_parts().1)?;
        let logger = match self.probe.take_logger() {
            // SAFETY: the logger owns its ring buffer map fd; nothing else
            // closes or replaces it while the AsyncFd holds it.
            Some(l) => Some(unsafe { AsyncFd::register(l) }.map_err(|e| e.into_parts().1)?),
            None => None,
        };
        let initial_procs = self.cgroup.procs().map_or(0, |p| p.len()) as u64;
        let child = match &self.options.source {
            Source::Command(command) => Some(
                child::spawn_into(command, &self.cgroup, self.options.enforce.as_deref())
                    .map_err(|source| RecordError::Spawn { program: command.program.display().to_string(), source })?,
            ),
            _ => None,
        };
        let mut st = Loop {
            ring,
            logger,
            sigint: signal(SignalKind::interrupt())?,
            sigterm: signal(SignalKind::terminate())?,
            status: StatusLine::new(self.options.status),
            started: Instant::now(),
            was_populated: child.is_some() || initial_procs > 0,
            base_procs: if child.is_some() { 1 } else { initial_procs },
            child,
            exit_status: None,
            seen: BTreeSet::new(),
            ticks: 0,
        };

        let deadline = self.options.duration.map(|d| st.started + d);
        let stop = self.watch_until(&mut st, deadline).await?;
        let ending = match stop {
            Stop::Emptied => Ending::Exited,
            Stop::Duration | Stop::Signal(_) => self.end(&mut st, stop, checkpoint).await?,
        };
        if let (Some(c), None) = (st.child.as_mut(), st.exit_status) {
            // The command may have ended while it was being stopped.
            st.exit_status = c.try_wait()?;
        }
        let mut recording = self.snapshot(&st, stop, ending)?;
        st.status.finish();
        // Kill leftovers and remove our cgroup before returning.
        drop(self.owned.take());
        if let (Some(mut c), None) = (st.child.take(), st.exit_status) {
            recording.exit_status = c.wait().await.ok();
        }
        recording.pod = self.watch.take();
        Ok(recording)
    }

    /// After `--duration` or Ctrl-C: the exercise signals, then the stop
    /// signal and its grace period (for a command recorder started, or
    /// when `stop` was asked for), then `--until-exit`.
    async fn end(
        &mut self,
        st: &mut Loop,
        stop: Stop,
        checkpoint: &mut dyn FnMut(&Recording),
    ) -> Result<Ending, RecordError> {
        let policy = self.options.stop.clone();
        for exercise in policy.exercises.iter().filter(|e| **e != Exercise::Stop) {
            let Some(signal) = exercise.signal() else { continue };
            let pids = self.main_pids(st);
            let reached = stop::send(signal, &pids);
            tracing::info!("exercise: {signal} sent to {reached} main process(es) {pids:?}");
            st.status
                .message(&format!("exercising: {signal} sent; recording for {}", text::human(policy.exercise_wait)));
            match self.watch_until(st, Some(Instant::now() + policy.exercise_wait)).await? {
                Stop::Emptied => return Ok(Ending::Exited),
                Stop::Signal(_) => break,
                Stop::Duration => {}
            }
        }
        if self.owned.is_some() || policy.exercises.contains(&Exercise::Stop) {
            let pids = self.main_pids(st);
            let sent_at = Instant::now();
            let reached = stop::send(policy.signal, &pids);
            tracing::info!("stop: {} sent to {reached} main process(es) {pids:?}", policy.signal);
            st.status.message(&format!(
                "stopping: {} sent to the main process; recording its shutdown (up to {}, Ctrl-C kills it now)",
                policy.signal,
                text::human(policy.grace)
            ));
            if self.watch_until(st, Some(sent_at + policy.grace)).await? == Stop::Emptied {
                return Ok(Ending::Stopped { signal: policy.signal, after: sent_at.elapsed() });
            }
            return Ok(match &self.owned {
                Some(owned) => {
                    owned.kill_all(Duration::from_secs(5))?;
                    Ending::Killed { signal: policy.signal, grace: policy.grace }
                }
                None => Ending::Survived { signal: policy.signal, grace: policy.grace },
            });
        }
        if policy.until_exit && stop == Stop::Duration {
            let mut interim = self.snapshot(st, stop, Ending::Running)?;
            interim.pod = self.watch.take();
            checkpoint(&interim);
            self.watch = interim.pod.take();
            st.status.message("profile written; recording on until the workload ends (Ctrl-C stops)");
            if self.watch_until(st, None).await? == Stop::Emptied {
                return Ok(Ending::Exited);
            }
        }
        Ok(Ending::Running)
    }

    /// The process(es) a signal for "the workload" goes to: the command we
    /// started while it runs, the pod's containers' init processes, else
    /// the roots of the process trees in the cgroup.
    fn main_pids(&self, st: &Loop) -> Vec<i32> {
        if let (Some(child), None) = (&st.child, st.exit_status)
            && let Some(pid) = child.id()
        {
            return vec![pid as i32];
        }
        if let Some(watch) = &self.watch {
            return watch.main_pids();
        }
        stop::main_processes(&self.cgroup)
    }

    /// The recording so far, read from the maps (the source of truth).
    fn snapshot(&self, st: &Loop, stop: Stop, ending: Ending) -> Result<Recording, RecordError> {
        let mut observation = self.harvested.clone();
        observation.merge(self.probe.observe()?);
        let stats = self.probe.stats()?;
        Ok(Recording {
            observation,
            stats,
            stop,
            ending,
            exit_status: st.exit_status,
            elapsed: st.started.elapsed(),
            processes: st.base_procs + stats.forks,
            startup_observed: self.startup_observed(),
            cgroup: self.cgroup.path.clone(),
            cpu: own_cpu_time(),
            pod: None,
            denials: self.probe.denials()?,
            learn_hook: self.probe.learn_hook.clone(),
        })
    }

    /// Reads the sets of cgroups that are gone and frees their slots, so a
    /// recording outlives any number of short-lived cgroups.
    fn harvest(&mut self) -> Result<(), RecordError> {
        // The table first, the tree second: a cgroup in the table that the
        // scan does not find was removed in between.
        let table = self.probe.slot_table()?;
        let alive: BTreeSet<u64> =
            std::iter::once(self.cgroup.id).chain(self.cgroup.descendants().into_iter().map(|(id, _)| id)).collect();
        let gone: BTreeMap<u64, u32> = table.into_iter().filter(|(id, _)| !alive.contains(id)).collect();
        if gone.is_empty() {
            return Ok(());
        }
        if let Some(watch) = self.watch.as_mut() {
            // Learn their names before they are forgotten.
            watch.note_new_cgroup();
        }
        self.harvested.merge(self.probe.observe_cgroups(&gone)?);
        let ids: Vec<u64> = gone.into_keys().collect();
        let released = self.probe.release(&ids)?;
        tracing::debug!(released, "harvested the slots of cgroups that are gone");
        Ok(())
    }

    fn startup_observed(&self) -> bool {
        match &self.watch {
            Some(w) => !w.already_running,
            None => matches!(self.options.source, Source::Command(_)),
        }
    }

    /// Records until the workload ends (`Emptied`), `deadline` passes
    /// (`Duration`) or SIGINT/SIGTERM arrives (`Signal`).
    async fn watch_until(&mut self, st: &mut Loop, deadline: Option<Instant>) -> Result<Stop, RecordError> {
        let sleep = tokio::time::sleep_until(deadline.map(tokio::time::Instant::from_std).unwrap_or_else(far_future));
        tokio::pin!(sleep);
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                guard = st.ring.readable_mut() => {
                    let mut guard = guard?;
                    while let Some(item) = guard.get_inner_mut().next() {
                        if let Some(event) = events::decode(&item) {
                            note_event(&event, &mut st.seen);
                            if event.kind == EventKind::CGROUP && let Some(w) = self.watch.as_mut() {
                                w.note_new_cgroup();
                            }
                        }
                    }
                    guard.clear_ready();
                }
                guard = logger_ready(&mut st.logger) => {
                    let mut guard = guard?;
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
                result = wait_child(&mut st.child), if st.child.is_some() && st.exit_status.is_none() => {
                    st.exit_status = Some(result?);
                }
                _ = st.sigint.recv() => return Ok(Stop::Signal(libc::SIGINT)),
                _ = st.sigterm.recv() => return Ok(Stop::Signal(libc::SIGTERM)),
                _ = &mut sleep, if deadline.is_some() => return Ok(Stop::Duration),
                _ = tick.tick() => {
                    if let Some(stop) = self.on_tick(st).await? {
                        return Ok(stop);
                    }
                }
            }
        }
    }

    /// The periodic part of the loop: status line, pod watch, emptiness.
    async fn on_tick(&mut self, st: &mut Loop) -> Result<Option<Stop>, RecordError> {
        st.ticks = st.ticks.wrapping_add(1);
        if st.ticks.is_multiple_of(RECONCILE_EVERY) {
            self.harvest()?;
            st.seen.extend(self.probe.observe()?.distinct());
        }
        let forks = self.probe.stats()?.forks;
        let progress = Progress {
            elapsed: st.started.elapsed(),
            remaining: self.options.duration.map(|d| d.saturating_sub(st.started.elapsed())),
            syscalls: st.seen.len(),
            processes: st.base_procs + forks,
        };
        if let Some(w) = self.watch.as_mut() {
            match w.tick().await? {
                WatchState::Waiting => {
                    st.status.message(&format!(
                        "waiting for pod {} ({}; --wait-timeout)",
                        w.display_name(),
                        text::human(st.started.elapsed())
                    ));
                    return Ok(None);
                }
                WatchState::Gone => return Ok(Some(Stop::Emptied)),
                WatchState::Recording { .. } => {}
            }
            st.status.update(progress);
            return Ok(None);
        }
        st.status.update(progress);
        // A cgroup that has not held a process yet (a parent waiting for
        // containers) is not "empty" in this sense.
        let populated = match self.cgroup.populated() {
            Ok(populated) => populated,
            // Removed under us (only an empty cgroup can be): the workload is gone.
            Err(_) if !self.cgroup.path.exists() => false,
            Err(e) => return Err(e.into()),
        };
        st.was_populated |= populated;
        let command_done = st.child.is_none() || st.exit_status.is_some();
        Ok((command_done && st.was_populated && !populated).then_some(Stop::Emptied))
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
    logger: &mut Option<AsyncFd<Logger>>,
) -> io::Result<tokio::io::unix::AsyncFdReadyMutGuard<'_, Logger>> {
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
