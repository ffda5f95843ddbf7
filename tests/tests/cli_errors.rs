//! Bad input and hostile environments: one-line errors, distinct exit codes,
//! and no output file left behind.

use std::process::Command;

use recorder_tests::{assert_exit, minimal_program, recorder, recorder_bin, scratch_dir, skip_bpf_tests};

fn stderr_line(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got:\n{text}");
    lines[0].to_owned()
}

#[test]
fn command_not_found_is_127_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let out_path = dir.path().join("p.json");
    let out = recorder(&["record", "-o", out_path.to_str().expect("utf8"), "--", "no-such-command-xyz"]);
    assert_exit(&out, 127, "missing command");
    assert!(stderr_line(&out).contains("no-such-command-xyz: command not found"));
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0, "nothing left behind");
}

#[test]
fn non_executable_command_is_126() {
    let f = scratch_dir().join("not-executable");
    std::fs::write(&f, "data").expect("write");
    let out = recorder(&["record", "--", f.to_str().expect("utf8")]);
    assert_exit(&out, 126, "non-executable command");
}

#[test]
fn malformed_duration_is_10() {
    let out = recorder(&["record", "--duration", "5 parsecs", "--", "true"]);
    assert_exit(&out, 10, "bad duration");
    assert!(stderr_line(&out).contains("malformed duration"));
}

#[test]
fn unwritable_output_is_11_before_recording() {
    let out = recorder(&["record", "-o", "/nonexistent-dir/p.json", "--", "true"]);
    assert_exit(&out, 11, "missing output directory");
    let out = recorder(&["record", "-o", "/proc/p.json", "--", "true"]);
    assert_exit(&out, 11, "read-only output directory");
    let out = recorder(&["record", "-o", "/tmp", "--", "true"]);
    assert_exit(&out, 11, "output is a directory");
    assert!(stderr_line(&out).contains("is a directory"));
}

#[test]
fn invalid_profile_json_is_12_with_line_and_column() {
    let p = scratch_dir().join("broken.json");
    std::fs::write(&p, "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [,]\n}\n").expect("write");
    let out = recorder(&["run", "--profile", p.to_str().expect("utf8"), "--", "true"]);
    assert_exit(&out, 12, "broken profile");
    let line = stderr_line(&out);
    assert!(line.contains("broken.json:3:16"), "{line}");
}

#[test]
fn unknown_cgroup_or_pid_is_13() {
    if skip_bpf_tests() {
        return;
    }
    let out = recorder(&["record", "--cgroup", "/nonexistent/cgroup", "--duration", "1s"]);
    assert_exit(&out, 13, "missing cgroup");
    let out = recorder(&["record", "--pid", "999999999", "--duration", "1s"]);
    assert_exit(&out, 13, "missing pid");
}

#[test]
fn not_root_is_20() {
    if skip_bpf_tests() {
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(recorder_bin())
        .args(["record", "--", "true"])
        .output()
        .expect("setpriv (util-linux) runs");
    assert_exit(&out, 20, "unprivileged recording");
    assert!(stderr_line(&out).contains("needs root"));
}

#[test]
fn no_cgroup_v2_is_21() {
    if skip_bpf_tests() {
        return;
    }
    // A private mount namespace where every cgroup2 mount is gone.
    let script = format!(
        "grep ' - cgroup2 ' /proc/self/mountinfo | cut -d' ' -f5 | sort -r | while read m; do umount -l \"$m\"; done; exec {} record -- true",
        recorder_bin().display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    assert_exit(&out, 21, "no cgroup v2");
    assert!(stderr_line(&out).contains("no cgroup v2"));
}

#[test]
fn no_btf_is_22() {
    if skip_bpf_tests() {
        return;
    }
    let script = format!("mount -t tmpfs none /sys/kernel/btf && exec {} record -- true", recorder_bin().display());
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    assert_exit(&out, 22, "no BTF");
    assert!(stderr_line(&out).contains("BTF"));
}

#[test]
fn exit_status_is_the_commands() {
    if skip_bpf_tests() {
        return;
    }
    let out = recorder(&["record", "-q", "-o", "/dev/null", "--", "sh", "-c", "exit 7"]);
    assert_exit(&out, 7, "command exit status");
    let prog = minimal_program(None, None);
    let out = recorder(&["record", "-q", "-o", "/dev/null", "--", prog.to_str().expect("utf8")]);
    assert_exit(&out, 0, "command exit status 0");
}
