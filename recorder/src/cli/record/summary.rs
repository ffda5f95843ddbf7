//! The summary `record` prints on stderr: one line for the recording, and
//! one more when the profile did not see the workload shut down cleanly.

use crate::{
    record::{Recording, Stop, stop::Ending},
    runtime::shutdown::Completed,
    text,
};

pub fn line(r: &Recording, completed: &Completed, destination: &str) -> String {
    let why = match r.stop {
        Stop::Emptied => "workload exited".to_owned(),
        Stop::Duration => "duration reached".to_owned(),
        Stop::Signal(libc::SIGINT) => "interrupted".to_owned(),
        Stop::Signal(_) => "terminated".to_owned(),
    };
    let mut line = format!(
        "recorder: {} from {} in {} ({why}; {}) -> {destination}",
        text::count(completed.names.len() as u64, "syscall", "syscalls"),
        text::count(r.processes, "process", "processes"),
        text::human(r.elapsed),
        ending(r.ending),
    );
    line.push_str(&format!("; recorder used {:.3}s CPU", r.cpu.as_secs_f64()));
    if !r.startup_observed {
        line.push_str("; startup was not observed (attached to a running workload)");
    }
    if r.stats.ringbuf_drops > 0 {
        line.push_str(&format!("; {} events dropped (profile complete: read from the map)", r.stats.ringbuf_drops));
    }
    if r.stats.lost() > 0 {
        line.push_str(&format!(
            "; WARNING: not recorded: {} cgroups (no free slot), {} compat/x32 calls (map full), {} out-of-range numbers",
            r.stats.slots_full, r.stats.abi_full, r.stats.out_of_range
        ));
    }
    if completed.shutdown_set_applied {
        line.push_str(&format!(
            "\nrecorder: the workload's shutdown was not recorded; added the shipped shutdown set ({} not recorded: {}) so it can still stop under the profile. {}",
            completed.shutdown_added.len(),
            names(&completed.shutdown_added),
            how_to_record_the_shutdown(r.ending)
        ));
    } else if !r.ending.shutdown_observed() {
        line.push_str("\nrecorder: WARNING: the workload's shutdown was not recorded and no shutdown set was added (--no-shutdown-set): it may not stop under this profile");
    }
    line
}

/// What records the real shutdown next time. A workload that got the stop
/// signal and outlived --grace needs more time or another signal
/// (`--until-exit` is refused with a command, and `--exercise stop` was
/// what just failed).
fn how_to_record_the_shutdown(ending: Ending) -> &'static str {
    match ending {
        Ending::Killed { .. } | Ending::Survived { .. } => {
            "A longer --grace, or the --stop-signal it stops on, records the real one"
        }
        _ => "--until-exit or --exercise stop records the real one",
    }
}

/// How the workload ended, in words.
pub fn ending(ending: Ending) -> String {
    match ending {
        Ending::Exited => "it exited by itself".to_owned(),
        Ending::Stopped { signal, after } => format!("{signal} stopped it in {}", text::human(after)),
        Ending::Killed { signal, grace } => {
            format!("still running {} after {signal}: killed, its shutdown was NOT clean", text::human(grace))
        }
        Ending::Survived { signal, grace } => {
            format!("still running {} after {signal}: left running, its shutdown was NOT seen", text::human(grace))
        }
        Ending::Running => "still running: its shutdown was not seen".to_owned(),
    }
}

fn names(set: &std::collections::BTreeSet<String>) -> String {
    if set.is_empty() { "none".to_owned() } else { set.iter().cloned().collect::<Vec<_>>().join(" ") }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::record::stop::Signal;

    #[test]
    fn the_advice_fits_how_the_workload_ended() {
        let term = Signal(libc::SIGTERM);
        let grace = Duration::from_secs(5);
        assert!(how_to_record_the_shutdown(Ending::Killed { signal: term, grace }).contains("--grace"));
        assert!(how_to_record_the_shutdown(Ending::Survived { signal: term, grace }).contains("--grace"));
        assert!(how_to_record_the_shutdown(Ending::Running).contains("--until-exit"));
    }
}
