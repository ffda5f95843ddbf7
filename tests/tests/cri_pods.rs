//! The pod harness (`recorder_tests::cri`): nginx pods under runc and crun through
//! containerd's CRI, seccomp settings enforced, pods cleaned up, and where the runtimes put
//! pods, containers and their own init processes in the cgroup hierarchy.
//!
//! Needs root, containerd, runc, crun, nginx, busybox-static, umoci and gcc with a static
//! libc. Every test fails when it cannot run; set RECORDER_SKIP_CONTAINER_TESTS=1 to skip
//! them instead. nginx listens on ports 18090-18095 (host network).

#![expect(clippy::expect_used, reason = "test code reports failures by panicking")]

use std::{fs, path::Path, time::Duration};

use recorder::cri::ContainerState;
use recorder_tests::{
    containers::{ProcCgroups, Runtime, cgroup2_mount},
    cri::{
        ContainerSpec, Node, PodRef, Pods, Seccomp,
        images::{self, INDEX_HTML, Image},
        skip_container_tests,
    },
};

const EXIT_UNAME_EPERM: i32 = 11;

fn node(images: &[Image]) -> Option<Node> {
    if skip_container_tests() {
        return None;
    }
    Some(Node::start(images).expect("starting a private containerd with images"))
}

/// Writes an OCI seccomp profile allowing everything except `deny` (EPERM).
fn profile_denying(dir: &Path, deny: &[&str]) -> std::path::PathBuf {
    let mut profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    });
    if !deny.is_empty() {
        profile["syscalls"] = serde_json::json!([
            { "names": deny, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM }
        ]);
    }
    let path = dir.join(format!("deny-{}.json", deny.join("-")));
    fs::write(&path, serde_json::to_vec_pretty(&profile).expect("json")).expect("writing profile");
    path
}

/// `Seccomp:` of /proc/PID/status: 0 none, 2 filter.
fn seccomp_mode(pid: u32) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("reading status");
    status.lines().find_map(|l| l.strip_prefix("Seccomp:")).and_then(|v| v.trim().parse().ok()).expect("Seccomp: line")
}

fn pid_of(pods: &Pods, pod: &PodRef, id: &str) -> u32 {
    let containers = pods.block_on(pods.cri().containers(&pod.id, &hierarchy())).expect("containers");
    let c = containers.iter().find(|c| c.id == id).expect("container listed");
    c.pid.expect("running container has a pid")
}

