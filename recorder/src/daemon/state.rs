//! The daemon's memory: live containers by cgroup id, folded workloads, and
//! the last pods' own calls. Shared with the HTTP API behind one mutex,
//! held only for short, bounded work.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::{
    identity::{Identity, WorkloadKey},
    learned::{Calls, ContainerRecord, PartialReason, State, WorkloadRecord},
};
use crate::bpf::Stats;

/// A workload generation is (key, image_ref).
pub type GenerationKey = (WorkloadKey, String);

/// Pods whose own calls stay queryable after they are gone.
const POD_HISTORY: usize = 1024;

/// A pod's own container calls, kept after it is gone.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PodCalls {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub calls: Calls,
    pub startup_seen: bool,
    pub clean_stop: bool,
    pub runtime_handler: String,
}

/// Counters the metrics report (per node, bounded cardinality).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Counters {
    pub persist_errors: u64,
    pub snapshots: u64,
    /// Seconds the last snapshot took.
    pub snapshot_seconds: f64,
    pub containers_folded: u64,
    /// Containers folded without knowing who they were.
    pub unattributed: u64,
    pub cri_errors: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DaemonState {
    /// Live (or not yet folded) containers, by cgroup id.
    pub containers: BTreeMap<u64, ContainerRecord>,
    /// Gone containers, folded per workload generation.
    pub workloads: BTreeMap<String, WorkloadRecord>,
    /// The most recent gone pods' own calls.
    pub pod_history: VecDeque<PodCalls>,
    pub counters: Counters,
    /// Slot use, from the last poll.
    #[serde(skip)]
    pub slots_used: u64,
    #[serde(skip)]
    pub slots_capacity: u64,
    #[serde(skip)]
    pub kernel: Stats,
    /// The first CRI poll and attach are done.
    #[serde(skip)]
    pub ready: bool,
    /// Unix seconds of the last loop tick (for /healthz).
    #[serde(skip)]
    pub last_tick: u64,
    #[serde(skip)]
    pub cri_connected: bool,
    /// What sees the calls pods' own profiles deny.
    #[serde(skip)]
    pub learn_hook: crate::bpf::LearnHook,
}

/// The map key of a workload generation (stable text, for JSON).
pub fn generation_id(key: &WorkloadKey, image_ref: &str) -> String {
    format!("{}/{}/{}@{image_ref}", key.namespace, key.workload, key.container)
}

/// A workload generation as the API shows it: folded containers plus the
/// live ones.
#[derive(Clone, Debug)]
pub struct WorkloadView {
    pub record: WorkloadRecord,
    pub state: State,
    pub live_replicas: usize,
}

impl DaemonState {
    /// Folds a gone container into its workload (and the pod history), and
    /// forgets it. Without an identity it is only counted.
    pub fn fold(&mut self, cgroup_id: u64, now: u64) {
        let Some(record) = self.containers.remove(&cgroup_id) else { return };
        self.counters.containers_folded += 1;
        let Some(identity) = record.identity.clone() else {
            if record.calls.profile_len() > 0 {
                self.counters.unattributed += 1;
                tracing::warn!(cgroup = cgroup_id, "a container that was never named is gone; its calls are dropped");
            }
            return;
        };
        let id = generation_id(&identity.key(), &identity.image_ref);
        self.workloads.entry(id).or_insert_with(|| WorkloadRecord::new(&identity, now)).fold(&record);
        self.remember_pod(&identity, &record);
    }

    fn remember_pod(&mut self, identity: &Identity, record: &ContainerRecord) {
        if let Some(existing) = self
            .pod_history
            .iter_mut()
            .find(|p| p.namespace == identity.namespace && p.pod == identity.pod && p.container == identity.container)
        {
            existing.calls.union_with(&record.calls);
            existing.startup_seen |= !record.preexisting;
            existing.clean_stop |= record.clean_stop;
            return;
        }
        if self.pod_history.len() >= POD_HISTORY {
            self.pod_history.pop_front();
        }
        self.pod_history.push_back(PodCalls {
            namespace: identity.namespace.clone(),
            pod: identity.pod.clone(),
            container: identity.container.clone(),
            calls: record.calls.clone(),
            startup_seen: !record.preexisting,
            clean_stop: record.clean_stop,
            runtime_handler: identity.runtime_handler.clone(),
        });
    }

    /// Every workload generation, folded and live together.
    pub fn views(&self, now: u64, stable_after: u64) -> BTreeMap<String, WorkloadView> {
        let mut views: BTreeMap<String, WorkloadView> = self
            .workloads
            .iter()
            .map(|(id, r)| (id.clone(), WorkloadView { record: r.clone(), state: State::Learning, live_replicas: 0 }))
            .collect();
        for c in self.containers.values() {
            let Some(identity) = &c.identity else { continue };
            let id = generation_id(&identity.key(), &identity.image_ref);
            let view = views.entry(id).or_insert_with(|| WorkloadView {
                record: WorkloadRecord::new(identity, c.first_seen),
                state: State::Learning,
                live_replicas: 0,
            });
            view.record.fold(c);
            view.record.pods_folded -= 1;
            view.live_replicas += 1;
        }
        for view in views.values_mut() {
            view.state = State::of(&view.record, now, stable_after);
        }
        views
    }

    /// One pod's container calls (restarts together), live or remembered.
    pub fn pod_calls(&self, namespace: &str, pod: &str, container: &str) -> Option<PodCalls> {
        let mut found: Option<PodCalls> = self
            .pod_history
            .iter()
            .rev()
            .find(|p| p.namespace == namespace && p.pod == pod && p.container == container)
            .cloned();
        for c in self.containers.values() {
            let Some(id) = &c.identity else { continue };
            if id.namespace == namespace && id.pod == pod && id.container == container {
                let entry = found.get_or_insert_with(|| PodCalls {
                    namespace: namespace.to_owned(),
                    pod: pod.to_owned(),
                    container: container.to_owned(),
                    calls: Calls::default(),
                    startup_seen: false,
                    clean_stop: false,
                    runtime_handler: id.runtime_handler.clone(),
                });
                entry.calls.union_with(&c.calls);
                entry.startup_seen |= !c.preexisting;
            }
        }
        found
    }

    /// Marks the workloads of containers that found no free slot as partial.
    pub fn note_slots_full(&mut self, unslotted: &[Identity], now: u64) {
        for identity in unslotted {
            let gid = generation_id(&identity.key(), &identity.image_ref);
            if !self.workloads.get(&gid).is_some_and(|w| w.reasons.contains(&PartialReason::SlotsFull)) {
                tracing::warn!(
                    "{}/{} ({}) found no free slot: its calls are not recorded and its workload is partial; raise --max-containers",
                    identity.namespace,
                    identity.pod,
                    identity.container
                );
            }
            self.workloads
                .entry(gid)
                .or_insert_with(|| WorkloadRecord::new(identity, now))
                .reasons
                .insert(PartialReason::SlotsFull);
        }
    }
}
