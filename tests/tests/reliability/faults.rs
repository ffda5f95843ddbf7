//! Faults, each injected for real: `kill -9` of `record` and of the daemon at varying
//! points, a full filesystem under `-o` and under `--state-dir`, bpffs absent, BTF absent.
//! Each reports what was lost and what the user was told.

use std::{
    ffi::CString,
    fs,
    io::Write as _,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use recorder_tests::{
    allowed_names,
    daemon::{Daemon, DaemonEnv, metric, remove_cgroup, spawn_in_cgroup, wait_until},
    minimal_program, recorder, recorder_bin, skip_bpf_tests, write_profile,
};
use serde_json::json;

use crate::{
    load::{EXTRAS, daemon_options, daemon_round, start_record},
    report, size,
};

/// A pseudo-random delay below `max_ms` (the clock's nanoseconds: a different point each run).
fn random_ms(max_ms: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").subsec_nanos();
    u64::from(nanos) % max_ms
}

/// True while `pid` exists and is not a zombie.
fn running(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| !s[i + 2..].starts_with('Z')))
        .unwrap_or(false)
}

/// `record`'s own cgroups (`recorder/rec-<pid>-*`) that exist.
fn record_cgroups(pid: u32) -> Vec<PathBuf> {
    let dir = recorder_tests::daemon::v2_mount().join("recorder");
    fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p: &PathBuf| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("rec-{pid}-"))))
        .collect()
}

/// `kill -9` of `record` at a different point each time, while its command has a child
/// that left the process group and the session (`setsid`), which `PR_SET_PDEATHSIG` does
/// not reach: nothing the recording started keeps running, and its cgroup goes.
#[test]
fn kill_9_of_record_orphans_nothing() {
    if skip_bpf_tests() {
        return;
    }
    let started = Instant::now();
    let mut runs = Vec::new();
    for round in 0..size(3, 10) {
        let dir = tempfile::tempdir().expect("tmp");
        let pidfile = dir.path().join("escaped.pid");
        let log = dir.path().join("record.log");
        let script = "setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $! > \"$1\"; exec sleep 600";
        let (out, pf) = (dir.path().join("p.json"), pidfile.to_str().expect("utf8").to_owned());
        let record = start_record(&["-o", out.to_str().expect("utf8"), "--", "/bin/sh", "-c", script, "sh", &pf], &log);
        let pid = record.id();
        wait_until("the workload started its escaped child", Duration::from_secs(30), String::new, || {
            fs::read_to_string(&pidfile).ok().and_then(|t| t.trim().parse::<i32>().ok())
        });
        let delay = random_ms(1000);
        std::thread::sleep(Duration::from_millis(delay));
        let escaped: i32 = fs::read_to_string(&pidfile).expect("pidfile").trim().parse().expect("pid");
        let mut record = record;
        record.kill().expect("kill -9");
        record.wait().expect("wait");
        let killed_at = Instant::now();
        wait_until(
            "the escaped child is killed",
            Duration::from_secs(30),
            || format!("pid {escaped}"),
            || (!running(escaped)).then_some(()),
        );
        wait_until(
            "the recording's cgroup is removed",
            Duration::from_secs(30),
            || format!("{:?}", record_cgroups(pid)),
            || record_cgroups(pid).is_empty().then_some(()),
        );
        runs.push(
            json!({"round": round, "killed_after_ms": delay, "cleaned_up_within_s": killed_at.elapsed().as_secs_f64()}),
        );
    }
    report("kill_9_record", started, json!({"kills": runs.len(), "orphans_left": 0, "runs": runs}));
}

