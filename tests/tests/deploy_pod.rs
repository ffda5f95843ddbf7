//! The end-to-end proof on a private containerd (CRI, runc and crun): the
//! image `cargo xtask image` built runs as a pod with exactly the
//! DaemonSet's securityContext, args, env and mounts (read from
//! deploy/kubernetes), its profile installed by the DaemonSet's init
//! container and enforced as Localhost, in a private cgroup namespace and
//! PID namespace with a read-only root; a recorder outside learns every call
//! that profile denies (none may be). It records two workload pods, serves
//! their profiles over HTTP (`recorder collect`), and those profiles run
//! fresh pods under runc and crun. Then each capability it asks for is
//! dropped in turn: the pod stays up, not ready, with one line naming it.
//!
//! Host differences, on purpose: the pods use the host's network (the
//! private containerd has no CNI) on a free port; bpffs is a private mount
//! in a temporary directory (this host has none at /sys/fs/bpf, and a test
//! must not leave one); containerd 1.6 gives pods a cgroup namespace only
//! on pure cgroup v2 hosts, and this one is hybrid, so the daemon's pod runs
//! under a handler that adds one to the bundle, as containerd does there.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use recorder_tests::{
    allowed_names, assert_exit,
    containers::{ProcCgroups, Runtime, find_program},
    cri::{ContainerSpec, Node, PodRef, Pods, Seccomp, Security, images, skip_container_tests},
    deploy::{
        Bpffs, Guarded, args, container, daemonset, ensure_kubepods, free_port, host_mounts, http,
        import_recorder_image, shipped_profile, stop, wait_for_status,
    },
    recorder_bin, skip_bpf_tests,
};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);
const CGROUPNS_HANDLER: &str = "runc-cgroupns";
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// A runc wrapper that adds a cgroup namespace to the bundle on `create`
/// (what containerd's CRI does for every non-privileged container on a
/// cgroup v2 host: pkg/cri/server/container_create_linux.go).
fn cgroupns_wrapper(dir: &Path) -> PathBuf {
    let python = find_program("python3").expect("python3");
    let runc = Runtime::Runc.binary().expect("runc");
    let script = format!(
        r#"#!/bin/sh
bundle=
prev=
for arg in "$@"; do
  [ "$prev" = "--bundle" ] && bundle=$arg
  prev=$arg
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  {python} -c '
import json, sys
path = sys.argv[1]
config = json.load(open(path))
namespaces = config["linux"].setdefault("namespaces", [])
if not any(n["type"] == "cgroup" for n in namespaces):
    namespaces.append({{"type": "cgroup"}})
json.dump(config, open(path, "w"))
' "$bundle/config.json" || exit 1
fi
exec {runc} "$@"
"#,
        python = python.display(),
        runc = runc.display()
    );
    let path = dir.join(CGROUPNS_HANDLER);
    std::fs::write(&path, script).expect("write wrapper");
    let mut perms = std::fs::metadata(&path).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).expect("chmod");
    path
}

/// A Kubernetes securityContext as the kubelet hands it to the CRI.
fn security_of(context: &Value) -> (Security, Option<i64>, bool, Option<String>) {
    let list = |key: &str| -> Vec<String> {
        context["capabilities"][key]
            .as_array()
            .map(|a| a.iter().map(|c| c.as_str().expect("cap").to_owned()).collect())
            .unwrap_or_default()
    };
    let security = Security {
        privileged: context["privileged"].as_bool().unwrap_or(false),
        read_only_root_filesystem: context["readOnlyRootFilesystem"].as_bool().unwrap_or(false),
        add_capabilities: list("add"),
        drop_capabilities: list("drop"),
    };
    // The kubelet sets no_new_privs exactly when privilege escalation is off.
    let no_new_privs = context["allowPrivilegeEscalation"] == false;
    let localhost = (context["seccompProfile"]["type"] == "Localhost")
        .then(|| context["seccompProfile"]["localhostProfile"].as_str().expect("localhostProfile").to_owned());
    (security, context["runAsUser"].as_i64(), no_new_privs, localhost)
}

