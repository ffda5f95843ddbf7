//! Profile algebra end to end: a merged profile, really applied with
//! libseccomp, lets both inputs' workloads run and still blocks the rest; and
//! the subcommands' files and exit codes.
//!
//! The enforcement tests compile small C workloads with gcc and need a kernel
//! with seccomp filters; they fail with a clear message when they cannot run.
#![expect(clippy::expect_used, reason = "test helpers may panic: a failed step is a failed test")]

use std::{
    collections::BTreeSet,
    io::{Read as _, Seek as _},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use clap::Parser as _;
use recorder::{
    algebra::merge::merge,
    cli::{Cli, dispatch, exit::Code},
    enforce::build_filter,
    profile::{self, EvalContext, Profile, runtime_default::RuntimeDefault},
    syscalls::Family,
};

/// Syscalls the workloads use on purpose. Each profile below allows a
/// different part of them; `getsid` is in none.
const ONLY_A: [&str; 2] = ["getppid", "times"];
const ONLY_B: [&str; 2] = ["getpgrp", "umask"];
const IN_NONE: &str = "getsid";

const WORKLOAD_A: &str = r#"
#include <sys/syscall.h>
#include <sys/times.h>
#include <unistd.h>
int main(void) {
    struct tms t;
    if (syscall(SYS_getppid) < 0) return 10;
    if (syscall(SYS_times, &t) == -1) return 11;
    return 0;
}
"#;

const WORKLOAD_B: &str = r#"
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    if (syscall(SYS_getpgrp) < 0) return 20;
    if (syscall(SYS_umask, 022) < 0) return 21;
    return 0;
}
"#;

/// Exits 0 when getsid fails with EPERM, as a profile without it must make it.
const PROBE: &str = r#"
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    long r = syscall(SYS_getsid, 0);
    if (r == -1 && errno == EPERM) return 0;
    return r == -1 ? 2 : 1;
}
"#;

fn compile(dir: &Path, name: &str, source: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&c, source).expect("write C source");
    let out =
        Command::new("gcc").arg("-O1").arg("-o").arg(&exe).arg(&c).output().unwrap_or_else(|e| {
            panic!("cannot run gcc ({e}); the enforcement test compiles its workloads, install gcc")
        });
    assert!(out.status.success(), "gcc failed: {}", String::from_utf8_lossy(&out.stderr));
    exe
}

/// What a dynamically linked C program needs to start and exit, taken from
/// runtime/default (so it covers every libc's start-up), minus the syscalls
/// the test is about.
fn startup_names() -> BTreeSet<String> {
    let p = RuntimeDefault::Moby.template().expect("built-in").evaluate(&EvalContext::host());
    let mut names: BTreeSet<String> = p.allowed_names().into_iter().map(str::to_owned).collect();
    for n in ONLY_A.iter().chain(&ONLY_B).chain(&[IN_NONE]) {
        names.remove(*n);
    }
    names
}

fn profile_with(extra: &[&str]) -> Profile {
    let mut names = startup_names();
    names.extend(extra.iter().map(|n| (*n).to_owned()));
    Profile::allow_list(Family::host(), names)
}

/// libseccomp's BPF for `p`, exported the way runc does (patchbpf), so the
/// child only has to make two prctl calls between fork and exec.
fn bpf_of(p: &Profile) -> Vec<libc::sock_filter> {
    let (ctx, skipped) = build_filter(p).expect("libseccomp accepts the profile");
    assert!(skipped.unknown_names.len() < 20, "too many unknown names: {:?}", skipped.unknown_names);
    let mut file = tempfile::tempfile().expect("tempfile");
    ctx.export_bpf(&file).expect("export BPF");
    file.rewind().expect("rewind");
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).expect("read BPF");
    let size = std::mem::size_of::<libc::sock_filter>();
    assert_eq!(bytes.len() % size, 0);
    bytes
        .chunks_exact(size)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

/// Runs `exe` under `p` and returns its exit code.
fn run_under(p: &Profile, exe: &Path) -> i32 {
    let filter = bpf_of(p);
    let mut cmd = Command::new(exe);
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes two prctl calls (async-signal-safe); `filter` was built before
    // the fork and is only read.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const libc::sock_fprog) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot start {} under seccomp: {e}", exe.display()));
    status.code().unwrap_or_else(|| panic!("{} was killed: {status}", exe.display()))
}

