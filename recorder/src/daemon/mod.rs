//! `recorder daemon`: learns a profile for every workload on a node,
//! continuously, and loses nothing.
//!
//! One BPF attach records every container under the kubelet's parent
//! cgroup, with the runtime boundary on. The learned maps and the program
//! links are pinned in bpffs, so the kernel keeps recording while the
//! daemon restarts or is upgraded, and the next daemon adopts them. What
//! was learned is snapshotted to `--state-dir` on an interval, when a
//! container is gone (before its slot is freed) and on SIGTERM. Containers
//! are named through the CRI (no API server), keyed by workload, and merged
//! across replicas and restarts. A read-only HTTP API serves the profiles.
//!
//! `identity` names containers and workloads, `learned` and `state` hold
//! what was learned, `engine` runs one poll, `store` saves it, `profiles`
//! turns it into seccomp profiles, `api` and `metrics` serve it, `bpffs`
//! makes sure pins have somewhere to go, `degraded` says why it could not
//! start without crash-looping.

pub mod api;
pub mod bpffs;
pub mod degraded;
pub mod engine;
pub mod identity;
pub mod learned;
pub mod metrics;
pub mod profiles;
pub mod state;
pub mod store;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use recorder_common::{Event, EventKind, Phase};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
};

use self::{
    engine::{Engine, EngineError, unix_now},
    identity::Filter,
    state::DaemonState,
    store::{Store, StoreError},
};
use crate::{
    bpf::{BpfError, Probe, ProbeConfig, events},
    target::{CgroupError, Hierarchy},
};

/// How the daemon runs.
#[derive(Clone, Debug)]
pub struct Config {
    pub state_dir: PathBuf,
    pub listen: SocketAddr,
    /// The kubelet's parent cgroup (default: kubepods.slice or kubepods).
    pub cgroup_parent: Option<PathBuf>,
    /// The host's cgroup v2 root mounted here (a pod with a private cgroup
    /// namespace); `None`: this process's own cgroup v2 mount.
    pub host_cgroup_root: Option<PathBuf>,
    pub runtime_endpoint: Option<PathBuf>,
    pub filter: Filter,
    /// A workload is stable after this long without a new syscall.
    pub stable_after: Duration,
    pub snapshot_interval: Duration,
    pub poll_interval: Duration,
    /// Cgroups tracked at once in the kernel.
    pub slots: u32,
    /// Where the learned maps and links are pinned (a bpffs directory).
    pub pin_dir: PathBuf,
    /// See calls that containers' own profiles deny (sys_exit pairing).
    pub learn_denials: bool,
    /// Attribute calls to executables (`--by-exe`).
    pub by_exe: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(
        "no kubelet parent cgroup (kubepods.slice or kubepods) under {0}; pass --cgroup-parent PATH (the daemon does not record a whole machine)"
    )]
    NoPodsParent(PathBuf),
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error(transparent)]
    Bpffs(#[from] bpffs::BpffsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot listen on {addr}: {source}; is another daemon using the port? pass --listen ADDR:PORT")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("event loop failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the daemon until SIGTERM or SIGINT; the kernel keeps recording
/// after it exits (the pins stay).
pub fn run(config: Config) -> Result<(), DaemonError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run_async(config))
}

async fn run_async(config: Config) -> Result<(), DaemonError> {
    let hierarchy = match &config.host_cgroup_root {
        Some(root) => Hierarchy::at_root(root)?,
        None => Hierarchy::find()?,
    };
    let parent = hierarchy
        .pods_parent(config.cgroup_parent.as_deref())?
        .ok_or_else(|| DaemonError::NoPodsParent(hierarchy.mount().to_path_buf()))?;
    bpffs::ensure(&config.pin_dir)?;
    let store = Store::open(&config.state_dir)?;
    let mut state = DaemonState::default();
    if let Some(saved) = store.load()? {
        tracing::info!(
            containers = saved.containers.len(),
            workloads = saved.workloads.len(),
            "resuming from the snapshot in {}",
            config.state_dir.display()
        );
        state.containers = saved.containers;
        state.workloads = saved.workloads;
        state.pod_history = saved.pod_history;
        state.counters = saved.counters;
    }
    state.slots_capacity = u64::from(config.slots);
    let mut probe = Probe::attach(&ProbeConfig {
        target: parent.clone(),
        boundary: true,
        slots: config.slots,
        pin: Some(config.pin_dir.clone()),
        learn: config.learn_denials,
        args: false,
        by_exe: config.by_exe,
    })?;
    if config.learn_denials {
        tracing::info!("calls that pods' own profiles deny are seen by {}", probe.learn_hook.describe());
    }
    state.learn_hook = probe.learn_hook.clone();
    if probe.adopted {
        tracing::info!("adopted the maps pinned in {}: nothing was lost while no daemon ran", config.pin_dir.display());
    }
    tracing::info!(parent = %parent.path.display(), "recording every container under the kubelet's parent cgroup");
    let ring = probe.take_events().ok_or(BpfError::Missing("EVENTS ring buffer"))?;
    // SAFETY: the RingBuf owns its map fd and nothing else closes or
    // replaces it while the AsyncFd holds it.
    let mut ring = unsafe { AsyncFd::register(ring) }.map_err(|e| e.into_parts().1)?;

    let state = Arc::new(Mutex::new(state));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| DaemonError::Listen { addr: config.listen, source })?;
    api::warn_if_exposed(&config.listen);
    let router = api::router(api::Api {
        state: state.clone(),
        stable_after: config.stable_after.as_secs(),
        by_exe: config.by_exe,
    });
    tokio::spawn(api::serve(listener, router));
    tracing::info!("serving the API on http://{}", config.listen);

    let mut engine = Engine::new(probe, parent, config.filter.clone(), store, state, config.runtime_endpoint.clone());
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut poll = tokio::time::interval(config.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_snapshot = std::time::Instant::now();
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                while let Some(item) = guard.get_inner_mut().next() {
                    match events::decode(&item) {
                        // A runtime's setup calls are not the workload learning.
                        Some(Event { kind: EventKind::SYSCALL, cgroup_id, phase, .. }) if phase != Phase::SETUP => {
                            engine.note_new_call(cgroup_id);
                        }
                        Some(Event { kind: EventKind::CGROUP, cgroup_id, .. }) => engine.note_new_cgroup(cgroup_id),
                        _ => {}
                    }
                }
                guard.clear_ready();
            }
            _ = poll.tick() => {
                let due = last_snapshot.elapsed() >= config.snapshot_interval;
                engine.poll(due).await?;
                if due {
                    last_snapshot = std::time::Instant::now();
                }
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    // A last poll and snapshot: nothing learned since the last one is lost.
    engine.poll(true).await?;
    engine.snapshot(unix_now())?;
    tracing::info!(
        "stopped; the kernel keeps recording until the next daemon adopts the pins in {}",
        config.pin_dir.display()
    );
    Ok(())
}
