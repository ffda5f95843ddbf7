//! Stopping on purpose: Ctrl-C, SIGTERM and --duration always write the
//! profile and exit 0; --pid and --cgroup record workloads we did not start.

use std::{
    io::Write as _,
    process::{Command, Stdio},
    time::Duration,
};

use recorder_tests::{
    allowed_names, assert_exit, minimal_program, recorder, recorder_bin, scratch_dir, skip_bpf_tests,
};

fn stop_with(signal: i32, name: &str) {
    let profile = scratch_dir().join(format!("stop-{name}.json"));
    let mut child = Command::new(recorder_bin())
        .args(["record", "-q", "-o"])
        .arg(&profile)
        .args(["--", "sleep", "600"])
        .spawn()
        .expect("recorder starts");
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: kill(2) on the PID of a child we own and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{name}: stopped on purpose exits 0");
    let names = allowed_names(&profile);
    assert!(names.contains("execve") && names.contains("clock_nanosleep"), "{name}: {names:?}");
}

#[test]
fn sigint_writes_the_profile() {
    if skip_bpf_tests() {
        return;
    }
    stop_with(libc::SIGINT, "sigint");
}

#[test]
fn sigterm_writes_the_profile() {
    if skip_bpf_tests() {
        return;
    }
    stop_with(libc::SIGTERM, "sigterm");
}

#[test]
fn duration_ends_the_recording() {
    if skip_bpf_tests() {
        return;
    }
    let profile = scratch_dir().join("duration.json");
    let out =
        recorder(&["record", "-q", "--duration", "1s", "-o", profile.to_str().expect("utf8"), "--", "sleep", "600"]);
    assert_exit(&out, 0, "duration stop");
    assert!(allowed_names(&profile).contains("clock_nanosleep"));
}

/// A cgroup of the test's own, with one process in it that waits for a line
/// on stdin and then execs `then`.
struct Workload {
    dir: std::path::PathBuf,
    child: std::process::Child,
}

impl Workload {
    fn start(then: &std::path::Path, name: &str) -> Workload {
        let v2 = std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .find(|l| l.contains(" - cgroup2 "))
            .and_then(|l| l.split(' ').nth(4).map(str::to_owned))
            .expect("a cgroup2 mount");
        let dir = std::path::Path::new(&v2).join(format!("recorder-test-{}-{name}", std::process::id()));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("read line; exec {}", then.display())]).stdin(Stdio::piped()).stdout(Stdio::null());
        let child = recorder_tests::containers::spawn_in_cgroup(&mut cmd, &dir);
        Workload { dir, child }
    }

    fn go(&mut self) {
        self.child.stdin.as_mut().expect("stdin").write_all(b"go\n").expect("write");
        self.child.wait().expect("wait");
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn record_running(name: &str, target: impl Fn(&Workload) -> (&'static str, String)) {
    let prog = minimal_program(Some(63 /* uname */), Some(300));
    let mut workload = Workload::start(&prog, name);
    let (flag, value) = target(&workload);
    let profile = scratch_dir().join(format!("{name}.json"));
    let rec = Command::new(recorder_bin())
        .args(["record", "-o"])
        .arg(&profile)
        .args([flag, value.as_str(), "--duration", "30s"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("recorder starts");
    // Give the recorder time to attach before the workload does its work.
    std::thread::sleep(Duration::from_millis(800));
    workload.go();
    let out = rec.wait_with_output().expect("recorder ends when the cgroup empties");
    assert_exit(&out, 0, name);
    let names = allowed_names(&profile);
    for n in ["uname", "nanosleep", "write", "exit_group", "execve"] {
        assert!(names.contains(n), "{name}: {n} missing from {names:?}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("startup was not observed"), "{stderr}");
}

#[test]
fn pid_records_its_cgroup_from_now_on() {
    if skip_bpf_tests() {
        return;
    }
    record_running("pid", |w| ("--pid", w.child.id().to_string()));
}

#[test]
fn cgroup_records_an_existing_directory() {
    if skip_bpf_tests() {
        return;
    }
    record_running("cgroup", |w| ("--cgroup", w.dir.display().to_string()));
}