/// A small tmpfs of this test's own, unmounted on drop.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(dir: &Path, size: &str) -> SmallFs {
        fs::create_dir_all(dir).expect("mkdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "recorder-rel"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(status.success(), "mounting a tmpfs at {}", dir.display());
        SmallFs(dir.to_path_buf())
    }

    /// Fills the filesystem with `filler` until ENOSPC.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = fs::File::create(&path).expect("filler");
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        path
    }

    /// Files other than the filler.
    fn others(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .expect("readdir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "filler")
            .collect();
        names.sort();
        names
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let path = CString::new(self.0.as_os_str().as_bytes()).expect("path");
        // SAFETY: umount2(2) with a valid C string; this test mounted it.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
}

/// `record -o` on a full filesystem: one clear line and exit 11, the previous profile
/// intact, no temporary file left behind.
#[test]
fn a_full_disk_under_the_output_keeps_the_previous_profile() {
    if skip_bpf_tests() {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tmp");
    let small = SmallFs::mount(&dir.path().join("out"), "64k");
    let profile = small.0.join("p.json");
    let previous: std::collections::BTreeSet<String> =
        ["read", "write", "exit_group"].iter().map(|s| s.to_string()).collect();
    write_profile(&profile, &previous);
    let before = fs::read(&profile).expect("previous");
    small.fill();
    let prog = minimal_program(Some(EXTRAS[0].0), None);
    let out = recorder(&["record", "-q", "-o", profile.to_str().expect("utf8"), "--", prog.to_str().expect("utf8")]);
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let intact = fs::read(&profile).expect("previous") == before;
    let others = small.others();
    report(
        "full_disk_output",
        started,
        json!({"exit_code": out.status.code(), "told": stderr, "previous_intact": intact, "files_left": others}),
    );
    assert_eq!(out.status.code(), Some(11), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
    assert!(!stderr.contains(" at path "), "names what the user asked for, not a gone temporary file: {stderr}");
    assert!(intact);
    assert_eq!(others, ["p.json"], "no temporary file left");
    assert_eq!(allowed_names(&profile), previous);
}

/// The daemon's `--state-dir` fills up: each failed snapshot is counted and logged, the
/// previous snapshot stays intact, recording goes on (new cgroups get slots); once there is
/// room again the next snapshot is written.
#[test]
fn a_full_state_dir_keeps_the_last_snapshot_and_recording_goes_on() {
    if skip_bpf_tests() {
        return;
    }
    let started = Instant::now();
    let env = DaemonEnv::new("rel-full");
    let options = daemon_options(&env, "node", &[]);
    let state = env.state_dir("node");
    let small = SmallFs::mount(&state, "256k");
    let daemon = Daemon::start(&env, &options);
    let snapshot = state.join("state.json");
    wait_until(
        "a first snapshot",
        Duration::from_secs(30),
        || daemon.log_text(),
        || (metric(&daemon.metrics(), "recorder_snapshots_total") >= 1.0 && snapshot.exists()).then_some(()),
    );
    let filler = small.fill();
    let before = fs::read(&snapshot).expect("snapshot");
    let used0 = metric(&daemon.metrics(), "recorder_slots_used");
    let cgroup = env.parent_dir().join("while-full");
    fs::create_dir(&cgroup).expect("mkdir");
    let prog = minimal_program(Some(EXTRAS[1].0), Some(60_000));
    let mut workload = spawn_in_cgroup(&cgroup, prog.to_str().expect("utf8"), &[]);
    let m = wait_until(
        "a snapshot fails and recording goes on",
        Duration::from_secs(30),
        || daemon.log_text(),
        || {
            let m = daemon.metrics();
            (metric(&m, "recorder_persist_errors_total") >= 1.0 && metric(&m, "recorder_slots_used") > used0)
                .then_some(m)
        },
    );
    let intact = fs::read(&snapshot).expect("snapshot") == before;
    let others = small.others();
    let told = daemon.log_text().lines().find(|l| l.contains("No space left")).map(str::to_owned);
    let ready = daemon.try_get("/readyz").map(|(s, _)| s).ok();
    fs::remove_file(&filler).expect("room again");
    let snapshots = metric(&m, "recorder_snapshots_total");
    wait_until(
        "a snapshot is written again",
        Duration::from_secs(30),
        || daemon.log_text(),
        || (metric(&daemon.metrics(), "recorder_snapshots_total") > snapshots).then_some(()),
    );
    let _ = workload.kill();
    let _ = workload.wait();
    remove_cgroup(&cgroup);
    let figures = json!({
        "persist_errors": metric(&m, "recorder_persist_errors_total"), "previous_snapshot_intact": intact,
        "files_left": others, "told": told, "readyz_while_full": ready,
        "slots_used_while_full": metric(&m, "recorder_slots_used"),
    });
    report("full_disk_state_dir", started, figures.clone());
    assert!(intact, "{figures}");
    assert_eq!(others, ["state.json"], "no temporary file left: {figures}");
    assert!(told.is_some(), "the log says the disk is full: {}", daemon.log_text());
    assert_eq!(ready, Some(200), "{figures}");
    let mut daemon = daemon;
    assert!(daemon.terminate().success(), "{}", daemon.log_text());
    drop(small);
    env.unpin("node");
}

/// `kill -9` of the daemon at a different point of each churn round, and a restart on the
/// same pins and state: each restart adopts the pins, and every slot the churned cgroups
/// took is given back in the end (no slot leaks across kills).
#[test]
fn kill_9_of_the_daemon_during_churn_leaks_no_slot() {
    if skip_bpf_tests() {
        return;
    }
    let started = Instant::now();
    let env = DaemonEnv::new("rel-kill");
    let options = daemon_options(&env, "node", &[]);
    let parent = env.parent_dir();
    let mut daemon = Daemon::start(&env, &options);
    let used0 = metric(&daemon.metrics(), "recorder_slots_used");
    let (rounds, per_round) = (size(2, 5), size(100, 500));
    let mut kills = Vec::new();
    for round in 0..rounds {
        // Cgroups appear while the daemon runs, then it is killed at a random point.
        let churner = {
            let parent = parent.clone();
            std::thread::spawn(move || {
                for i in 0..per_round {
                    let dir = parent.join(format!("k{round}-{i}"));
                    fs::create_dir(&dir).expect("mkdir");
                    let prog = minimal_program(Some(EXTRAS[i % EXTRAS.len()].0), None);
                    recorder_tests::daemon::run_in_cgroup(&dir, prog.to_str().expect("utf8"), &[]);
                    remove_cgroup(&dir);
                }
            })
        };
        let delay = random_ms(1500);
        std::thread::sleep(Duration::from_millis(delay));
        daemon.kill9();
        churner.join().expect("churn");
        daemon = Daemon::start(&env, &options);
        let adopted = daemon.log_text().matches("adopted the maps pinned").count();
        kills.push(json!({"round": round, "killed_after_ms": delay, "adopted_on_restart": adopted > round}));
    }
    let after = wait_until(
        "every slot is given back",
        Duration::from_secs(60),
        || daemon.log_text(),
        || {
            let m = daemon.metrics();
            (metric(&m, "recorder_slots_used") <= used0).then_some(m)
        },
    );
    // One more round with no kill: recorded or reported, as without faults.
    let (recorded, lost, _, _) = daemon_round(&daemon, &parent, rounds, per_round, used0);
    let figures = json!({
        "kills": kills, "cgroups_churned": rounds * per_round, "slots_used_after": metric(&after, "recorder_slots_used"),
        "last_round_recorded": recorded, "last_round_lost": lost,
    });
    report("kill_9_daemon", started, figures.clone());
    assert!(kills.iter().all(|k| k["adopted_on_restart"] == true), "{figures}\n{}", daemon.log_text());
    assert!(recorded + lost >= per_round as f64, "{figures}");
    assert!(daemon.terminate().success(), "{}", daemon.log_text());
    env.unpin("node");
}

/// Runs `recorder ARGS` in a private mount namespace after `setup` (shell).
fn in_private_mounts(setup: &str, args: &str) -> std::process::Output {
    let script = format!("{setup} && exec {} {args}", recorder_bin().display());
    Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().expect("unshare")
}

/// No bpffs where the daemon pins: it mounts one and says so in one line. No BTF: `record`
/// and the daemon each stop with one line and exit 22.
#[test]
fn bpffs_or_btf_missing_is_one_line_and_an_exit_code() {
    if skip_bpf_tests() {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().display();
    let parent = crate::TestCgroup::new("bpffs");
    let p = parent.path().display();
    // A daemon whose pin dir's parent is a plain directory (no bpffs): it mounts one there,
    // inside the private namespace, and stops on SIGTERM a moment later.
    let port = recorder_tests::daemon::free_port();
    let daemon = format!(
        "daemon --listen 127.0.0.1:{port} --pin-dir {d}/bpf/pins --state-dir {d}/state --cgroup-parent {p} \
         --runtime-endpoint {d}/no.sock"
    );
    let bpffs = in_private_mounts(&format!("mkdir -p {d}/bpf && {{ (sleep 3; kill -TERM $$) & }}"), &daemon);
    let bpffs_told: Vec<String> = String::from_utf8_lossy(&bpffs.stderr)
        .lines()
        .filter(|l| l.contains("bpf filesystem"))
        .map(str::to_owned)
        .collect();
    let no_btf = "mount -t tmpfs none /sys/kernel/btf";
    let record = in_private_mounts(no_btf, "record -- true");
    let daemon_btf = in_private_mounts(no_btf, &daemon);
    let line = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).trim().to_owned();
    let figures = json!({
        "bpffs_absent": {"exit_code": bpffs.status.code(), "told": bpffs_told},
        "btf_absent_record": {"exit_code": record.status.code(), "told": line(&record)},
        "btf_absent_daemon": {"exit_code": daemon_btf.status.code(), "told": line(&daemon_btf)},
    });
    report("bpffs_btf_missing", started, figures.clone());
    assert_eq!(bpffs_told.len(), 1, "{figures}\n{}", String::from_utf8_lossy(&bpffs.stderr));
    for o in [&record, &daemon_btf] {
        assert_eq!(o.status.code(), Some(22), "{figures}");
        assert_eq!(line(o).lines().count(), 1, "{figures}");
        assert!(line(o).contains("BTF"), "{figures}");
    }
}
