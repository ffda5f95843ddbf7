//! `recorder baseline`: a runtime's post-filter base set, derived by
//! recording it start trivial containers, matches what the runtime needs.

use recorder_tests::{assert_exit, containers::fix_crun_hybrid_hugetlb, recorder, skip_bpf_tests};

fn base_set(runtime: &str) -> Vec<String> {
    let out = recorder(&["baseline", "--runtime", runtime, "--runs", "6"]);
    assert_exit(&out, 0, &format!("baseline --runtime {runtime}"));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["runtime"], runtime);
    assert!(json["version"].as_str().is_some_and(|v| v.contains(runtime)), "{json}");
    json["syscalls"].as_array().expect("syscalls").iter().map(|s| s.as_str().expect("name").to_owned()).collect()
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
