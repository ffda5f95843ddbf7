//! Recording the containers of a Kubernetes pod, found through the CRI.
//!
//! A pod that already runs is recorded at its own cgroup (startup was not
//! observed, so the runtime's base set is added). A pod that does not exist
//! yet is recorded from before it starts: the probe watches the runtime's
//! parent cgroup (`kubepods`), keyed by each container's own cgroup, with
//! the runtime boundary on, so nothing between a container's start and the
//! moment we learn its name is lost.

pub mod names;
mod registry;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::{Duration, Instant},
};

use self::names::ContainerNames;
use crate::{
    cri::{self, Container, ContainerState, Cri, CriError, Pod, PodState},
    k8s_name::NameError,
    target::{
        cgroup::{Cgroup, CgroupError, Hierarchy},
        container::matches_id,
    },
};

/// What to record.
#[derive(Clone, Debug)]
pub struct PodSpec {
    pub name: String,
    pub namespace: Option<String>,
    /// Only this container (by name in the pod spec).
    pub container: Option<String>,
    pub endpoint: Option<PathBuf>,
    pub wait_timeout: Duration,
    /// Parent cgroup of all pods, for pods that do not exist yet.
    pub cgroup_parent: Option<PathBuf>,
    /// The profiles go to this one file, so the pod may have one container
    /// (refused as soon as the CRI lists a second one, not after recording).
    pub one_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error(transparent)]
    Cri(#[from] CriError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("several pods are named {name}, in namespaces {}; pass -n NAMESPACE", .namespaces.join(", "))]
    Ambiguous { name: String, namespaces: Vec<String> },
    #[error("pod {0} did not appear within --wait-timeout {1}; check the name and namespace (-n), or wait longer")]
    NotFound(String, String),
    #[error("pod {0} has no container named {1}; its containers are: {2}")]
    NoSuchContainer(String, String, String),
    #[error(
        "pod {pod} has {containers} containers; -o {} must be a directory (one <namespace>_<pod>_<container>.json each), or pick one with --container",
        .file.display()
    )]
    OneFile { pod: String, containers: usize, file: PathBuf },
    #[error("the CRI reported a name recorder will not use: {0}")]
    BadName(#[from] NameError),
}

/// The CRI went away while the pod was recorded: the recording went on
/// from the cgroups already known, and its result is partial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriLost {
    /// How long after the start.
    pub after: Duration,
    /// The failed call, in one line.
    pub error: String,
}

/// Progress of the watch, for the status line and the stop decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchState {
    Waiting,
    Recording {
        containers: usize,
    },
    /// The pod was seen and is gone (deleted or stopped, no container runs).
    Gone,
}

/// One container of the pod (by name), over all its attempts (restarts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerCgroups {
    pub name: String,
    /// Container ids seen for this name (one per attempt).
    pub attempts: usize,
    /// Every cgroup those attempts ran in.
    pub cgroups: Vec<u64>,
}

pub struct PodWatch {
    cri: Cri,
    spec: PodSpec,
    pod: Option<Pod>,
    /// Every container of the pod ever listed, by container id.
    containers: BTreeMap<String, Container>,
    /// cgroup ids learned from a running container's /proc/PID/cgroup.
    container_cgroups: BTreeMap<String, BTreeSet<u64>>,
    registry: registry::Registry,
    target: Cgroup,
    hierarchy: Hierarchy,
    started: Instant,
    last_poll: Option<Instant>,
    pub already_running: bool,
    cri_lost: Option<CriLost>,
}

impl std::fmt::Debug for PodWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodWatch").field("pod", &self.pod).field("target", &self.target).finish()
    }
}

/// How often the CRI is asked about the pod.
const POLL: Duration = Duration::from_millis(300);

impl PodWatch {
    /// Connects to the CRI, looks the pod up and chooses the cgroup to record.
    pub async fn connect(spec: PodSpec, hierarchy: &Hierarchy) -> Result<PodWatch, PodError> {
        let cri = cri::connect(spec.endpoint.as_deref()).await?;
        let pod = pick(&spec, cri.find_pods(&spec.name, spec.namespace.as_deref()).await?)?;
        let listed = pod.is_some();
        let (target, already_running) = match &pod {
            Some(pod) if pod.state == PodState::Ready => match cri.pod_cgroup_parent(pod, hierarchy).await? {
                Some(dir) => (hierarchy.open(&dir)?, true),
                None => (parent_cgroup(&spec, hierarchy)?, true),
            },
            _ => (parent_cgroup(&spec, hierarchy)?, false),
        };
        let mut watch = PodWatch {
            cri,
            spec,
            pod,
            containers: BTreeMap::new(),
            container_cgroups: BTreeMap::new(),
            registry: registry::Registry::default(),
            target,
            hierarchy: hierarchy.clone(),
            started: Instant::now(),
            last_poll: None,
            already_running,
            cri_lost: None,
        };
        // A pod that exists is checked before anything is recorded: its
        // names, and one container for one -o file.
        if let Some(pod) = watch.pod.clone().filter(|_| listed) {
            watch.list_containers(&pod).await?;
        }
        Ok(watch)
    }