#[test]
fn merged_profile_runs_both_workloads_and_blocks_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_exe = compile(dir.path(), "workload_a", WORKLOAD_A);
    let b_exe = compile(dir.path(), "workload_b", WORKLOAD_B);
    let probe = compile(dir.path(), "probe", PROBE);

    let a = profile_with(&ONLY_A);
    let b = profile_with(&ONLY_B);

    // The inputs really differ: each runs its own workload and not the other's.
    assert_eq!(run_under(&a, &a_exe), 0, "workload A under profile A");
    assert_eq!(run_under(&b, &b_exe), 0, "workload B under profile B");
    assert_eq!(run_under(&a, &b_exe), 20, "workload B must fail under profile A (getpgrp blocked)");
    assert_eq!(run_under(&b, &a_exe), 10, "workload A must fail under profile B (getppid blocked)");

    // Through the files, as a user would: write, merge, read back.
    let a_path = dir.path().join("a.json");
    let b_path = dir.path().join("b.json");
    std::fs::write(&a_path, a.to_oci_json()).expect("write a");
    std::fs::write(&b_path, b.to_oci_json()).expect("write b");
    let inputs =
        [profile::read_file(&a_path).expect("read a").profile, profile::read_file(&b_path).expect("read b").profile];
    let merged = merge(&inputs).expect("merge").profile.with_enosys_clone3();

    assert_eq!(run_under(&merged, &a_exe), 0, "workload A under the merged profile");
    assert_eq!(run_under(&merged, &b_exe), 0, "workload B under the merged profile");
    assert_eq!(run_under(&merged, &probe), 0, "getsid is in no input, so it must fail with EPERM");
}

fn cli(args: &[&str]) -> u8 {
    let mut argv = vec!["recorder"];
    argv.extend_from_slice(args);
    match dispatch(Cli::parse_from(argv)) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("recorder: error: {failure}");
            failure.code.as_u8()
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

#[test]
fn merge_writes_profile_and_coverage_atomically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(&a, Profile::allow_list(Family::host(), ["read", "write"]).to_oci_json()).expect("a");
    std::fs::write(&b, Profile::allow_list(Family::host(), ["read", "openat"]).to_oci_json()).expect("b");
    let out = dir.path().join("app.json");
    let cov = dir.path().join("app.coverage.json");
    let code = cli(&["merge", path_str(&a), path_str(&b), "-o", path_str(&out), "--coverage", path_str(&cov)]);
    assert_eq!(code, 0);
    let merged = profile::read_file(&out).expect("merged reads").profile;
    assert_eq!(merged.allowed_names().into_iter().collect::<Vec<_>>(), ["openat", "read", "write"]);
    // clone3 is not allowed, so the ENOSYS rule is there.
    assert!(merged.syscalls.iter().any(|r| r.names == ["clone3"] && r.errno_ret == Some(38)));
    let coverage: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cov).expect("cov")).expect("json");
    assert_eq!(coverage["inputs"], 2);
    assert_eq!(coverage["syscalls"]["read"], 2);
    assert_eq!(coverage["syscalls"]["openat"], 1);
    // Same inputs, same bytes.
    let again = dir.path().join("again.json");
    assert_eq!(cli(&["merge", path_str(&b), path_str(&a), "-o", path_str(&again)]), 0);
    assert_eq!(std::fs::read(&out).expect("out"), std::fs::read(&again).expect("again"));
    // No temporary files left behind.
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).expect("ls").filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert!(names.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")), "{names:?}");

    // SPO output carries coverage in an annotation.
    let spo = dir.path().join("my-app.yaml");
    assert_eq!(cli(&["merge", path_str(&a), path_str(&b), "--format", "spo", "-o", path_str(&spo)]), 0);
    let loaded = profile::read_file(&spo).expect("spo reads");
    assert_eq!(loaded.name.as_deref(), Some("my-app"));
    let ann = loaded.annotations.get("spo.x-k8s.io/syscall-coverage").expect("annotation");
    assert!(ann.contains("\"read\":2"), "{ann}");
}

