//! Recording Kubernetes pods through the CRI (real containerd, runc and
//! crun), and proving the profiles by running new pods under them.
//!
//! 1. `record --pod nginx` before the pod exists; the pod starts, a client
//!    fetches pages, the pod is deleted, the recording ends by itself.
//! 2. A fresh pod runs nginx with the profile as `Localhost`: it serves.
//! 3. Inside that container a syscall outside the profile gets EPERM.
//! 4. The profile has no runtime setup noise (mount, pivot_root, ...).
//! 5. All of it under runc and under crun.
//!
//! Also: a container whose only distinctive syscalls happen in its first
//! millisecond, --install, --container-id with `ctr run`, and the errors.
//! Needs root; fails when it cannot run (RECORDER_SKIP_CONTAINER_TESTS=1
//! skips).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use recorder::cri::api::ExecSyncRequest;
use recorder_tests::{
    allowed_names, assert_exit, compile,
    containers::{Runtime, ctr_run_detached, rootfs_with},
    cri::{
        KUBEPODS, Node, Pods, Seccomp,
        images::{self, EARLY_SYSCALLS, INDEX_HTML, Image},
        skip_container_tests,
    },
    recorder_bin,
};

/// What runc and crun do to set a container up, and nginx never does.
/// (`capset` is not here: without no_new_privs, runc installs the filter
/// before it drops capabilities, so capset is one of its post-filter calls
/// that the profile must allow.)
const SETUP_NOISE: &[&str] = &["mount", "pivot_root", "sethostname", "setns", "umount2"];

/// One pod scenario at a time: each starts its own containerd, and on two
/// cores several at once slow pod creation past the recorders' timeouts.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn v2_mount() -> PathBuf {
    recorder_tests::containers::cgroup2_mount().expect("mountinfo").expect("a cgroup v2 mount")
}

/// The kubelet creates its parent cgroup at start; so does this "node".
fn ensure_kubepods() {
    recorder_tests::cri::KubepodsUse::register();
    std::fs::create_dir_all(v2_mount().join(KUBEPODS)).expect("creating the kubepods cgroup");
}

fn start_recorder(node: &Node, args: &[&str]) -> Child {
    Command::new(recorder_bin())
        .args(std::env::var("RECORDER_TEST_VERBOSE").map(|_| "-v"))
        .arg("record")
        .arg("--runtime-endpoint")
        .arg(node.containerd.address())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recorder starts")
}

fn finish(child: Child, what: &str) -> std::process::Output {
    let out = child.wait_with_output().expect("recorder ends");
    if std::env::var_os("RECORDER_TEST_VERBOSE").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_exit(&out, 0, what);
    out
}

/// The probe making `unshare(0)`, and one making `getpid()`.
fn probe_programs() -> (PathBuf, PathBuf) {
    let flags = ["-static", "-nostdlib", "-O2"];
    (
        compile("syscall_probe.c", "probe_unshare", &flags),
        compile("syscall_probe.c", "probe_getpid", &[&flags[..], &["-DNR=39"]].concat()),
    )
}

fn exec_probe(pods: &Pods, container: &str, probe: &str) -> i32 {
    let request = ExecSyncRequest { container_id: container.to_owned(), cmd: vec![probe.to_owned()], timeout: 10 };
    let response = pods.block_on(pods.cri().runtime_client().exec_sync(request)).expect("ExecSync").into_inner();
    response.exit_code
}

