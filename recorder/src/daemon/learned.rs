//! What the daemon learned: per live container (cgroup) and per workload.
//!
//! Syscalls are kept as bitsets per ABI (128 bytes per ABI and phase), so a
//! node's worth of containers costs little memory. A container that is gone
//! is folded into its workload (union of calls, coverage per syscall: how
//! many pods needed it) and dropped, so memory follows the live containers
//! and the workloads, not the churn.

use std::collections::{BTreeMap, BTreeSet};

use recorder_common::{Abi, BITMAP_WORDS, MAX_SYSCALLS, Phase};
use serde::{Deserialize, Serialize};

use super::identity::{Identity, Kind, WorkloadKey};
use crate::{
    bpf::Observation,
    profile::attribution::{Executables, union_executables},
};

/// Syscall numbers below `MAX_SYSCALLS`, as a bitset. Serialized as a
/// sorted list of numbers.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Bits([u64; BITMAP_WORDS]);

impl Bits {
    pub fn insert(&mut self, nr: u32) -> bool {
        let Some(word) = self.0.get_mut((nr / 64) as usize) else { return false };
        let bit = 1u64 << (nr % 64);
        let new = *word & bit == 0;
        *word |= bit;
        new
    }

    pub fn contains(&self, nr: u32) -> bool {
        self.0.get((nr / 64) as usize).is_some_and(|w| w & (1u64 << (nr % 64)) != 0)
    }

    /// Adds `other`; true if anything was new.
    pub fn union_with(&mut self, other: &Bits) -> bool {
        let mut changed = false;
        for (a, b) in self.0.iter_mut().zip(other.0) {
            changed |= b & !*a != 0;
            *a |= b;
        }
        changed
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..MAX_SYSCALLS as u32).filter(|nr| self.contains(*nr))
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}

impl Serialize for Bits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Bits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bits, D::Error> {
        let numbers = Vec::<u32>::deserialize(d)?;
        let mut bits = Bits::default();
        for nr in numbers {
            if nr >= MAX_SYSCALLS as u32 {
                return Err(serde::de::Error::custom(format!("syscall number {nr} out of range")));
            }
            bits.insert(nr);
        }
        Ok(bits)
    }
}

/// One ABI's calls, split by phase.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PhaseBits {
    /// The workload's own calls.
    pub run: Bits,
    /// The runtime's calls under the container's filter (in the profile).
    pub filtered: Bits,
    /// The runtime's setup (not in the profile).
    pub setup: Bits,
}

impl PhaseBits {
    /// What belongs in a profile: the workload and the post-filter calls.
    pub fn profile(&self) -> Bits {
        let mut bits = self.run;
        bits.union_with(&self.filtered);
        bits
    }
}

/// Calls per ABI (`recorder_common::Abi` numbers as keys).
#[derive(Clone, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Calls(pub BTreeMap<u32, PhaseBits>);

impl Calls {
    /// The calls `observation` holds for `cgroup_id`.
    pub fn of(observation: &Observation, cgroup_id: u64) -> Calls {
        let mut calls = Calls::default();
        for (key, numbers) in observation.cgroups.range(
            recorder_common::CgroupKey { cgroup_id, abi: Abi(0), phase: Phase(0) }..=recorder_common::CgroupKey {
                cgroup_id,
                abi: Abi(u32::MAX),
                phase: Phase(u32::MAX),
            },
        ) {
            let bits = calls.0.entry(key.abi.0).or_default();
            let target = match key.phase {
                Phase::RUN => &mut bits.run,
                Phase::FILTERED => &mut bits.filtered,
                _ => &mut bits.setup,
            };
            for nr in numbers {
                target.insert(*nr);
            }
        }
        calls
    }

    /// Adds `other`; true if a profile call (not setup) was new.
    pub fn union_with(&mut self, other: &Calls) -> bool {
        let mut changed = false;
        for (abi, theirs) in &other.0 {
            let ours = self.0.entry(*abi).or_default();
            changed |= ours.run.union_with(&theirs.run);
            changed |= ours.filtered.union_with(&theirs.filtered);
            ours.setup.union_with(&theirs.setup);
        }
        changed
    }

    /// Profile calls per ABI.
    pub fn profile(&self) -> BTreeMap<u32, Bits> {
        self.0.iter().map(|(abi, p)| (*abi, p.profile())).filter(|(_, b)| !b.is_empty()).collect()
    }

    /// Number of distinct profile calls over all ABIs.
    pub fn profile_len(&self) -> usize {
        self.0.values().map(|p| p.profile().len()).sum()
    }

