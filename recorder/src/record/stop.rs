//! Ending a recording the way a runtime ends a workload: the stop signal to
//! the main process only (what `docker stop`, the kubelet and most service
//! managers do), a grace period in which the workload shuts itself down,
//! then SIGKILL for what is left. Optional operator signals (reload, log
//! reopen) are sent first, so their code paths land in the profile too.

use std::{collections::BTreeSet, fmt, str::FromStr, time::Duration};

use crate::target::Cgroup;

/// A signal by number, named the way `kill -l` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal(pub i32);

/// The signals a workload is usually stopped or poked with.
const NAMES: [(&str, i32); 12] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("TERM", libc::SIGTERM),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("WINCH", libc::SIGWINCH),
    ("PWR", libc::SIGPWR),
    ("ALRM", libc::SIGALRM),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown signal {0:?}; use a name such as SIGTERM, TERM, SIGQUIT or SIGINT, or a number from 1 to 64")]
pub struct SignalError(pub String);

impl FromStr for Signal {
    type Err = SignalError;
    fn from_str(text: &str) -> Result<Signal, SignalError> {
        let upper = text.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some((_, n)) = NAMES.iter().find(|(name, _)| *name == bare) {
            return Ok(Signal(*n));
        }
        match bare.parse::<i32>() {
            Ok(n) if (1..=64).contains(&n) => Ok(Signal(n)),
            _ => Err(SignalError(text.to_owned())),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NAMES.iter().find(|(_, n)| *n == self.0) {
            Some((name, _)) => write!(f, "SIG{name}"),
            None => write!(f, "signal {}", self.0),
        }
    }
}

/// An operator action sent near the end of a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exercise {
    /// SIGHUP: reload the configuration (nginx starts new workers and
    /// drains the old ones).
    Reload,
    /// SIGUSR1: reopen log files (nginx, many daemons).
    Reopen,
    /// Any other signal, by name or number.
    Signal(Signal),
    /// The stop signal, then the grace period: the shutdown path.
    Stop,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExerciseError {
    #[error("unknown exercise {0:?}; use reload (SIGHUP), reopen (SIGUSR1), stop, or a signal name such as SIGUSR2")]
    Unknown(String),
    #[error("`stop` must come last in --exercise: nothing is left to exercise after the workload stopped")]
    StopNotLast,
}

impl Exercise {
    /// `reload,reopen,stop` or signal names, in order.
    pub fn parse_list(text: &str) -> Result<Vec<Exercise>, ExerciseError> {
        let mut list = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let exercise = match word.to_ascii_lowercase().as_str() {
                "reload" => Exercise::Reload,
                "reopen" => Exercise::Reopen,
                "stop" => Exercise::Stop,
                _ => Exercise::Signal(word.parse().map_err(|_| ExerciseError::Unknown(word.to_owned()))?),
            };
            if list.last() == Some(&Exercise::Stop) {
                return Err(ExerciseError::StopNotLast);
            }
            list.push(exercise);
        }
        Ok(list)
    }

    /// The signal sent, for everything but `Stop` (which uses the policy's).
    pub fn signal(self) -> Option<Signal> {
        match self {
            Exercise::Reload => Some(Signal(libc::SIGHUP)),
            Exercise::Reopen => Some(Signal(libc::SIGUSR1)),
            Exercise::Signal(s) => Some(s),
            Exercise::Stop => None,
        }
    }
}

/// How a deliberate end of the recording treats the workload.
#[derive(Clone, Debug)]
pub struct StopPolicy {
    /// Sent to the main process(es) only.
    pub signal: Signal,
    /// How long the workload gets to exit after it, still recorded.
    pub grace: Duration,
    /// Operator signals to send first, in order (and `Stop` last, to stop
    /// a workload recorder did not start).
    pub exercises: Vec<Exercise>,
    /// How long to keep recording after each exercise signal.
    pub exercise_wait: Duration,
    /// For a workload recorder did not start: after `--duration`, write the
    /// profile, keep recording until the workload ends by itself, and write
    /// it again then.
    pub until_exit: bool,
}

