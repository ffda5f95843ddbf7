//! `cargo xtask reliability`: the load and fault scenarios of tests/tests/reliability at
//! full size against the release binary, and RELIABILITY.md from what they report (one
//! JSON object per scenario). `--short` runs the CI's sizes and only prints the table;
//! `--long` runs the daemon churn for `--minutes` and plots it (reliability-long.svg).

use std::{fmt::Write as _, fs, path::Path, process::Command};

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::{reliability_svg, util};

/// What each scenario holds or injects, and what the user is told.
const SCENARIOS: &[(&str, &str, &str, &str)] = &[
    (
        "ring_buffer_flood",
        "load",
        "10,000 processes and 10,000 threads, 32 distinct calls each, plus the ground-truth program, while `record` is stopped (SIGSTOP) so that ring-buffer reservations fail",
        "the summary line (`N events dropped (profile complete: read from the map)`) and `provenance.ringbuf_drops` in `--json-summary`",
    ),
    (
        "cgroup_churn_record",
        "load",
        "cgroups created, used (one call of 32 each) and removed one after another under `record --cgroup PARENT`; the `SLOTS` map counted with bpftool",
        "`provenance.cgroups_without_slot` when a cgroup found no slot",
    ),
    (
        "cgroup_churn_daemon",
        "load",
        "cgroups in rounds under the daemon, each round removed before the next; then a 10,000-process flood with the daemon stopped",
        "`recorder_slots_full_total`, `recorder_ringbuf_drops_total`, `recorder_containers_folded_total` in `/metrics`",
    ),
    (
        "parallel_recordings",
        "load",
        "`record` runs at once, each of a program making one call of its own, each profile then enforced",
        "nothing (each profile is exact)",
    ),
    (
        "kill_9_record",
        "fault",
        "`kill -9` of `record` at a random point while its command has a `setsid` child outside its process group",
        "nothing at the time (SIGKILL); the cgroup's watcher kills what the command started and removes its cgroup",
    ),
    (
        "kill_9_daemon",
        "fault",
        "`kill -9` of the daemon at a random point of each churn round, restarted on the same pins and state",
        "the restarted daemon logs `adopted the maps pinned in ...: nothing was lost while no daemon ran`",
    ),
    (
        "full_disk_output",
        "fault",
        "`record -o` into a full 64 KiB tmpfs holding a previous profile",
        "one line and exit 11 (see the figures)",
    ),
    (
        "full_disk_state_dir",
        "fault",
        "the daemon's `--state-dir` on a 256 KiB tmpfs filled up while a new cgroup runs",
        "a log line naming the snapshot file and ENOSPC, `recorder_persist_errors_total`; `/readyz` stays 200",
    ),
    (
        "bpffs_btf_missing",
        "fault",
        "no bpffs under the daemon's pin dir, and no `/sys/kernel/btf` (private mount namespaces)",
        "bpffs: one warning line, the daemon mounts one; BTF: one line and exit 22 (see the figures)",
    ),
];

/// How to read the figures: what each scenario shows, and what it does not.
const READING: &str = "\
- **Flood**: `ringbuf_drops` > 0 with `missing_calls` empty. The ring buffer only carries hints; \
the profile is read from the kernel maps, so a dropped event loses no syscall.
- **Churn under `record --cgroup`**: `slots_in_use_peak_sampled` is how many gone cgroups wait for \
the once-a-second harvest. `--cgroup` mode has 1,024 slots, so a churn faster than about 1,000 \
cgroups a second would find no slot; each such cgroup is counted in `cgroups_without_slot`, never \
lost silently.
- **Churn under the daemon**: there is no container runtime in this scenario, so the cgroups have no \
CRI identity: the daemon folds and counts them (`recorded`) and keeps no workload for them. Profiles \
of named pods through churn and restarts are checked by [tests/tests/daemon.rs](tests/tests/daemon.rs).
- **`kill -9` of the daemon**: the pinned programs keep recording while no daemon runs; the check \
here is that each restart adopts the pins and no slot leaks. Per-pod profiles across a daemon kill \
are proven by `daemon::deployment_replicas_across_a_daemon_kill_under_runc` (and `_crun`).
- **`kill -9` of `record`**: `cleaned_up_within_s` is bounded below by the test's 0.1 s poll: the \
escaped child was gone at the first look each time.
- **Full disk under `-o`**: the previous profile stays and no temporary file is left, but the new \
recording is written nowhere: rerun with an output that has room.
";