/// Everything the test needs to start daemon pods like the DaemonSet.
struct DaemonPods {
    bpffs: Bpffs,
    state: tempfile::TempDir,
    /// Stands in for /var/lib/kubelet/seccomp/recorder.
    seccomp_dir: tempfile::TempDir,
    image: String,
    port: u16,
}

impl DaemonPods {
    /// The host path each of the DaemonSet's volumes maps to here.
    fn host_path(&self, node: &Node, volume: &str, declared: &Path) -> PathBuf {
        match volume {
            // As declared: the daemon finds unified/ below it on this
            // hybrid host, as on any node.
            "host-cgroup" => declared.to_path_buf(),
            "bpffs" => self.bpffs.path().to_path_buf(),
            "cri-socket" => node.containerd.address().to_path_buf(),
            "state" => self.state.path().to_path_buf(),
            "seccomp-recorder" => self.seccomp_dir.path().to_path_buf(),
            other => panic!("the DaemonSet has a volume {other} this test does not know; map it here"),
        }
    }

    /// A container spec from the DaemonSet's container `name`, with
    /// `adjust` applied to its security.
    fn spec(&self, node: &Node, name: &str, adjust: impl FnOnce(&mut Security)) -> ContainerSpec {
        let ds = daemonset();
        let declared = container(&ds, name);
        let (mut security, run_as_user, no_new_privs, localhost) = security_of(&declared["securityContext"]);
        adjust(&mut security);
        let mut spec = ContainerSpec {
            name: name.to_owned(),
            image: self.image.clone(),
            args: args(declared)
                .into_iter()
                .map(|a| if a.starts_with("--listen=") { format!("--listen=127.0.0.1:{}", self.port) } else { a })
                .collect(),
            no_new_privs,
            // No runAsGroup in the manifest: the image's group, 0.
            run_as: run_as_user.map(|uid| (uid, 0)),
            security: Some(security),
            env: declared["env"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    (e["name"].as_str().expect("env name").to_owned(), e["value"].as_str().unwrap_or("").to_owned())
                })
                .collect(),
            seccomp: Some(match localhost {
                // The kubelet resolves localhostProfile below its seccomp
                // root; here that is `seccomp_dir` for recorder/.
                Some(relative) => Seccomp::Localhost(
                    self.seccomp_dir.path().join(relative.strip_prefix("recorder/").expect("under recorder/")),
                ),
                None => Seccomp::RuntimeDefault,
            }),
            ..Default::default()
        };
        for mount in host_mounts(&ds, declared) {
            let host = self.host_path(node, &mount.volume, &mount.host_path);
            let pair = (host, mount.container_path.clone());
            if mount.read_only { spec.mounts.push(pair) } else { spec.writable_mounts.push(pair) }
        }
        spec
    }

    /// A daemon pod: the init container, then the daemon with `adjust`ed
    /// security. Returns the pod and the daemon container's id.
    fn run(&self, node: &Node, pods: &Pods<'_>, name: &str, adjust: impl FnOnce(&mut Security)) -> (PodRef, String) {
        let pod = pods
            .run_pod_with_handler(name, "recorder-system", Runtime::Runc, CGROUPNS_HANDLER)
            .expect("daemon pod sandbox");
        let init = pods.run_container(&pod, &self.spec(node, "install-profile", |_| {})).expect("init container");
        assert_eq!(
            pods.wait_exited(&init, TIMEOUT).expect("init exits"),
            0,
            "{}",
            pods.logs(&init).unwrap_or_default()
        );
        let id = pods.run_container(&pod, &self.spec(node, "recorder", adjust)).expect("daemon container");
        (pod, id)
    }
}

/// Waits until the recorder `pid` has attached its learn-mode program
/// (a raw tracepoint link on sys_exit among its fds).
fn wait_attached(pid: u32) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let attached = std::fs::read_dir(format!("/proc/{pid}/fdinfo")).into_iter().flatten().flatten().any(|e| {
            std::fs::read_to_string(e.path())
                .is_ok_and(|t| t.contains("raw_tracepoint") && t.lines().any(|l| l.trim_end().ends_with("sys_exit")))
        });
        if attached {
            return;
        }
        assert!(Instant::now() < deadline, "the outer recorder never attached");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status_field(pid: u32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status.lines().find_map(|l| l.strip_prefix(name)).expect("field").trim().to_owned()
}

