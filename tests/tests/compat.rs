//! Right names for every ABI, proven with a real 32-bit program.
//!
//! tests/programs/compat32.c (`gcc -m32`) makes a known set of ia32
//! syscalls, many of whose numbers mean other calls natively (ia32 5 is
//! `open`, x86_64 5 is `fstat`), from a second thread, a forked child and an
//! exec'd copy of itself, and execs a 64-bit helper that makes known native
//! calls; tests/programs/compat32.expected lists every call per ABI.
//!
//! - The recording names every call with its own ABI's table (checked name
//!   by name, both ABIs, from `--json-summary`), and the profile lists
//!   SCMP_ARCH_X86 because ia32 calls were seen.
//! - The program runs under its profile with `recorder run` and in
//!   containers under runc and crun; an ia32 call it never made gets EPERM.
//! - A 64-bit program's profile does not list SCMP_ARCH_X86, so a 32-bit
//!   program under it cannot make ia32 calls at all (SIGSYS).
//! - x32 works where the kernel has it (this one does not: the case is
//!   skipped with the reason).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Command,
    sync::OnceLock,
};

use recorder_tests::{
    assert_exit, compile,
    containers::{Containerd, Runtime, ctr_run, fix_crun_hybrid_hugetlb, rootfs_with},
    minimal_program, recorder, recorder_bin, scratch_dir, skip_bpf_tests, workspace_root,
};

/// The 32-bit program and its 64-bit helper.
fn programs() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        (
            compile("compat32.c", "compat32", &["-m32", "-O2", "-Wall", "-pthread"]),
            compile("compat32_exec64.c", "compat32_exec64", &["-static", "-nostdlib", "-O2"]),
        )
    })
}

/// The expected names per ABI (`ia32`, `x86_64`), without the launcher's.
fn expected() -> BTreeMap<String, BTreeSet<String>> {
    let text =
        std::fs::read_to_string(workspace_root().join("tests/programs/compat32.expected")).expect("compat32.expected");
    let mut sets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().collect();
        if let [abi, name, kind, ..] = fields.as_slice()
            && *kind != "launcher"
        {
            sets.entry((*abi).to_owned()).or_default().insert((*name).to_owned());
        }
    }
    sets
}

/// Records the full run; returns (profile, JSON summary).
fn record_compat32() -> (PathBuf, serde_json::Value) {
    let (program, helper) = programs();
    let profile = scratch_dir().join("compat32.json");
    let summary = scratch_dir().join("compat32-summary.json");
    let out = recorder(&[
        "record",
        "-q",
        "-o",
        profile.to_str().expect("utf8"),
        "--json-summary",
        summary.to_str().expect("utf8"),
        "--",
        program.to_str().expect("utf8"),
        helper.to_str().expect("utf8"),
    ]);
    assert_exit(&out, 0, "recording compat32");
    let json = serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("summary is JSON");
    (profile, json)
}

fn names_of(value: &serde_json::Value) -> BTreeSet<String> {
    value.as_array().into_iter().flatten().filter_map(|n| n.as_str().map(str::to_owned)).collect()
}

#[test]
fn every_call_is_named_with_its_own_abi() {
    if skip_bpf_tests() {
        return;
    }
    let (profile, summary) = record_compat32();
    let expected = expected();
    let recorded = &summary["profiles"][0]["recorded_by_arch"];
    let ia32 = names_of(&recorded["SCMP_ARCH_X86"]);
    let native = names_of(&recorded["SCMP_ARCH_X86_64"]);
    assert_eq!(ia32, expected["ia32"], "ia32 names, exactly");
    // The recorder's own execve of the program is native (the launcher).
    let mut native_expected = expected["x86_64"].clone();
    native_expected.insert("execve".to_owned());
    assert_eq!(native, native_expected, "x86_64 names, exactly");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).expect("profile")).expect("json");
    assert_eq!(json["architectures"], serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]));
    // Numbers that mean other calls natively were named as ia32 calls.
    for (ia32_name, native_namesake) in [("_llseek", "getpriority"), ("waitpid", "poll"), ("umask", "exit")] {
        assert!(ia32.contains(ia32_name), "{ia32_name}");
        assert!(!native.contains(native_namesake), "{native_namesake} leaked from an ia32 number");
    }
}

