//! Ground truth: every syscall a known program makes, from every kind of
//! context, is in the recorded profile, and nothing of the recorder's own is.

use std::{collections::BTreeSet, time::Duration};

use recorder_tests::{
    allowed_names, assert_exit, ground_truth, ground_truth_program, minimal_program, recorder, scratch_dir,
    skip_bpf_tests,
};

/// Syscalls the recorder itself makes (BPF loading, its tokio event loop,
/// Rust's runtime start-up) that the ground-truth program never makes.
const RECORDER_NOISE: &[&str] =
    &["bpf", "epoll_ctl", "epoll_wait", "epoll_pwait", "sigaltstack", "poll", "perf_event_open", "inotify_init1"];

/// The only syscall of the recorder's that a recording contains: the child
/// joins the cgroup with write(2) before exec (that write enters the kernel
/// outside the cgroup), then calls execve, which is inside.
const RECORDER_EXEC: &[&str] = &["execve"];

#[test]
fn every_context_is_recorded() {
    if skip_bpf_tests() {
        return;
    }
    let program = ground_truth_program();
    let marker = scratch_dir().join("gt-marker");
    let profile = scratch_dir().join("gt.json");
    let out = recorder(&[
        "record",
        "-q",
        "-o",
        profile.to_str().expect("utf8"),
        "--",
        program.to_str().expect("utf8"),
        marker.to_str().expect("utf8"),
    ]);
    assert_exit(&out, 0, "recording the ground-truth program");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ground truth ok\n");
    // The recording ends only when the daemon has exited, so its marker is there.
    let daemon = std::fs::read_to_string(&marker).expect("the daemon ran before the recording ended");
    assert_eq!(daemon, "daemon ok\n");

    let names = allowed_names(&profile);
    let expected = ground_truth::all();
    assert!(expected.len() >= 40, "the ground truth must cover at least 40 syscalls");
    let missing: Vec<_> = expected.iter().filter(|n| !names.contains(**n)).collect();
    assert!(missing.is_empty(), "missing from the profile: {missing:?}\nprofile: {names:?}");
    let noise: Vec<_> = RECORDER_NOISE.iter().filter(|n| names.contains(**n)).collect();
    assert!(noise.is_empty(), "recorder's own syscalls leaked into the profile: {noise:?}");
}

#[test]
fn recorder_adds_only_execve() {
    if skip_bpf_tests() {
        return;
    }
    let program = minimal_program(None, None);
    let profile = scratch_dir().join("minimal.json");
    let out = recorder(&["record", "-q", "-o", profile.to_str().expect("utf8"), "--", program.to_str().expect("utf8")]);
    assert_exit(&out, 0, "recording the libc-free program");
    let names = allowed_names(&profile);
    let mut expected: BTreeSet<String> = ["write", "exit_group"].iter().map(|s| s.to_string()).collect();
    expected.extend(RECORDER_EXEC.iter().map(|s| s.to_string()));
    // Every profile allows what any process needs to end (README, "What a
    // workload needs to end"): `exit` ends a thread.
    expected.insert("exit".to_owned());
    assert_eq!(names, expected, "a program that only writes and exits needs exactly these");
}

#[test]
fn profile_output_is_byte_identical_for_the_same_set() {
    if skip_bpf_tests() {
        return;
    }
    let program = minimal_program(Some(63 /* uname */), None);
    let a = scratch_dir().join("same-a.json");
    let b = scratch_dir().join("same-b.json");
    for p in [&a, &b] {
        let out = recorder(&["record", "-q", "-o", p.to_str().expect("utf8"), "--", program.to_str().expect("utf8")]);
        assert_exit(&out, 0, "recording");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    let text = std::fs::read_to_string(&a).expect("a");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(json["defaultErrnoRet"], 1);
    // Only the ABI that made calls: a 64-bit program leaves ia32 closed.
    assert_eq!(json["architectures"], serde_json::json!(["SCMP_ARCH_X86_64"]));
    let names: Vec<String> = json["syscalls"][0]["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().expect("s").to_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "names are sorted");
}
