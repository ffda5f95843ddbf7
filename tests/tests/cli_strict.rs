//! A strict, honest command line (issue 17): every hostile case gets one
//! clear line and a documented exit code, nothing hangs, crashes or
//! silently ignores what the user asked for.

use std::{
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use recorder_tests::{
    assert_exit,
    containers::{CgroupDirs, Sleeper},
    one_line, recorder, recorder_bin, recorder_within, skip_bpf_tests,
};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("recorder-strict.").tempdir().expect("tempdir")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

const PROFILE: &str = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve","exit_group","read"],"action":"SCMP_ACT_ALLOW"}]}"#;

#[test]
fn a_missing_input_file_is_33_for_every_command() {
    let dir = tempdir();
    let missing = dir.path().join("missing.json");
    let cases: [&[&str]; 5] = [
        &["check", s(&missing)],
        &["diff", s(&missing)],
        &["convert", s(&missing)],
        &["merge", s(&missing)],
        &["run", "--profile", s(&missing), "--", "true"],
    ];
    for args in cases {
        let out = recorder(args);
        assert_exit(&out, 33, &format!("{args:?}"));
        // check lists problems on stdout, the others fail on stderr.
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("no such file or directory"), "{args:?}: {text}");
        assert!(!text.contains("os error"), "{args:?}: {text}");
    }
}

#[test]
fn a_fifo_without_a_writer_is_refused_at_once_not_waited_on() {
    let dir = tempdir();
    let fifo = dir.path().join("p.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    for args in [vec!["check", s(&fifo)], vec!["diff", s(&fifo)], vec!["convert", s(&fifo)]] {
        let out = recorder_within(&args, Duration::from_secs(30));
        assert_exit(&out, 33, &format!("{args:?}"));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("it is a FIFO"), "{text}");
    }
    let out = recorder_within(&["diff", s(dir.path())], Duration::from_secs(30));
    assert_exit(&out, 33, "diff DIR");
    assert!(one_line(&out).contains("it is a directory"));
}

#[test]
fn process_substitution_and_stdin_still_work() {
    let dir = tempdir();
    let p = write(dir.path(), "p.json", PROFILE);
    let script = format!("{} check <(cat {})", recorder_bin().display(), p.display());
    let out = Command::new("bash").args(["-c", &script]).output().expect("bash");
    assert_exit(&out, 0, "check <(cat p.json)");
    let out = Command::new(recorder_bin())
        .args(["check", "-"])
        .stdin(std::fs::File::open(&p).expect("open"))
        .output()
        .expect("runs");
    assert_exit(&out, 0, "check - < p.json");
    assert!(String::from_utf8_lossy(&out.stderr).contains("(OCI seccomp JSON; 0 errors, 0 warnings)"));
}

#[test]
fn check_counts_in_words() {
    let dir = tempdir();
    let p = write(
        dir.path(),
        "p.json",
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve","exit_group","opnat"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let out = recorder(&["check", s(&p)]);
    assert_exit(&out, 0, "a warning only");
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 errors, 1 warning)"), "{out:?}");
}

