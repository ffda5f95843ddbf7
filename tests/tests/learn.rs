//! Enforce and learn: the calls a profile denies are seen (a `sys_exit`
//! without a `sys_enter`), counted per process name, turned into a patch by
//! `recorder suggest`, and the patched profile lets the workload run —
//! enforced for real each time.

use std::{collections::BTreeSet, process::Command};

use recorder_tests::{
    allowed_names, assert_exit, compile, recorder, recorder_bin, scratch_dir, skip_bpf_tests, write_profile,
};

/// `getcpu` three times through syscall(2), then prints what it got.
const PROGRAM: &str = "learn_getcpu.c";

#[test]
fn denied_calls_are_counted_suggested_and_then_allowed() {
    if skip_bpf_tests() {
        return;
    }
    let program = compile(PROGRAM, "learn_getcpu", &["-O2", "-Wall"]);
    let recorded = scratch_dir().join("learn-recorded.json");
    let out =
        recorder(&["record", "-q", "-o", recorded.to_str().expect("utf8"), "--", program.to_str().expect("utf8")]);
    assert_exit(&out, 0, "recording");
    let mut names = allowed_names(&recorded);
    assert!(names.remove("getcpu"), "the recording has getcpu");
    let narrowed = scratch_dir().join("learn-narrowed.json");
    write_profile(&narrowed, &names);

    // Under the narrowed profile the program gets EPERM three times.
    let denied = scratch_dir().join("learn-denied.json");
    let out = Command::new(recorder_bin())
        .args([
            "run",
            "--profile",
            narrowed.to_str().expect("utf8"),
            "--learn",
            "-o",
            denied.to_str().expect("utf8"),
            "--",
        ])
        .arg(&program)
        .output()
        .expect("run --learn");
    assert_exit(&out, 0, "run --learn");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "getcpu: EPERM\ngetcpu: EPERM\ngetcpu: EPERM\n");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&denied).expect("read")).expect("json");
    // The report says which hook saw the denials: fexit where the kernel allows it, else
    // the sys_exit pairing with the reason fexit was refused.
    let hook = report["hook"].as_str().expect("hook");
    assert!(
        hook == "fexit on __secure_computing"
            || hook.starts_with("raw_syscalls:sys_exit without sys_enter (fexit on __secure_computing refused: "),
        "{hook}"
    );
    eprintln!("learn hook: {hook}");
    let list = report["denied"].as_array().expect("denied list");
    assert_eq!(list.len(), 1, "{report}");
    assert_eq!(list[0]["name"], "getcpu");
    assert_eq!(list[0]["count"], 3, "every denial is counted");
    assert_eq!(list[0]["process"], "learn_getcpu");
    assert_eq!(list[0]["arch"], "SCMP_ARCH_X86_64");

    // The patch adds exactly getcpu; the patched profile runs it.
    let patched = scratch_dir().join("learn-patched.json");
    let out = recorder(&[
        "suggest",
        narrowed.to_str().expect("utf8"),
        denied.to_str().expect("utf8"),
        "-o",
        patched.to_str().expect("utf8"),
    ]);
    assert_exit(&out, 0, "suggest");
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(diff.contains("+") && diff.contains("\"getcpu\""), "unified diff: {diff}");
    let mut expected: BTreeSet<String> = names.clone();
    expected.insert("getcpu".to_owned());
    assert_eq!(allowed_names(&patched), expected);
    let out = Command::new(recorder_bin())
        .args(["run", "--profile", patched.to_str().expect("utf8"), "--"])
        .arg(&program)
        .output()
        .expect("run");
    assert_exit(&out, 0, "under the patched profile");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "getcpu: ok\ngetcpu: ok\ngetcpu: ok\n");
}

#[test]
fn suggest_names_risky_additions() {
    let profile = scratch_dir().join("risky-base.json");
    write_profile(&profile, &BTreeSet::from(["read".to_owned(), "execve".to_owned()]));
    let denied = scratch_dir().join("risky-denied.json");
    std::fs::write(
        &denied,
        r#"{"denied": [{"arch": "SCMP_ARCH_X86_64", "name": "ptrace", "process": "dbg", "count": 1}]}"#,
    )
    .expect("write");
    let out = recorder(&["suggest", profile.to_str().expect("utf8"), denied.to_str().expect("utf8")]);
    assert_exit(&out, 0, "suggest");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ptrace, which is risky"), "{stderr}");
}