/// Runs the scenarios (and the long run with `long`) and writes RELIABILITY.md, or with
/// `short` only prints the table.
pub fn run(short: bool, long: Option<f64>) -> Result<()> {
    let dir = util::workspace_root().join("target/reliability");
    fs::create_dir_all(&dir)?;
    if let Some(minutes) = long {
        return long_run(&dir, minutes);
    }
    let report = dir.join("report.jsonl");
    let _ = fs::remove_file(&report);
    let out = util::cargo()
        .args(["test", "--release", "-p", "recorder-tests", "--test", "reliability", "--", "--test-threads=1"])
        .env("RECORDER_BIN", util::recorder_bin())
        .env("RECORDER_RELIABILITY_SCALE", if short { "short" } else { "full" })
        .env("RECORDER_RELIABILITY_OUT", &report)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running tests/tests/reliability")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    let lines = read_lines(&report)?;
    let table = table(&lines, &stdout);
    if short {
        println!("{table}");
    } else {
        let path = util::workspace_root().join("RELIABILITY.md");
        let old = fs::read_to_string(&path).unwrap_or_default();
        let text = util::keep_other_sections(&document(&table, &lines)?, &old);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("xtask reliability: wrote {}", path.display());
    }
    anyhow::ensure!(out.status.success(), "a reliability scenario failed (see above)");
    Ok(())
}

fn read_lines(path: &Path) -> Result<Vec<Value>> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).with_context(|| format!("a report line: {l}"))).collect()
}

/// Did the test that reported `scenario` pass? libtest prints `test NAME ... ok`.
fn verdict(line: &Value, stdout: &str) -> &'static str {
    let test = line["test"].as_str().unwrap_or("?");
    if stdout.contains(&format!("test {test} ... ok")) { "held" } else { "FAILED" }
}

/// One figure value, short.
fn show(v: &Value) -> String {
    match v {
        Value::Array(a) if a.len() > 3 => format!("[{} items]", a.len()),
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| n.to_string(), |f| if f.fract() == 0.0 { format!("{f:.0}") } else { format!("{f:.2}") }),
        other => other.to_string(),
    }
}

fn table(lines: &[Value], stdout: &str) -> String {
    let mut out = String::from(
        "| scenario | kind | size | what was held or injected | what the user is told | figures | time | verdict |\n\
         |---|---|---|---|---|---|---:|---|\n",
    );
    for (name, kind, what, told) in SCENARIOS {
        let Some(line) = lines.iter().find(|l| l["scenario"] == *name) else {
            let _ = writeln!(out, "| {name} | {kind} | | {what} | {told} | not reported | | FAILED |");
            continue;
        };
        // Nested objects one level down, as `outer.inner=value`.
        let mut figures = Vec::new();
        for (k, v) in line["figures"].as_object().into_iter().flatten() {
            match v.as_object() {
                Some(inner) => figures.extend(inner.iter().map(|(ik, iv)| format!("{k}.{ik}={}", show(iv)))),
                None => figures.push(format!("{k}={}", show(v))),
            }
        }
        let _ = writeln!(
            out,
            "| {name} | {kind} | {} | {what} | {told} | {} | {:.0} s | {} |",
            line["scale"].as_str().unwrap_or("?"),
            figures.join(", ").replace('|', "\\|"),
            line["seconds"].as_f64().unwrap_or(0.0),
            verdict(line, stdout)
        );
    }
    out
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("?", |m| m.trim_start_matches([' ', '\t', ':']));
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")).map_or("?".to_owned(), |m| m.trim().to_owned());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs ({model}), {mem} of memory, Linux {}", kernel.trim())
}