impl Default for StopPolicy {
    fn default() -> StopPolicy {
        StopPolicy {
            signal: Signal(libc::SIGTERM),
            grace: Duration::from_secs(5),
            exercises: Vec::new(),
            exercise_wait: Duration::from_secs(2),
            until_exit: false,
        }
    }
}

/// How the workload's life ended, as far as the recording saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It exited by itself while recorded (or the pod was deleted).
    Exited,
    /// It stopped within the grace period after the stop signal.
    Stopped { signal: Signal, after: Duration },
    /// It was still running when the grace period ended and was killed:
    /// the profile did not see a clean shutdown.
    Killed { signal: Signal, grace: Duration },
    /// It was still running when the grace period ended and recorder does
    /// not own it, so it was left running.
    Survived { signal: Signal, grace: Duration },
    /// The recording ended while it ran on: its shutdown was not seen.
    Running,
}

impl Ending {
    /// Did the recording see the workload shut down cleanly?
    pub fn shutdown_observed(self) -> bool {
        matches!(self, Ending::Exited | Ending::Stopped { .. })
    }
}

/// The processes a stop signal goes to: the roots of the process trees in
/// the cgroup and below it (a process whose parent is outside), which is a
/// container's init or the command recorder started. Oldest first.
pub fn main_processes(cgroup: &Cgroup) -> Vec<i32> {
    let mut pids: Vec<i32> = cgroup.procs().unwrap_or_default();
    for (_, dir) in cgroup.descendants() {
        let sub = Cgroup { path: dir, id: 0, level: 0 };
        pids.extend(sub.procs().unwrap_or_default());
    }
    let all: BTreeSet<i32> = pids.iter().copied().collect();
    let mut roots: Vec<(u64, i32)> = pids
        .into_iter()
        .filter_map(|pid| {
            let (ppid, start) = parent_and_start(pid)?;
            (!all.contains(&ppid)).then_some((start, pid))
        })
        .collect();
    roots.sort();
    roots.dedup();
    roots.into_iter().map(|(_, pid)| pid).collect()
}

/// (parent PID, start time) from /proc/PID/stat.
fn parent_and_start(pid: i32) -> Option<(i32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    use crate::target::proc_text::stat_field;
    Some((stat_field(&stat, 4)?, stat_field(&stat, 22)?))
}

/// Sends `signal` to each of `pids`; returns how many it reached.
pub fn send(signal: Signal, pids: &[i32]) -> usize {
    pids.iter()
        .filter(|pid| {
            // SAFETY: kill(2) with a PID we just read; a vanished process
            // yields ESRCH and nothing else happens.
            unsafe { libc::kill(**pid, signal.0) == 0 }
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        for (text, n) in [("SIGTERM", 15), ("term", 15), ("QUIT", 3), ("sigint", 2), ("9", 9), ("SIGUSR1", 10)] {
            assert_eq!(text.parse::<Signal>(), Ok(Signal(n)), "{text}");
        }
        for bad in ["", "SIGFOO", "0", "65", "-1"] {
            assert!(bad.parse::<Signal>().is_err(), "{bad}");
        }
        assert_eq!(Signal(libc::SIGQUIT).to_string(), "SIGQUIT");
    }

    #[test]
    fn exercises_parse_in_order_with_stop_last() {
        assert_eq!(
            Exercise::parse_list("reload, reopen,SIGUSR2,stop"),
            Ok(vec![Exercise::Reload, Exercise::Reopen, Exercise::Signal(Signal(libc::SIGUSR2)), Exercise::Stop])
        );
        assert_eq!(Exercise::parse_list("stop,reload"), Err(ExerciseError::StopNotLast));
        assert!(matches!(Exercise::parse_list("restart"), Err(ExerciseError::Unknown(_))));
    }

    #[test]
    fn this_test_process_is_a_main_process_of_its_own_tree() {
        let me = std::process::id() as i32;
        let (ppid, start) = parent_and_start(me).expect("own stat");
        assert!(ppid > 0 && start > 0);
    }
}
