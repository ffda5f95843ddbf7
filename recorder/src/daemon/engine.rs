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
    bpf::{BpfError, Probe, by_exe_owned},
    cri::{self, ContainerState, Cri, ListedContainer, Sandbox},
    profile::attribution::{Executables, union_executables},
    syscalls::Family,
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
    /// cgroup id -> directory, from the scans (kept after the cgroup is gone
    /// until its slot is freed, so a container that lived between two polls
    /// is still named).
    paths: HashMap<u64, PathBuf>,
    /// What the CRI listed, with the number of the listing that last had it
    /// (kept a while after the kubelet removed it, so a container removed
    /// between two polls is still named; then forgotten).
    sandboxes: HashMap<String, (Sandbox, u64)>,
    containers: HashMap<String, (ListedContainer, u64)>,
    /// Successful CRI listings so far.
    listings: u64,
    /// Cgroups dropped in the kernel (pause containers, unwanted pods).
    ignored: BTreeSet<u64>,
    /// Gone cgroups folded into their workload whose slots are freed once a
    /// snapshot holds them.
    folded_pending: BTreeSet<u64>,
    /// Gone containers whose exit the CRI has not reported yet: polls waited.
    exit_waits: HashMap<u64, u32>,
}

/// What `--by-exe` calls processes whose exec the kernel did not see.
const EXEC_NOT_SEEN_BY_DAEMON: &str = "(exec not seen: started before the daemon first ran with --by-exe)";

/// Listings a removed sandbox or container is remembered for.
const FORGET_AFTER_LISTINGS: u64 = 60;

/// Polls a gone container waits for the CRI to report how it exited before
/// it is folded as not cleanly stopped. The runtime removes a container's
/// cgroup before the CRI records the exit (containerd deletes the task,
/// then updates the status), so the first poll that misses the cgroup can
/// still see the container running.
const EXIT_WAIT_POLLS: u32 = 10;

/// How a gone container ended, as far as the CRI says.
enum Ended {
    /// Exited with this code (0: its shutdown ran to the end).
    Exited(i32),
    /// Still listed as running: ask again on the next poll.
    NotYet,
    /// Unknown (never named, removed, or the CRI is unavailable).
    Unknown,
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
            listings: 0,
            ignored: BTreeSet::new(),
            folded_pending: BTreeSet::new(),
            exit_waits: HashMap::new(),
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
                // Keep what was listed before too, for a while: a container
                // the kubelet removed between two polls is still named.
                self.listings += 1;
                let n = self.listings;
                self.sandboxes.extend(sandboxes.into_iter().map(|s| (s.id.clone(), (s, n))));
                self.containers.extend(containers.into_iter().map(|c| (c.id.clone(), (c, n))));
                self.sandboxes.retain(|_, (_, seen)| n - *seen <= FORGET_AFTER_LISTINGS);
                self.containers.retain(|_, (_, seen)| n - *seen <= FORGET_AFTER_LISTINGS);
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
        let Some((c, _)) = self.containers.get(id) else { return Ok(None) };
        let Some((sandbox, _)) = self.sandboxes.get(&c.sandbox_id) else { return Ok(None) };
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
        // Calls containers' own profiles denied (empty with --no-learn-denials).
        let denials = self.probe.denials()?;

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

        // Containers that found no free slot: their calls are not recorded.
        // Once the kernel counted such a miss, a named container without a
        // slot is one of them (a container's processes make syscalls from the
        // moment they join its cgroup, before the CRI lists it).
        let unslotted: Vec<Identity> = if kernel.slots_full > 0 {
            alive
                .iter()
                .filter(|id| !table.contains_key(id) && self.probe.slots.get(id, 0).is_err())
                .filter_map(|id| self.paths.get(id))
                .filter_map(|path| self.identify(path).ok().flatten())
                .filter(|identity| self.filter.wants(identity))
                .collect()
        } else {
            Vec::new()
        };

        // Who is gone: cgroups with a slot, and containers the snapshot held
        // (after a reboot or --unpin their slots are gone with the maps).
        let candidates: BTreeSet<u64> = table.keys().copied().chain(self.lock().containers.keys().copied()).collect();
        let mut gone = Vec::new();
        for id in candidates {
            if alive.contains(&id) || self.ignored.contains(&id) || self.folded_pending.contains(&id) {
                continue;
            }
            let named_now = identities.get(&id).map(|i: &Identity| i.container_id.clone());
            match self.ended(id, named_now).await {
                Ended::NotYet if self.exit_waits.get(&id).copied().unwrap_or(0) < EXIT_WAIT_POLLS => {
                    *self.exit_waits.entry(id).or_default() += 1;
                }
                ended => {
                    self.exit_waits.remove(&id);
                    gone.push((id, matches!(ended, Ended::Exited(0))));
                }
            }
        }

