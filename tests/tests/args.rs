//! `record --args`: a profile that allows some calls only with the argument
//! values recorded (socket families and types, clone without namespace
//! flags, mprotect without PROT_EXEC), enforced for real: by `recorder run`
//! and by runc and crun through containerd.
//!
//! Ground truth is `tests/programs/args_probe.c`: a plain run makes a known
//! set of values; `probe` adds calls that differ only in their arguments and
//! must get EPERM, plus one (`SOCK_NONBLOCK`) that differs only in flags the
//! profile masks off and must still work.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use recorder_tests::{
    assert_exit, compile,
    containers::{Containerd, Runtime, ctr_run, fix_crun_hybrid_hugetlb, rootfs_with},
    recorder, recorder_bin, scratch_dir, skip_bpf_tests,
};
use serde_json::{Value, json};

const PLAIN: &str = "inet stream: ok\nunix dgram: ok\nfork: ok\nmprotect read: ok\n";
const PROBED: &str = "inet stream nonblock: ok\n\
                      inet dgram: EPERM\n\
                      netlink raw: EPERM\n\
                      packet raw: EPERM\n\
                      vsock stream: EPERM\n\
                      clone newuser: EPERM\n\
                      mprotect exec: EPERM\n";

/// The probe, compiled once for all tests here (they run in parallel).
fn program() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile("args_probe.c", "args_probe", &["-O2", "-Wall"])).clone()
}

/// Records the plain run with `--args`; returns the profile.
fn record(name: &str) -> (PathBuf, Value) {
    record_mode(name, None)
}

/// Records a run of the probe (with `mode` as its argument) with `--args`.
fn record_mode(name: &str, mode: Option<&str>) -> (PathBuf, Value) {
    let program = program();
    let profile = scratch_dir().join(format!("args-{name}.json"));
    let out = recorder(&[
        "record",
        "--args",
        "-q",
        "-o",
        profile.to_str().expect("utf8"),
        "--",
        program.to_str().expect("utf8"),
        mode.unwrap_or("plain"),
    ]);
    assert_exit(&out, 0, "record --args");
    let expected = match mode {
        Some("netlink") => format!("{PLAIN}netlink raw: ok\n"),
        _ => PLAIN.to_owned(),
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&profile).expect("read")).expect("json");
    (profile, json)
}

/// The rules of `name` that carry argument conditions.
fn conditioned<'a>(profile: &'a Value, name: &str) -> Vec<&'a Value> {
    profile["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .filter(|r| r["names"].as_array().is_some_and(|n| n.iter().any(|x| x == name)))
        .filter(|r| r["args"].as_array().is_some_and(|a| !a.is_empty()))
        .collect()
}

/// Whether `name` is also allowed by a rule without conditions.
fn unconditioned(profile: &Value, name: &str) -> bool {
    profile["syscalls"].as_array().expect("syscalls").iter().any(|r| {
        r["action"] == "SCMP_ACT_ALLOW"
            && r["names"].as_array().is_some_and(|n| n.iter().any(|x| x == name))
            && r["args"].as_array().is_none_or(Vec::is_empty)
    })
}

#[test]
fn recorded_argument_values_become_rules_that_hold() {
    if skip_bpf_tests() {
        return;
    }
    let (profile, json) = record("run");
    // socket: one rule per (family, type), the type compared without flags.
    let socket = conditioned(&json, "socket");
    let mut pairs: Vec<(u64, u64)> = socket
        .iter()
        .map(|r| {
            let args = r["args"].as_array().expect("args");
            assert_eq!(args[0]["op"], "SCMP_CMP_EQ", "{r}");
            assert_eq!(args[1]["op"], "SCMP_CMP_MASKED_EQ", "{r}");
            (args[0]["value"].as_u64().expect("family"), args[1]["valueTwo"].as_u64().unwrap_or(0))
        })
        .collect();
    pairs.sort_unstable();
    assert_eq!(pairs, vec![(1, 2), (2, 1)], "AF_UNIX/SOCK_DGRAM and AF_INET/SOCK_STREAM: {json}");
    for name in ["socket", "clone", "mprotect"] {
        assert!(!unconditioned(&json, name), "{name} must not also be allowed unconditionally: {json}");
    }
    let clone = conditioned(&json, "clone");
    assert_eq!(clone.len(), 1, "{json}");
    assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    assert_eq!(clone[0]["args"][0]["valueTwo"].as_u64().unwrap_or(0), 0, "no namespace flag allowed");

    let program = program();
    let out = std::process::Command::new(recorder_bin())
        .args(["run", "--profile", profile.to_str().expect("utf8"), "--"])
        .arg(&program)
        .arg("probe")
        .output()
        .expect("recorder run");
    assert_exit(&out, 0, "the probe under its --args profile");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{PLAIN}{PROBED}"));
}