    /// The cgroup the probe records (the pod's, or the parent of all pods).
    pub fn target(&self) -> &Cgroup {
        &self.target
    }

    /// Learns new cgroups right away (called on the probe's new-cgroup event).
    pub fn note_new_cgroup(&mut self) {
        self.registry.scan(&self.target);
    }

    /// Called every tick: maps cgroups, asks the CRI (rate-limited). Once
    /// the pod is known, a CRI that fails does not end the recording: it
    /// goes on from the cgroups already found, marked partial
    /// ([`PodWatch::cri_lost`]).
    pub async fn tick(&mut self) -> Result<WatchState, PodError> {
        self.registry.scan(&self.target);
        if self.cri_lost.is_some() {
            return Ok(self.state_without_cri());
        }
        // Every tick while waiting (a pod may start and finish quickly);
        // then at POLL intervals.
        if self.pod.is_some() && self.last_poll.is_some_and(|t| t.elapsed() < POLL) {
            return Ok(self.state_now());
        }
        self.last_poll = Some(Instant::now());
        match self.poll().await {
            Err(PodError::Cri(error)) if self.pod.is_some() => {
                let lost = CriLost { after: self.started.elapsed(), error: error.to_string() };
                tracing::warn!(
                    "the CRI failed {} into the recording ({}); recording goes on from the cgroups already found, and the profiles will be partial",
                    crate::text::human(lost.after),
                    lost.error
                );
                self.cri_lost = Some(lost);
                Ok(self.state_without_cri())
            }
            other => other,
        }
    }

    /// The CRI went away during the recording, if it did.
    pub fn cri_lost(&self) -> Option<&CriLost> {
        self.cri_lost.as_ref()
    }

    /// Without the CRI, a running pod's own cgroup still says when it is
    /// empty; a pod recorded from the parent of all pods records on until
    /// the time is up or it is stopped.
    fn state_without_cri(&self) -> WatchState {
        if self.already_running && self.target.populated().is_ok_and(|populated| !populated) {
            return WatchState::Gone;
        }
        self.state_now()
    }

    /// One look at the CRI: the pod, its containers, whether it is gone.
    async fn poll(&mut self) -> Result<WatchState, PodError> {
        if self.pod.is_none() {
            let found = self.cri.find_pods(&self.spec.name, self.spec.namespace.as_deref()).await?;
            if tracing::enabled!(tracing::Level::TRACE) {
                let all =
                    self.cri.runtime_client().list_pod_sandbox(cri::api::ListPodSandboxRequest { filter: None }).await;
                let all: Vec<String> = all
                    .map(|r| r.into_inner().items.into_iter().map(|p| format!("{:?}", p.labels)).collect())
                    .unwrap_or_default();
                tracing::trace!(?all, "all pods");
            }
            tracing::debug!(endpoint = %self.cri.endpoint().display(), found = found.len(), "waiting for the pod");
            self.pod = pick(&self.spec, found)?;
            if self.pod.is_none() {
                if self.started.elapsed() > self.spec.wait_timeout {
                    return Err(PodError::NotFound(self.display_name(), crate::text::human(self.spec.wait_timeout)));
                }
                return Ok(WatchState::Waiting);
            }
        }
        let Some(pod) = self.pod.clone() else { return Ok(WatchState::Waiting) };
        let running = self.list_containers(&pod).await?;
        let pods = self.cri.find_pods(&pod.name, Some(&pod.namespace)).await?;
        let alive = pods.iter().any(|p| p.id == pod.id && p.state == PodState::Ready);
        if !alive && !running {
            return Ok(WatchState::Gone);
        }
        Ok(self.state_now())
    }

    /// Lists the pod's containers, learns their cgroups and checks them
    /// (`--container`, names, one container for one file); returns whether
    /// one of them runs.
    async fn list_containers(&mut self, pod: &Pod) -> Result<bool, PodError> {
        let listed = self.cri.containers(&pod.id, &self.hierarchy).await?;
        tracing::debug!(pod = %pod.id, containers = listed.len(), "CRI poll");
        let running = listed.iter().any(|c| c.state == ContainerState::Running);
        for c in listed {
            if let Some(dir) = &c.cgroup
                && let Ok(meta) = std::fs::metadata(dir)
            {
                use std::os::unix::fs::MetadataExt as _;
                self.container_cgroups.entry(c.id.clone()).or_default().insert(meta.ino());
            }
            self.containers.insert(c.id.clone(), c);
        }
        if let Some(wanted) = &self.spec.container
            && !self.containers.is_empty()
            && !self.containers.values().any(|c| &c.name == wanted)
        {
            let have: BTreeSet<&str> = self.containers.values().map(|c| c.name.as_str()).collect();
            return Err(PodError::NoSuchContainer(
                self.display_name(),
                wanted.clone(),
                have.into_iter().collect::<Vec<_>>().join(", "),
            ));
        }
        let names: BTreeSet<&str> = self
            .containers
            .values()
            .filter(|c| self.spec.container.as_ref().is_none_or(|w| w == &c.name))
            .map(|c| c.name.as_str())
            .collect();
        for container in &names {
            ContainerNames { namespace: &pod.namespace, pod: &pod.name, container }.validate()?;
        }
        if let Some(file) = &self.spec.one_file
            && names.len() > 1
        {
            return Err(PodError::OneFile { pod: self.display_name(), containers: names.len(), file: file.clone() });
        }
        Ok(running)
    }

