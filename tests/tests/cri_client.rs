//! `recorder::cri` against a real CRI runtime: a private containerd 1.6 (its CRI plugin),
//! with pods run the way the kubelet runs them (`recorder_tests::cri`).
//!
//! Needs root, containerd, runc, busybox-static, umoci and gcc with a static libc. Every
//! test fails when it cannot run; set RECORDER_SKIP_CONTAINER_TESTS=1 to skip them instead.

#![expect(clippy::expect_used, reason = "test code reports failures by panicking")]

use std::{fs, path::PathBuf, time::Duration};

use recorder::cri::{ContainerState, CriError, PodState, connect};
use recorder_tests::{
    containers::{Runtime, cgroup2_mount},
    cri::{Node, PodRef, Pods, images, images::Image, skip_container_tests},
};

fn node(images: &[Image]) -> Option<Node> {
    if skip_container_tests() {
        return None;
    }
    Some(Node::start(images).expect("starting a private containerd with images"))
}

fn v2() -> PathBuf {
    cgroup2_mount().expect("reading mountinfo").expect("a cgroup v2 hierarchy is mounted")
}

/// `<v2 mount>/kubepods/pod-<uid>/<id>`: where the runtime puts a container of `pod`.
fn expected_cgroup(pod: &PodRef, id: &str) -> PathBuf {
    v2().join(pod.cgroup_parent.trim_start_matches('/')).join(id)
}

#[test]
fn connects_and_names_the_runtime() {
    let Some(node) = node(&[]) else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let cri = rt.block_on(connect(Some(node.containerd.address()))).expect("connecting");
    assert_eq!(cri.runtime_name(), "containerd");
    assert!(cri.runtime_version().starts_with("1."), "version {}", cri.runtime_version());
    assert_eq!(cri.endpoint(), node.containerd.address());

    // crictl's form of the same endpoint.
    let uri = PathBuf::from(format!("unix://{}", node.containerd.address().display()));
    let cri = rt.block_on(connect(Some(&uri))).expect("connecting with unix://");
    assert_eq!(cri.runtime_name(), "containerd");
}

#[test]
fn a_socket_of_something_else_is_not_cri() {
    let Some(node) = node(&[]) else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // containerd's ttrpc socket: a live unix socket that speaks another protocol.
    let mut ttrpc = node.containerd.address().as_os_str().to_owned();
    ttrpc.push(".ttrpc");
    let ttrpc = PathBuf::from(ttrpc);
    assert!(ttrpc.exists(), "containerd has no ttrpc socket at {}", ttrpc.display());
    let err = rt.block_on(connect(Some(&ttrpc))).expect_err("ttrpc is not gRPC");
    eprintln!("ttrpc socket: {err}");
    assert!(
        matches!(&err, CriError::NotCri { path, .. } | CriError::Connect { path, .. } if path == &ttrpc),
        "{err:?}"
    );
    assert!(err.to_string().contains("--runtime-endpoint"), "{err}");

    let missing = node.dir.path().join("no-such.sock");
    let err = rt.block_on(connect(Some(&missing))).expect_err("missing socket");
    assert!(matches!(err, CriError::SocketMissing { .. }), "{err:?}");
}