    /// Calls a container's own profile denied, from the kernel's `DENIALS`
    /// map: booked as calls it makes (the profile needs them), with the
    /// number of denials.
    pub fn denied(denials: &BTreeMap<recorder_common::DenialKey, u64>, cgroup_id: u64) -> (Calls, u64) {
        let mut calls = Calls::default();
        let mut total = 0u64;
        for (key, count) in denials.iter().filter(|(k, _)| k.cgroup_id == cgroup_id) {
            calls.0.entry(key.abi.0).or_default().run.insert(key.nr);
            total = total.saturating_add(*count);
        }
        (calls, total)
    }

    /// Whether the runtime's start was seen (setup or post-filter calls).
    pub fn saw_startup(&self) -> bool {
        self.0.values().any(|p| !p.setup.is_empty() || !p.filtered.is_empty())
    }

    /// Whether the runtime was seen installing a seccomp filter (it made
    /// post-filter calls). Without one, its post-filter calls were never
    /// told apart from setup.
    pub fn saw_filter(&self) -> bool {
        self.0.values().any(|p| !p.filtered.is_empty())
    }
}

/// Why a workload's profile is not to be trusted as complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartialReason {
    /// A container was already running when recording started.
    StartupNotSeen,
    /// A container found no free slot: its calls were not recorded.
    SlotsFull,
    /// Somebody exec'd into a container (`kubectl exec`): its calls are in.
    ExecSession,
    /// The container ran while the daemon could not name it.
    Unattributed,
}

/// One live container (one cgroup).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub cgroup_id: u64,
    pub identity: Option<Identity>,
    pub calls: Calls,
    /// Unix seconds.
    pub first_seen: u64,
    pub last_new_call: u64,
    /// Was running before recording started (its start was not seen).
    pub preexisting: bool,
    pub exec_session: bool,
    /// Did its shutdown run to the end (its cgroup is gone and the CRI
    /// says it exited with code 0)?
    pub clean_stop: bool,
    /// Calls its own seccomp profile denied (sys_exit without sys_enter),
    /// as the kernel counts them while the cgroup lives.
    #[serde(default)]
    pub denied: u64,
    /// `--by-exe`: which executables made which calls.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub executables: Executables,
}

/// A workload generation: one (namespace, workload, container, image).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkloadRecord {
    pub key: WorkloadKey,
    pub kind: Kind,
    pub image: String,
    /// The generation: the image's digest or id on the node.
    pub image_ref: String,
    /// Calls of the containers folded in so far (gone ones).
    pub calls: Calls,
    /// Per (ABI, syscall): how many pods needed it, over folded containers.
    pub coverage: BTreeMap<String, u32>,
    /// Pods folded in (by UID), bounded to the most recent.
    pub pods: BTreeSet<String>,
    pub pods_folded: u32,
    pub first_seen: u64,
    pub last_new_call: u64,
    pub startup_seen: bool,
    pub clean_stop_seen: bool,
    pub reasons: BTreeSet<PartialReason>,
    /// The sandbox runtime handler last seen (for the base set).
    pub runtime_handler: String,
    /// Calls the containers' own profiles denied, over folded containers.
    #[serde(default)]
    pub denied: u64,
    /// `--by-exe`: which executables made which calls, over folded
    /// containers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub executables: Executables,
}

/// Pods remembered per workload, for the report.
const MAX_PODS_LISTED: usize = 64;

impl WorkloadRecord {
    pub fn new(identity: &Identity, now: u64) -> WorkloadRecord {
        WorkloadRecord {
            key: identity.key(),
            kind: identity.kind,
            image: identity.image.clone(),
            image_ref: identity.image_ref.clone(),
            calls: Calls::default(),
            coverage: BTreeMap::new(),
            pods: BTreeSet::new(),
            pods_folded: 0,
            first_seen: now,
            last_new_call: now,
            startup_seen: false,
            clean_stop_seen: false,
            reasons: BTreeSet::new(),
            runtime_handler: identity.runtime_handler.clone(),
            denied: 0,
            executables: Executables::new(),
        }
    }

    /// Folds a container of this workload in (gone, or for a view).
    pub fn fold(&mut self, c: &ContainerRecord) {
        if self.calls.union_with(&c.calls) {
            self.last_new_call = self.last_new_call.max(c.last_new_call);
        }
        for (abi, bits) in c.calls.profile() {
            for nr in bits.iter() {
                *self.coverage.entry(format!("{abi}:{nr}")).or_default() += 1;
            }
        }
        if let Some(id) = &c.identity {
            if self.pods.len() < MAX_PODS_LISTED {
                self.pods.insert(id.pod.clone());
            }
            self.runtime_handler = id.runtime_handler.clone();
        }
        self.pods_folded += 1;
        self.denied = self.denied.saturating_add(c.denied);
        union_executables(&mut self.executables, &c.executables);
        self.first_seen = self.first_seen.min(c.first_seen);
        self.startup_seen |= !c.preexisting;
        self.clean_stop_seen |= c.clean_stop;
        if c.exec_session {
            self.reasons.insert(PartialReason::ExecSession);
        }
    }