fn now_utc() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map_or_else(|_| "?".to_owned(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

fn document(table: &str, lines: &[Value]) -> Result<String> {
    let mut details = String::new();
    for line in lines {
        let _ = writeln!(
            details,
            "### {}\n\n```json\n{}\n```\n",
            line["scenario"].as_str().unwrap_or("?"),
            serde_json::to_string_pretty(&line["figures"])?
        );
    }
    Ok(format!(
        "# Reliability\n\n\
         Written by `cargo xtask reliability` on {} ({}): the scenarios of \
         [tests/tests/reliability](tests/tests/reliability/main.rs) at full size against the release binary, on \
         the real kernel. The same scenarios run small in every `cargo xtask test` (the CI's short version). \
         Other helpers were compiling on the same two cores while this ran, so times are loose.\n\n\
         \"Lost\" is in the figures: `missing_calls` (calls of the ground truth absent from a profile), \
         `cgroups_without_slot` / `reported_lost` (cgroups whose calls were not recorded, each counted), \
         `inexact` (profiles with a call too many or too few), `orphans_left`.\n\n\
         ## Scenarios\n\n{table}\n\
         ## What the figures say\n\n{READING}\n\
         ## Figures\n\n{details}\
         ## Not covered here\n\n\
         Elsewhere: fuzzing of every parser ([docs/fuzzing.md](docs/fuzzing.md)), hostile names, labels and \
         annotations ([tests/tests/hostile_names.rs](tests/tests/hostile_names.rs)), and containerd killed in \
         the middle of `record --pod` (`cli_strict_targets`: the recording goes on from the cgroups, is \
         written marked partial, and enforces). No scenario yet: containerd restarting under the daemon, a \
         container deleted between two CRI polls, a kernel without `bpf_get_current_ancestor_cgroup_id`, \
         the daemon's API under slow or many clients, and the hour-long run.\n",
        now_utc(),
        machine()
    ))
}

/// The long run: the ignored `long_churn` test for `minutes`, plotted.
fn long_run(dir: &Path, minutes: f64) -> Result<()> {
    let (report, samples) = (dir.join("long.jsonl"), dir.join("long-samples.jsonl"));
    let _ = fs::remove_file(&report);
    let sample_seconds = if minutes < 10.0 { "5" } else { "10" };
    util::run(
        util::cargo()
            .args(["test", "--release", "-p", "recorder-tests", "--test", "reliability", "--"])
            .args(["--ignored", "--exact", "long::long_churn", "--nocapture"])
            .env("RECORDER_BIN", util::recorder_bin())
            .env("RECORDER_RELIABILITY_OUT", &report)
            .env("RECORDER_RELIABILITY_MINUTES", minutes.to_string())
            .env("RECORDER_RELIABILITY_SAMPLE_SECONDS", sample_seconds)
            .env("RECORDER_RELIABILITY_SAMPLES", &samples),
    )?;
    let points = read_lines(&samples)?;
    let figures = read_lines(&report)?.into_iter().next().map(|l| l["figures"].clone()).unwrap_or_default();
    let caption = format!("recorder daemon under cgroup churn, {minutes} minutes, {}", now_utc());
    let svg = util::workspace_root().join("reliability-long.svg");
    fs::write(&svg, reliability_svg::plot(&points, &caption))?;
    let body = format!(
        "Written by `cargo xtask reliability --long --minutes {minutes}` on {} ({}): the daemon under \
         continuous cgroup churn (a new cgroup used every few milliseconds, up to 200 live, the oldest \
         removed), sampled every {sample_seconds} s. This run lasted **{minutes} minutes**, not the hour \
         `--long` runs by default.\n\n![RSS, CPU and slot-map fill over time](reliability-long.svg)\n\n\
         ```json\n{}\n```\n",
        now_utc(),
        machine(),
        serde_json::to_string_pretty(&figures)?
    );
    let path = util::workspace_root().join("RELIABILITY.md");
    let old = fs::read_to_string(&path).unwrap_or_else(|_| "# Reliability\n".to_owned());
    fs::write(&path, util::replace_section(&old, "Long run", &body))?;
    eprintln!("xtask reliability --long: wrote {} and {}", path.display(), svg.display());
    Ok(())
}
