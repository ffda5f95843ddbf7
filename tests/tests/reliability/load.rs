//! Load: a ring-buffer flood, cgroup churn under `record --cgroup` and under the daemon,
//! and many recordings at once.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use recorder_tests::{
    allowed_names, compile,
    daemon::{Daemon, DaemonEnv, DaemonOptions, free_port, metric, remove_cgroup, run_in_cgroup, wait_until},
    ground_truth, ground_truth_program, minimal_program, recorder_bin, skip_bpf_tests,
};
use serde_json::json;

use crate::{TestCgroup, report, signal, size, summary};

/// The calls tests/programs/flood.c makes in every process and thread.
const FLOOD_CALLS: &[&str] = &[
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "gettid",
    "getpgrp",
    "getsid",
    "getpgid",
    "sched_yield",
    "sched_getscheduler",
    "sched_getparam",
    "getpriority",
    "times",
    "sysinfo",
    "uname",
    "getcwd",
    "getrusage",
    "getrlimit",
    "getitimer",
    "getcpu",
    "clock_getres",
    "gettimeofday",
    "getgroups",
    "getresuid",
    "getresgid",
    "sched_getaffinity",
    "ioprio_get",
    "rt_sigpending",
    "capget",
    "sched_get_priority_max",
];

/// Harmless x86_64 syscalls that tests/programs/minimal.c makes as its `EXTRA` (called
/// with a buffer, its size and 0: each reads, writes the buffer or fails with EINVAL).
pub const EXTRAS: &[(u32, &str)] = &[
    (79, "getcwd"),
    (63, "uname"),
    (39, "getpid"),
    (110, "getppid"),
    (102, "getuid"),
    (104, "getgid"),
    (107, "geteuid"),
    (108, "getegid"),
    (186, "gettid"),
    (111, "getpgrp"),
    (24, "sched_yield"),
    (100, "times"),
    (99, "sysinfo"),
    (98, "getrusage"),
    (95, "umask"),
    (140, "getpriority"),
    (97, "getrlimit"),
    (145, "sched_getscheduler"),
    (124, "getsid"),
    (121, "getpgid"),
    (143, "sched_getparam"),
    (146, "sched_get_priority_max"),
    (147, "sched_get_priority_min"),
    (36, "getitimer"),
    (309, "getcpu"),
    (229, "clock_getres"),
    (201, "time"),
    (96, "gettimeofday"),
    (115, "getgroups"),
    (118, "getresuid"),
    (120, "getresgid"),
    (204, "sched_getaffinity"),
];

/// The flood program (tests/programs/flood.c).
pub fn flood_program() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| compile("flood.c", "flood", &["-O2", "-Wall", "-pthread"])).clone()
}