#[test]
fn finds_pods_by_name_and_namespace() {
    let Some(node) = node(&[]) else { return };
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let web = pods.run_pod("web", "default", Runtime::Runc).expect("pod web/default");
    let web_other = pods.run_pod("web", "other", Runtime::Runc).expect("pod web/other");
    let _db = pods.run_pod("db", "default", Runtime::Runc).expect("pod db/default");
    let cri = pods.cri();

    let found = pods.block_on(cri.find_pods("web", Some("default"))).expect("find_pods");
    assert_eq!(found.len(), 1, "{found:#?}");
    let pod = &found[0];
    assert_eq!(pod.id, web.id);
    assert_eq!((pod.name.as_str(), pod.namespace.as_str()), ("web", "default"));
    assert_eq!(pod.uid, web.uid);
    assert_eq!(pod.state, PodState::Ready);
    assert_eq!(pod.runtime_handler, "runc");
    assert!(pod.created_at > 0);

    let everywhere = pods.block_on(cri.find_pods("web", None)).expect("find_pods");
    let mut ids: Vec<_> = everywhere.iter().map(|p| p.id.clone()).collect();
    ids.sort();
    let mut expected = vec![web.id.clone(), web_other.id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    // Newest first.
    assert!(everywhere[0].created_at >= everywhere[1].created_at);

    assert!(pods.block_on(cri.find_pods("nope", None)).expect("find_pods").is_empty());
    assert!(pods.block_on(cri.find_pods("db", Some("other"))).expect("find_pods").is_empty());

    pods.stop_pod(&web).expect("stopping web");
    let stopped = pods.block_on(cri.find_pods("web", Some("default"))).expect("find_pods");
    assert_eq!(stopped[0].state, PodState::NotReady);
    assert_eq!(pods.block_on(cri.pod_cgroup_parent(&stopped[0], &hierarchy())).expect("parent"), None);
}

#[test]
fn running_containers_have_pid_and_cgroup() {
    let Some(node) = node(&[Image::Early]) else {
        return;
    };
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let pod = pods.run_pod("early", "default", Runtime::Runc).expect("pod");
    let id = pods.run_container(&pod, &images::early_container(30_000)).expect("container");
    let cri = pods.cri();

    let containers = pods.block_on(cri.containers(&pod.id, &hierarchy())).expect("containers");
    assert_eq!(containers.len(), 1, "{containers:#?}");
    let c = &containers[0];
    assert_eq!((c.id.as_str(), c.name.as_str(), c.attempt), (id.as_str(), "early", 0));
    assert_eq!(c.state, ContainerState::Running);
    assert_eq!(c.exit_code, None);
    let pid = c.pid.expect("a running container has a pid");
    let cgroup = c.cgroup.clone().expect("a running container has a cgroup");
    assert_eq!(cgroup, expected_cgroup(&pod, &id));
    let procs = fs::read_to_string(cgroup.join("cgroup.procs")).expect("cgroup.procs");
    assert!(procs.lines().any(|l| l == pid.to_string()), "{pid} not in {procs}");
    assert_eq!(c.cgroups_path.as_deref(), Some(format!("{}/{id}", pod.cgroup_parent).as_str()));

    let found = pods.block_on(cri.find_pods("early", Some("default"))).expect("find_pods");
    let parent = pods.block_on(cri.pod_cgroup_parent(&found[0], &hierarchy())).expect("pod_cgroup_parent");
    assert_eq!(parent, Some(v2().join(pod.cgroup_parent.trim_start_matches('/'))));
}

#[test]
fn exited_containers_and_restarts_are_listed() {
    let Some(node) = node(&[Image::Early]) else {
        return;
    };
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let pod = pods.run_pod("restarts", "default", Runtime::Runc).expect("pod");
    let first = pods.run_container(&pod, &images::early_container(0)).expect("attempt 0");
    assert_eq!(pods.wait_exited(&first, Duration::from_secs(10)).expect("exit"), 0);
    let mut again = images::early_container(30_000);
    again.attempt = 1;
    let second = pods.run_container(&pod, &again).expect("attempt 1");

    let containers = pods.block_on(pods.cri().containers(&pod.id, &hierarchy())).expect("containers");
    assert_eq!(containers.len(), 2, "{containers:#?}");
    let (old, new) = (&containers[0], &containers[1]);
    assert_eq!((old.id.as_str(), old.attempt), (first.as_str(), 0));
    assert_eq!(old.state, ContainerState::Exited);
    assert_eq!(old.exit_code, Some(0));
    assert_eq!((old.pid, old.cgroup.as_ref()), (None, None));
    assert_eq!((new.id.as_str(), new.attempt), (second.as_str(), 1));
    assert_eq!(new.state, ContainerState::Running);
    assert_eq!(new.cgroup, Some(expected_cgroup(&pod, &second)));
    assert_eq!(old.name, new.name);
}

/// The host's cgroup v2 hierarchy, for the CRI client's PID-to-cgroup lookups.
fn hierarchy() -> recorder::target::Hierarchy {
    recorder::target::Hierarchy::find().expect("cgroup v2 is mounted")
}
