//! `/metrics` in Prometheus text format. Cardinality is bounded: per
//! workload generation three gauges (state, syscall count, seconds since
//! the last new syscall); everything else is per node. No syscall-by-pod
//! labels.

use std::fmt::Write as _;

use super::state::DaemonState;

/// Label values escaped as the text format requires.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub fn render(state: &DaemonState, now: u64, stable_after: u64) -> String {
    let mut out = String::new();
    let views = state.views(now, stable_after);
    let labelled: Vec<(String, &super::state::WorkloadView)> = views
        .values()
        .map(|v| {
            let k = &v.record.key;
            let labels = format!(
                "namespace=\"{}\",workload=\"{}\",container=\"{}\",generation=\"{}\"",
                label(&k.namespace),
                label(&k.workload),
                label(&k.container),
                label(&v.record.image_ref)
            );
            (labels, v)
        })
        .collect();
    header(
        &mut out,
        "recorder_workload_state",
        "gauge",
        "1 for the workload generation's state (learning, stable, partial).",
    );
    for (labels, v) in &labelled {
        let _ = writeln!(out, "recorder_workload_state{{{labels},state=\"{}\"}} 1", v.state.as_str());
    }
    header(
        &mut out,
        "recorder_workload_syscalls",
        "gauge",
        "Distinct syscalls the workload generation's profile holds.",
    );
    for (labels, v) in &labelled {
        let _ = writeln!(out, "recorder_workload_syscalls{{{labels}}} {}", v.record.calls.profile_len());
    }
    header(
        &mut out,
        "recorder_denials_total",
        "counter",
        "Calls the workload's own seccomp profile denied (see recorder_learn_hook); each is added to its profile.",
    );
    for (labels, v) in &labelled {
        let _ = writeln!(out, "recorder_denials_total{{{labels}}} {}", v.record.denied);
    }
    header(
        &mut out,
        "recorder_workload_seconds_since_new_syscall",
        "gauge",
        "Seconds since the workload generation made a syscall it had not made before.",
    );
    for (labels, v) in &labelled {
        let _ = writeln!(
            out,
            "recorder_workload_seconds_since_new_syscall{{{labels}}} {}",
            now.saturating_sub(v.record.last_new_call)
        );
    }
    header(
        &mut out,
        "recorder_learn_hook",
        "gauge",
        "1 for what sees the calls pods' own profiles deny: fexit (on __secure_computing), sys_exit_pairing (fexit refused), or off.",
    );
    let _ = writeln!(out, "recorder_learn_hook{{hook=\"{}\"}} 1", state.learn_hook.label());
    let gauges = [
        ("recorder_slots_used", "Cgroups with a slot in the kernel maps now.", state.slots_used as f64),
        ("recorder_slots_capacity", "Cgroups the kernel maps can hold at once.", state.slots_capacity as f64),
        ("recorder_containers_tracked", "Live containers the daemon tracks.", state.containers.len() as f64),
        ("recorder_cri_connected", "1 while the CRI answers.", f64::from(u8::from(state.cri_connected))),
        (
            "recorder_snapshot_duration_seconds",
            "How long the last snapshot to --state-dir took.",
            state.counters.snapshot_seconds,
        ),
    ];
    for (name, help, value) in gauges {
        header(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let counters = [
        (
            "recorder_ringbuf_drops_total",
            "Ring buffer events dropped (no syscall is lost: the maps are read).",
            state.kernel.ringbuf_drops,
        ),
        (
            "recorder_slots_full_total",
            "Times a new cgroup found no free slot (its calls were not recorded).",
            state.kernel.slots_full,
        ),
        ("recorder_abi_map_full_total", "Compat or x32 calls not recorded: their map was full.", state.kernel.abi_full),
        ("recorder_persist_errors_total", "Snapshots that could not be written.", state.counters.persist_errors),
        ("recorder_snapshots_total", "Snapshots written.", state.counters.snapshots),
        (
            "recorder_containers_folded_total",
            "Gone containers folded into their workload.",
            state.counters.containers_folded,
        ),
        (
            "recorder_unattributed_total",
            "Gone containers that were never named (their calls could not be kept).",
            state.counters.unattributed,
        ),
        ("recorder_cri_errors_total", "CRI polls that failed.", state.counters.cri_errors),
    ];
    for (name, help, value) in counters {
        header(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_prometheus_text() {
        let text = render(&DaemonState::default(), 100, 60);
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.split_whitespace().count() == 2,
                "{line}"
            );
        }
        assert!(text.contains("recorder_slots_used 0"));
        assert!(text.contains("recorder_learn_hook{hook=\"off\"} 1"));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
