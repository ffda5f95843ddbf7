//! The summary `record` prints on stderr: one line for the recording, and
//! one more when the profile did not see the workload shut down cleanly.

use std::{
    collections::{BTreeMap, BTreeSet},
    os::unix::process::ExitStatusExt as _,
};

use crate::{
    profile::write::Format,
    record::{Recording, Stop, stop::Ending},
    runtime::assemble::Assembled,
    syscalls::Arch,
    target::pod::names::ContainerNames,
    text,
};

/// `recorded_nothing`: no call at all was recorded (what the profile holds
/// was all added).
pub fn line(r: &Recording, assembled: &Assembled, destination: &str, recorded_nothing: bool) -> String {
    let completed = &assembled.completed;
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
    if recorded_nothing {
        line.push_str(
            "\nrecorder: WARNING: no syscalls were recorded (the workload made none while it was recorded); the profile holds only what recorder adds. Was the right workload recorded, and for long enough?",
        );
    }
    if !assembled.profile().allowed_names().contains("execve") {
        line.push_str(
            "\nrecorder: execve was not observed (attached to a running workload), so nothing can start under this profile; add it with `--add execve`, or record the start (`recorder record -- CMD`)",
        );
    }
    for (arch, names) in &assembled.list.widened {
        if arch.scmp_name() != assembled.profile().architectures.first().map_or("", String::as_str) {
            line.push_str(&format!(
                "\nrecorder: {} calls were recorded, so {} is listed; OCI shares one name list across architectures, which also allows there: {}",
                arch.scmp_name(),
                arch.scmp_name(),
                names.iter().cloned().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    if !assembled.conditioned.is_empty() {
        let calls: Vec<String> = assembled.conditioned.iter().map(|(name, n)| format!("{name} ({n})")).collect();
        line.push_str(&format!("\nrecorder: allowed only with the recorded argument values: {}", calls.join(", ")));
    }
    if !assembled.unconditioned.is_empty() {
        line.push_str(&format!(
            "\nrecorder: allowed with any arguments (more than 16 values, the value map was full, or the runtime, the shutdown set or a 32-bit task needs the call too): {}",
            names(&assembled.unconditioned)
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

/// One container of a recorded pod, as its summary line says it: clauses
/// separated by `;`, no brackets inside brackets.
pub struct ContainerLine<'a> {
    pub names: ContainerNames<'a>,
    pub syscalls: usize,
    pub startup_observed: bool,
    pub setup_excluded: usize,
    pub attempts: usize,
    /// Names the shutdown set added, when it was applied.
    pub shutdown_added: Option<usize>,
    pub recorded_nothing: bool,
    pub destination: &'a std::path::Path,
}

impl std::fmt::Display for ContainerLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = &self.names;
        write!(
            f,
            "recorder: {}/{} container {}: {} -> {}",
            n.namespace,
            n.pod,
            n.container,
            text::count(self.syscalls as u64, "syscall", "syscalls"),
            self.destination.display()
        )?;
        if self.startup_observed {
            write!(
                f,
                "; startup observed, {} left out",
                text::count(self.setup_excluded as u64, "runtime setup call", "runtime setup calls")
            )?;
        } else {
            write!(f, "; startup was not observed, the pod was already running: the runtime's base set was added")?;
        }
        match self.attempts {
            1 => write!(f, "; 1 run")?,
            n => write!(f, "; {n} runs, restarts merged")?,
        }
        if let Some(added) = self.shutdown_added {
            write!(f, "; shutdown not recorded, so the shutdown set was added: {added} new")?;
        }
        if self.recorded_nothing {
            write!(
                f,
                "\nrecorder: WARNING: no syscalls were recorded for container {}; its profile holds only what recorder adds",
                n.container
            )?;
        }
        Ok(())
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

/// The calls the workload's current profile denied (learn mode), on
/// stderr: they are in the written profile now.
pub fn print_denials(denied: &[crate::bpf::Denied]) {
    if denied.is_empty() {
        return;
    }
    let list: Vec<String> =
        denied.iter().map(|d| format!("{} ({}, {}x by {})", d.name, d.arch, d.count, d.process)).collect();
    eprintln!("recorder: the profile it runs under denied: {}; added to this profile", list.join(", "));
}

/// How the workload ended, as JSON.
fn ending_json(ending: Ending) -> serde_json::Value {
    match ending {
        Ending::Exited => serde_json::json!({ "how": "exited" }),
        Ending::Stopped { signal, after } => {
            serde_json::json!({ "how": "stopped", "signal": signal.to_string(), "after_seconds": after.as_secs_f64() })
        }
        Ending::Killed { signal, grace } => {
            serde_json::json!({ "how": "killed", "signal": signal.to_string(), "grace_seconds": grace.as_secs_f64() })
        }
        Ending::Survived { signal, grace } => {
            serde_json::json!({ "how": "survived", "signal": signal.to_string(), "grace_seconds": grace.as_secs_f64() })
        }
        Ending::Running => serde_json::json!({ "how": "running" }),
    }
}

fn stop_name(stop: Stop) -> &'static str {
    match stop {
        Stop::Emptied => "workload-exited",
        Stop::Duration => "duration",
        Stop::Signal(libc::SIGINT) => "sigint",
        Stop::Signal(_) => "sigterm",
    }
}

/// One profile's part of the JSON summary.
pub fn profile_json(
    assembled: &Assembled,
    by_arch: &BTreeMap<Arch, BTreeSet<String>>,
    output: &str,
) -> serde_json::Value {
    let c = &assembled.completed;
    let recorded: BTreeMap<&str, &BTreeSet<String>> = by_arch.iter().map(|(a, n)| (a.scmp_name(), n)).collect();
    let widened: BTreeMap<&str, &BTreeSet<String>> =
        assembled.list.widened.iter().map(|(a, n)| (a.scmp_name(), n)).collect();
    serde_json::json!({
        "output": output,
        "syscalls": assembled.syscall_count(),
        "architectures": assembled.profile().architectures,
        "recorded_by_arch": recorded,
        "widened_by_arch": widened,
        "added": {
            "base_set": assembled.base_added,
            "essentials": c.essentials_added,
            "shutdown_set": c.shutdown_added,
            "shutdown_set_applied": c.shutdown_set_applied,
        },
        "arguments": {
            "conditioned": assembled.conditioned,
            "unconditioned": assembled.unconditioned,
        },
    })
}

/// What was recorded, for the JSON summary.
pub struct Target {
    /// `{"kind": "command" | "cgroup" | "pid" | "container" | "pod", ...}`.
    pub what: serde_json::Value,
    /// The containers recorded (names for a pod, the id for --container-id).
    pub containers: serde_json::Value,
    /// Whether a runtime's base set was added, and whose (`base_set_json`).
    pub base_set: serde_json::Value,
    /// Why the result is partial (a pod whose CRI went away), if it is.
    pub partial: Option<String>,
}

/// `{"added": bool, "runtime": "runc" | "crun" | "runc+crun" | null}`.
pub fn base_set_json(added: bool, runtime: Option<&str>) -> serde_json::Value {
    let runtime = match (added, runtime) {
        (false, _) => None,
        (true, Some(r)) if crate::runtime::base_set::KNOWN.contains(&r) => Some(r.to_owned()),
        (true, _) => Some(crate::runtime::base_set::KNOWN.join("+")),
    };
    serde_json::json!({ "added": added, "runtime": runtime })
}

/// Adds `format` (and the object name, when the format has one) to a
/// profile's part of the summary.
pub fn add_format(profile: &mut serde_json::Value, format: Format, name: Option<String>) {
    if let Some(object) = profile.as_object_mut() {
        object.insert("format".to_owned(), serde_json::json!(format.as_str()));
        object.insert("name".to_owned(), serde_json::json!(name));
    }
}

/// The whole JSON summary (schema in README, "JSON summary"). Schema 1:
/// fields are only ever added; a removal or a change of meaning bumps it.
pub fn json(r: &Recording, target: Target, profiles: Vec<serde_json::Value>) -> serde_json::Value {
    let outputs: Vec<serde_json::Value> = profiles.iter().map(|p| p["output"].clone()).collect();
    let shutdown_set_added = profiles.iter().any(|p| p["added"]["shutdown_set_applied"] == true);
    serde_json::json!({
        "schema": 1,
        "target": target.what,
        "containers": target.containers,
        "processes": r.processes,
        "elapsed_seconds": r.elapsed.as_secs_f64(),
        "recorder_cpu_seconds": r.cpu.as_secs_f64(),
        "stop_reason": stop_name(r.stop),
        "exit_status": r.exit_status.map(|s| s.into_raw()),
        "exit_code": r.exit_code(),
        "ending": ending_json(r.ending),
        "provenance": {
            "startup_observed": r.startup_observed,
            "shutdown_observed": r.ending.shutdown_observed(),
            "base_set": target.base_set,
            "shutdown_set_added": shutdown_set_added,
            "ringbuf_drops": r.stats.ringbuf_drops,
            "cgroups_without_slot": r.stats.slots_full,
            "argument_values_not_kept": r.stats.args_full,
            "attributions_not_kept": r.stats.exe_full,
            "abi_map_full": r.stats.abi_full,
            "out_of_range": r.stats.out_of_range,
        },
        "partial": target.partial.is_some(),
        "partial_reason": target.partial,
        "outputs": outputs,
        "profiles": profiles,
    })
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

    #[test]
    fn a_container_line_has_no_brackets_inside_brackets() {
        let names = ContainerNames { namespace: "default", pod: "web", container: "nginx" };
        let dest = std::path::Path::new("default_web_nginx.json");
        for (startup_observed, shutdown_added) in [(true, None), (false, Some(3)), (false, None), (true, Some(1))] {
            let line = ContainerLine {
                names,
                syscalls: 42,
                startup_observed,
                setup_excluded: 1,
                attempts: 2,
                shutdown_added,
                recorded_nothing: false,
                destination: dest,
            }
            .to_string();
            let mut depth = 0i32;
            for c in line.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                assert!(depth <= 1, "{line}");
            }
            assert!(line.contains("1 runtime setup call left out") || !startup_observed, "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }
}
