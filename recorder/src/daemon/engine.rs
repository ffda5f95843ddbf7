//! One poll of the daemon: which cgroups exist and who they are (the
//! cgroup tree and the CRI), what each learned (the kernel's slot maps),
//! which are gone (folded into their workload, saved, and only then their
//! slots freed), and a snapshot when it is due.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use super::{
    identity::{Filter, Identity, workload_of},
    learned::{Calls, ContainerRecord},
    state::DaemonState,
    store::{Store, StoreError},
};
use crate::{
    bpf::{BpfError, Probe},
    cri::{self, ContainerState, Cri, ListedContainer, Sandbox},
    target::{Cgroup, container::id_of_dir},
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("reading the BPF maps failed: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error(transparent)]
    Bpf(#[from] BpfError),
}

/// What the engine knows between polls.
pub struct Engine {
    pub probe: Probe,
    pub parent: Cgroup,
    pub filter: Filter,
    pub store: Store,
    pub state: Arc<Mutex<DaemonState>>,
    pub endpoint: Option<PathBuf>,
    cri: Option<Cri>,
    /// cgroup id -> directory, from the last scan (kept after the cgroup is
    /// gone, so a container that lived between two polls is still named).
    paths: HashMap<u64, PathBuf>,
    sandboxes: HashMap<String, Sandbox>,
    containers: HashMap<String, ListedContainer>,
    /// Cgroups dropped in the kernel (pause containers, unwanted pods).
    ignored: BTreeSet<u64>,
    /// Gone cgroups folded into their workload whose slots are freed once a
    /// snapshot holds them.
    folded_pending: BTreeSet<u64>,
    last_slots_full: u64,
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Engine {
    pub fn new(
        probe: Probe,
        parent: Cgroup,
        filter: Filter,
        store: Store,
        state: Arc<Mutex<DaemonState>>,
        endpoint: Option<PathBuf>,
    ) -> Engine {
        Engine {
            probe,
            parent,
            filter,
            store,
            state,
            endpoint,
            cri: None,
            paths: HashMap::new(),
            sandboxes: HashMap::new(),
            containers: HashMap::new(),
            ignored: BTreeSet::new(),
            folded_pending: BTreeSet::new(),
            last_slots_full: 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DaemonState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the CRI for every sandbox and container; reconnects when the
    /// runtime restarted. Recording goes on in the kernel meanwhile.
    async fn sync_cri(&mut self) {
        if self.cri.is_none() {
            match cri::connect(self.endpoint.as_deref()).await {
                Ok(c) => {
                    tracing::info!(endpoint = %c.endpoint().display(), runtime = c.runtime_name(), "connected to the CRI");
                    self.cri = Some(c);
                }
                Err(e) => {
                    let mut state = self.lock();
                    // Once per outage, not once per poll.
                    if state.cri_connected || state.last_tick == 0 {
                        tracing::warn!(
                            "CRI unavailable, recording goes on and containers are named once it is back: {e}"
                        );
                    } else {
                        tracing::debug!("CRI still unavailable: {e}");
                    }
                    state.cri_connected = false;
                    return;
                }
            }
        }
        let Some(cri) = &self.cri else { return };
        let listed =
            async { Ok::<_, cri::CriError>((cri.list_sandboxes().await?, cri.list_all_containers().await?)) }.await;
        match listed {
            Ok((sandboxes, containers)) => {
                // Keep what was listed before too: a container the kubelet
                // removed between two polls is still named.
                self.sandboxes.extend(sandboxes.into_iter().map(|s| (s.id.clone(), s)));
                self.containers.extend(containers.into_iter().map(|c| (c.id.clone(), c)));
                self.lock().cri_connected = true;
            }
            Err(e) => {
                tracing::warn!("CRI poll failed, reconnecting on the next one: {e}");
                let mut state = self.lock();
                state.cri_connected = false;
                state.counters.cri_errors += 1;
                drop(state);
                self.cri = None;
            }
        }
    }

    /// Who the cgroup with directory `dir` is: a workload container, a
    /// pause container (`Err(())`), or not known yet (`Ok(None)`).
    fn identify(&self, dir: &std::path::Path) -> Result<Option<Identity>, ()> {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else { return Ok(None) };
        let id = id_of_dir(name);
        if self.sandboxes.contains_key(id) {
            return Err(());
        }
        let Some(c) = self.containers.get(id) else { return Ok(None) };
        let Some(sandbox) = self.sandboxes.get(&c.sandbox_id) else { return Ok(None) };
        let (workload, kind) = workload_of(&sandbox.name, &sandbox.labels);
        Ok(Some(Identity {
            namespace: sandbox.namespace.clone(),
            pod: sandbox.name.clone(),
            pod_uid: sandbox.uid.clone(),
            container: c.name.clone(),
            container_id: c.id.clone(),
            workload,
            kind,
            image: c.image.clone(),
            image_ref: c.image_ref.clone(),
            runtime_handler: sandbox.runtime_handler.clone(),
            labels: sandbox.labels.clone(),
        }))
    }

    /// One poll. Returns the number of gone containers folded.
    pub async fn poll(&mut self, snapshot_due: bool) -> Result<usize, EngineError> {
        let now = unix_now();
        // The slot table first, the tree second: a cgroup in the table that
        // the scan does not find was removed in between.
        let table = self.probe.slot_table()?;
        let alive: BTreeSet<u64> = self
            .parent
            .descendants()
            .into_iter()
            .map(|(id, path)| {
                self.paths.insert(id, path);
                id
            })
            .chain(std::iter::once(self.parent.id))
            .collect();
        self.sync_cri().await;
        let observation = self.probe.observe_cgroups(&table)?;
        let kernel = self.probe.stats()?;

        // Who is who, and who is not wanted.
        let mut to_ignore = Vec::new();
        let mut identities = BTreeMap::new();
        for id in table.keys() {
            if self.ignored.contains(id) || self.folded_pending.contains(id) {
                continue;
            }
            let known = self.lock().containers.get(id).is_some_and(|c| c.identity.is_some());
            if known {
                continue;
            }
            let Some(path) = self.paths.get(id) else { continue };
            match self.identify(path) {
                Err(()) => to_ignore.push(*id),
                Ok(Some(identity)) if !self.filter.wants(&identity) => to_ignore.push(*id),
                Ok(Some(identity)) => {
                    identities.insert(*id, identity);
                }
                Ok(None) => {}
            }
        }
        for id in to_ignore {
            self.probe.ignore(id)?;
            self.ignored.insert(id);
            self.lock().containers.remove(&id);
        }
        // One lookup per slot (the table has the slot already).
        let exec_sessions: BTreeSet<u64> = table
            .iter()
            .filter(|(_, slot)| {
                self.probe.state.get(slot, 0).is_ok_and(|s| s.flags & recorder_common::slot_flags::EXEC_SESSION != 0)
            })
            .map(|(id, _)| *id)
            .collect();

        // What each learned; who is gone.
        let gone: Vec<u64> = table
            .keys()
            .copied()
            .filter(|id| !alive.contains(id) && !self.ignored.contains(id) && !self.folded_pending.contains(id))
            .collect();
        let state_handle = self.state.clone();
        let mut state = state_handle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, _) in table.iter().filter(|(id, _)| !self.ignored.contains(id) && !self.folded_pending.contains(id)) {
            let calls = Calls::of(&observation, *id);
            let record = state.containers.entry(*id).or_insert_with(|| ContainerRecord {
                cgroup_id: *id,
                identity: None,
                calls: Calls::default(),
                first_seen: now,
                last_new_call: now,
                preexisting: false,
                exec_session: false,
                clean_stop: false,
            });
            if record.calls.union_with(&calls) {
                record.last_new_call = now;
            }
            // A container started while recorded has its runtime's setup
            // calls; one that was running already has none.
            record.preexisting = !record.calls.saw_startup();
            record.exec_session |= exec_sessions.contains(id);
            if let Some(identity) = identities.remove(id) {
                record.identity = Some(identity);
            }
        }
        for id in &gone {
            let clean = state.containers.get(id).and_then(|c| c.identity.as_ref()).is_some_and(|identity| {
                self.containers.get(&identity.container_id).is_some_and(|c| c.state == ContainerState::Exited)
            });
            if let Some(record) = state.containers.get_mut(id) {
                record.clean_stop = clean;
            }
            state.fold(*id, now);
        }
        self.folded_pending.extend(gone.iter().copied());
        if kernel.slots_full > self.last_slots_full {
            let unslotted: Vec<u64> = alive.iter().copied().filter(|id| !table.contains_key(id)).collect();
            state.note_slots_full(&unslotted);
            self.last_slots_full = kernel.slots_full;
        }
        state.slots_used = table.len() as u64;
        state.kernel = kernel;
        state.last_tick = now;
        state.ready = true;
        drop(state);

        // Gone cgroups leave the kernel maps only once a snapshot holds them.
        if snapshot_due || !self.folded_pending.is_empty() {
            match self.snapshot(now) {
                Ok(()) => {
                    let pending: Vec<u64> = std::mem::take(&mut self.folded_pending).into_iter().collect();
                    self.probe.release(&pending)?;
                    self.ignored.retain(|id| alive.contains(id));
                }
                Err(e) => tracing::error!("{e}"),
            }
        }
        Ok(gone.len())
    }

    /// Saves the state now, counting failures and timing it.
    pub fn snapshot(&self, now: u64) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let mut state = self.lock();
        let result = self.store.save(&state, now);
        state.counters.snapshot_seconds = started.elapsed().as_secs_f64();
        match &result {
            Ok(()) => state.counters.snapshots += 1,
            Err(_) => state.counters.persist_errors += 1,
        }
        result
    }

    /// A cgroup made its first syscall and took a slot (a ring buffer
    /// hint): learn its directory now, while it surely exists. A container
    /// that lives less than a poll interval (an init container, a crash
    /// loop) is then still named: the CRI keeps listing it after it exited.
    pub fn note_new_cgroup(&mut self, cgroup_id: u64) {
        if let Some(path) = self.parent.descendant_by_id(cgroup_id) {
            self.paths.insert(cgroup_id, path);
        }
    }

    /// A syscall seen for the first time in `cgroup_id` (a ring buffer
    /// hint): the workload is still learning.
    pub fn note_new_call(&self, cgroup_id: u64) {
        if let Some(record) = self.lock().containers.get_mut(&cgroup_id) {
            record.last_new_call = unix_now();
        }
    }
}