    fn state_now(&self) -> WatchState {
        if self.pod.is_none() {
            WatchState::Waiting
        } else {
            WatchState::Recording { containers: self.containers.len() }
        }
    }

    /// `namespace/name` (or just the name when no namespace was given).
    pub fn display_name(&self) -> String {
        match (&self.pod, &self.spec.namespace) {
            (Some(p), _) => format!("{}/{}", p.namespace, p.name),
            (None, Some(ns)) => format!("{ns}/{}", self.spec.name),
            (None, None) => self.spec.name.clone(),
        }
    }

    /// The pod as last seen.
    pub fn pod(&self) -> Option<&Pod> {
        self.pod.as_ref()
    }

    /// The pod's containers by name (restarts together), with every cgroup
    /// each ran in: the ids learned from the CRI and the cgroup directories
    /// named after their container ids.
    pub fn containers(&self) -> Vec<ContainerCgroups> {
        let mut by_name: BTreeMap<&str, Vec<&Container>> = BTreeMap::new();
        for c in self.containers.values() {
            if self.spec.container.as_ref().is_none_or(|w| w == &c.name) {
                by_name.entry(c.name.as_str()).or_default().push(c);
            }
        }
        by_name
            .into_iter()
            .map(|(name, attempts)| {
                let mut cgroups: BTreeSet<u64> = BTreeSet::new();
                for c in &attempts {
                    cgroups.extend(self.container_cgroups.get(&c.id).into_iter().flatten());
                    for (id, path) in self.registry.entries() {
                        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| matches_id(n, &c.id)) {
                            cgroups.insert(id);
                        }
                    }
                }
                ContainerCgroups {
                    name: name.to_owned(),
                    attempts: attempts.len(),
                    cgroups: cgroups.into_iter().collect(),
                }
            })
            .collect()
    }

    /// The init processes of the pod's running containers (as the CRI last
    /// reported them): where a stop or reload signal goes.
    pub fn main_pids(&self) -> Vec<i32> {
        self.containers
            .values()
            .filter(|c| c.state == ContainerState::Running)
            .filter_map(|c| c.pid.and_then(|p| i32::try_from(p).ok()))
            .collect()
    }

    /// The runtime binary the pod's handler stands for, when it says so.
    pub fn runtime(&self) -> Option<&'static str> {
        self.pod.as_ref().and_then(runtime_of)
    }
}

/// The runtime binary a pod's handler stands for, when the handler says so.
fn runtime_of(pod: &Pod) -> Option<&'static str> {
    match pod.runtime_handler.as_str() {
        "" | "runc" => Some("runc"),
        "crun" => Some("crun"),
        _ => None,
    }
}

/// One pod from the matches: several namespaces is an error without -n;
/// within one namespace the newest ready sandbox wins.
fn pick(spec: &PodSpec, mut pods: Vec<Pod>) -> Result<Option<Pod>, PodError> {
    let namespaces: BTreeSet<String> = pods.iter().map(|p| p.namespace.clone()).collect();
    if spec.namespace.is_none() && namespaces.len() > 1 {
        return Err(PodError::Ambiguous { name: spec.name.clone(), namespaces: namespaces.into_iter().collect() });
    }
    pods.sort_by_key(|p| (p.state == PodState::Ready, p.created_at));
    Ok(pods.pop())
}

/// The parent cgroup of all pods: --cgroup-parent, else the kubelet's
/// (`kubepods.slice` with the systemd driver, `kubepods` with cgroupfs), else
/// the whole hierarchy (correct, but every cgroup is then recorded).
fn parent_cgroup(spec: &PodSpec, hierarchy: &Hierarchy) -> Result<Cgroup, PodError> {
    if let Some(parent) = hierarchy.pods_parent(spec.cgroup_parent.as_deref())? {
        return Ok(parent);
    }
    tracing::warn!(
        "no kubepods cgroup under {}; recording every cgroup until the pod appears (pass --cgroup-parent to narrow it)",
        hierarchy.mount().display()
    );
    Ok(hierarchy.open(hierarchy.mount())?)
}