    /// Partial reasons as they stand: a startup seen on any replica clears
    /// "startup not seen".
    pub fn partial_reasons(&self) -> BTreeSet<PartialReason> {
        let mut reasons = self.reasons.clone();
        if !self.startup_seen {
            reasons.insert(PartialReason::StartupNotSeen);
        }
        reasons
    }
}

/// Convergence: learning, stable, or partial (never stable when partial).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Learning,
    Stable,
    Partial,
}

impl State {
    pub fn of(record: &WorkloadRecord, now: u64, stable_after: u64) -> State {
        if !record.partial_reasons().is_empty() {
            State::Partial
        } else if now.saturating_sub(record.last_new_call) >= stable_after
            && now.saturating_sub(record.first_seen) >= stable_after
        {
            State::Stable
        } else {
            State::Learning
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Learning => "learning",
            State::Stable => "stable",
            State::Partial => "partial",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_through_json_and_refuse_out_of_range() {
        let mut bits = Bits::default();
        for nr in [0, 1, 63, 64, 1023] {
            assert!(bits.insert(nr));
        }
        assert!(!bits.insert(63));
        let json = serde_json::to_string(&bits).expect("json");
        assert_eq!(json, "[0,1,63,64,1023]");
        assert_eq!(serde_json::from_str::<Bits>(&json).expect("parse"), bits);
        assert!(serde_json::from_str::<Bits>("[1024]").is_err());
    }

    #[test]
    fn denied_calls_are_booked_per_cgroup_and_abi_and_are_new() {
        let key = |cgroup_id, abi, nr| recorder_common::DenialKey { cgroup_id, abi: Abi(abi), nr, comm: [0; 16] };
        let mut denials = BTreeMap::new();
        denials.insert(key(7, 0, 39), 3);
        denials.insert(key(7, 1, 20), 2);
        denials.insert(key(8, 0, 41), 5);
        let (calls, total) = Calls::denied(&denials, 7);
        assert_eq!(total, 5);
        assert!(calls.0[&0].run.contains(39) && calls.0[&1].run.contains(20));
        assert!(!calls.0[&0].run.contains(41), "another cgroup's denial");
        let mut learned = Calls::default();
        assert!(learned.union_with(&calls), "a denied call is a new profile call");
        assert!(!learned.union_with(&calls));
    }

    #[test]
    fn calls_split_phases_and_only_profile_calls_count_as_new() {
        let mut obs = Observation::default();
        let key = |abi, phase| recorder_common::CgroupKey { cgroup_id: 7, abi, phase };
        obs.cgroups.insert(key(Abi::NATIVE, Phase::RUN), BTreeSet::from([1, 2]));
        obs.cgroups.insert(key(Abi::NATIVE, Phase::SETUP), BTreeSet::from([155]));
        obs.cgroups.insert(key(Abi::COMPAT, Phase::RUN), BTreeSet::from([5]));
        let calls = Calls::of(&obs, 7);
        assert_eq!(calls.profile_len(), 3);
        assert!(calls.saw_startup());
        let mut merged = Calls::default();
        assert!(merged.union_with(&calls));
        assert!(!merged.union_with(&calls), "nothing new the second time");
        let mut setup_only = Calls::default();
        setup_only.0.entry(0).or_default().setup.insert(200);
        assert!(!merged.union_with(&setup_only), "setup calls are not profile calls");
    }

    #[test]
    fn state_is_never_stable_while_partial() {
        let id = Identity {
            namespace: "n".into(),
            pod: "p".into(),
            pod_uid: "u".into(),
            container: "c".into(),
            container_id: "i".into(),
            workload: "w".into(),
            kind: Kind::Pod,
            image: "img".into(),
            image_ref: "sha".into(),
            runtime_handler: String::new(),
            labels: BTreeMap::new(),
        };
        let mut w = WorkloadRecord::new(&id, 0);
        assert_eq!(State::of(&w, 10_000, 60), State::Partial, "no start seen yet");
        w.startup_seen = true;
        assert_eq!(State::of(&w, 30, 60), State::Learning);
        assert_eq!(State::of(&w, 100, 60), State::Stable);
        w.reasons.insert(PartialReason::ExecSession);
        assert_eq!(State::of(&w, 100, 60), State::Partial);
    }
}