#[test]
fn a_low_open_file_limit_is_named_as_such() {
    if skip_bpf_tests() {
        return;
    }
    for limit in [4u64, 8, 16, 32] {
        let mut cmd = Command::new(recorder_bin());
        cmd.args(["record", "-q", "-o", "/dev/null", "--", "true"]);
        // SAFETY: setrlimit only, in the child before exec.
        unsafe {
            cmd.pre_exec(move || {
                let rl = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let out = cmd.output().expect("runs");
        assert_exit(&out, 27, &format!("ulimit -n {limit}"));
        let line = one_line(&out);
        assert!(line.contains(&format!("too many open files (limit {limit})")), "{line}");
        assert!(line.contains("ulimit -n"), "{line}");
    }
}

#[test]
fn zero_durations_follow_one_rule() {
    for zero in ["0", "0s", "0ms"] {
        let out = recorder(&["record", "--duration", zero, "--", "true"]);
        assert_exit(&out, 10, &format!("--duration {zero}"));
        assert!(one_line(&out).contains("must be longer than zero"));
    }
    if skip_bpf_tests() {
        return;
    }
    for zero in ["0", "0s"] {
        let out = recorder(&["record", "-q", "--grace", zero, "-o", "/dev/null", "--", "true"]);
        assert_exit(&out, 0, &format!("--grace {zero} means kill at once"));
    }
}

#[test]
fn profile_messages_are_the_users_words() {
    let dir = tempdir();
    let errno = write(
        dir.path(),
        "errno.json",
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":-1}]}"#,
    );
    let arch =
        write(dir.path(), "arch.json", r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X8664"]}"#);
    let cases = [
        (errno, "errnoRet is -1; errno values run from 0 to 4095", 12),
        (arch, "did you mean SCMP_ARCH_X86_64?", 12),
        (write(dir.path(), "dup.yaml", "a: 1\na: 2\n"), "duplicate key \"a\"", 12),
        (write(dir.path(), "rec.yaml", "a: &x\n  b: *x\n"), "refers to the anchor it is inside", 12),
        (write(dir.path(), "two.yaml", "a: 1\n---\nb: 2\n"), "more than one YAML document", 12),
        (write(dir.path(), "big.yaml", &format!("a:\n{}", "  - 0\n".repeat(200_001))), "more than 200000 values", 32),
    ];
    for (path, expected, code) in cases {
        let out = recorder(&["convert", s(&path)]);
        assert_exit(&out, code, expected);
        let line = one_line(&out);
        assert!(line.contains(expected), "{line}");
        for internal in ["budget", "Options", "Policy", "Nodes {", "weak recursion", "18446744073709551615"] {
            assert!(!line.contains(internal), "{line}");
        }
    }
}

#[test]
fn a_directory_output_suggests_a_file_inside_it() {
    let dir = tempdir();
    let p = write(dir.path(), "p.json", PROFILE);
    let sub = dir.path().join("pods");
    std::fs::create_dir(&sub).expect("mkdir");
    for typed in ["pods/", "pods//"] {
        let out = recorder(&["convert", s(&p), "-o", &format!("{}/{typed}", dir.path().display())]);
        assert_exit(&out, 11, typed);
        let line = one_line(&out);
        assert!(line.ends_with(&format!("-o {}/profile.json", sub.display())), "{line}");
    }
}

#[test]
fn diff_of_many_unknown_names_shows_a_few_warnings_and_finishes() {
    let dir = tempdir();
    let names: Vec<String> = (0..190_000).map(|i| format!("nosuch{i}")).collect();
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    });
    let p = write(dir.path(), "many.json", &profile.to_string());
    // Linearity itself is proven by counting work (algebra::diff's
    // diff_work_is_linear_in_the_names); this is the command end to end.
    let out = recorder_within(&["diff", s(&p), "--json"], Duration::from_secs(120));
    assert_exit(&out, 0, "diff of 190k unknown names");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 11, "ten warnings and where the rest are:\n{stderr}");
    assert!(stderr.contains("`recorder check"), "{stderr}");
}

#[test]
fn diff_lists_no_name_an_architecture_does_not_have() {
    let dir = tempdir();
    let p = write(
        dir.path(),
        "p.json",
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let out = recorder(&["diff", s(&p), "--json"]);
    assert_exit(&out, 0, "diff");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let x86_64 = v["only_in_base"]["SCMP_ARCH_X86_64"].as_array().expect("per arch");
    assert!(!x86_64.iter().any(|n| n == "_llseek"), "x86_64 has no _llseek");
    assert!(v["only_in_base"]["SCMP_ARCH_X86"].as_array().expect("ia32").iter().any(|n| n == "_llseek"));
}

#[test]
fn a_mistyped_flag_is_an_error_not_the_command() {
    let dir = tempdir();
    let p = write(dir.path(), "p.json", r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
    for args in [
        vec!["record", "--duraton", "5s", "--", "true"],
        vec!["record", "-q", "--duraton", "5s", "true"],
        vec!["run", "--profile", s(&p), "--lern", "--", "true"],
        vec!["run", "--profile", s(&p), "--lern", "true"],
    ] {
        let out = recorder(&args);
        assert_exit(&out, 2, &format!("{args:?}"));
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("unexpected argument '--"), "{args:?}: {text}");
        assert!(!text.contains("command not found"), "{args:?}: {text}");
    }
    let out = recorder(&["record", "--duraton", "5s", "--", "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("a similar argument exists: '--duration'"));
    // After the command's first word, everything is the command's.
    let out = recorder(&["run", "--profile", s(&p), "sh", "-c", "exit 4", "--lern"]);
    assert_exit(&out, 4, "flags after CMD belong to CMD");
    let out = recorder(&["run", "--profile", s(&p), "--", "ls", "-d", "/"]);
    assert_exit(&out, 0, "flags after -- belong to CMD");
}

#[test]
fn pod_only_flags_are_refused_with_other_targets() {
    let flags: [&[&str]; 8] = [
        &["--install"],
        &["--seccomp-root", "/tmp"],
        &["-n", "default"],
        &["--container", "web"],
        &["--wait-timeout", "1s"],
        &["--cgroup-parent", "kubepods"],
        &["--runtime-endpoint", "/run/containerd/containerd.sock"],
        &["--runtime", "runc"],
    ];
    let targets: [&[&str]; 4] =
        [&["--", "true"], &["--pid", "1"], &["--cgroup", "/sys/fs/cgroup"], &["--container-id", "0123456789ab"]];
    for flag in flags {
        for target in targets {
            // --runtime picks a container's base set: it goes with --container-id.
            if flag[0] == "--runtime" && target[0] == "--container-id" {
                continue;
            }
            let mut args = vec!["record", "-q", "-o", "/dev/null"];
            args.extend_from_slice(flag);
            args.extend_from_slice(target);
            let out = recorder(&args);
            assert_exit(&out, 2, &format!("{args:?}"));
            let text = String::from_utf8_lossy(&out.stderr);
            assert!(text.contains("cannot be used with") || text.contains("required arguments"), "{args:?}: {text}");
        }
    }
}

#[test]
fn record_help_says_where_pod_profiles_go() {
    let out = recorder(&["record", "--help"]);
    assert_exit(&out, 0, "record --help");
    let help = String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("`-` or no -o: stdout. With --pod: a directory"), "{help}");
    assert!(help.contains("(no -o: the current directory)"), "{help}");
}

/// Profiles under which nothing can start or end: refused before the
/// filter is loaded, with one line and exit 24, instead of a silent
/// SIGSEGV (139) or SIGSYS (159).
#[test]
fn run_refuses_a_profile_that_cannot_start_or_end_anything() {
    let dir = tempdir();
    let cases = [
        ("errno.json", r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#, "does not allow execve"),
        ("kill.json", r#"{"defaultAction":"SCMP_ACT_KILL"}"#, "does not allow execve"),
        (
            "no-execve.json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["execve"],"action":"SCMP_ACT_ERRNO"}]}"#,
            "does not allow execve",
        ),
        (
            "ia32-names.json",
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"syscalls":[{"names":["socketcall","_llseek"],"action":"SCMP_ACT_ALLOW"}]}"#,
            "does not allow execve",
        ),
        (
            "no-exit.json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["exit","exit_group"],"action":"SCMP_ACT_ERRNO"}]}"#,
            "allows neither exit_group nor exit",
        ),
        (
            "notify.json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","syscalls":[{"names":["mount"],"action":"SCMP_ACT_NOTIFY"}]}"#,
            "seccomp agent",
        ),
    ];
    for (name, text, expected) in cases {
        let p = write(dir.path(), name, text);
        let out = recorder(&["run", "--profile", s(&p), "--", "true"]);
        assert_exit(&out, 24, name);
        let line = one_line(&out);
        assert!(line.contains(expected), "{name}: {line}");
        // check says so too (a warning: the profile is well-formed).
        if name != "notify.json" {
            let out = recorder(&["check", "--strict", s(&p)]);
            assert_exit(&out, 31, name);
            assert!(String::from_utf8_lossy(&out.stdout).contains(expected), "{name}: {out:?}");
        }
    }
}

#[test]
fn run_applies_flags_and_says_what_it_ignores() {
    let dir = tempdir();
    let p = write(
        dir.path(),
        "flags.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],"listenerPath":"/run/agent.sock","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    let out = recorder(&["run", "--profile", s(&p), "--", "true"]);
    assert_exit(&out, 0, "a profile with flags");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is ignored"), "{stderr}");
    assert!(stderr.contains("listenerPath and listenerMetadata are ignored"), "{stderr}");
    assert!(!stderr.contains("SECCOMP_FILTER_FLAG_LOG"), "LOG is applied: {stderr}");
}

/// The cgroup v2 mount, from mountinfo.
fn cgroup2() -> PathBuf {
    recorder_tests::containers::cgroup2_mount().expect("mountinfo").expect("a cgroup2 mount")
}

/// `sleep 600` in a cgroup of the test's own named after `name`.
fn sleeper(name: &str) -> Sleeper {
    Sleeper::start_in(cgroup2().join(format!("recorder-strict-{}-{name}", std::process::id())))
}

#[test]
fn the_root_cgroup_and_kernel_threads_are_refused_with_exit_13() {
    if skip_bpf_tests() {
        return;
    }
    let out = recorder(&["record", "--pid", "2", "--duration", "1s"]);
    assert_exit(&out, 13, "--pid 2");
    assert!(one_line(&out).contains("PID 2 is a kernel thread (kthreadd)"));
    let root = cgroup2();
    let out = recorder(&["record", "--cgroup", s(&root), "--duration", "1s"]);
    assert_exit(&out, 13, "--cgroup <the v2 mount>");
    assert!(one_line(&out).contains("would record the whole machine; pass a cgroup below it"));
    // A process in the root cgroup (a shell on a hybrid host, init).
    let mut sleeper = sleeper("root");
    std::fs::write(root.join("cgroup.procs"), sleeper.child.id().to_string()).expect("move to the root cgroup");
    let out = recorder(&["record", "--pid", &sleeper.child.id().to_string(), "--duration", "1s"]);
    assert_exit(&out, 13, "--pid <in the root cgroup>");
    let line = one_line(&out);
    assert!(line.contains("(sleep) is in the root cgroup"), "{line}");
    let _ = sleeper.child.kill();
}

#[test]
fn an_empty_recording_and_a_missing_execve_are_said() {
    if skip_bpf_tests() {
        return;
    }
    let sleeper = sleeper("empty");
    let dir = tempdir();
    let profile = dir.path().join("p.json");
    let out = recorder(&["record", "--cgroup", s(&sleeper.dir), "--duration", "1s", "-o", s(&profile)]);
    assert_exit(&out, 0, "record a sleeping cgroup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("WARNING: no syscalls were recorded"), "{stderr}");
    assert!(stderr.contains("execve was not observed"), "{stderr}");
    assert!(stderr.contains("--add execve"), "{stderr}");
    // And --add does what it offers.
    let out =
        recorder(&["record", "--cgroup", s(&sleeper.dir), "--duration", "1s", "--add", "execve", "-o", s(&profile)]);
    assert_exit(&out, 0, "--add execve");
    assert!(recorder_tests::allowed_names(&profile).contains("execve"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("execve was not observed"));
    let out = recorder(&["record", "--cgroup", s(&sleeper.dir), "--duration", "1s", "--add", "execv"]);
    assert_exit(&out, 2, "--add of a name that is no syscall");
    assert!(one_line(&out).contains("did you mean execve?"));
}

#[test]
fn a_command_that_makes_its_own_sub_cgroup_leaves_nothing_behind() {
    if skip_bpf_tests() {
        return;
    }
    let mount = cgroup2();
    let script = format!(
        "cg={}$(sed -n 's/^0:://p' /proc/self/cgroup); mkdir \"$cg/sub\" && echo $$ > \"$cg/sub/cgroup.procs\" && mkdir \"$cg/sub/deeper\"",
        mount.display()
    );
    let child = Command::new(recorder_bin())
        .args(["record", "-o", "/dev/null", "--", "sh", "-c", &script])
        .stderr(Stdio::piped())
        .spawn()
        .expect("record");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    assert_exit(&out, 0, "a command that creates sub-cgroups");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("cannot remove") && !stderr.contains("busy"), "{stderr}");
    // recorder/ itself goes once empty (another recording may keep it).
    let left: Vec<String> = std::fs::read_dir(mount.join("recorder"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("rec-{pid}-")))
        .collect();
    assert!(left.is_empty(), "the rec-* tree is gone: {left:?}");
    let out = recorder(&["record", "-o", "/dev/null", "--", "true"]);
    assert_exit(&out, 0, "record true");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("from 1 process in"), "one process, in the singular: {stderr}");
}

#[test]
fn a_closed_stdout_is_refused_before_recording() {
    let mut cmd = Command::new(recorder_bin());
    cmd.args(["record", "--", "true"]).stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: close(2) only, in the child before exec: `record >&-`.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let out = cmd.output().expect("runs");
    assert_exit(&out, 11, "record >&-");
    assert!(one_line(&out).contains("standard output is closed"));
    // Writing to /dev/null on purpose still works.
    let dir = tempdir();
    let p = write(dir.path(), "p.json", PROFILE);
    let out = Command::new(recorder_bin()).args(["convert", s(&p)]).stdout(Stdio::null()).output().expect("runs");
    assert_exit(&out, 0, "convert > /dev/null");
}

#[test]
fn a_short_container_id_is_told_to_give_twelve_characters() {
    if skip_bpf_tests() {
        return;
    }
    let parent = cgroup2().join(format!("recorder-strict-{}-ids", std::process::id()));
    let id = format!("feed{:012x}", std::process::id()).repeat(4);
    let dirs = CgroupDirs(vec![parent.clone(), parent.join(format!("cri-containerd-{id}.scope"))]);
    for dir in &dirs.0 {
        std::fs::create_dir(dir).expect("mkdir cgroup");
    }
    let out = recorder(&["record", "--container-id", &id[..8], "--duration", "1s", "-o", "/dev/null"]);
    assert_exit(&out, 2, "an 8-character container id");
    let line = one_line(&out);
    assert!(line.contains("at least 12 characters"), "{line}");
    assert!(!line.contains("is it running?"), "{line}");
    // An id no container starts with is still "not found".
    let out = recorder(&["record", "--container-id", "0badc0de", "--duration", "1s", "-o", "/dev/null"]);
    assert_exit(&out, 13, "an 8-character id of no container");
    assert!(one_line(&out).contains("is it running?"));
}

#[test]
fn convert_to_oci_resolves_scmp_arch_native_and_check_strict_flags_it() {
    let dir = tempdir();
    let p = write(
        dir.path(),
        "common.json",
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_NATIVE"],"syscalls":[{"names":["execve","exit_group","read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let out = recorder(&["check", "--strict", s(&p)]);
    assert_ne!(out.status.code(), Some(0), "check --strict accepts SCMP_ARCH_NATIVE");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("runc refuses it"), "{said}");
    let converted = dir.path().join("oci.json");
    let out = recorder(&["convert", "--format", "oci", s(&p), "-o", s(&converted)]);
    assert_exit(&out, 0, "convert --format oci");
    assert!(String::from_utf8_lossy(&out.stderr).contains("SCMP_ARCH_NATIVE was resolved"), "{out:?}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&converted).expect("read")).expect("json");
    let native = match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        other => panic!("add {other} here"),
    };
    assert_eq!(json["architectures"], serde_json::json!([native]));
    let out = recorder(&["check", "--strict", s(&converted)]);
    assert_exit(&out, 0, "the converted profile is pure OCI");
}

/// The README's table of shipped base sets, and the base-set counts
/// docs/containers-harness.md gives, agree with recorder/data/baseline.
#[test]
fn the_documented_base_sets_are_the_shipped_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let harness = std::fs::read_to_string(root.join("docs/containers-harness.md")).expect("harness doc");
    for runtime in ["runc", "crun"] {
        let data = std::fs::read_to_string(root.join(format!("recorder/data/baseline/{runtime}.json"))).expect("data");
        let data: serde_json::Value = serde_json::from_str(&data).expect("json");
        let shipped: std::collections::BTreeSet<String> = data["syscalls"]
            .as_array()
            .expect("syscalls")
            .iter()
            .map(|n| n.as_str().expect("a name").to_owned())
            .collect();
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| {runtime} |")))
            .unwrap_or_else(|| panic!("README has no base-set row for {runtime}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | runtime | version | starts | base set |
        let documented: std::collections::BTreeSet<String> = cells[4].split_whitespace().map(str::to_owned).collect();
        assert_eq!(documented, shipped, "README's {runtime} base set");
        assert_eq!(cells[3], data["runs"].to_string(), "README's {runtime} starts");
        let count = format!("{} names for {runtime}", shipped.len());
        let count_alt = format!("{} for {runtime}", shipped.len());
        assert!(harness.contains(&count) || harness.contains(&count_alt), "containers-harness.md: {count}");
    }
}
