//! The daemon's own seccomp profile, deploy/recorder-seccomp.json.
//!
//! One "cycle" is the daemon doing its whole job on a private containerd:
//! start, load, attach and pin; a pod's container lives and goes while the
//! API is asked everything it serves; SIGTERM with its last snapshot; a
//! restart that adopts the pins and resumes from the snapshot, with another
//! pod (crun this time); and the not-ready mode a missing capability leads
//! to (`--on-start-error stay` without CAP_PERFMON).
//!
//! - `regenerate` (ignored; `cargo xtask self-profile` runs it) records
//!   each of the three lives with `recorder record` and merges them with
//!   the runc and crun base sets into the shipped profile.
//! - `the_shipped_profile_is_not_stale` runs the same cycle under the
//!   shipped profile with `recorder run --learn`: any call it denies fails
//!   the test, with the names to regenerate for.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use recorder_tests::{
    assert_exit,
    containers::{Runtime, SANDBOX_IMAGE},
    cri::{ContainerSpec, Node, Pods, Seccomp, remove_kubepods_if_unused},
    deploy::{
        Bpffs, Guarded, ensure_kubepods, free_port, http, read_log, shipped_profile, spawn_logged, stop,
        wait_for_status,
    },
    recorder_bin, skip_bpf_tests,
};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How the daemon is run in a cycle: recorded (to make the profile) or
/// under the shipped profile with its denials learned (to check it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wrap {
    Record,
    Learn,
}

/// What one life of the daemon left: the wrapper's output file.
struct Life {
    output: PathBuf,
    log: String,
}

struct Cycle {
    node: Node,
    bpffs: Bpffs,
    state: tempfile::TempDir,
    work: tempfile::TempDir,
    wrap: Wrap,
    /// VmHWM and VmRSS (KiB) of the daemon just before its first SIGTERM.
    memory: Option<(u64, u64)>,
}

impl Cycle {
    fn new(wrap: Wrap) -> Cycle {
        ensure_kubepods().expect("kubepods parent cgroup");
        Cycle {
            node: Node::start(&[]).expect("private containerd with the pause image"),
            bpffs: Bpffs::mount().expect("a private bpffs"),
            state: tempfile::tempdir().expect("state dir"),
            work: tempfile::tempdir().expect("work dir"),
            wrap,
            memory: None,
        }
    }

    /// The daemon's command line, as the DaemonSet gives it (paths and port
    /// are this test's; `pins` names the pin directory in the private bpffs).
    fn daemon_args(&self, port: u16, pins: &str) -> Vec<String> {
        vec![
            "daemon".to_owned(),
            "--host-cgroup-root=/sys/fs/cgroup".to_owned(),
            format!("--pin-dir={}", self.bpffs.path().join(pins).display()),
            format!("--state-dir={}", self.state.path().display()),
            format!("--runtime-endpoint={}", self.node.containerd.address().display()),
            format!("--listen=127.0.0.1:{port}"),
            "--on-start-error=stay".to_owned(),
            "--poll-interval=250ms".to_owned(),
            "--snapshot-interval=1s".to_owned(),
        ]
    }

    /// Starts one life: `prefix` (e.g. setpriv) then the daemon, wrapped,
    /// pinning in `pins`.
    fn spawn(&self, name: &str, prefix: &[&str], port: u16, pins: &str) -> (Guarded, PathBuf, PathBuf) {
        // The last pod's removal took the kubelet's parent cgroup with it;
        // a node always has one when its daemon starts.
        ensure_kubepods().expect("kubepods parent cgroup");
        let output = self.work.path().join(format!("{name}.json"));
        let log = self.work.path().join(format!("{name}.log"));
        let mut cmd = Command::new(recorder_bin());
        match self.wrap {
            Wrap::Record => cmd.args(["record", "-q", "--grace", "20s", "-o"]).arg(&output),
            Wrap::Learn => cmd.args(["run", "--profile"]).arg(shipped_profile()).args(["--learn", "-o"]).arg(&output),
        };
        cmd.arg("--").args(prefix).arg(recorder_bin()).args(self.daemon_args(port, pins)).env("RUST_LOG", "info");
        let child = Guarded(spawn_logged(&mut cmd, &log).expect("spawning the wrapped daemon"));
        (child, output, log)
    }

    /// Ends a life the way the kubelet does: SIGTERM to the daemon (the
    /// wrapper forwards it when told to stop), then waits.
    fn finish(child: &mut Guarded, log: &Path, what: &str) -> String {
        let status = stop(&mut child.0, libc::SIGINT, Duration::from_secs(60));
        let text = read_log(log);
        assert!(status.success(), "{what}: the wrapper exited with {status}; its log:\n{text}");
        text
    }