/// The memory cgroup of `pid` (v1 on hybrid hosts, v2 otherwise).
fn memory_cgroup(pid: u32) -> PathBuf {
    let cgroups = ProcCgroups::of_pid(pid).expect("cgroups");
    cgroups.v1_path("memory").map(Path::to_path_buf).or(cgroups.unified).expect("a memory cgroup")
}

/// Peak memory charged to a memory cgroup, in bytes.
fn memory_peak(cgroup: &Path) -> u64 {
    ["memory.max_usage_in_bytes", "memory.peak"]
        .iter()
        .find_map(|f| std::fs::read_to_string(cgroup.join(f)).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until the daemon names a container of `workload`.
fn wait_named(port: u16, workload: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (_, _, body) = http(port, "/v1/workloads", &[])?;
        let list: Vec<Value> = serde_json::from_str(&body)?;
        if list.iter().any(|v| v["workload"] == workload) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the daemon never named {workload}: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every replica of `workloads` is folded (none running).
fn wait_folded(port: u16, workloads: &[&str]) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (_, _, body) = http(port, "/v1/workloads", &[]).expect("workloads");
        let list: Vec<Value> = serde_json::from_str(&body).expect("JSON");
        let done = workloads
            .iter()
            .all(|w| list.iter().any(|v| v["workload"] == *w && v["replicas_running"] == 0 && v["replicas_seen"] != 0));
        if done {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "workloads {workloads:?} were not folded: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_image_runs_as_the_daemonset_says_and_its_profiles_enforce() {
    if skip_container_tests() || skip_bpf_tests() {
        return;
    }
    let work = tempfile::tempdir_in("/tmp").expect("tempdir");
    let wrapper = cgroupns_wrapper(work.path());
    let node =
        Node::start_with_handlers(&[images::Image::Nginx, images::Image::Early], &[(CGROUPNS_HANDLER, &wrapper)])
            .expect("node");
    ensure_kubepods().expect("kubepods");
    let daemon = DaemonPods {
        bpffs: Bpffs::mount().expect("bpffs"),
        state: tempfile::tempdir().expect("state"),
        seccomp_dir: tempfile::tempdir().expect("seccomp dir"),
        image: import_recorder_image(&node.containerd).expect("import the recorder image"),
        port: free_port(),
    };
    let pods = Pods::new(&node.containerd).expect("pods");

    // The daemon pod, watched from outside for denials of its own profile.
    let pod = pods
        .run_pod_with_handler("recorder-node1", "recorder-system", Runtime::Runc, CGROUPNS_HANDLER)
        .expect("daemon pod");
    let init = pods.run_container(&pod, &daemon.spec(&node, "install-profile", |_| {})).expect("init container");
    assert_eq!(pods.wait_exited(&init, TIMEOUT).expect("init exits"), 0, "{}", pods.logs(&init).unwrap_or_default());
    let installed = daemon.seccomp_dir.path().join("recorder-seccomp.json");
    assert_eq!(allowed_names(&installed), allowed_names(&shipped_profile()), "the image carries the shipped profile");
    let summary = work.path().join("outer-summary.json");
    let mut outer = Guarded(
        Command::new(recorder_bin())
            .args(["record", "-q", "--learn", "--cgroup"])
            .arg(pods.pod_cgroup(&pod).expect("pod cgroup"))
            .arg("-o")
            .arg(work.path().join("outer.json"))
            .arg("--json-summary")
            .arg(&summary)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(work.path().join("outer.log")).expect("log"))
            .spawn()
            .expect("outer recorder"),
    );
    wait_attached(outer.0.id());
    let daemon_id = pods.run_container(&pod, &daemon.spec(&node, "recorder", |_| {})).expect("daemon container");
    wait_for_status(daemon.port, "/readyz", 200, TIMEOUT, None)
        .unwrap_or_else(|e| panic!("{e}\n{}", pods.logs(&daemon_id).unwrap_or_default()));

    // What the kernel says about the daemon process.
    let pid = pods.pid(&daemon_id).expect("daemon pid");
    let caps = u64::from_str_radix(&status_field(pid, "CapEff:"), 16).expect("hex");
    assert_eq!(caps, (1 << CAP_BPF) | (1 << CAP_PERFMON), "exactly CAP_BPF and CAP_PERFMON");
    assert_eq!(status_field(pid, "NoNewPrivs:"), "1");
    assert_eq!(status_field(pid, "Seccomp:"), "2", "under a seccomp filter");
    for ns in ["cgroup", "pid"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("ns");
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).expect("ns");
        assert_ne!(theirs, ours, "the daemon has a private {ns} namespace");
    }
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    let root = mountinfo.lines().find(|l| l.split(' ').nth(4) == Some("/")).expect("root mount");
    assert!(root.split(' ').nth(5).is_some_and(|o| o.split(',').any(|x| x == "ro")), "read-only root: {root}");
    let memory_cgroup = memory_cgroup(pid);

    // Two workloads, each a whole life: nginx under runc, early under crun.
    let nginx_port = free_port();
    let web = pods.run_pod("web", "shop", Runtime::Runc).expect("web pod");
    pods.run_container(&web, &images::nginx_container(pods.work_dir(), nginx_port).expect("nginx")).expect("nginx");
    images::wait_for_http(nginx_port, Duration::from_secs(20)).expect("nginx serves");
    for _ in 0..20 {
        images::http_get(nginx_port).expect("page");
    }
    wait_named(daemon.port, "web").unwrap_or_else(|e| panic!("{e}\n{}", pods.logs(&daemon_id).unwrap_or_default()));
    // Alive for a few of the daemon's polls (1 s by default): a container
    // that lives and goes between two polls is never named (README, Limits).
    let early = pods.run_pod("early", "shop", Runtime::Crun).expect("early pod");
    let early_id = pods.run_container(&early, &images::early_container(3000)).expect("early");
    wait_named(daemon.port, "early").unwrap_or_else(|e| panic!("{e}\n{}", pods.logs(&daemon_id).unwrap_or_default()));
    assert_eq!(pods.wait_exited(&early_id, TIMEOUT).expect("exit"), 0);
    pods.remove_pod(&web).expect("remove web");
    pods.remove_pod(&early).expect("remove early");
    wait_folded(daemon.port, &["web", "early"])
        .unwrap_or_else(|e| panic!("{e}\nthe daemon's log:\n{}", pods.logs(&daemon_id).unwrap_or_default()));

    // Their profiles, over HTTP.
    let profiles = work.path().join("profiles");
    std::fs::create_dir(&profiles).expect("mkdir");
    let out = Command::new(recorder_bin())
        .args(["collect", &format!("http://127.0.0.1:{}", daemon.port), "-o"])
        .arg(&profiles)
        .output()
        .expect("collect");
    assert_exit(&out, 0, "recorder collect");
    let nginx_profile = profiles.join("shop_web_nginx.json");
    let early_profile = profiles.join("shop_early_early.json");
    for p in [&nginx_profile, &early_profile] {
        assert!(p.exists(), "collect wrote {}: {:?}", p.display(), std::fs::read_dir(&profiles).map(|d| d.count()));
    }
    let names = allowed_names(&early_profile);
    for call in images::EARLY_SYSCALLS {
        assert!(names.contains(call), "{call} in the early profile");
    }
    assert!(!allowed_names(&nginx_profile).contains("mount"), "no runtime setup calls");

    // They enforce on fresh pods: each under the runtime it was learned
    // under (nginx runc, early crun), since a profile carries that runtime's
    // base set (the pods ran without a filter, so the daemon saw no
    // post-filter calls of its own).
    {
        let runtime = Runtime::Runc;
        let port = free_port();
        let pod = pods.run_pod("web-enforced", "shop", runtime).expect("pod");
        let mut spec = images::nginx_container(pods.work_dir(), port).expect("nginx");
        spec.seccomp = Some(Seccomp::Localhost(nginx_profile.clone()));
        spec.no_new_privs = true;
        let id = pods.run_container(&pod, &spec).expect("nginx under its profile");
        images::wait_for_http(port, Duration::from_secs(20)).unwrap_or_else(|e| {
            panic!(
                "{runtime:?}: nginx does not serve under {}: {e:#}\n{:?}\nits log: {}",
                nginx_profile.display(),
                pods.status(&id).map(|(s, _)| (s.state(), s.exit_code, s.reason)),
                pods.logs(&id).unwrap_or_default()
            )
        });
        for _ in 0..20 {
            images::http_get(port).expect("page under the profile");
        }
        pods.stop_container(&id, 10).expect("stop");
        let (status, _) = pods.status(&id).expect("status");
        assert_eq!(status.exit_code, 0, "{runtime:?}: nginx stops cleanly under its profile");
        pods.remove_pod(&pod).expect("remove");
    }
    {
        let runtime = Runtime::Crun;
        let pod = pods.run_pod("early-enforced", "shop", runtime).expect("pod");
        let mut spec = images::early_container(10);
        spec.seccomp = Some(Seccomp::Localhost(early_profile.clone()));
        let id = pods.run_container(&pod, &spec).expect("early under its profile");
        assert_eq!(pods.wait_exited(&id, TIMEOUT).expect("exit"), 0, "{runtime:?}: early under its profile");
        assert_eq!(pods.logs(&id).expect("logs"), "early_syscalls: done");
        pods.remove_pod(&pod).expect("remove");
    }

    // What the memory limit has to hold: the process, and the BPF maps it
    // created (charged to its memory cgroup on this kernel).
    println!(
        "DEPLOY_POD_MEMORY {{\"vmhwm_kib\": {}, \"vmrss_kib\": {}, \"cgroup_peak_kib\": {}}}",
        status_field(pid, "VmHWM:").trim_end_matches(" kB"),
        status_field(pid, "VmRSS:").trim_end_matches(" kB"),
        memory_peak(&memory_cgroup) / 1024
    );

    // SIGTERM, as the kubelet stops it: exit 0, no error on the way.
    pods.stop_container(&daemon_id, 30).expect("stop the daemon");
    let (status, _) = pods.status(&daemon_id).expect("status");
    let logs = pods.logs(&daemon_id).expect("logs");
    assert_eq!(status.exit_code, 0, "the daemon stops cleanly: {logs}");
    assert!(!logs.contains("ERROR") && !logs.contains("recorder: error"), "{logs}");
    let outer_status = stop(&mut outer.0, libc::SIGINT, TIMEOUT);
    let outer_log = std::fs::read_to_string(work.path().join("outer.log")).unwrap_or_default();
    assert!(outer_status.success(), "outer recorder: {outer_status}: {outer_log}");
    pods.remove_pod(&pod).expect("remove the daemon pod");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("JSON");
    let denied: BTreeSet<String> = report["denied"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| format!("{} by {}", d["name"], d["process"]))
        .collect();
    assert!(denied.is_empty(), "the daemon's own profile denied {denied:?}; run `cargo xtask self-profile`");

    // Each capability it asks for, dropped: not ready, one line naming it.
    for (cap, name) in [("BPF", "CAP_BPF"), ("PERFMON", "CAP_PERFMON")] {
        let (pod, id) = daemon.run(&node, &pods, &format!("recorder-no-{}", cap.to_lowercase()), |s| {
            s.add_capabilities.retain(|c| c != cap);
        });
        wait_for_status(daemon.port, "/healthz", 200, TIMEOUT, None).expect("healthz answers");
        let (status, _, body) = http(daemon.port, "/readyz", &[]).expect("readyz");
        assert_eq!(status, 503, "not ready without {name}");
        assert!(body.contains(&format!("lacks {name}")), "{body}");
        let (container_status, _) = pods.status(&id).expect("status");
        assert_eq!(
            container_status.state(),
            recorder::cri::api::ContainerState::ContainerRunning,
            "no crash loop: still running"
        );
        let logs = pods.logs(&id).expect("logs");
        let errors: Vec<&str> = logs.lines().filter(|l| l.contains("recorder: error:")).collect();
        assert_eq!(errors.len(), 1, "one line: {logs}");
        assert!(errors[0].contains(&format!("lacks {name}")), "{}", errors[0]);
        eprintln!("without {name}: {}", errors[0]);
        pods.remove_pod(&pod).expect("remove");
    }
}
