//! Reading what the programs learned, and giving slots back: bitmaps become
//! sets of syscall numbers per (cgroup, ABI, phase), per-CPU counters are
//! summed, and a gone cgroup's slot is zeroed and freed once its set has
//! been read (by `record`) or saved (by the daemon).

use std::collections::{BTreeMap, BTreeSet};

use aya::maps::MapError;
use recorder_common::{
    Abi, BITMAP_WORDS, BoundaryState, CgroupKey, DenialKey, PHASES, Phase, SlotBits, slot_flags, stat,
};

use super::{Observation, Probe};

/// BPF-side counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub ringbuf_drops: u64,
    /// Cgroups whose syscalls were not recorded: no free slot.
    pub slots_full: u64,
    /// Compat or x32 calls not recorded: `ABI_BITS` full.
    pub abi_full: u64,
    /// Denied calls not counted: `DENIALS` full.
    pub denials_full: u64,
    /// `--args` values not kept: `ARG_VALUES` full (those calls are
    /// allowed with any arguments).
    pub args_full: u64,
    /// `--by-exe` attributions lost (`EXE_BITS` or `EXE_PATHS` full).
    pub exe_full: u64,
    pub out_of_range: u64,
    pub forks: u64,
    pub execs: u64,
}

impl Stats {
    /// Syscalls (or whole cgroups) that could not be recorded.
    pub fn lost(&self) -> u64 {
        self.slots_full + self.abi_full + self.out_of_range
    }
}

/// The numbers set in one bitmap.
fn numbers(words: &[u64; BITMAP_WORDS]) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for (i, word) in words.iter().enumerate() {
        let mut bits = *word;
        while bits != 0 {
            out.insert((i * 64) as u32 + bits.trailing_zeros());
            bits &= bits - 1;
        }
    }
    out
}

impl Probe {
    /// The cgroup id -> slot table, as it is now.
    pub fn slot_table(&self) -> Result<BTreeMap<u64, u32>, MapError> {
        self.slots.iter().collect()
    }

    /// Everything recorded so far, in every slot and on every ABI. This is
    /// the source of truth: it holds every syscall even when ring buffer
    /// events were dropped.
    pub fn observe(&self) -> Result<Observation, MapError> {
        let table = self.slot_table()?;
        self.observe_cgroups(&table)
    }

    /// What the cgroups in `table` (id -> slot) recorded.
    pub fn observe_cgroups(&self, table: &BTreeMap<u64, u32>) -> Result<Observation, MapError> {
        let mut obs = Observation::default();
        if let Some(values) = &self.arg_values {
            for entry in values.keys() {
                let key = entry?;
                if table.contains_key(&key.cgroup_id) {
                    obs.args.entry((key.cgroup_id, key.nr)).or_default().values.insert(key.value);
                }
            }
        }
        if let Some(overflow) = &self.arg_overflow {
            for entry in overflow.keys() {
                let key = entry?;
                if table.contains_key(&key.cgroup_id) {
                    obs.args.entry((key.cgroup_id, key.nr)).or_default().overflow = true;
                }
            }
        }
        if let Some(exes) = &self.exe_bits {
            for entry in exes.iter() {
                let (key, bitmap) = entry?;
                if table.contains_key(&key.cgroup_id) {
                    obs.exes.entry((key.cgroup_id, key.exe, key.abi)).or_default().extend(numbers(&bitmap.bits));
                }
            }
        }
        if let Some(paths) = &self.exe_paths {
            for entry in paths.iter() {
                let (id, path) = entry?;
                let end = path.bytes.iter().position(|b| *b == 0).unwrap_or(path.bytes.len());
                obs.exe_paths.insert(id, String::from_utf8_lossy(&path.bytes[..end]).into_owned());
            }
        }
        for (cgroup_id, slot) in table {
            let bits = self.bits.get(slot, 0)?;
            self.add_slot(&mut obs, *cgroup_id, &bits);
        }
        for entry in self.abi_bits.iter() {
            let (key, bitmap) = entry?;
            if table.contains_key(&key.cgroup_id) {
                let set = numbers(&bitmap.bits);
                if !set.is_empty() {
                    obs.cgroups.entry(key).or_default().extend(set);
                }
            }
        }
        Ok(obs)
    }