    /// A pod whose busybox container reads a file and sleeps, under `runtime`.
    fn workload(&self, pods: &Pods<'_>, name: &str, runtime: Runtime) -> recorder_tests::cri::PodRef {
        let pod = pods.run_pod(name, "shop", runtime).expect("run pod");
        let spec = ContainerSpec {
            name: "app".to_owned(),
            image: SANDBOX_IMAGE.to_owned(),
            command: vec!["/bin/sh".to_owned(), "-c".to_owned(), "cat /etc/hostname; exec sleep 3600".to_owned()],
            seccomp: Some(Seccomp::Unconfined),
            ..Default::default()
        };
        pods.run_container(&pod, &spec).expect("run container");
        pod
    }

    /// Waits until the daemon names `pod`'s container (the CRI was polled).
    fn wait_named(port: u16, pod: &str) {
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            let (status, _, body) = http(port, "/v1/workloads", &[]).expect("GET /v1/workloads");
            if status == 200 && body.contains(&format!("\"workload\": \"{pod}\"")) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the daemon never named {pod}: {body}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every endpoint, every format, a conditional request, and refusals.
    fn exercise_api(port: u16, pod: &str) {
        for path in ["/healthz", "/readyz", "/metrics", "/v1/workloads"] {
            let (status, _, body) = http(port, path, &[]).expect(path);
            assert_eq!(status, 200, "{path}: {body}");
        }
        let profile = format!("/v1/profiles/shop/{pod}/app");
        let (status, head, body) = http(port, &profile, &[]).expect("profile");
        assert_eq!(status, 200, "{profile}: {body}");
        let etag = head
            .lines()
            .find_map(|l| l.strip_prefix("etag: ").or_else(|| l.strip_prefix("ETag: ")))
            .expect("an ETag")
            .to_owned();
        let (status, _, _) = http(port, &profile, &[("If-None-Match", &etag)]).expect("conditional");
        assert_eq!(status, 304);
        for format in ["oci", "spo", "moby", "k8s-snippet"] {
            let (status, _, body) = http(port, &format!("{profile}?format={format}"), &[]).expect("format");
            assert_eq!(status, 200, "{format}: {body}");
        }
        let (status, _, _) = http(port, &format!("/v1/pods/shop/{pod}/app?format=spo"), &[]).expect("pod profile");
        assert_eq!(status, 200);
        for (path, expected) in
            [("/v1/profiles/shop/NOT_A_NAME/app", 400), ("/v1/profiles/shop/nobody/app", 404), ("/nothing", 404)]
        {
            let (status, _, _) = http(port, path, &[]).expect(path);
            assert_eq!(status, expected, "{path}");
        }
    }

    /// Life 1: a fresh start, a pod's whole life, SIGTERM.
    fn fresh(&mut self) -> Life {
        let port = free_port();
        let (mut child, output, log) = self.spawn("fresh", &[], port, "recorder");
        wait_for_status(port, "/readyz", 200, READY_TIMEOUT, Some(&mut child.0))
            .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&log)));
        let pods = Pods::new(&self.node.containerd).expect("pods");
        let pod = self.workload(&pods, "web", Runtime::Runc);
        Self::wait_named(port, "web");
        Self::exercise_api(port, "web");
        pods.remove_pod(&pod).expect("remove pod");
        // Folded and saved once the daemon sees the cgroup gone.
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            let (_, _, body) = http(port, "/v1/workloads", &[]).expect("workloads");
            if body.contains("\"replicas_running\": 0") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the gone pod was never folded: {body}");
            std::thread::sleep(Duration::from_millis(200));
        }
        Self::exercise_api(port, "web");
        self.memory = daemon_memory(child.0.id());
        let log_text = Self::finish(&mut child, &log, "fresh daemon");
        Life { output, log: log_text }
    }

    /// Life 2: adopts the pins, resumes from the snapshot, another pod.
    fn restart(&mut self) -> Life {
        let port = free_port();
        let (mut child, output, log) = self.spawn("restart", &[], port, "recorder");
        wait_for_status(port, "/readyz", 200, READY_TIMEOUT, Some(&mut child.0))
            .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&log)));
        let (_, _, body) = http(port, "/v1/workloads", &[]).expect("workloads");
        assert!(body.contains("\"workload\": \"web\""), "resumed from the snapshot: {body}");
        let pods = Pods::new(&self.node.containerd).expect("pods");
        let pod = self.workload(&pods, "api", Runtime::Crun);
        Self::wait_named(port, "api");
        Self::exercise_api(port, "api");
        pods.remove_pod(&pod).expect("remove pod");
        let log_text = Self::finish(&mut child, &log, "restarted daemon");
        Life { output, log: log_text }
    }

    /// Life 3: no CAP_PERFMON: the not-ready mode until SIGTERM.
    fn without_perfmon(&mut self) -> Life {
        let port = free_port();
        // Its own pin directory: adopting the pins of the lives before would
        // load nothing, and so need no CAP_PERFMON. CAP_SYS_ADMIN goes too:
        // the kernel's perfmon_capable() accepts it in CAP_PERFMON's place.
        let (mut child, output, log) = self.spawn(
            "no-perfmon",
            &["setpriv", "--bounding-set=-perfmon,-sys_admin", "--"],
            port,
            "recorder-no-perfmon",
        );
        wait_for_status(port, "/healthz", 200, READY_TIMEOUT, Some(&mut child.0))
            .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&log)));
        let (status, _, body) = http(port, "/readyz", &[]).expect("readyz");
        assert_eq!(status, 503);
        assert!(body.contains("CAP_PERFMON"), "{body}");
        let (status, _, _) = http(port, "/metrics", &[]).expect("metrics");
        assert_eq!(status, 503);
        let log_text = Self::finish(&mut child, &log, "daemon without CAP_PERFMON");
        let errors: Vec<&str> = log_text.lines().filter(|l| l.starts_with("recorder: error:")).collect();
        assert_eq!(errors.len(), 1, "one error line: {log_text}");
        assert!(errors[0].contains("lacks CAP_PERFMON"), "{}", errors[0]);
        Life { output, log: log_text }
    }
}