/// Merging two `--args` profiles takes the union of their values: a second
/// recording that opened a netlink socket lets the merged profile open one,
/// and nothing else gets through.
#[test]
fn merge_takes_the_union_of_argument_values() {
    if skip_bpf_tests() {
        return;
    }
    let (plain, _) = record_mode("merge-plain", None);
    let (netlink, _) = record_mode("merge-netlink", Some("netlink"));
    let merged = scratch_dir().join("args-merged.json");
    let out = recorder(&[
        "merge",
        plain.to_str().expect("utf8"),
        netlink.to_str().expect("utf8"),
        "-o",
        merged.to_str().expect("utf8"),
    ]);
    assert_exit(&out, 0, "merge");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&merged).expect("read")).expect("json");
    assert_eq!(conditioned(&json, "socket").len(), 3, "AF_UNIX, AF_INET and AF_NETLINK rules: {json}");
    assert!(!unconditioned(&json, "socket"), "{json}");
    let out = std::process::Command::new(recorder_bin())
        .args(["run", "--profile", merged.to_str().expect("utf8"), "--"])
        .arg(program())
        .arg("probe")
        .output()
        .expect("recorder run");
    assert_exit(&out, 0, "the probe under the merged profile");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{PLAIN}{}", PROBED.replace("netlink raw: EPERM", "netlink raw: ok"))
    );
}

/// The profile with the runtime's post-filter calls added as a plain rule,
/// the recorded conditioned rules kept as they are.
fn with_runtime_base(json: &Value, runtime: Runtime, path: &Path) {
    let mut json = json.clone();
    let names: Vec<&str> = runtime.post_filter_base().to_vec();
    json["syscalls"].as_array_mut().expect("syscalls").push(json!({"names": names, "action": "SCMP_ACT_ALLOW"}));
    std::fs::write(path, serde_json::to_vec_pretty(&json).expect("json")).expect("write");
}

fn in_container(runtime: Runtime) {
    if skip_bpf_tests() {
        return;
    }
    if runtime == Runtime::Crun {
        fix_crun_hybrid_hugetlb().expect("crun needs hugetlb off the v2 hierarchy on hybrid hosts");
    }
    let name = runtime.binary_name();
    let (_, json) = record(name);
    let program = program();
    let dir = tempfile::Builder::new().prefix("rt-args-").tempdir_in("/tmp").expect("tempdir");
    let rootfs = rootfs_with(&[program.as_path()], dir.path()).expect("rootfs with the probe");
    let containerd = Containerd::start(dir.path()).expect("private containerd");
    let profile = dir.path().join("profile.json");
    with_runtime_base(&json, runtime, &profile);
    let out = ctr_run(&containerd, &rootfs, Some(&profile), runtime, &["/bin/args_probe", "probe"]).expect("ctr run");
    assert_exit(&out, 0, &format!("the probe under its --args profile with {name}"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{PLAIN}{PROBED}"), "{name}");
}

#[test]
fn runc_enforces_argument_conditions() {
    in_container(Runtime::Runc);
}

#[test]
fn crun_enforces_argument_conditions() {
    in_container(Runtime::Crun);
}
