//! Reading the aggregated maps: per-CPU bitmaps ORed, counts summed.

use aya::maps::MapError;
use recorder_common::{BITMAP_WORDS, MAX_SYSCALLS, stat};

use super::{Observation, Probe};

/// BPF-side counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub ringbuf_drops: u64,
    pub map_full: u64,
    pub out_of_range: u64,
    pub forks: u64,
    pub execs: u64,
}

impl Probe {
    /// Reads the whole syscall map. This is the source of truth: it holds
    /// every syscall even when ring buffer events were dropped.
    pub fn observe(&self) -> Result<Observation, MapError> {
        let mut obs = Observation::default();
        let fast = std::iter::once(self.target_set.get(&0, 0).map(|v| (self.target_key, v)));
        for entry in fast.chain(self.syscalls.iter()) {
            let (key, per_cpu) = entry?;
            let calls = obs.cgroups.entry(key).or_default();
            for set in per_cpu.iter() {
                for word in 0..BITMAP_WORDS {
                    let mut bits = set.bits[word];
                    while bits != 0 {
                        let bit = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        let nr = word * 64 + bit;
                        if nr < MAX_SYSCALLS {
                            *calls.entry(nr as u32).or_insert(0) += u64::from(set.counts[nr]);
                        }
                    }
                }
            }
        }
        // The fast path leaves an empty entry when the target made no calls.
        obs.cgroups.retain(|_, calls| !calls.is_empty());
        Ok(obs)
    }

    pub fn stats(&self) -> Result<Stats, MapError> {
        let slot = |i: u32| -> Result<u64, MapError> { Ok(self.stats.get(&i, 0)?.iter().sum()) };
        Ok(Stats {
            ringbuf_drops: slot(stat::RINGBUF_DROPS)?,
            map_full: slot(stat::MAP_FULL)?,
            out_of_range: slot(stat::OUT_OF_RANGE)?,
            forks: slot(stat::FORKS)?,
            execs: slot(stat::EXECS)?,
        })
    }
}