fn nginx_round_trip(runtime: Runtime, port: u16, confined_port: u16) {
    if skip_container_tests() {
        return;
    }
    let _serial = serial();
    let node = Node::start(&[Image::Nginx]).expect("node");
    let pods = Pods::new(&node.containerd).expect("CRI client");
    ensure_kubepods();
    let out_dir = tempfile::tempdir().expect("tmp");
    let out_arg = format!("{}/", out_dir.path().display());

    // 1. Record a pod that does not exist yet.
    let recorder = start_recorder(
        &node,
        &["--pod", "nginx", "-n", "default", "--wait-timeout", "90s", "--duration", "120s", "-o", &out_arg],
    );
    std::thread::sleep(Duration::from_millis(700));
    let pod = pods.run_pod("nginx", "default", runtime).expect("pod");
    let mut spec = images::nginx_container(pods.work_dir(), port).expect("nginx spec");
    let (probe_unshare, probe_getpid) = probe_programs();
    spec.mounts.push((probe_getpid, PathBuf::from("/probe-getpid")));
    let id = pods.run_container(&pod, &spec).expect("nginx runs");
    images::wait_for_http(port, Duration::from_secs(10)).expect("nginx serves");
    for _ in 0..20 {
        assert!(images::http_get(port).expect("GET").ends_with(INDEX_HTML));
    }
    // An exec session during the recording (as `kubectl exec`): the runtime
    // joins the container with setns first; that setup must stay out.
    assert_eq!(exec_probe(&pods, &id, "/probe-getpid"), 0, "exec works unconfined");
    // A pod lives longer than a test's few requests; give the recorder's CRI
    // polls (every 300 ms) time to list the container before it goes.
    std::thread::sleep(Duration::from_millis(1500));
    // Deleting the pod stops nginx (its shutdown is recorded) and ends the recording.
    pods.remove_pod(&pod).expect("removing the pod");
    let out = finish(recorder, "recording the pod");
    let profile = out_dir.path().join("default_nginx_nginx.json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(profile.exists(), "no profile; stderr:\n{stderr}");
    assert!(stderr.contains("startup observed"), "{stderr}");
    let names = allowed_names(&profile);

    // 4. No runtime setup noise.
    let noise: Vec<_> = SETUP_NOISE.iter().filter(|n| names.contains(**n)).collect();
    assert!(noise.is_empty(), "runtime setup leaked into the profile: {noise:?}\n{names:?}");
    for needed in ["accept4", "epoll_wait", "bind", "listen", "execve"] {
        assert!(names.contains(needed), "{needed} missing: {names:?}");
    }
    assert!(names.contains("getpid"), "what the exec'd program did is part of the container's life");

    // 2. A fresh pod with the profile as Localhost serves the same pages.
    let pod = pods.run_pod("nginx-confined", "default", runtime).expect("pod");
    let mut spec = images::nginx_container(pods.work_dir(), confined_port).expect("nginx spec");
    spec.mounts.push((probe_unshare, PathBuf::from("/probe")));
    spec.seccomp = Some(Seccomp::Localhost(profile.clone()));
    let id = pods.run_container(&pod, &spec).expect("nginx starts under its profile");
    images::wait_for_http(confined_port, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e:#}; logs:\n{}", pods.logs(&id).unwrap_or_default()));
    for _ in 0..50 {
        let page = images::http_get(confined_port).expect("GET under the profile");
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.ends_with(INDEX_HTML));
    }
    // 3. Inside the confined container, unshare gets EPERM (unshare(0) is a
    // no-op that cannot fail otherwise).
    assert_eq!(exec_probe(&pods, &id, "/probe"), 1, "unshare must be denied with EPERM under the profile");
    pods.remove_pod(&pod).expect("cleanup");
}

#[test]
fn nginx_pod_round_trip_under_runc() {
    nginx_round_trip(Runtime::Runc, 18095, 18096);
}

#[test]
fn nginx_pod_round_trip_under_crun() {
    nginx_round_trip(Runtime::Crun, 18097, 18098);
}

/// Nothing a container does between its start and the moment the recorder
/// learns its name is lost: the early program makes its three distinctive
/// calls in its first millisecond. Run under a permissive Localhost filter,
/// so the boundary is the runtime's own seccomp call.
#[test]
fn first_millisecond_is_recorded() {
    if skip_container_tests() {
        return;
    }
    let _serial = serial();
    let node = Node::start(&[Image::Early]).expect("node");
    let pods = Pods::new(&node.containerd).expect("CRI client");
    ensure_kubepods();
    let permissive = pods.work_dir().join("allow-all.json");
    std::fs::write(
        &permissive,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kexec_load"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .expect("profile");
    for (runtime, pod_name) in [(Runtime::Runc, "early-runc"), (Runtime::Crun, "early-crun")] {
        let out_dir = tempfile::tempdir().expect("tmp");
        let file = out_dir.path().join("early.json");
        let recorder = start_recorder(
            &node,
            &["--pod", pod_name, "--wait-timeout", "90s", "--duration", "120s", "-o", file.to_str().expect("utf8")],
        );
        std::thread::sleep(Duration::from_millis(700));
        let pod = pods.run_pod(pod_name, "default", runtime).expect("pod");
        let mut spec = images::early_container(300);
        spec.seccomp = Some(Seccomp::Localhost(permissive.clone()));
        let id = pods.run_container(&pod, &spec).expect("early runs");
        assert_eq!(pods.wait_exited(&id, Duration::from_secs(10)).expect("exits"), 0);
        pods.remove_pod(&pod).expect("remove");
        finish(recorder, "recording the early pod");
        let names = allowed_names(&file);
        for call in EARLY_SYSCALLS {
            assert!(names.contains(call), "{runtime:?}: {call} from the first millisecond is missing: {names:?}");
        }
        let noise: Vec<_> = SETUP_NOISE.iter().filter(|n| names.contains(**n)).collect();
        assert!(noise.is_empty(), "{runtime:?}: setup noise {noise:?}");

        // The profile starts the same program in a new pod, under the same runtime.
        let pod = pods.run_pod(&format!("{pod_name}-2"), "default", runtime).expect("pod");
        let mut spec = images::early_container(10);
        spec.seccomp = Some(Seccomp::Localhost(file.clone()));
        let id = pods.run_container(&pod, &spec).expect("early runs under its profile");
        assert_eq!(
            pods.wait_exited(&id, Duration::from_secs(10)).expect("exits"),
            0,
            "{}",
            pods.logs(&id).unwrap_or_default()
        );
        pods.remove_pod(&pod).expect("remove");
    }
}

/// A pod that already runs: recorded from now on, base set added, and the
/// profile is installed under the seccomp root with a validated path.
#[test]
fn running_pod_install() {
    if skip_container_tests() {
        return;
    }
    let _serial = serial();
    let node = Node::start(&[Image::Early]).expect("node");
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let pod = pods.run_pod("running", "team-a", Runtime::Runc).expect("pod");
    let id = pods.run_container(&pod, &images::early_container(4000)).expect("runs");
    std::thread::sleep(Duration::from_millis(300));
    let root = tempfile::tempdir().expect("tmp");
    let recorder = start_recorder(
        &node,
        &["--pod", "running", "--install", "--seccomp-root", root.path().to_str().expect("utf8"), "--duration", "20s"],
    );
    assert_eq!(pods.wait_exited(&id, Duration::from_secs(10)).expect("exits"), 0);
    pods.remove_pod(&pod).expect("remove");
    let out = finish(recorder, "recording a running pod");
    let installed = root.path().join("recorder/team-a/running/early.json");
    assert!(installed.exists(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("localhostProfile: recorder/team-a/running/early.json"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("startup was not observed"));
    let names = allowed_names(&installed);
    // The runtime's base set makes the profile able to start the container.
    // It was asleep when recording began: only its exit is new.
    for call in ["execve", "fstatfs", "futex", "exit_group"] {
        assert!(names.contains(call), "{call} missing: {names:?}");
    }
    assert!(!names.contains("getcpu"), "the early calls happened before recording started");

    // Enforced: a new pod under the installed profile gets through runc (the
    // base set) to the program, which then fails on the start-up calls that
    // were never recorded: glibc's static start-up (brk, mmap) or, past it,
    // early_syscalls' getcpu (exit 10).
    let pod = pods.run_pod("running-2", "team-a", Runtime::Runc).expect("pod");
    let mut spec = images::early_container(10);
    spec.seccomp = Some(Seccomp::Localhost(installed.clone()));
    let id = pods.run_container(&pod, &spec).expect("the runtime starts it under the installed profile");
    let code = pods.wait_exited(&id, Duration::from_secs(10)).expect("exits");
    let logs = pods.logs(&id).unwrap_or_default();
    assert!(
        code == 10 || logs.contains("glibc"),
        "the program itself must run and be denied: exit {code}, logs {logs}"
    );
    pods.remove_pod(&pod).expect("remove");
}

/// Every container of a pod gets its own profile, named after it.
#[test]
fn multi_container_pod_gets_one_profile_each() {
    if skip_container_tests() {
        return;
    }
    let _serial = serial();
    let node = Node::start(&[Image::Early, Image::Nginx]).expect("node");
    let pods = Pods::new(&node.containerd).expect("CRI client");
    ensure_kubepods();
    let out_dir = tempfile::tempdir().expect("tmp");
    let out_arg = format!("{}/", out_dir.path().display());
    let summary_dir = tempfile::tempdir().expect("tmp");
    let summary = summary_dir.path().join("summary.json");
    let recorder = start_recorder(
        &node,
        &[
            "--pod",
            "multi",
            "--wait-timeout",
            "90s",
            "--duration",
            "120s",
            "-o",
            &out_arg,
            "--json-summary",
            summary.to_str().expect("utf8"),
        ],
    );
    std::thread::sleep(Duration::from_millis(700));
    let pod = pods.run_pod("multi", "default", Runtime::Runc).expect("pod");
    let nginx = images::nginx_container(pods.work_dir(), 18099).expect("nginx spec");
    pods.run_container(&pod, &nginx).expect("nginx");
    let early = pods.run_container(&pod, &images::early_container(500)).expect("early");
    images::wait_for_http(18099, Duration::from_secs(10)).expect("serves");
    assert_eq!(pods.wait_exited(&early, Duration::from_secs(10)).expect("exits"), 0);
    std::thread::sleep(Duration::from_millis(1000));
    pods.remove_pod(&pod).expect("remove");
    finish(recorder, "recording a two-container pod");
    let nginx_names = allowed_names(&out_dir.path().join("default_multi_nginx.json"));
    let early_names = allowed_names(&out_dir.path().join("default_multi_early.json"));
    assert!(nginx_names.contains("accept4") && !nginx_names.contains("getcpu"), "{nginx_names:?}");
    assert!(early_names.contains("getcpu") && !early_names.contains("accept4"), "{early_names:?}");
    // The JSON summary names the pod, its containers and the base set added.
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("summary is JSON");
    assert_eq!(s["target"], serde_json::json!({"kind": "pod", "namespace": "default", "name": "multi"}), "{s}");
    let mut containers: Vec<&str> =
        s["containers"].as_array().expect("containers").iter().filter_map(|c| c.as_str()).collect();
    containers.sort_unstable();
    assert_eq!(containers, ["early", "nginx"], "{s}");
    assert_eq!(s["provenance"]["base_set"], serde_json::json!({"added": true, "runtime": "runc"}), "{s}");
    assert_eq!(s["outputs"].as_array().map(Vec::len), Some(2), "{s}");
    assert!(s["profiles"].as_array().expect("profiles").iter().all(|p| p["format"] == "oci" && p["runs"] == 1), "{s}");
}

/// `--container-id` finds a `ctr run` container's cgroup by its id.
#[test]
fn container_id_records_a_ctr_container() {
    if skip_container_tests() {
        return;
    }
    let _serial = serial();
    let node = Node::start(&[]).expect("node");
    let dir = tempfile::tempdir().expect("tmp");
    let sh = PathBuf::from("/bin/busybox");
    let rootfs = rootfs_with(&[sh.as_path()], dir.path()).expect("rootfs");
    let task = ctr_run_detached(
        &node.containerd,
        &rootfs,
        None,
        Runtime::Runc,
        &["/bin/sh", "-c", "sleep 1.5; /bin/busybox uname -a"],
    )
    .expect("ctr run");
    let out_file = dir.path().join("ctr.json");
    let summary = dir.path().join("summary.json");
    let recorder = Command::new(recorder_bin())
        .args(["record", "-q", "--container-id", task.id(), "--runtime", "runc", "--duration", "20s", "-o"])
        .arg(&out_file)
        .arg("--json-summary")
        .arg(&summary)
        .output()
        .expect("recorder");
    assert_exit(&recorder, 0, "--container-id");
    let names = allowed_names(&out_file);
    assert!(names.contains("uname"), "{names:?}");
    assert!(names.contains("fstatfs"), "runc's base set is added: {names:?}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("summary is JSON");
    assert_eq!(s["target"], serde_json::json!({"kind": "container", "container_id": task.id()}), "{s}");
    assert_eq!(s["containers"], serde_json::json!([task.id()]), "{s}");
    assert_eq!(s["provenance"]["base_set"], serde_json::json!({"added": true, "runtime": "runc"}), "{s}");
    assert_eq!(s["provenance"]["startup_observed"], false, "{s}");
}

#[test]
fn errors_have_distinct_codes() {
    if skip_container_tests() {
        return;
    }
    let _serial = serial();
    let node = Node::start(&[Image::Early]).expect("node");
    let pods = Pods::new(&node.containerd).expect("CRI client");
    ensure_kubepods();
    let sock = node.containerd.address().to_str().expect("utf8").to_owned();
    let run = |args: &[&str]| Command::new(recorder_bin()).arg("record").args(args).output().expect("recorder");
    let one_line = |out: &std::process::Output| {
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(text.lines().count(), 1, "one-line error expected:\n{text}");
        text
    };

    let out = run(&["--runtime-endpoint", &sock, "--pod", "nope", "--wait-timeout", "1s", "-o", "/tmp/"]);
    assert_exit(&out, 14, "unknown pod after --wait-timeout");
    assert!(one_line(&out).contains("did not appear within --wait-timeout"));

    let out = run(&["--runtime-endpoint", "/nonexistent/cri.sock", "--pod", "x"]);
    assert_exit(&out, 26, "missing CRI socket");
    one_line(&out);
    // A socket that belongs to something else: containerd's ttrpc socket.
    let ttrpc = format!("{sock}.ttrpc");
    if Path::new(&ttrpc).exists() {
        let out = run(&["--runtime-endpoint", &ttrpc, "--pod", "x"]);
        assert_exit(&out, 26, "a socket that is not CRI");
        assert!(one_line(&out).contains("does not answer as a CRI v1 runtime"));
    }

    let a = pods.run_pod("twin", "ns-a", Runtime::Runc).expect("pod");
    let b = pods.run_pod("twin", "ns-b", Runtime::Runc).expect("pod");
    let out = run(&["--runtime-endpoint", &sock, "--pod", "twin", "--duration", "1s"]);
    assert_exit(&out, 15, "several pods match");
    assert!(one_line(&out).contains("pass -n"));
    pods.remove_pod(&a).expect("cleanup");
    pods.remove_pod(&b).expect("cleanup");

    let root = tempfile::tempdir().expect("tmp");
    let out = run(&[
        "--runtime-endpoint",
        &sock,
        "--pod",
        "../../etc/x",
        "--install",
        "--seccomp-root",
        root.path().to_str().expect("utf8"),
    ]);
    assert_exit(&out, 16, "hostile pod name");
    let out = run(&[
        "--runtime-endpoint",
        &sock,
        "--pod",
        "ok",
        "-n",
        "../..",
        "--install",
        "--seccomp-root",
        root.path().to_str().expect("utf8"),
    ]);
    assert_exit(&out, 16, "hostile namespace");
    let written: BTreeSet<_> = walk(root.path());
    assert!(written.iter().all(|p| p.starts_with(root.path())), "{written:?}");
}

fn walk(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.insert(e.path());
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}
