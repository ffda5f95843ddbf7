//! `recorder daemon --by-exe`: the daemon's API attributes a workload's calls to the
//! executables that made them (`/v1/profiles/NAMESPACE/WORKLOAD/CONTAINER/by-exe`), checked
//! against programs with a known syscall set in a real CRI pod under runc; the workload's
//! profile is then enforced on a fresh pod, which runs to the end under it.
//!
//! Ground truth (tests/src/cri/images.rs, `LAUNCHER_IMAGE`): `/bin/exe_launcher` runs
//! `/bin/healthcheck` (exactly `unshare`, `exit_group`) and then `/bin/server` (exactly
//! `getcpu`, `exit_group`), each exec'd by a forked child of the launcher.
//!
//! Needs root; fails when it cannot run (RECORDER_SKIP_CONTAINER_TESTS=1 skips).

use std::{collections::BTreeSet, time::Duration};

use recorder_tests::{
    allowed_names,
    containers::Runtime,
    cri::{
        Node, Pods, Seccomp,
        images::{Image, launcher_container},
        skip_container_tests,
    },
    daemon::{Daemon, DaemonEnv, DaemonOptions, wait_until},
};
use serde_json::Value;

const EVENTUALLY: Duration = Duration::from_secs(60);
const ARCH: &str = "SCMP_ARCH_X86_64";

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

#[test]
fn the_daemon_attributes_each_call_to_the_executable_that_made_it() {
    if skip_container_tests() {
        return;
    }
    let env = DaemonEnv::new("by-exe");
    let node = Node::start(&[Image::Launcher]).expect("node");
    let pods = Pods::new_under(&node.containerd, &env.parent()).expect("CRI client");
    let mut daemon = Daemon::start(&env, &DaemonOptions::fast("node", node.containerd.address(), &["--by-exe"]));

    let pod = pods.run_pod("checker", "ops", Runtime::Runc).expect("pod");
    let id = pods.run_container(&pod, &launcher_container("app")).expect("runs");
    let code = pods.wait_exited(&id, EVENTUALLY).expect("exits");
    assert_eq!(code, 0, "the launcher and both programs ran: {}", pods.logs(&id).unwrap_or_default());
    wait_until(
        "the container is folded into its workload",
        EVENTUALLY,
        || format!("{:#?}\n{}", daemon.workloads(), daemon.log_text()),
        || daemon.workload("ops", "checker", "app").filter(|w| w["replicas_running"] == 0).map(|_| ()),
    );
    pods.remove_pod(&pod).expect("remove");

    let body = daemon.get("/v1/profiles/ops/checker/app/by-exe");
    let file: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(file["schema"], 1, "{body}");
    let attribution = &file["profiles"][0];
    assert_eq!(attribution["container"], "ops/checker/app", "{body}");
    let exes = &attribution["executables"];
    assert_eq!(strings(&exes["/bin/healthcheck"][ARCH]), set(&["unshare", "exit_group"]), "{body}");
    assert_eq!(strings(&exes["/bin/server"][ARCH]), set(&["getcpu", "exit_group"]), "{body}");
    let launcher = strings(&exes["/bin/exe_launcher"][ARCH]);
    for call in ["wait4", "execve"] {
        assert!(launcher.contains(call), "the launcher made {call}: {launcher:?}");
    }
    assert!(!launcher.contains("unshare") && !launcher.contains("getcpu"), "{launcher:?}");
    assert_eq!(strings(&attribution["syscalls"]["unshare"]), set(&["/bin/healthcheck"]), "{body}");
    assert_eq!(strings(&attribution["syscalls"]["getcpu"]), set(&["/bin/server"]), "{body}");

    // Information only: the workload's one profile holds every executable's calls, and the
    // whole tree runs under it.
    let profile = pods.work_dir().join("checker.json");
    let text = daemon.get("/v1/profiles/ops/checker/app");
    std::fs::write(&profile, &text).expect("write the profile");
    let names = allowed_names(&profile);
    assert!(names.is_superset(&set(&["unshare", "getcpu", "wait4"])), "{names:?}");
    let pod = pods.run_pod("checker-enforced", "verify", Runtime::Runc).expect("pod");
    let mut spec = launcher_container("app");
    spec.seccomp = Some(Seccomp::Localhost(profile.clone()));
    let id = pods.run_container(&pod, &spec).expect("starts under the learned profile");
    let code = pods.wait_exited(&id, EVENTUALLY).expect("exits");
    assert_eq!(code, 0, "every executable runs under the profile: {}", pods.logs(&id).unwrap_or_default());
    pods.remove_pod(&pod).expect("remove");

    assert!(daemon.terminate().success(), "{}", daemon.log_text());
    env.unpin("node");
}

#[test]
fn without_by_exe_the_endpoint_says_how_to_turn_it_on() {
    if skip_container_tests() {
        return;
    }
    let env = DaemonEnv::new("no-by-exe");
    let node = Node::start(&[]).expect("node");
    let mut daemon = Daemon::start(&env, &DaemonOptions::fast("node", node.containerd.address(), &[]));
    let (status, body) = daemon.try_get("/v1/profiles/ops/checker/app/by-exe").expect("the API answers");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("--by-exe"), "{body}");
    assert!(daemon.terminate().success(), "{}", daemon.log_text());
    env.unpin("node");
}
