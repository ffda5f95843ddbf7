//! `record --by-exe`: each call is attributed to the executable that made
//! it, across a thread, forks and exec'd children, checked against programs
//! with a known syscall set; `diff --by-exe` names the maker of a risky
//! call. The profile itself is the same as without `--by-exe`, and it is
//! enforced: the whole tree runs under it.
//!
//! Ground truth: `exe_launcher` (libc, a thread, fork, execv, waitpid)
//! starts two libc-free static programs (`syscall_probe.c`): `healthcheck`
//! makes exactly `unshare` and `exit_group`, `server` exactly `getcpu` and
//! `exit_group`. The `execve` that starts each of them is made by the
//! launcher's forked child, before the exec.

use std::{collections::BTreeSet, process::Command};

use recorder_tests::{allowed_names, assert_exit, compile, recorder, recorder_bin, scratch_dir, skip_bpf_tests};
use serde_json::Value;

fn names(value: &Value) -> BTreeSet<String> {
    value.as_array().expect("array").iter().map(|v| v.as_str().expect("name").to_owned()).collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn calls_are_attributed_to_the_executables_that_made_them() {
    if skip_bpf_tests() {
        return;
    }
    let static_flags = ["-static", "-nostdlib", "-O2"];
    let healthcheck = compile("syscall_probe.c", "healthcheck", &static_flags);
    let server = compile("syscall_probe.c", "server", &[&static_flags[..], &["-DNR=309"]].concat());
    let launcher = compile("exe_launcher.c", "exe_launcher", &["-O2", "-Wall", "-pthread"]);
    let (healthcheck, server, launcher) = (
        healthcheck.to_str().expect("utf8").to_owned(),
        server.to_str().expect("utf8").to_owned(),
        launcher.to_str().expect("utf8").to_owned(),
    );
    let profile = scratch_dir().join("by-exe-profile.json");
    let attribution = scratch_dir().join("by-exe.json");
    let out = recorder(&[
        "record",
        "-o",
        profile.to_str().expect("utf8"),
        "--by-exe",
        attribution.to_str().expect("utf8"),
        "--",
        &launcher,
        &healthcheck,
        &server,
    ]);
    assert_exit(&out, 0, "record --by-exe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("unshare: only {healthcheck}")), "risky call's maker on stderr: {stderr}");

    let file: Value = serde_json::from_str(&std::fs::read_to_string(&attribution).expect("read")).expect("json");
    assert_eq!(file["schema"], 1);
    let p = &file["profiles"][0];
    let exes = &p["executables"];
    assert_eq!(names(&exes[&healthcheck]["SCMP_ARCH_X86_64"]), set(&["unshare", "exit_group"]), "{file}");
    assert_eq!(names(&exes[&server]["SCMP_ARCH_X86_64"]), set(&["getcpu", "exit_group"]), "{file}");
    let launcher_calls = names(&exes[&launcher]["SCMP_ARCH_X86_64"]);
    for call in ["execve", "wait4", "exit_group"] {
        assert!(launcher_calls.contains(call), "the launcher made {call}: {launcher_calls:?}");
    }
    assert!(
        launcher_calls.contains("clone") || launcher_calls.contains("clone3"),
        "the launcher made a thread and forks: {launcher_calls:?}"
    );
    for call in ["unshare", "getcpu"] {
        assert!(!launcher_calls.contains(call), "{call} belongs to its program alone: {launcher_calls:?}");
    }
    assert_eq!(names(&p["syscalls"]["unshare"]), set(&[&healthcheck]));
    assert_eq!(names(&p["syscalls"]["getcpu"]), set(&[&server]));
    // Only the launcher's own start is from before an exec the recorder saw.
    let known: BTreeSet<String> = exes.as_object().expect("object").keys().cloned().collect();
    assert_eq!(known.len(), 4, "launcher, healthcheck, server and the command's first process: {known:?}");

    // Every call of every executable is in the profile, which runs the tree.
    let allowed = allowed_names(&profile);
    for (exe, by_arch) in exes.as_object().expect("object") {
        for call in names(&by_arch["SCMP_ARCH_X86_64"]) {
            assert!(allowed.contains(&call), "{call} of {exe} is in the profile");
        }
    }
    let out = Command::new(recorder_bin())
        .args(["run", "--profile", profile.to_str().expect("utf8"), "--", &launcher, &healthcheck, &server])
        .output()
        .expect("recorder run");
    assert_exit(&out, 0, "the tree under its profile");

    // diff names the maker next to the risky call.
    let out = recorder(&["diff", profile.to_str().expect("utf8"), "--by-exe", attribution.to_str().expect("utf8")]);
    assert_exit(&out, 0, "diff --by-exe");
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table.lines().find(|l| l.trim_start().starts_with("unshare ")).unwrap_or_default();
    assert!(line.ends_with(&format!("only {healthcheck}")), "diff's risky line: {table}");
    let out =
        recorder(&["diff", profile.to_str().expect("utf8"), "--json", "--by-exe", attribution.to_str().expect("utf8")]);
    assert_exit(&out, 0, "diff --json --by-exe");
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(names(&json["risky_made_by"]["unshare"]), set(&[&healthcheck]));
}

#[test]
fn diff_refuses_a_file_that_is_not_an_attribution() {
    let profile = scratch_dir().join("by-exe-bad-profile.json");
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}"#).expect("write");
    let out = recorder(&["diff", profile.to_str().expect("utf8"), "--by-exe", profile.to_str().expect("utf8")]);
    assert_exit(&out, 12, "diff --by-exe with a profile as the attribution");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a `record --by-exe` file"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}