#[test]
fn exit_codes_are_distinct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let approved = dir.path().join("approved.json");
    let new = dir.path().join("new.json");
    std::fs::write(&approved, Profile::allow_list(Family::host(), ["read"]).to_oci_json()).expect("w");
    std::fs::write(&new, Profile::allow_list(Family::host(), ["read", "ptrace"]).to_oci_json()).expect("w");
    let (ap, np) = (path_str(&approved), path_str(&new));

    assert_eq!(cli(&["diff", np, "--against", ap]), Code::Ok.as_u8());
    assert_eq!(cli(&["diff", np, "--against", ap, "--fail-on-added"]), Code::Drift.as_u8());
    assert_eq!(cli(&["diff", ap, "--against", np, "--fail-on-added"]), Code::Ok.as_u8());
    assert_eq!(cli(&["diff", ap, "--against", np, "--fail-on-removed"]), Code::Drift.as_u8());
    assert_eq!(cli(&["diff", np, "--json"]), Code::Ok.as_u8());
    assert_eq!(cli(&["diff", np, "--against", "runtime/default:containerd"]), Code::Ok.as_u8());

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"defaultAction\": \"SCMP_ACT_NOPE\", \"syscalls\": [{\"names\": []}]}").expect("w");
    assert_eq!(cli(&["check", ap, np]), Code::Ok.as_u8());
    assert_eq!(cli(&["check", path_str(&bad)]), Code::CheckFailed.as_u8());
    assert_eq!(cli(&["convert", path_str(&bad)]), Code::BadProfile.as_u8());
    assert_eq!(cli(&["diff", path_str(&bad)]), Code::BadProfile.as_u8());

    let typo = dir.path().join("typo.json");
    std::fs::write(&typo, "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"opnat\"], \"action\": \"SCMP_ACT_ALLOW\"}]}")
        .expect("w");
    assert_eq!(cli(&["check", path_str(&typo)]), Code::Ok.as_u8(), "unknown names are warnings");
    assert_eq!(cli(&["check", "--strict", path_str(&typo)]), Code::CheckFailed.as_u8());

    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge).and_then(|f| f.set_len(1 << 30)).expect("sparse file");
    assert_eq!(cli(&["check", path_str(&huge)]), Code::InputTooLarge.as_u8());
    assert_eq!(cli(&["merge", path_str(&huge), ap]), Code::InputTooLarge.as_u8());
    let deep = dir.path().join("deep.json");
    std::fs::write(&deep, "[".repeat(100_000)).expect("w");
    assert_eq!(cli(&["convert", path_str(&deep)]), Code::InputTooLarge.as_u8());

    assert_eq!(cli(&["convert", ap, "-o", "/nonexistent-dir/x.json"]), Code::OutputUnwritable.as_u8());
    assert_eq!(cli(&["convert", ap, "--format", "spo", "--name", "Not_Valid"]), Code::BadProfile.as_u8());
    assert_eq!(cli(&["diff", ap, "--cap", "SYS_NOPE"]), Code::Usage.as_u8());
}

#[test]
fn convert_round_trips_through_every_dialect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("app.json");
    let original = Profile::allow_list(Family::host(), ["read", "write", "clone3"]);
    std::fs::write(&src, original.to_oci_json()).expect("w");
    for format in ["oci", "moby", "spo"] {
        let out = dir.path().join(format!("out.{format}"));
        assert_eq!(cli(&["convert", path_str(&src), "--format", format, "--name", "app", "-o", path_str(&out)]), 0);
        let back = dir.path().join(format!("back.{format}.json"));
        assert_eq!(cli(&["convert", path_str(&out), "-o", path_str(&back)]), 0, "{format}");
        let p = profile::read_file(&back).expect("reads").profile;
        assert_eq!(p.allowed_names(), original.allowed_names(), "{format}");
    }
    let snippet = dir.path().join("snippet.yaml");
    assert_eq!(
        cli(&["convert", path_str(&src), "--format", "k8s-snippet", "--name", "app", "-o", path_str(&snippet)]),
        0
    );
    let text = std::fs::read_to_string(&snippet).expect("snippet");
    assert!(text.contains("type: Localhost") && text.contains("localhostProfile: profiles/app.json"), "{text}");
}
