//! Issue 17, the targets and outputs half: `--container-id` matches one
//! container only, output directories are never created (one rule for every
//! command), and pod recordings check their output shape and the CRI's
//! names before recording and survive the CRI going away (the profile is
//! written, marked partial, and enforced for real by a new pod).
//!
//! Needs root, BPF and containerd; fails when it cannot run
//! (RECORDER_SKIP_BPF_TESTS=1 / RECORDER_SKIP_CONTAINER_TESTS=1 skip).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use recorder_tests::{
    assert_exit,
    containers::{CgroupDirs, Runtime, Sleeper, cgroup2_mount},
    cri::{
        Node, Pods, Seccomp,
        images::{self, Image},
        skip_container_tests,
    },
    daemon::free_port,
    one_line, recorder, recorder_bin, recorder_within, skip_bpf_tests,
};

fn cgroup2() -> PathBuf {
    cgroup2_mount().expect("mountinfo").expect("a cgroup v2 mount")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

#[test]
fn a_container_id_that_names_a_pod_or_namespace_is_refused() {
    if skip_bpf_tests() {
        return;
    }
    // <ns>/<pod>/{<id a>, <id b>}: the layout of a ctr namespace or kubepods.
    let ns_name = format!("recorder-ctr-ns-{}", std::process::id());
    let ns = cgroup2().join(&ns_name);
    let pod_name = format!("pod-{}", std::process::id());
    let pod = ns.join(&pod_name);
    let id_a = format!("a{:015x}", std::process::id()).repeat(4);
    let id_b = format!("b{:015x}", std::process::id()).repeat(4);
    let _dirs = CgroupDirs::create(vec![ns.clone(), pod.clone()]);
    let _a = Sleeper::start_in(pod.join(&id_a));
    let _b = Sleeper::start_in(pod.join(&id_b));
    let out_dir = tempfile::tempdir().expect("tmp");
    let out = out_dir.path().join("p.json");
    for parent in [&ns_name, &pod_name] {
        let got = recorder(&["record", "--container-id", parent, "--duration", "1s", "-o", s(&out)]);
        assert_exit(&got, 13, &format!("--container-id {parent}"));
        let line = one_line(&got);
        assert!(line.contains("not one container") && line.contains("--cgroup"), "{line}");
        assert!(!out.exists(), "nothing is written for a refused id");
    }
    // One container, by its full and its 12-character id, is recorded.
    for id in [id_a.as_str(), &id_b[..12]] {
        let got = recorder(&["record", "-q", "--container-id", id, "--duration", "1s", "-o", s(&out)]);
        assert_exit(&got, 0, &format!("--container-id {id}"));
        assert!(out.exists());
        std::fs::remove_file(&out).expect("rm");
    }
}

#[test]
fn output_directories_are_never_created_by_any_command() {
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("missing");
    let file_in_missing = missing.join("x.json");
    let dir_arg = format!("{}/", missing.display());
    let profile = dir.path().join("p.json");
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}"#).expect("write");
    let cases: [&[&str]; 5] = [
        &["record", "--duration", "1s", "-o", s(&file_in_missing), "--", "true"],
        &["record", "--pod", "web", "--duration", "1s", "-o", &dir_arg],
        &["record", "--pod", "web", "--install", "--seccomp-root", s(&missing), "--duration", "1s"],
        &["convert", s(&profile), "-o", s(&file_in_missing)],
        &["man", "--dir", s(&missing)],
    ];
    for args in cases {
        let out = recorder(args);
        assert_exit(&out, 11, &format!("{args:?}"));
        let line = one_line(&out);
        assert!(line.contains("does not exist; create it first"), "{args:?}: {line}");
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
    // The same commands write into a directory that exists.
    std::fs::create_dir(&missing).expect("mkdir");
    assert_exit(&recorder(&["convert", s(&profile), "-o", s(&file_in_missing)]), 0, "convert into a directory");
    assert!(file_in_missing.exists());
    assert_exit(&recorder(&["man", "--dir", s(&missing)]), 0, "man --dir an existing directory");
    assert!(missing.join("recorder.1").exists());
}

/// One pod scenario at a time: each starts its own containerd.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_pod_that_cannot_fit_the_output_is_refused_before_recording() {
    if skip_container_tests() || skip_bpf_tests() {
        return;
    }
    let _serial = serial();
    let node = Node::start(&[Image::Replica]).expect("node");
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let ctl = pods.work_dir().join("ctl");
    let pod = pods.run_pod("two", "default", Runtime::Runc).expect("pod");
    for name in ["first", "second"] {
        pods.run_container(&pod, &images::replica_container(name, "a", &ctl).expect("spec")).expect("runs");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let one = dir.path().join("one.json");
    let endpoint = node.containerd.address().to_str().expect("utf8").to_owned();
    // --duration 10m: a refusal after the recording would hang here.
    let args = ["record", "--runtime-endpoint", &endpoint, "--pod", "two", "-n", "default", "--duration", "10m"];
    let out = recorder_within(&[&args[..], &["-o", s(&one)]].concat(), Duration::from_secs(90));
    assert_exit(&out, 11, "a two-container pod into one file");
    let line = one_line(&out);
    assert!(line.contains("has 2 containers") && line.contains("must be a directory"), "{line}");
    assert!(!one.exists());
    // --container picks one: then one file is right (checked, then stopped).
    let out = recorder_within(
        &[&args[..7], &["--duration", "2s", "--container", "first", "-q", "-o", s(&one)]].concat(),
        Duration::from_secs(90),
    );
    assert_exit(&out, 0, "one container of the pod into one file");
    assert!(one.exists());

    // A name the CRI returns that Kubernetes would refuse never becomes a path.
    let bad = pods.run_pod("bad", "default", Runtime::Runc).expect("pod");
    pods.run_container(&bad, &images::replica_container("web_1", "a", &ctl).expect("spec")).expect("runs");
    let out_dir = format!("{}/", dir.path().display());
    let out = recorder_within(
        &[
            "record",
            "--runtime-endpoint",
            &endpoint,
            "--pod",
            "bad",
            "-n",
            "default",
            "--duration",
            "10m",
            "-o",
            &out_dir,
        ],
        Duration::from_secs(90),
    );
    assert_exit(&out, 16, "a container name with '_'");
    assert!(one_line(&out).contains("web_1"), "{}", one_line(&out));
    let written: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").flatten().map(|e| e.file_name()).collect();
    assert_eq!(written, vec![std::ffi::OsString::from("one.json")], "nothing else was written");
}

/// The pods' parent cgroup of this test only, so the recorder watching it
/// before the pod exists sees no other test's pods.
struct PodsParent {
    _dirs: CgroupDirs,
    rel: String,
    abs: PathBuf,
}

impl PodsParent {
    fn create(name: &str) -> PodsParent {
        let top = format!("recorder-{name}-{}", std::process::id());
        let rel = format!("{top}/kubepods");
        let abs = cgroup2().join(&rel);
        PodsParent { _dirs: CgroupDirs::create(vec![cgroup2().join(&top), abs.clone()]), rel, abs }
    }
}

#[test]
fn a_pod_recording_survives_the_cri_going_away_and_is_marked_partial() {
    if skip_container_tests() || skip_bpf_tests() {
        return;
    }
    let _serial = serial();
    let parent = PodsParent::create("partial");
    let node = Node::start(&[Image::Nginx]).expect("node");
    let mut pods = Pods::new_under(&node.containerd, &parent.rel).expect("CRI client");
    let dir = tempfile::tempdir().expect("tmp");
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).expect("mkdir");
    let summary = dir.path().join("summary.json");
    let recording = Command::new(recorder_bin())
        .args(["record", "--runtime-endpoint", s(node.containerd.address()), "--pod", "web", "-n", "default"])
        .args(["--cgroup-parent", s(&parent.abs), "--wait-timeout", "90s", "--duration", "10m"])
        .args(["--json-summary", s(&summary), "-o", &format!("{}/", profiles.display())])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recorder starts");
    std::thread::sleep(Duration::from_millis(700));
    let port = free_port();
    let pod = pods.run_pod("web", "default", Runtime::Runc).expect("pod");
    pods.run_container(&pod, &images::nginx_container(pods.work_dir(), port).expect("spec")).expect("nginx runs");
    images::wait_for_http(port, Duration::from_secs(20)).expect("nginx serves");
    // The recorder asks the CRI every 300 ms: let it learn the container.
    std::thread::sleep(Duration::from_secs(2));

    node.containerd.kill_daemon().expect("containerd killed");
    for _ in 0..20 {
        assert!(images::http_get(port).expect("nginx still serves").ends_with(images::INDEX_HTML));
    }
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: kill(2) on our own child, not reaped yet.
    unsafe { libc::kill(recording.id() as i32, libc::SIGINT) };
    let out = recording.wait_with_output().expect("recorder ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_exit(&out, 28, "a pod recording whose CRI went away");
    assert!(stderr.contains("the profiles are partial") && stderr.contains("CRI went away"), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary written")).expect("JSON");
    assert_eq!(json["partial"], true, "{json}");
    assert!(json["partial_reason"].as_str().is_some_and(|r| r.contains("CRI")), "{json}");
    let profile = profiles.join("default_web_nginx.json");
    assert!(profile.exists(), "{stderr}");

    // Real enforcement: containerd back, a new pod runs nginx under the
    // partial profile, serves, and its process is under a filter.
    node.containerd.restart().expect("containerd restarts");
    pods.reconnect().expect("CRI client again");
    let confined_port = free_port();
    let confined = pods.run_pod("web-confined", "default", Runtime::Runc).expect("pod");
    let mut spec = images::nginx_container(pods.work_dir(), confined_port).expect("spec");
    spec.seccomp = Some(Seccomp::Localhost(profile.clone()));
    let id = pods.run_container(&confined, &spec).expect("nginx runs under the partial profile");
    images::wait_for_http(confined_port, Duration::from_secs(20)).expect("nginx serves under the profile");
    for _ in 0..20 {
        assert!(images::http_get(confined_port).expect("GET").ends_with(images::INDEX_HTML));
    }
    let pid = pods.pid(&id).expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(status.lines().any(|l| l == "Seccomp:\t2"), "nginx runs under a filter:\n{status}");
}