    fn add_slot(&self, obs: &mut Observation, cgroup_id: u64, bits: &SlotBits) {
        for phase in 0..PHASES {
            let set = numbers(&bits.phases[phase]);
            if !set.is_empty() {
                let key = CgroupKey { cgroup_id, abi: Abi::NATIVE, phase: Phase(phase as u32) };
                obs.cgroups.entry(key).or_default().extend(set);
            }
        }
    }

    /// Frees the slots of cgroups that are gone, after their sets were read
    /// or saved: the slot is zeroed before it goes back to the free queue,
    /// so its next cgroup starts empty. No task can still write it (a
    /// cgroup is removed only when empty).
    pub fn release(&mut self, cgroup_ids: &[u64]) -> Result<usize, MapError> {
        let mut released = 0;
        let abi_keys: Vec<CgroupKey> = self.abi_bits.keys().filter_map(Result::ok).collect();
        for id in cgroup_ids {
            for key in abi_keys.iter().filter(|k| k.cgroup_id == *id) {
                let _ = self.abi_bits.remove(key);
            }
            if let Some(exes) = self.exe_bits.as_mut() {
                let keys: Vec<recorder_common::ExeKey> =
                    exes.keys().filter_map(Result::ok).filter(|k| k.cgroup_id == *id).collect();
                for key in keys {
                    let _ = exes.remove(&key);
                }
            }
            if let Some(values) = self.arg_values.as_mut() {
                let keys: Vec<recorder_common::ArgKey> =
                    values.keys().filter_map(Result::ok).filter(|k| k.cgroup_id == *id).collect();
                for key in keys {
                    let _ = values.remove(&key);
                }
            }
            let Ok(slot) = self.slots.get(id, 0) else { continue };
            self.slots.remove(id)?;
            self.bits.set(slot, SlotBits::zeroed(), 0)?;
            self.state.set(slot, BoundaryState::default(), 0)?;
            self.free.push(slot, 0)?;
            released += 1;
        }
        Ok(released)
    }

    /// Drops a cgroup's calls in the kernel from now on (`recorder daemon
    /// --namespace/--selector`), and forgets what it recorded so far.
    pub fn ignore(&mut self, cgroup_id: u64) -> Result<(), MapError> {
        let Ok(slot) = self.slots.get(&cgroup_id, 0) else { return Ok(()) };
        let mut state = self.state.get(&slot, 0)?;
        state.flags |= slot_flags::IGNORED;
        self.state.set(slot, state, 0)?;
        self.bits.set(slot, SlotBits::zeroed(), 0)
    }

    /// The `recorder_common::slot_flags` of `cgroup_id` (0 without a slot).
    pub fn slot_flags(&self, cgroup_id: u64) -> u32 {
        self.slots.get(&cgroup_id, 0).and_then(|slot| self.state.get(&slot, 0)).map_or(0, |s| s.flags)
    }

    /// Calls a seccomp filter denied (learn mode), with counts.
    pub fn denials(&self) -> Result<BTreeMap<DenialKey, u64>, MapError> {
        match &self.denials {
            Some(map) => map.iter().collect(),
            None => Ok(BTreeMap::new()),
        }
    }

    pub fn stats(&self) -> Result<Stats, MapError> {
        let slot = |i: u32| -> Result<u64, MapError> { Ok(self.stats.get(&i, 0)?.iter().sum()) };
        Ok(Stats {
            ringbuf_drops: slot(stat::RINGBUF_DROPS)?,
            slots_full: slot(stat::SLOTS_FULL)?,
            abi_full: slot(stat::ABI_FULL)?,
            denials_full: slot(stat::DENIALS_FULL)?,
            args_full: slot(stat::ARGS_FULL)?,
            exe_full: slot(stat::EXE_FULL)?,
            out_of_range: slot(stat::OUT_OF_RANGE)?,
            forks: slot(stat::FORKS)?,
            execs: slot(stat::EXECS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_words_become_numbers() {
        let mut words = [0u64; BITMAP_WORDS];
        words[0] = 1 | (1 << 59);
        words[15] = 1 << 63;
        assert_eq!(numbers(&words), BTreeSet::from([0, 59, 1023]));
    }
}
