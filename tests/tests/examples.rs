//! The proven example profiles in examples/profiles (nginx, redis, postgres, caddy from
//! Debian's packages; see tests/src/examples).
//!
//! - `regenerate` (ignored; `cargo xtask examples` runs it) records each workload through a
//!   private containerd's CRI under runc and under crun with `recorder record --pod`, from
//!   before its pod exists to its graceful stop, merges the two recordings, proves the merged
//!   profile under both runtimes, and writes the profile, its provenance, diff and proof.
//! - `shipped_examples_are_not_stale` fails when the shipped files no longer match this
//!   machine and this recorder: package versions, `recorder check`, `recorder diff`.
//! - `shipped_examples_hold_under_runc_and_crun` proves every shipped profile again: a fresh
//!   pod under it per runtime, the workload's own client at 0 errors, a graceful stop.
//!
//! Needs root, BPF, containerd, runc, crun and the four servers with their clients; fails when
//! it cannot run (RECORDER_SKIP_BPF_TESTS=1 or RECORDER_SKIP_CONTAINER_TESTS=1 skip).

use std::{path::Path, time::Instant};

use recorder_tests::{
    containers::{Runtime, cgroup2_mount},
    cri::{KUBEPODS, KubepodsUse, Node, Pods, skip_container_tests},
    examples::{
        REGENERATE, Workload, examples_dir,
        files::{self, PROFILE},
        images,
        prove::prove,
        record::record,
        workloads,
    },
    skip_bpf_tests,
};

fn skip() -> bool {
    skip_bpf_tests() || skip_container_tests()
}

/// A private containerd with every example's image, and the kubelet's parent cgroup.
fn start_node() -> Node {
    let node = Node::start(&images()).expect("a private containerd with the examples' images");
    KubepodsUse::register();
    let v2 = cgroup2_mount().expect("mountinfo").expect("a cgroup v2 mount");
    std::fs::create_dir_all(v2.join(KUBEPODS)).expect("creating the kubepods cgroup");
    node
}

/// The workloads `RECORDER_EXAMPLES` names (a comma list; all when unset).
fn selected() -> Vec<Workload> {
    let only = std::env::var("RECORDER_EXAMPLES").unwrap_or_default();
    let names: Vec<&str> = only.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    let chosen: Vec<Workload> =
        workloads().into_iter().filter(|w| names.is_empty() || names.contains(&w.name)).collect();
    assert!(!chosen.is_empty(), "RECORDER_EXAMPLES={only:?} names no example");
    chosen
}

#[test]
fn shipped_examples_are_not_stale() {
    let mut problems = Vec::new();
    for workload in workloads() {
        problems.extend(files::staleness(&workload).expect("reading the shipped example"));
    }
    assert!(
        problems.is_empty(),
        "examples/profiles is stale:\n- {}\nRegenerate it with `{REGENERATE}` (records each example again under runc and crun, a few minutes, as root).",
        problems.join("\n- ")
    );
}

#[test]
fn shipped_examples_hold_under_runc_and_crun() {
    if skip() {
        return;
    }
    let node = start_node();
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let mut failures = Vec::new();
    for workload in workloads() {
        let profile = examples_dir().join(workload.name).join(PROFILE);
        for runtime in Runtime::ALL {
            if let Err(e) = prove(&pods, &workload, runtime, &profile) {
                failures.push(format!("{} under {runtime:?}: {e:#}", workload.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "shipped example profiles fail their proof:\n{}\nRegenerate them with `{REGENERATE}`.",
        failures.join("\n\n")
    );
}

/// Records, proves and writes the selected examples (all unless `RECORDER_EXAMPLES` names
/// some), then the index. An example's files are replaced only once its proof passed.
#[test]
#[ignore = "writes examples/profiles; run by `cargo xtask examples`"]
fn regenerate() {
    if skip() {
        return;
    }
    let started = Instant::now();
    let node = start_node();
    let pods = Pods::new(&node.containerd).expect("CRI client");
    for workload in selected() {
        let staging = tempfile::Builder::new().prefix("examples-").tempdir_in("/tmp").expect("tempdir");
        let recordings: Vec<_> = Runtime::ALL
            .iter()
            .map(|&runtime| {
                let out = staging.path().join(runtime.binary_name());
                record(&node, &pods, &workload, runtime, &out)
                    .unwrap_or_else(|e| panic!("recording {} under {runtime:?}: {e:#}", workload.name))
            })
            .collect();
        let dir = staging.path().join("example");
        files::merge(&recordings, &dir).expect("merging the recordings");
        let proofs: Vec<_> = Runtime::ALL
            .iter()
            .map(|&runtime| {
                prove(&pods, &workload, runtime, &dir.join(PROFILE))
                    .unwrap_or_else(|e| panic!("proving {} under {runtime:?}: {e:#}", workload.name))
            })
            .collect();
        files::write(&workload, &recordings, &proofs, &dir).expect("writing the example");
        install(&dir, &examples_dir().join(workload.name));
    }
    let took = started.elapsed().as_secs_f64();
    files::write_index(&workloads(), took).expect("writing the index");
    println!("EXAMPLES_SECONDS {took:.1}");
}

/// Copies the example's files from `staging` over `target`.
fn install(staging: &Path, target: &Path) {
    std::fs::create_dir_all(target).expect("creating the example's directory");
    for file in files::FILES {
        std::fs::copy(staging.join(file), target.join(file))
            .unwrap_or_else(|e| panic!("copying {file} to {}: {e}", target.display()));
    }
}