impl Drop for Cycle {
    fn drop(&mut self) {
        remove_kubepods_if_unused();
    }
}

/// VmHWM and VmRSS of the daemon, the wrapper's child.
fn daemon_memory(wrapper: u32) -> Option<(u64, u64)> {
    let tasks = std::fs::read_dir(format!("/proc/{wrapper}/task")).ok()?;
    let child = tasks.flatten().find_map(|t| {
        std::fs::read_to_string(t.path().join("children")).ok()?.split_whitespace().next().map(str::to_owned)
    })?;
    let status = std::fs::read_to_string(format!("/proc/{child}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// An OCI profile of a runtime's base set (recorder/data/baseline), for
/// `recorder merge`, filtering only the native architecture.
fn base_set_profile(runtime: &str, dir: &Path) -> PathBuf {
    let data = recorder_tests::workspace_root().join(format!("recorder/data/baseline/{runtime}.json"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&data).expect("base set")).expect("base set JSON");
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{ "names": json["syscalls"], "action": "SCMP_ACT_ALLOW" }],
    });
    let path = dir.join(format!("{runtime}-base.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&profile).expect("json")).expect("write");
    path
}

#[test]
#[ignore = "writes deploy/recorder-seccomp.json; run by `cargo xtask self-profile`"]
fn regenerate() {
    if skip_bpf_tests() {
        return;
    }
    assert_eq!(std::env::consts::ARCH, "x86_64", "the shipped profile is recorded on x86_64");
    let mut cycle = Cycle::new(Wrap::Record);
    let lives = [cycle.fresh(), cycle.restart(), cycle.without_perfmon()];
    let mut inputs: Vec<PathBuf> = lives.iter().map(|l| l.output.clone()).collect();
    inputs.push(base_set_profile("runc", cycle.work.path()));
    inputs.push(base_set_profile("crun", cycle.work.path()));
    let target = std::env::var_os("RECORDER_SELF_PROFILE_OUT").map(PathBuf::from).unwrap_or_else(shipped_profile);
    let out = Command::new(recorder_bin()).arg("merge").args(&inputs).arg("-o").arg(&target).output().expect("merge");
    assert_exit(&out, 0, "merging the daemon's lives and the base sets");
    if let Some((hwm, rss)) = cycle.memory {
        println!("SELF_PROFILE_MEMORY {{\"vmhwm_kib\": {hwm}, \"vmrss_kib\": {rss}}}");
    }
    let names = recorder_tests::allowed_names(&target);
    println!("SELF_PROFILE_NAMES {}", names.len());
    eprintln!("wrote {} ({} syscalls)", target.display(), names.len());
    for life in &lives {
        assert!(!life.log.contains("panicked"), "{}", life.log);
    }
}

#[test]
fn the_shipped_profile_is_not_stale() {
    if skip_bpf_tests() {
        return;
    }
    let shipped = shipped_profile();
    let names = recorder_tests::allowed_names(&shipped);
    // A profile that let everything through would prove nothing.
    for never in ["mount", "ptrace", "setns", "unshare", "init_module", "kexec_load", "open_by_handle_at"] {
        assert!(!names.contains(never), "the shipped profile allows {never}");
    }
    let mut cycle = Cycle::new(Wrap::Learn);
    let lives = [cycle.fresh(), cycle.restart(), cycle.without_perfmon()];
    let mut denied = BTreeSet::new();
    for life in &lives {
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&life.output).expect("denied"))
            .unwrap_or_else(|e| panic!("{}: {e}", life.output.display()));
        for d in report["denied"].as_array().expect("denied list") {
            denied.insert(format!("{} ({}x by {})", d["name"], d["count"], d["process"]));
        }
    }
    assert!(
        denied.is_empty(),
        "deploy/recorder-seccomp.json is stale: the daemon under it was denied {denied:?}; run `cargo xtask self-profile`"
    );
}