#[test]
fn it_runs_under_its_profile_and_an_unmade_ia32_call_gets_eperm() {
    if skip_bpf_tests() {
        return;
    }
    let (program, helper) = programs();
    let (profile, _) = record_compat32();
    let run = |args: &[&str]| {
        Command::new(recorder_bin())
            .args(["run", "--profile", profile.to_str().expect("utf8"), "--", program.to_str().expect("utf8")])
            .args(args)
            .output()
            .expect("recorder run")
    };
    let out = run(&[helper.to_str().expect("utf8")]);
    assert_exit(&out, 0, "compat32 under its own profile");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "compat32_exec64: ok\ncompat32: ok\n");
    for never_made in ["getitimer", "getrusage"] {
        let out = run(&["probe", never_made]);
        assert_exit(&out, 1, &format!("ia32 {never_made} under the profile"));
        assert!(String::from_utf8_lossy(&out.stdout).contains("EPERM"), "{never_made}");
    }
}

fn in_container(runtime: Runtime) {
    if skip_bpf_tests() {
        return;
    }
    if runtime == Runtime::Crun {
        fix_crun_hybrid_hugetlb().expect("crun needs hugetlb off the v2 hierarchy on hybrid hosts");
    }
    let (program, helper) = programs();
    let (recorded, _) = record_compat32();
    // The runtime's own post-filter calls, as for any recorded profile.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&recorded).expect("profile")).expect("json");
    let mut names = names_of(&json["syscalls"][0]["names"]);
    names.extend(runtime.post_filter_base().iter().map(|s| s.to_string()));
    json["syscalls"][0]["names"] = serde_json::json!(names);
    let dir = tempfile::Builder::new().prefix("rt-compat-").tempdir_in("/tmp").expect("tempdir");
    let profile = dir.path().join("profile.json");
    std::fs::write(&profile, json.to_string()).expect("write");
    let rootfs = rootfs_with(&[program.as_path(), helper.as_path()], dir.path()).expect("rootfs");
    let containerd = Containerd::start(dir.path()).expect("private containerd");
    let full = ["/bin/compat32", "/bin/compat32_exec64"];
    let out = ctr_run(&containerd, &rootfs, Some(&profile), runtime, &full).expect("ctr run");
    assert_exit(&out, 0, &format!("compat32 in a {runtime:?} container under its profile"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("compat32: ok"));
    let out =
        ctr_run(&containerd, &rootfs, Some(&profile), runtime, &["/bin/compat32", "probe", "getrusage"]).expect("ctr");
    assert_exit(&out, 1, "an ia32 call the program never made");
}

#[test]
fn runs_in_a_runc_container() {
    in_container(Runtime::Runc);
}

#[test]
fn runs_in_a_crun_container() {
    in_container(Runtime::Crun);
}

#[test]
fn a_64_bit_profile_leaves_the_32_bit_abi_closed() {
    if skip_bpf_tests() {
        return;
    }
    let (program, _) = programs();
    let native_only = minimal_program(None, None);
    let profile = scratch_dir().join("native-only.json");
    let out =
        recorder(&["record", "-q", "-o", profile.to_str().expect("utf8"), "--", native_only.to_str().expect("utf8")]);
    assert_exit(&out, 0, "recording a 64-bit program");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).expect("read")).expect("json");
    assert_eq!(json["architectures"], serde_json::json!(["SCMP_ARCH_X86_64"]), "no ia32 without ia32 calls");
    // The 64-bit profile allows write and exit_group; ia32 versions of them
    // (and everything else on ia32) are refused outright: libseccomp's
    // bad-architecture action kills the thread with SIGSYS.
    let out = Command::new(recorder_bin())
        .args([
            "run",
            "--profile",
            profile.to_str().expect("utf8"),
            "--",
            program.to_str().expect("utf8"),
            "probe",
            "getuid",
        ])
        .output()
        .expect("recorder run");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "a 32-bit program under a 64-bit profile: {out:?}");
}

