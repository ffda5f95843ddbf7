//! `recorder record` without root: a non-root user (nobody, uid 65534)
//! with CAP_BPF and CAP_PERFMON as ambient capabilities (`setpriv`), in a
//! cgroup delegated to them (owned, with its cgroup.procs, as systemd's
//! `Delegate=yes` does), records a command. With either capability
//! missing, or outside a delegated cgroup, it fails with one line that says
//! which. The recorded command does not inherit the capabilities.

use std::{
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Command, Output},
};

use recorder_tests::{
    allowed_names, assert_exit, containers::cgroup2_mount, minimal_program, recorder_bin, skip_bpf_tests,
};

const NOBODY: u32 = 65534;

/// A cgroup delegated to `NOBODY` (removed, with what the recorder left
/// below it, when dropped), and a directory they own.
struct Delegated {
    cgroup: PathBuf,
    home: tempfile::TempDir,
}

impl Delegated {
    fn new() -> Delegated {
        let v2 = cgroup2_mount().expect("mountinfo").expect("a cgroup v2 hierarchy");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cgroup = v2.join(format!("recorder-test-delegated-{}-{n}", std::process::id()));
        std::fs::create_dir(&cgroup).expect("creating the delegated cgroup");
        // What a delegation hands over (cgroup-v2.rst, "Delegation
        // Containment"): the directory and these three files.
        for path in [
            cgroup.clone(),
            cgroup.join("cgroup.procs"),
            cgroup.join("cgroup.threads"),
            cgroup.join("cgroup.subtree_control"),
        ] {
            std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).expect("chown");
        }
        let home = tempfile::tempdir_in("/tmp").expect("tempdir");
        std::os::unix::fs::chown(home.path(), Some(NOBODY), Some(NOBODY)).expect("chown home");
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Delegated { cgroup, home }
    }

    /// A copy of `program` the user can run.
    fn program(&self, program: &Path) -> PathBuf {
        let copy = self.home.path().join(program.file_name().expect("name"));
        std::fs::copy(program, &copy).expect("copy");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        copy
    }

    /// `recorder record -o OUT -- PROGRAM` as nobody with `caps` ambient,
    /// started inside `cgroup` (the delegated one, or any other).
    fn record(&self, caps: &str, cgroup: &Path, program: &Path, out: &Path) -> Output {
        let procs = cgroup.join("cgroup.procs");
        let caps = if caps.is_empty() { "-all".to_owned() } else { format!("-all,{caps}") };
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(format!("--inh-caps={caps}"))
            .arg(format!("--ambient-caps={caps}"))
            .arg("--")
            .arg(recorder_bin())
            .args(["record", "-q", "-o"])
            .arg(out)
            .arg("--")
            .arg(program)
            .current_dir(self.home.path());
        let procs = std::ffi::CString::new(procs.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: the closure runs in the forked child before exec and only
        // open(2)s and write(2)s, which are async-signal-safe; the path is
        // built before the fork.
        unsafe {
            cmd.pre_exec(move || {
                // As root, before setpriv drops it: into the cgroup.
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
        cmd.output().expect("setpriv runs")
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // Depth-first: the recorder's recorder/ (its rec-* are gone).
        let nested = self.cgroup.join("recorder");
        if let Ok(entries) = std::fs::read_dir(&nested) {
            for e in entries.flatten().filter(|e| e.path().is_dir()) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
        let _ = std::fs::remove_dir(&nested);
        let _ = std::fs::remove_dir(&self.cgroup);
    }
}

fn one_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr}");
    lines[0].to_owned()
}

#[test]
fn a_user_with_cap_bpf_and_cap_perfmon_records_in_a_delegated_cgroup() {
    if skip_bpf_tests() {
        return;
    }
    let delegated = Delegated::new();
    let program = delegated.program(&minimal_program(None, None));
    let out_file = delegated.home.path().join("minimal.json");
    let out = delegated.record("+bpf,+perfmon", &delegated.cgroup, &program, &out_file);
    assert_exit(&out, 0, "record as nobody with CAP_BPF and CAP_PERFMON");
    let names = allowed_names(&out_file);
    for call in ["execve", "write", "exit_group"] {
        assert!(names.contains(call), "{call} recorded: {names:?}");
    }
    let meta = std::fs::metadata(&out_file).expect("profile");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), NOBODY, "written by the user");
    // The rec-* cgroup went below the delegated one (nobody may not write
    // the shared one), and it is gone, with the recorder/ it made there.
    let nested = delegated.cgroup.join("recorder");
    assert!(!nested.exists(), "the recorder/ below the delegated cgroup is removed once empty");
}

#[test]
fn the_command_does_not_inherit_the_capabilities() {
    if skip_bpf_tests() {
        return;
    }
    let delegated = Delegated::new();
    let script = delegated.home.path().join("caps.sh");
    std::fs::write(&script, "#!/bin/sh\ngrep -E '^Cap(Eff|Amb):' /proc/self/status\n").expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out_file = delegated.home.path().join("caps.json");
    let out = delegated.record("+bpf,+perfmon", &delegated.cgroup, &script, &out_file);
    assert_exit(&out, 0, "record the capability check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("CapEff:\t0000000000000000"), "{stdout}");
    assert!(stdout.contains("CapAmb:\t0000000000000000"), "{stdout}");
}

#[test]
fn each_missing_capability_is_named() {
    if skip_bpf_tests() {
        return;
    }
    let delegated = Delegated::new();
    let program = delegated.program(&minimal_program(None, None));
    for (caps, missing) in [("+bpf", "CAP_PERFMON"), ("+perfmon", "CAP_BPF"), ("", "CAP_BPF and CAP_PERFMON")] {
        let out_file = delegated.home.path().join("never.json");
        let out = delegated.record(caps, &delegated.cgroup, &program, &out_file);
        assert_exit(&out, 20, &format!("record with ambient capabilities {caps:?}"));
        let line = one_line(&out);
        assert!(line.contains(&format!("lacks {missing}")) && line.contains("needs root"), "{line}");
        assert!(!out_file.exists());
    }
}

#[test]
fn outside_a_delegated_cgroup_the_error_says_so() {
    if skip_bpf_tests() {
        return;
    }
    let delegated = Delegated::new();
    let program = delegated.program(&minimal_program(None, None));
    // A cgroup of root's: the user may neither create beside it nor move
    // the command out of it.
    let foreign = delegated.cgroup.with_file_name(format!("recorder-test-foreign-{}", std::process::id()));
    std::fs::create_dir(&foreign).expect("mkdir");
    let out_file = delegated.home.path().join("never.json");
    let out = delegated.record("+bpf,+perfmon", &foreign, &program, &out_file);
    let _ = std::fs::remove_dir(&foreign);
    assert_exit(&out, 20, "record outside a delegated cgroup");
    let line = one_line(&out);
    assert!(line.contains("delegated to you"), "{line}");
}
