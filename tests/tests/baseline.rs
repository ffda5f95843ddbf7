//! `recorder baseline`: a runtime's post-filter base set, derived by
//! recording it start trivial containers, matches what the runtime needs;
//! it is an OCI profile that `check`, `merge` and `record --base-set` take;
//! a runtime that hangs is killed at `--timeout`, and neither that, a
//! SIGTERM nor a SIGKILL leaves a file behind.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use recorder_tests::{
    allowed_names, assert_exit,
    containers::{CgroupDirs, Sleeper, cgroup2_mount, fix_crun_hybrid_hugetlb},
    one_line, recorder, recorder_bin, skip_bpf_tests,
};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

fn base_set(runtime: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("base.json");
    let out = recorder(&["baseline", "--runtime", runtime, "--runs", "6", "-o", s(&path)]);
    assert_exit(&out, 0, &format!("baseline --runtime {runtime}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{runtime} version")), "the summary names the runtime's version: {stderr}");
    allowed_names(&path).into_iter().collect()
}

#[test]
fn runc_base_set_has_its_known_post_filter_calls() {
    if skip_bpf_tests() {
        return;
    }
    let set = base_set("runc");
    // runc 1.1.5 after prctl(PR_SET_SECCOMP): the exec fifo (openat, write),
    // the /proc/self/fd check (fstatfs, getdents64), closing fds, execve.
    for call in ["openat", "write", "fstatfs", "getdents64", "close", "execve"] {
        assert!(set.iter().any(|s| s == call), "{call} missing: {set:?}");
    }
    for setup in ["mount", "pivot_root", "sethostname", "unshare"] {
        assert!(!set.iter().any(|s| s == setup), "setup call {setup} in the base set: {set:?}");
    }
}

#[test]
fn crun_base_set_is_small() {
    if skip_bpf_tests() {
        return;
    }
    fix_crun_hybrid_hugetlb().expect("crun on hybrid hosts");
    let set = base_set("crun");
    for call in ["close", "execve"] {
        assert!(set.iter().any(|s| s == call), "{call} missing: {set:?}");
    }
    assert!(set.len() < 20, "crun makes few calls after its seccomp(): {set:?}");
    assert!(!set.iter().any(|s| s == "mount" || s == "pivot_root"), "{set:?}");
}

#[test]
fn unknown_runtime_is_127() {
    let out = recorder(&["baseline", "--runtime", "no-such-runtime-xyz"]);
    assert_exit(&out, 127, "missing runtime");
}

#[test]
fn the_base_set_is_a_profile_that_check_merge_and_record_take() {
    if skip_bpf_tests() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let base = dir.path().join("runc-base.json");
    assert_exit(&recorder(&["baseline", "--runtime", "runc", "--runs", "2", "-o", s(&base)]), 0, "baseline");
    let names = allowed_names(&base);
    assert!(names.contains("execve"), "{names:?}");
    assert_exit(&recorder(&["check", s(&base)]), 0, "check reads the base set");
    let other = dir.path().join("other.json");
    std::fs::write(
        &other,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    )
    .expect("write");
    let merged = dir.path().join("merged.json");
    assert_exit(&recorder(&["merge", s(&base), s(&other), "-o", s(&merged)]), 0, "merge takes the base set");
    let merged_names = allowed_names(&merged);
    assert!(names.iter().all(|n| merged_names.contains(n)) && merged_names.contains("getpid"), "{merged_names:?}");

    // record --base-set: a running container's profile gets exactly this
    // set added (the sleeper makes none of runc's exec-fifo calls).
    let id = format!("c{:015x}", std::process::id()).repeat(4);
    let mount = cgroup2_mount().expect("mountinfo").expect("cgroup2");
    let parent = CgroupDirs::create(vec![mount.join(format!("recorder-base-set-{}", std::process::id()))]);
    let _sleeper = Sleeper::start_in(parent.0[0].join(&id));
    let custom = dir.path().join("custom.json");
    std::fs::write(&custom, r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve","fstatfs","mq_notify"],"action":"SCMP_ACT_ALLOW"}]}"#)
        .expect("write");
    let profile = dir.path().join("p.json");
    let out = recorder(&[
        "record",
        "-q",
        "--container-id",
        &id,
        "--base-set",
        s(&custom),
        "--duration",
        "1s",
        "-o",
        s(&profile),
    ]);
    assert_exit(&out, 0, "record --base-set");
    let recorded = allowed_names(&profile);
    assert!(recorded.contains("mq_notify"), "the given base set is added, not a shipped one: {recorded:?}");
    // Refused before recording: a base set with nothing allowed, or with --runtime.
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}"#).expect("write");
    let out =
        recorder(&["record", "--container-id", &id, "--base-set", s(&empty), "--duration", "1s", "-o", s(&profile)]);
    assert_exit(&out, 12, "an empty --base-set");
    assert!(one_line(&out).contains("allows no syscall"));
    let out = recorder(&["record", "--base-set", s(&custom), "--duration", "1s", "--", "true"]);
    assert_exit(&out, 2, "--base-set with a command");
}