/// Whether this kernel has the x32 ABI (CONFIG_X86_X32_ABI): an x32
/// getpid returns a PID rather than ENOSYS.
fn kernel_has_x32() -> bool {
    const X32_GETPID: libc::c_long = 0x4000_0000 | 39;
    // SAFETY: getpid through the x32 syscall number: no arguments, no
    // memory; ENOSYS when the kernel lacks x32.
    unsafe { libc::syscall(X32_GETPID) > 0 }
}

#[test]
fn x32_calls_are_tagged_where_the_kernel_has_x32() {
    if skip_bpf_tests() {
        return;
    }
    if !kernel_has_x32() {
        eprintln!(
            "skipped: this kernel was built without CONFIG_X86_X32_ABI (an x32 getpid returns ENOSYS), so no x32 task can run"
        );
        return;
    }
    // An x32 getpid from a 64-bit program: recorded under SCMP_ARCH_X32.
    let program = minimal_program(Some(0x4000_0000 | 39), None);
    let summary = scratch_dir().join("x32-summary.json");
    let out = recorder(&[
        "record",
        "-q",
        "-o",
        "/dev/null",
        "--json-summary",
        summary.to_str().expect("utf8"),
        "--",
        program.to_str().expect("utf8"),
    ]);
    assert_exit(&out, 0, "recording an x32 call");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("read")).expect("json");
    assert!(names_of(&json["profiles"][0]["recorded_by_arch"]["SCMP_ARCH_X32"]).contains("getpid"), "{json}");
}

/// Two profiles checked in with known content, one per kernel family.
fn multiarch(name: &str) -> PathBuf {
    workspace_root().join("tests/data/multiarch").join(name)
}

#[test]
fn merging_amd64_and_arm64_keeps_both_families_and_says_what_differs() {
    let merged = scratch_dir().join("multiarch-merged.json");
    let out = recorder(&[
        "merge",
        multiarch("amd64.json").to_str().expect("utf8"),
        multiarch("arm64.json").to_str().expect("utf8"),
        "-o",
        merged.to_str().expect("utf8"),
    ]);
    assert_exit(&out, 0, "merge amd64 + arm64");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 kernel families"), "{stderr}");
    assert!(stderr.contains("SCMP_ARCH_X86_64 permits calls SCMP_ARCH_AARCH64 does not have"), "{stderr}");
    for only_amd64 in ["open", "dup2"] {
        assert!(stderr.contains(only_amd64), "{only_amd64} is named: {stderr}");
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&merged).expect("read")).expect("json");
    let arches = names_of(&json["architectures"]);
    assert!(arches.contains("SCMP_ARCH_X86_64") && arches.contains("SCMP_ARCH_AARCH64"), "{arches:?}");
    let allowed: BTreeSet<String> = json["syscalls"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
        .flat_map(|r| names_of(&r["names"]))
        .collect();
    for name in ["open", "openat", "dup2", "dup3", "read", "write"] {
        assert!(allowed.contains(name), "{name}");
    }
}

#[test]
fn diff_reports_per_architecture_when_they_differ() {
    let out = recorder(&[
        "diff",
        multiarch("amd64.json").to_str().expect("utf8"),
        "--against",
        multiarch("arm64.json").to_str().expect("utf8"),
        "--json",
    ]);
    assert_exit(&out, 0, "diff amd64 against arm64");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("diff --json");
    let only = &json["only_in_profile"];
    assert!(only.get("all").is_none(), "architectures differ, so no single answer: {only}");
    assert!(names_of(&only["SCMP_ARCH_X86_64"]).contains("open"), "{only}");
}
