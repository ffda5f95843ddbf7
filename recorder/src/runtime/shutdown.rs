//! What a workload needs to end. A profile recorded while a server ran but
//! never stopped lacks its shutdown path (nginx's workers' `recvmsg` of the
//! master's quit command, redis's final RDB save, postgres's checkpoint),
//! and under it the server cannot stop: every rollout waits out the whole
//! grace period and ends in SIGKILL.
//!
//! Two things are added to recorded profiles:
//! - always, what every process needs to end: `exit`, `exit_group`, and
//!   `rt_sigreturn` (ia32: `sigreturn` too) once a signal handler was
//!   installed;
//! - when the recording did not see the workload shut down, the shutdown
//!   set: the calls nginx, redis and postgres made only while stopping
//!   (SIGTERM, SIGQUIT and SIGINT to the main process), measured and
//!   shipped in `recorder/data/shutdown/` (docs/shutdown-sets.md).

use std::collections::BTreeSet;

use serde::Deserialize;

/// One server's measured shutdown calls, as shipped.
#[derive(Clone, Debug, Deserialize)]
pub struct ShutdownData {
    pub server: String,
    pub version: String,
    /// Calls made while stopping and never while serving, over all signals.
    pub union: Vec<String>,
}

/// The shipped measurements (recorder/data/shutdown/*.json).
const SHIPPED: [&str; 3] = [
    include_str!("../../data/shutdown/nginx.json"),
    include_str!("../../data/shutdown/redis.json"),
    include_str!("../../data/shutdown/postgres.json"),
];

/// Every shipped server's data.
pub fn shipped() -> Vec<ShutdownData> {
    SHIPPED.iter().filter_map(|text| serde_json::from_str(text).ok()).collect()
}

/// The shutdown set added when a recording did not see the shutdown: the
/// union of the shipped servers' shutdown calls.
pub fn shutdown_set() -> BTreeSet<String> {
    shipped().into_iter().flat_map(|d| d.union).collect()
}

/// What every process needs to end, given the names it was recorded with.
pub fn essentials(recorded: &BTreeSet<String>) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = ["exit", "exit_group"].into_iter().map(str::to_owned).collect();
    // A process that installed a handler returns from it through
    // rt_sigreturn (sigreturn for old-style ia32 handlers), which it may
    // not have needed while recorded if no signal arrived.
    if recorded.iter().any(|n| n == "rt_sigaction" || n == "sigaction" || n == "signal") {
        names.insert("rt_sigreturn".to_owned());
    }
    names
}

/// A recorded name set made able to end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completed {
    pub names: BTreeSet<String>,
    /// Essentials that were not recorded and were added.
    pub essentials_added: BTreeSet<String>,
    /// Shutdown-set names that were not recorded and were added (empty when
    /// the shutdown was observed or the set was not wanted).
    pub shutdown_added: BTreeSet<String>,
    /// Whether the shutdown set was applied.
    pub shutdown_set_applied: bool,
}

/// `recorded` plus the essentials, plus the shutdown set when the shutdown
/// was not observed and `add_shutdown_set` is on.
pub fn complete(recorded: BTreeSet<String>, shutdown_observed: bool, add_shutdown_set: bool) -> Completed {
    let essentials_added: BTreeSet<String> = essentials(&recorded).difference(&recorded).cloned().collect();
    let mut names = recorded;
    names.extend(essentials_added.iter().cloned());
    let shutdown_set_applied = !shutdown_observed && add_shutdown_set;
    let shutdown_added: BTreeSet<String> =
        if shutdown_set_applied { shutdown_set().difference(&names).cloned().collect() } else { BTreeSet::new() };
    names.extend(shutdown_added.iter().cloned());
    Completed { names, essentials_added, shutdown_added, shutdown_set_applied }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_data_parses_and_has_the_basics() {
        let data = shipped();
        assert_eq!(data.len(), SHIPPED.len(), "every shipped file parses");
        let set = shutdown_set();
        assert!(set.contains("exit_group"), "{set:?}");
        for d in &data {
            let mut sorted = d.union.clone();
            sorted.sort();
            assert_eq!(sorted, d.union, "{} is sorted", d.server);
        }
    }

    #[test]
    fn essentials_follow_what_was_recorded() {
        let none = BTreeSet::new();
        assert_eq!(essentials(&none), BTreeSet::from(["exit".to_owned(), "exit_group".to_owned()]));
        let with_handler = BTreeSet::from(["rt_sigaction".to_owned()]);
        assert!(essentials(&with_handler).contains("rt_sigreturn"));
    }
}