/// nginx serves its page on `port` under `runtime`; removing the pod stops it and removes
/// its cgroups.
fn nginx_serves(runtime: Runtime, port: u16) {
    let Some(node) = node(&[Image::Nginx]) else {
        return;
    };
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let pod = pods.run_pod("nginx", "default", runtime).expect("pod");
    let spec = images::nginx_container(pods.work_dir(), port).expect("nginx spec");
    let id = pods.run_container(&pod, &spec).expect("nginx container");
    let response = images::wait_for_http(port, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e:#}; logs:\n{}", pods.logs(&id).unwrap_or_default()));
    assert!(response.ends_with(INDEX_HTML), "{response}");
    let logs = pods.logs(&id).expect("logs");
    assert!(logs.contains("start worker process"), "{logs}");
    let pid = pid_of(&pods, &pod, &id);
    assert_eq!(seccomp_mode(pid), 0, "Unconfined means no filter");

    let pod_cgroup = pods.pod_cgroup(&pod).expect("pod cgroup");
    assert!(pod_cgroup.join(&id).is_dir());
    pods.remove_pod(&pod).expect("removing the pod");
    assert!(!pod_cgroup.exists(), "{} left behind", pod_cgroup.display());
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "nginx {pid} still runs");
    assert!(images::http_get(port).is_err(), "port {port} still answers");
    let left = pods.block_on(pods.cri().find_pods("nginx", None)).expect("find_pods");
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn nginx_serves_under_runc() {
    nginx_serves(Runtime::Runc, 18090);
}

#[test]
fn nginx_serves_under_crun() {
    nginx_serves(Runtime::Crun, 18091);
}

/// A Localhost profile that denies `bind` makes nginx fail; the same container with a
/// profile that denies nothing serves.
fn localhost_profile_enforced(runtime: Runtime, port: u16) {
    let Some(node) = node(&[Image::Nginx]) else {
        return;
    };
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let pod = pods.run_pod("nginx", "default", runtime).expect("pod");

    let mut spec = images::nginx_container(pods.work_dir(), port).expect("nginx spec");
    spec.seccomp = Some(Seccomp::Localhost(profile_denying(pods.work_dir(), &["bind"])));
    let denied = pods.run_container(&pod, &spec).expect("nginx without bind");
    let code = pods.wait_exited(&denied, Duration::from_secs(10)).expect("nginx exits");
    let logs = pods.logs(&denied).expect("logs");
    assert_eq!(code, 1, "{logs}");
    assert!(logs.contains(&format!("bind() to 127.0.0.1:{port} failed (1: Operation not permitted)")), "{logs}");

    spec.seccomp = Some(Seccomp::Localhost(profile_denying(pods.work_dir(), &[])));
    spec.attempt = 1;
    let allowed = pods.run_container(&pod, &spec).expect("nginx with everything");
    images::wait_for_http(port, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e:#}; logs:\n{}", pods.logs(&allowed).unwrap_or_default()));
    assert_eq!(seccomp_mode(pid_of(&pods, &pod, &allowed)), 2);
}

#[test]
fn localhost_profile_is_enforced_under_runc() {
    localhost_profile_enforced(Runtime::Runc, 18092);
}

#[test]
fn localhost_profile_is_enforced_under_crun() {
    localhost_profile_enforced(Runtime::Crun, 18093);
}

#[test]
fn runtime_default_profile_is_installed() {
    let Some(node) = node(&[Image::Nginx]) else {
        return;
    };
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let pod = pods.run_pod("nginx", "default", Runtime::Runc).expect("pod");
    let mut spec = images::nginx_container(pods.work_dir(), 18094).expect("nginx spec");
    spec.seccomp = Some(Seccomp::RuntimeDefault);
    let id = pods.run_container(&pod, &spec).expect("nginx");
    images::wait_for_http(18094, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e:#}; logs:\n{}", pods.logs(&id).unwrap_or_default()));
    assert_eq!(seccomp_mode(pid_of(&pods, &pod, &id)), 2);
}

/// The early_syscalls image: exits 0 unconfined, 11 when `uname` is denied, under both
/// runtimes.
#[test]
fn early_program_runs_and_is_denied_uname() {
    let Some(node) = node(&[Image::Early]) else {
        return;
    };
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let deny_uname = profile_denying(pods.work_dir(), &["uname"]);
    for runtime in Runtime::ALL {
        let pod = pods.run_pod("early", "default", runtime).expect("pod");
        let ok = pods.run_container(&pod, &images::early_container(10)).expect("early");
        assert_eq!(pods.wait_exited(&ok, Duration::from_secs(10)).expect("exit"), 0);
        assert_eq!(pods.logs(&ok).expect("logs"), "early_syscalls: done");

        let mut spec = images::early_container(10);
        spec.seccomp = Some(Seccomp::Localhost(deny_uname.clone()));
        spec.attempt = 1;
        let denied = pods.run_container(&pod, &spec).expect("early, uname denied");
        let code = pods.wait_exited(&denied, Duration::from_secs(10)).expect("exit");
        assert_eq!(code, EXIT_UNAME_EPERM, "{runtime:?}");
        pods.remove_pod(&pod).expect("removing the pod");
    }
}

/// The kubelet leaves `no_new_privs` off unless `allowPrivilegeEscalation: false`, and
/// containerd passes it through to the OCI spec: both cases occur in real clusters.
#[test]
fn no_new_privileges_follows_the_request() {
    let Some(node) = node(&[Image::Early]) else {
        return;
    };
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let pod = pods.run_pod("nnp", "default", Runtime::Runc).expect("pod");
    for (attempt, no_new_privs) in [false, true].into_iter().enumerate() {
        let spec = ContainerSpec { no_new_privs, attempt: attempt as u32, ..images::early_container(0) };
        let id = pods.create_container(&pod, &spec).expect("create");
        let (_, info) = pods.status(&id).expect("status");
        let info: serde_json::Value = serde_json::from_str(&info["info"]).expect("verbose info is JSON");
        let spec_nnp =
            info.pointer("/runtimeSpec/process/noNewPrivileges").and_then(serde_json::Value::as_bool).unwrap_or(false);
        assert_eq!(spec_nnp, no_new_privs);
    }
}

/// Dropping the harness removes what it ran.
#[test]
fn pods_are_removed_on_drop() {
    let Some(node) = node(&[Image::Nginx]) else {
        return;
    };
    let (pod_cgroup, pid) = {
        let pods = Pods::new(&node.containerd).expect("CRI client");
        let pod = pods.run_pod("dropped", "default", Runtime::Runc).expect("pod");
        let spec = images::nginx_container(pods.work_dir(), 18095).expect("nginx spec");
        let id = pods.run_container(&pod, &spec).expect("nginx");
        (pods.pod_cgroup(&pod).expect("pod cgroup"), pid_of(&pods, &pod, &id))
    };
    assert!(!pod_cgroup.exists(), "{} left behind", pod_cgroup.display());
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "nginx {pid} still runs");
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let left = pods.block_on(pods.cri().find_pods("dropped", None)).expect("find_pods");
    assert!(left.is_empty(), "{left:#?}");
}

/// Where a pod lands: sandbox and containers in `<mount>/kubepods/pod-<uid>/<id>` in v2 and
/// every v1 hierarchy, the shim outside. And what is in a container's v2 cgroup before its
/// entrypoint runs: the runtime's own init process, which then execs the entrypoint.
fn placement(runtime: Runtime) {
    let Some(node) = node(&[Image::Early]) else {
        return;
    };
    let v2 = cgroup2_mount().expect("mountinfo").expect("a cgroup v2 hierarchy");
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let pod = pods.run_pod("placement", "default", runtime).expect("pod");
    let pod_cgroup = pods.pod_cgroup(&pod).expect("pod cgroup");
    assert_eq!(pod_cgroup, v2.join("kubepods").join(format!("pod-{}", pod.uid)));

    let found = pods.block_on(pods.cri().find_pods("placement", None)).expect("find_pods");
    let sandbox_pid: u32 = fs::read_to_string(pod_cgroup.join(&pod.id).join("cgroup.procs"))
        .expect("the sandbox's cgroup")
        .trim()
        .parse()
        .expect("one pause pid");
    let sandbox = ProcCgroups::of_pid(sandbox_pid).expect("sandbox cgroups");
    assert_eq!(sandbox.unified.as_deref(), Some(pod_cgroup.join(&pod.id).as_path()));
    let shim = sandbox_shim(sandbox_pid);
    let shim_cgroups = ProcCgroups::of_pid(shim).expect("shim cgroups");
    let shim_v2 = shim_cgroups.unified.expect("shim v2 cgroup");
    assert!(!shim_v2.starts_with(&pod_cgroup), "the shim is in {}", shim_v2.display());
    eprintln!("{runtime:?}: sandbox {sandbox_pid} in {sandbox:?}; shim {shim} in v2 {}", shim_v2.display());

    let mut runtime_seen_before_exec = 0;
    for attempt in 0..3 {
        // Long enough to read its /proc entry on a loaded machine.
        let spec = ContainerSpec { attempt, ..images::early_container(2000) };
        let id = pods.create_container(&pod, &spec).expect("create");
        let container_cgroup = pod_cgroup.join(&id);
        let watch = recorder_tests::cri::CgroupWatch::start(pod_cgroup.clone());
        pods.start_container(&id).expect("start");
        let pid = pid_of(&pods, &pod, &id);
        let cgroups = ProcCgroups::of_pid(pid).expect("container cgroups");
        pods.wait_exited(&id, Duration::from_secs(10)).expect("exit");
        let seen = watch.finish().expect("watch");

        assert_eq!(cgroups.unified.as_deref(), Some(container_cgroup.as_path()));
        for (controllers, dir) in &cgroups.v1 {
            let expected = format!("kubepods/pod-{}/{id}", pod.uid);
            assert!(dir.ends_with(&expected), "{controllers}: {}", dir.display());
        }
        let inside: Vec<_> = seen.iter().filter(|s| s.cgroup.as_os_str() == id.as_str()).collect();
        eprintln!("{runtime:?} attempt {attempt}: container {id}, cgroups_path {}/{id}", pod.cgroup_parent);
        for s in &inside {
            eprintln!("  +{:>9.3?} pid {:>7} comm {:<16} exe {:<22} {}", s.at, s.pid, s.comm, s.exe, s.cmdline);
        }
        let entry = inside
            .iter()
            .position(|s| s.exe == "/bin/early_syscalls")
            .expect("the entrypoint ran in the container's cgroup");
        if inside[..entry].iter().any(|s| s.pid == inside[entry].pid) {
            runtime_seen_before_exec += 1;
        }
        assert!(
            seen.iter().all(|s| s.cgroup.as_os_str() == id.as_str() || s.cgroup.as_os_str() == pod.id.as_str()),
            "a process outside the sandbox's and the container's cgroups: {seen:#?}"
        );
        let containers = pods.block_on(pods.cri().containers(&pod.id, &hierarchy())).expect("containers");
        let listed = containers.iter().find(|c| c.id == id).expect("listed");
        assert_eq!(listed.state, ContainerState::Exited);
        assert_eq!(listed.cgroups_path.as_deref(), Some(format!("{}/{id}", pod.cgroup_parent).as_str()));
    }
    // Polling can miss the runtime's moments in the cgroup on a busy machine; it cannot
    // invent them. Once is proof.
    assert!(
        runtime_seen_before_exec > 0,
        "{runtime:?}: the entrypoint's pid was never seen in the container's cgroup before its exec"
    );
    let parent = pods.block_on(pods.cri().pod_cgroup_parent(&found[0], &hierarchy())).expect("parent");
    assert_eq!(parent, Some(pod_cgroup));
}

#[test]
fn placement_under_runc() {
    placement(Runtime::Runc);
}

#[test]
fn placement_under_crun() {
    placement(Runtime::Crun);
}

/// The containerd shim that parents the sandbox's pause process.
fn sandbox_shim(pause: u32) -> u32 {
    let stat = fs::read_to_string(format!("/proc/{pause}/stat")).expect("pause stat");
    // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
    let after = stat.rsplit_once(')').expect("stat has (comm)").1;
    let ppid: u32 = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("ppid");
    let cmdline = fs::read(format!("/proc/{ppid}/cmdline")).expect("shim cmdline");
    assert!(
        String::from_utf8_lossy(&cmdline).contains("containerd-shim"),
        "pause's parent {ppid} is not a containerd shim"
    );
    ppid
}

/// The host's cgroup v2 hierarchy, for the CRI client's PID-to-cgroup lookups.
fn hierarchy() -> recorder::target::Hierarchy {
    recorder::target::Hierarchy::find().expect("cgroup v2 is mounted")
}