/// `recorder -v record ARGS` with stderr to `log`; returns once the programs are attached.
pub fn start_record(args: &[&str], log: &Path) -> Child {
    let stderr = fs::File::create(log).expect("record log");
    let mut child = Command::new(recorder_bin())
        .arg("-v")
        .arg("record")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("recorder record starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("record exited with {status}: {}", fs::read_to_string(log).unwrap_or_default());
        }
        if fs::read_to_string(log).is_ok_and(|t| t.contains("programs attached")) {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("record did not attach in 60 s: {}", fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Entries in the BPF map called `name` that process `pid` holds open (its fds, read
/// through /proc/PID/fdinfo and bpftool).
pub fn map_entries(pid: u32, name: &str) -> Option<usize> {
    let ids: BTreeSet<u64> = fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .ok()?
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .filter_map(|info| info.lines().find_map(|l| l.strip_prefix("map_id:")).and_then(|v| v.trim().parse().ok()))
        .collect();
    let bpftool = |args: &[String]| -> Option<serde_json::Value> {
        let out = Command::new("bpftool").arg("-j").args(args).output().expect("bpftool runs");
        serde_json::from_slice(&out.stdout).ok()
    };
    let id = ids.into_iter().find(|id| {
        bpftool(&["map".into(), "show".into(), "id".into(), id.to_string()]).is_some_and(|m| m["name"] == name)
    })?;
    bpftool(&["map".into(), "dump".into(), "id".into(), id.to_string()])?.as_array().map(Vec::len)
}

/// Waits for `child` and returns its exit code.
fn finish(mut child: Child, log: &Path) -> i32 {
    let status = child.wait().expect("wait");
    status.code().unwrap_or_else(|| panic!("record died: {status}\n{}", fs::read_to_string(log).unwrap_or_default()))
}

/// 10,000 processes and 10,000 threads in a recorded command while the recorder is
/// stopped (SIGSTOP): every fork event beyond the ring buffer's room fails to reserve.
/// The profile still holds every ground-truth call and every flood call, and the drops
/// are in the summary line and the JSON summary.
#[test]
fn ring_buffer_flood_loses_no_syscall() {
    if skip_bpf_tests() {
        return;
    }
    let started = Instant::now();
    let n = 10_000;
    let dir = tempfile::tempdir().expect("tmp");
    let [ready, go, done, marker] = ["ready", "go", "done", "marker"].map(|f| dir.path().join(f));
    let profile = dir.path().join("flood.json");
    let json = dir.path().join("flood-summary.json");
    let log = dir.path().join("record.log");
    let script = "touch \"$1\"; while [ ! -e \"$2\" ]; do sleep 0.05; done; \"$3\" \"$4\" >/dev/null && \"$5\" \"$6\" && touch \"$7\"";
    let p = |p: &Path| p.to_str().expect("utf8").to_owned();
    let (flood, truth) = (p(&flood_program()), p(&ground_truth_program()));
    let args = [
        "-o".into(),
        p(&profile),
        "--json-summary".into(),
        p(&json),
        "--".into(),
        "/bin/sh".into(),
        "-c".into(),
        script.into(),
        "flood".into(),
        p(&ready),
        p(&go),
        flood,
        n.to_string(),
        truth,
        p(&marker),
        p(&done),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let record = start_record(&args, &log);
    let pid = record.id();
    wait_until("the workload started", Duration::from_secs(30), String::new, || ready.exists().then_some(()));
    signal(pid, libc::SIGSTOP);
    wait_until("the recorder is stopped", Duration::from_secs(10), String::new, || {
        fs::read_to_string(format!("/proc/{pid}/stat")).ok().filter(|s| s.contains(") T ")).map(drop)
    });
    fs::write(&go, "").expect("go");
    let log_text = || fs::read_to_string(&log).unwrap_or_default();
    wait_until("the flood and the ground truth ran", Duration::from_secs(300), log_text, || {
        (done.exists() && fs::read_to_string(&marker).is_ok_and(|m| m == "daemon ok\n")).then_some(())
    });
    signal(pid, libc::SIGCONT);
    let code = finish(record, &log);
    assert_eq!(code, 0, "{}", log_text());

    let names = allowed_names(&profile);
    let missing: Vec<&str> =
        ground_truth::all().into_iter().chain(FLOOD_CALLS.iter().copied()).filter(|n| !names.contains(*n)).collect();
    let s = summary(&json);
    let drops = s["provenance"]["ringbuf_drops"].as_u64().expect("ringbuf_drops");
    let without_slot = s["provenance"]["cgroups_without_slot"].as_u64().expect("cgroups_without_slot");
    let figures = json!({
        "processes": n, "threads": n, "processes_seen": s["processes"], "ringbuf_drops": drops,
        "expected_calls": ground_truth::all().len() + FLOOD_CALLS.len(), "missing_calls": missing,
        "cgroups_without_slot": without_slot, "profile_syscalls": names.len(),
    });
    report("ring_buffer_flood", started, figures.clone());
    assert!(missing.is_empty(), "missing from the profile: {missing:?}\n{figures}");
    assert!(drops > 0, "the stopped reader must make reservations fail: {figures}");
    assert_eq!(without_slot, 0, "{figures}");
    assert!(
        log_text().contains(&format!("{drops} events dropped (profile complete")),
        "the summary line names the drops: {}",
        log_text()
    );
}

/// 32 recordings at once (8 in the short run), each of a program making one syscall of
/// its own: every profile is exactly its workload's calls, and each enforces.
#[test]
fn parallel_recordings_are_each_exact() {
    if skip_bpf_tests() {
        return;
    }
    let started = Instant::now();
    let count = size(8, 32);
    let dir = tempfile::tempdir().expect("tmp");
    let jobs: Vec<(PathBuf, PathBuf, &str)> = EXTRAS[..count]
        .iter()
        .map(|(nr, name)| (minimal_program(Some(*nr), Some(2000)), dir.path().join(format!("{name}.json")), *name))
        .collect();
    let children: Vec<Child> = jobs
        .iter()
        .map(|(prog, out, _)| {
            Command::new(recorder_bin())
                .args(["record", "-q", "-o"])
                .arg(out)
                .arg("--")
                .arg(prog)
                .stdout(Stdio::null())
                .spawn()
                .expect("recorder starts")
        })
        .collect();
    let failed = children.into_iter().map(|mut c| c.wait().expect("wait")).filter(|s| !s.success()).count();
    let mut wrong = Vec::new();
    for (_, out, name) in &jobs {
        let expected: BTreeSet<String> =
            ["execve", "exit", "exit_group", "nanosleep", "write", name].iter().map(|s| s.to_string()).collect();
        let got = allowed_names(out);
        if got != expected {
            wrong.push(json!({"workload": name, "extra": got.difference(&expected).collect::<Vec<_>>(),
                "missing": expected.difference(&got).collect::<Vec<_>>()}));
        }
    }
    report("parallel_recordings", started, json!({"recordings": count, "failed": failed, "inexact": wrong}));
    assert_eq!(failed, 0);
    assert!(wrong.is_empty(), "{wrong:?}");
    for (prog, out, _) in &jobs {
        recorder_tests::assert_runs_under(out, prog);
    }
}

/// Creates `dir`, runs minimal.c making `nr` in it, removes it.
fn use_cgroup(dir: &Path, nr: u32) {
    fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    let prog = minimal_program(Some(nr), None);
    run_in_cgroup(dir, prog.to_str().expect("utf8"), &[]);
    remove_cgroup(dir);
}

/// 10,000 cgroups (300 in the short run) created, used and removed one after another under
/// `record --cgroup PARENT`: the slots of gone cgroups are given back (the kernel map holds
/// only the long-lived keeper's at the end, counted with bpftool), and the profile holds every cgroup's call.
#[test]
fn cgroup_churn_under_record() {
    if skip_bpf_tests() {
        return;
    }
    let started = Instant::now();
    let n = size(300, 10_000);
    let parent = TestCgroup::new("churn-record");
    let dir = tempfile::tempdir().expect("tmp");
    let (profile, json, log) = (dir.path().join("p.json"), dir.path().join("s.json"), dir.path().join("r.log"));
    let p = |p: &Path| p.to_str().expect("utf8").to_owned();
    // A recording of a cgroup ends when its tree empties: a long-lived process in one child
    // keeps it going, as a service in a slice would.
    let keeper = parent.path().join("keeper");
    fs::create_dir(&keeper).expect("mkdir keeper");
    let mut keeper_proc = recorder_tests::daemon::spawn_in_cgroup(&keeper, "/bin/sleep", &["3600"]);
    let record = start_record(&["--cgroup", &p(parent.path()), "-o", &p(&profile), "--json-summary", &p(&json)], &log);
    let mut peak = 0;
    for i in 0..n {
        use_cgroup(&parent.path().join(format!("c{i}")), EXTRAS[i % EXTRAS.len()].0);
        if i % 50 == 49 {
            peak = peak.max(map_entries(record.id(), "SLOTS").unwrap_or(0));
        }
    }
    // Only the keeper's slot stays.
    let left = wait_until(
        "record gives back the gone cgroups' slots",
        Duration::from_secs(60),
        || format!("{:?}", map_entries(record.id(), "SLOTS")),
        || map_entries(record.id(), "SLOTS").filter(|n| *n <= 1),
    );
    signal(record.id(), libc::SIGINT);
    let code = finish(record, &log);
    let _ = keeper_proc.kill();
    let _ = keeper_proc.wait();
    let names = allowed_names(&profile);
    let missing: Vec<&str> = EXTRAS.iter().map(|(_, n)| *n).filter(|n| !names.contains(*n)).collect();
    let s = summary(&json);
    let lost = s["provenance"]["cgroups_without_slot"].as_u64().expect("cgroups_without_slot");
    let figures = json!({
        "cgroups": n, "slots_in_use_peak_sampled": peak, "slots_in_use_after": left, "cgroups_without_slot": lost,
        "missing_calls": missing, "exit_code": code, "ringbuf_drops": s["provenance"]["ringbuf_drops"],
    });
    report("cgroup_churn_record", started, figures.clone());
    assert!(missing.is_empty(), "{figures}");
    assert_eq!(lost, 0, "cgroups one after another never fill 1,024 slots: {figures}");
}

/// Options for a daemon with no container runtime (the churned cgroups are unnamed).
pub fn daemon_options(env: &DaemonEnv, name: &str, extra: &[&str]) -> DaemonOptions {
    DaemonOptions {
        name: name.to_owned(),
        port: free_port(),
        endpoint: env.dir.path().join("no-runtime.sock"),
        extra: ["--poll-interval", "200ms", "--snapshot-interval", "1s"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect(),
    }
}

/// One round of the daemon churn: `count` cgroups used, then removed; waits until every
/// slot is back. Returns (recorded, lost, used while live, RSS live KiB).
pub fn daemon_round(daemon: &Daemon, parent: &Path, round: usize, count: usize, used0: f64) -> (f64, f64, f64, u64) {
    let before = daemon.metrics();
    let dirs: Vec<PathBuf> = (0..count).map(|i| parent.join(format!("r{round}-{i}"))).collect();
    for (i, dir) in dirs.iter().enumerate() {
        fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let prog = minimal_program(Some(EXTRAS[i % EXTRAS.len()].0), None);
        run_in_cgroup(dir, prog.to_str().expect("utf8"), &[]);
    }
    let live = wait_until(
        "the daemon sees the live cgroups",
        Duration::from_secs(120),
        || daemon.log_text(),
        || {
            let m = daemon.metrics();
            let lost = metric(&m, "recorder_slots_full_total") - metric(&before, "recorder_slots_full_total");
            let used = metric(&m, "recorder_slots_used") - used0;
            (used + lost >= count as f64).then_some(used)
        },
    );
    let rss_live = daemon.rss_kib();
    dirs.iter().for_each(|d| remove_cgroup(d));
    let after = wait_until(
        "every gone cgroup is folded and its slot given back",
        Duration::from_secs(120),
        || daemon.log_text(),
        || {
            let m = daemon.metrics();
            (metric(&m, "recorder_slots_used") <= used0 && metric(&m, "recorder_containers_tracked") <= used0)
                .then_some(m)
        },
    );
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    (delta("recorder_containers_folded_total"), delta("recorder_slots_full_total"), live, rss_live)
}

/// 10,000 cgroups (400 in the short run) in rounds of 500 (200) under the daemon: each
/// recorded or reported lost, every slot given back after each round, RSS back near its
/// baseline; then a flood with the daemon stopped shows in `recorder_ringbuf_drops_total`.
#[test]
fn cgroup_churn_under_the_daemon() {
    if skip_bpf_tests() {
        return;
    }
    let started = Instant::now();
    let (rounds, per_round) = (size(2, 20), size(200, 500));
    let env = DaemonEnv::new("rel-churn");
    let daemon = Daemon::start(&env, &daemon_options(&env, "node", &[]));
    let parent = env.parent_dir();
    let used0 = metric(&daemon.metrics(), "recorder_slots_used");
    let rss0 = daemon.rss_kib();
    let (mut recorded, mut lost, mut peak_used, mut peak_rss) = (0.0, 0.0, 0.0f64, rss0);
    for round in 0..rounds {
        let (r, l, used, rss) = daemon_round(&daemon, &parent, round, per_round, used0);
        recorded += r;
        lost += l;
        peak_used = peak_used.max(used);
        peak_rss = peak_rss.max(rss);
    }
    let slots_after = metric(&daemon.metrics(), "recorder_slots_used");
    let pinned_after = map_entries(daemon.pid(), "SLOTS");
    let rss_end = daemon.rss_kib();

    // The flood, with the daemon stopped so that it cannot drain the ring buffer.
    let flood_dir = parent.join("flood");
    fs::create_dir(&flood_dir).expect("mkdir flood");
    signal(daemon.pid(), libc::SIGSTOP);
    run_in_cgroup(&flood_dir, flood_program().to_str().expect("utf8"), &["10000"]);
    signal(daemon.pid(), libc::SIGCONT);
    let drops = wait_until(
        "the daemon reports the drops",
        Duration::from_secs(60),
        || daemon.log_text(),
        || Some(metric(&daemon.metrics(), "recorder_ringbuf_drops_total")).filter(|d| *d > 0.0),
    );
    remove_cgroup(&flood_dir);

    let n = rounds * per_round;
    let figures = json!({
        "cgroups": n, "rounds": rounds, "recorded": recorded, "reported_lost": lost,
        "slots_used_peak": peak_used, "slots_used_after": slots_after, "slots_map_entries_after": pinned_after,
        "rss_baseline_kib": rss0, "rss_peak_kib": peak_rss, "rss_end_kib": rss_end,
        "flood_ringbuf_drops": drops, "persist_errors": metric(&daemon.metrics(), "recorder_persist_errors_total"),
    });
    report("cgroup_churn_daemon", started, figures.clone());
    assert!(recorded + lost >= n as f64, "every cgroup recorded or reported lost: {figures}");
    assert_eq!(slots_after, used0, "{figures}");
    assert!(rss_end < rss0 + 20 * 1024, "RSS back near its baseline: {figures}");
    let mut daemon = daemon;
    assert!(daemon.terminate().success(), "{}", daemon.log_text());
    env.unpin("node");
}