        // Who made what (--by-exe; empty otherwise).
        let mut by_exe = observation.by_exe_per_cgroup(Family::host());

        // What each learned.
        let state_handle = self.state.clone();
        let mut state = state_handle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, _) in table.iter().filter(|(id, _)| !self.ignored.contains(id) && !self.folded_pending.contains(id)) {
            let mut calls = Calls::of(&observation, *id);
            // A denied call is one the workload needs: it goes into the
            // profile, and (being new) sends the workload back to learning.
            let (denied_calls, denied) = Calls::denied(&denials, *id);
            calls.union_with(&denied_calls);
            let record = state.containers.entry(*id).or_insert_with(|| ContainerRecord {
                cgroup_id: *id,
                identity: None,
                calls: Calls::default(),
                first_seen: now,
                last_new_call: now,
                preexisting: false,
                exec_session: false,
                clean_stop: false,
                denied: 0,
                executables: Executables::new(),
            });
            if let Some(exes) = by_exe.remove(id) {
                union_executables(&mut record.executables, &by_exe_owned(exes, EXEC_NOT_SEEN_BY_DAEMON));
            }
            record.denied = record.denied.max(denied);
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
        for (id, clean) in &gone {
            if let Some(record) = state.containers.get_mut(id) {
                record.clean_stop = *clean;
            }
            state.fold(*id, now);
        }
        self.folded_pending.extend(gone.iter().map(|(id, _)| *id));
        state.note_slots_full(&unslotted, now);
        state.kernel = kernel;
        state.last_tick = now;
        state.ready = true;
        drop(state);

        // Gone cgroups leave the kernel maps only once a snapshot holds them.
        let mut released = BTreeSet::new();
        if snapshot_due || !self.folded_pending.is_empty() {
            match self.snapshot(now) {
                Ok(()) => {
                    let pending: Vec<u64> = std::mem::take(&mut self.folded_pending).into_iter().collect();
                    self.probe.release(&pending)?;
                    released.extend(pending);
                }
                Err(e) => tracing::error!("{e}"),
            }
        }
        // Dropped cgroups that are gone hold nothing to save: their slots come
        // back at once.
        let gone_ignored: Vec<u64> = self.ignored.iter().copied().filter(|id| !alive.contains(id)).collect();
        if !gone_ignored.is_empty() {
            self.probe.release(&gone_ignored)?;
            for id in &gone_ignored {
                self.ignored.remove(id);
            }
            released.extend(gone_ignored);
        }
        self.paths.retain(|id, _| alive.contains(id) || (table.contains_key(id) && !released.contains(id)));
        self.lock().slots_used = (table.len() - table.keys().filter(|id| released.contains(id)).count()) as u64;
        Ok(gone.len())
    }

    /// How the container in the gone cgroup `id` (named `named_now` in this
    /// poll, or earlier) ended, per the CRI.
    async fn ended(&self, id: u64, named_now: Option<String>) -> Ended {
        let named_before =
            self.lock().containers.get(&id).and_then(|c| c.identity.as_ref()).map(|i| i.container_id.clone());
        let Some(container_id) = named_now.or(named_before) else { return Ended::Unknown };
        let (Some(cri), Some((listed, seen))) = (&self.cri, self.containers.get(&container_id)) else {
            return Ended::Unknown;
        };
        if *seen != self.listings {
            // Removed from the CRI already: how it ended is not known.
            return Ended::Unknown;
        }
        match listed.state {
            ContainerState::Exited => match cri.exit_code(&container_id).await {
                Ok(Some(code)) => Ended::Exited(code),
                Ok(None) => Ended::NotYet,
                Err(e) => {
                    tracing::debug!("exit code of {container_id}: {e}");
                    Ended::Unknown
                }
            },
            ContainerState::Running | ContainerState::Created => Ended::NotYet,
            ContainerState::Unknown => Ended::Unknown,
        }
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
    ///
    /// One walk of the tree (`getdents64` only) names every cgroup it finds,
    /// so a burst of new containers costs one walk, not one each. Not
    /// `open_by_handle_at`: it needs CAP_DAC_READ_SEARCH, which the
    /// DaemonSet does not have and should not (deploy/).
    pub fn note_new_cgroup(&mut self, cgroup_id: u64) {
        if self.paths.contains_key(&cgroup_id) {
            return;
        }
        for (id, path) in self.parent.descendants() {
            self.paths.entry(id).or_insert(path);
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