/// A runtime that answers `--version` and `spec`, then hangs in `create`
/// (writing its pid to `pidfile` first).
fn hanging_runtime(dir: &Path) -> (PathBuf, PathBuf) {
    let pidfile = dir.join("create.pid");
    let script = dir.join("hangs");
    let text = format!(
        r#"#!/bin/sh
for a; do
  case "$a" in
    --version) echo "hangs 1.0"; exit 0;;
    spec) echo '{{"process":{{}},"linux":{{}}}}' > config.json; exit 0;;
    create) echo $$ > {pidfile}; exec sleep 600;;
    start|state|delete) exit 0;;
  esac
done
exit 1
"#,
        pidfile = pidfile.display()
    );
    std::fs::write(&script, text).expect("write script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    (script, pidfile)
}

/// A temporary directory with [`hanging_runtime`] and pidfile, an empty
/// TMPDIR and an empty output directory.
fn hanging_setup() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let (runtime, pidfile) = hanging_runtime(dir.path());
    let (tmp, out) = (dir.path().join("tmp"), dir.path().join("out"));
    for d in [&tmp, &out] {
        std::fs::create_dir(d).expect("mkdir");
    }
    (dir, runtime, pidfile, tmp, out)
}

/// `recorder baseline --runtime RUNTIME` with its own TMPDIR, writing into `out`.
fn start_baseline(runtime: &Path, tmp: &Path, out: &Path, timeout: &str) -> Child {
    Command::new(recorder_bin())
        .args(["baseline", "--runs", "2", "--timeout", timeout, "--runtime", s(runtime), "-o"])
        .arg(out.join("base.json"))
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recorder starts")
}

/// The pid the hanging runtime wrote, once it is in `create`.
fn wait_for_pid(pidfile: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(pid) = std::fs::read_to_string(pidfile).ok().and_then(|t| t.trim().parse().ok()) {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the runtime never reached `create`");
}

fn gone(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).expect("ls").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn a_hanging_runtime_is_killed_at_the_timeout_and_nothing_is_left() {
    if skip_bpf_tests() {
        return;
    }
    let (_dir, runtime, pidfile, tmp, out) = hanging_setup();
    let child = start_baseline(&runtime, &tmp, &out, "2s");
    let result = child.wait_with_output().expect("recorder ends");
    assert_exit(&result, 29, "a runtime that hangs");
    let line = one_line(&result);
    assert!(line.contains("did not finish within 2.0s") && line.contains("--timeout"), "{line}");
    assert!(gone(wait_for_pid(&pidfile)), "the hanging runtime was killed");
    assert!(names_in(&tmp).is_empty(), "scratch left in TMPDIR: {:?}", names_in(&tmp));
    assert!(names_in(&out).is_empty(), "files left in the output directory: {:?}", names_in(&out));
}

#[test]
fn sigterm_and_sigkill_during_baseline_leave_no_file_behind() {
    if skip_bpf_tests() {
        return;
    }
    let (_dir, runtime, pidfile, tmp, out) = hanging_setup();
    // SIGTERM: the runtime is killed, the scratch removed, exit 128+15.
    let child = start_baseline(&runtime, &tmp, &out, "10m");
    let pid = wait_for_pid(&pidfile);
    // SAFETY: kill(2) on our own child, not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let result = child.wait_with_output().expect("recorder ends");
    assert_exit(&result, 143, "baseline stopped by SIGTERM");
    assert!(one_line(&result).contains("nothing was written"));
    assert!(gone(pid), "the runtime was killed");
    assert!(names_in(&tmp).is_empty(), "scratch left in TMPDIR: {:?}", names_in(&tmp));
    assert!(names_in(&out).is_empty(), "{:?}", names_in(&out));

    // SIGKILL: nothing in the output directory (nothing is written there
    // before the end); the next baseline removes the dead one's scratch.
    std::fs::remove_file(&pidfile).expect("rm pidfile");
    let mut child = start_baseline(&runtime, &tmp, &out, "10m");
    let pid = wait_for_pid(&pidfile);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    // SAFETY: kill(2) on the orphaned runtime this test made hang.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(names_in(&out).is_empty(), "{:?}", names_in(&out));
    let next = Command::new(recorder_bin())
        .args(["baseline", "--runs", "1", "--runtime", "false"])
        .env("TMPDIR", &tmp)
        .output()
        .expect("runs");
    assert_exit(&next, 25, "a runtime that fails");
    assert!(names_in(&tmp).is_empty(), "the killed baseline's scratch stays: {:?}", names_in(&tmp));
}
