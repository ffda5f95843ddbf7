//! Where `-o` points decides how a result is written, and nothing the user
//! did not own is ever replaced (recorder once replaced the machine's
//! `/dev/null` with a regular file by renaming over it). Each rule, with the
//! real binary: a device, a FIFO, a symlink, `/dev/stdout`, a process
//! substitution, a directory, and two outputs naming one file. Also what a
//! `kill -9` of `record` leaves: no temporary file, no running command, and
//! the next recorder removes the orphaned cgroup.

use std::{
    os::unix::fs::FileTypeExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use recorder_tests::{assert_exit, recorder, recorder_bin, skip_bpf_tests};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("recorder-output.").tempdir().expect("tempdir")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A small profile on disk, for the commands that read one.
fn profile_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","write","exit_group","execve"],"action":"SCMP_ACT_ALLOW"}]}"#,
    )
    .expect("write profile");
    path
}

fn is_profile(text: &str) -> bool {
    text.contains("\"defaultAction\"") && text.contains("SCMP_ACT_ALLOW")
}

#[test]
fn record_to_dev_null_leaves_it_a_character_device() {
    if skip_bpf_tests() {
        return;
    }
    // In a private mount namespace with /dev/null bind-mounted onto itself: a
    // rename over it would fail there (EBUSY) instead of damaging the host,
    // should this ever regress.
    let script = format!(
        "mount --make-rprivate / && mount --bind /dev/null /dev/null && {} record -q -o /dev/null -- true && test -c /dev/null",
        recorder_bin().display()
    );
    let out = Command::new("unshare").args(["--mount", "sh", "-c", &script]).output().expect("unshare");
    assert_exit(&out, 0, "record -o /dev/null");
    assert!(std::fs::metadata("/dev/null").expect("stat").file_type().is_char_device());
    assert!(!entries(Path::new("/dev")).iter().any(|n| n.starts_with(".null.")), "a temporary file was left in /dev");
}

#[test]
fn a_character_device_is_written_in_place() {
    let dir = tempdir();
    let node = dir.path().join("null");
    let status = Command::new("mknod").args(["-m", "666"]).arg(&node).args(["c", "1", "3"]).status().expect("mknod");
    assert!(status.success(), "mknod needs root");
    let input = profile_file(dir.path(), "in.json");
    let out = recorder(&["convert", input.to_str().expect("utf8"), "-o", node.to_str().expect("utf8")]);
    assert_exit(&out, 0, "convert -o <char device>");
    assert!(std::fs::symlink_metadata(&node).expect("lstat").file_type().is_char_device(), "still a device");
    assert_eq!(entries(dir.path()), ["in.json", "null"], "nothing else was created");
}

#[test]
fn a_fifo_receives_the_profile_and_stays_a_fifo() {
    if skip_bpf_tests() {
        return;
    }
    let dir = tempdir();
    let fifo = dir.path().join("profile.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).expect("read fifo"))
    };
    let out = recorder(&["record", "-q", "-o", fifo.to_str().expect("utf8"), "--", "true"]);
    assert_exit(&out, 0, "record -o <fifo>");
    let text = reader.join().expect("reader");
    assert!(is_profile(&text), "the reader got the profile: {text}");
    assert!(std::fs::symlink_metadata(&fifo).expect("lstat").file_type().is_fifo(), "still a FIFO");
    assert_eq!(entries(dir.path()), ["profile.fifo"]);
}

#[test]
fn a_symlink_stays_and_its_target_gets_the_profile() {
    let dir = tempdir();
    let real = dir.path().join("store");
    std::fs::create_dir(&real).expect("mkdir");
    std::fs::write(real.join("app.json"), "old").expect("write");
    let link = dir.path().join("app.json");
    std::os::unix::fs::symlink("store/app.json", &link).expect("symlink");
    let a = profile_file(dir.path(), "a.json");
    let b = profile_file(dir.path(), "b.json");
    let out =
        recorder(&["merge", a.to_str().expect("utf8"), b.to_str().expect("utf8"), "-o", link.to_str().expect("utf8")]);
    assert_exit(&out, 0, "merge -o <symlink>");
    assert!(std::fs::symlink_metadata(&link).expect("lstat").file_type().is_symlink(), "still a symlink");
    assert!(is_profile(&std::fs::read_to_string(real.join("app.json")).expect("read")));
    assert_eq!(entries(&real), ["app.json"], "no temporary file left beside the target");
}

#[test]
fn dev_stdout_and_a_process_substitution_get_the_profile() {
    if skip_bpf_tests() {
        return;
    }
    let out = recorder(&["record", "-q", "-o", "/dev/stdout", "--", "true"]);
    assert_exit(&out, 0, "record -o /dev/stdout");
    assert!(is_profile(&String::from_utf8_lossy(&out.stdout)));

    let dir = tempdir();
    let sink = dir.path().join("through-a-pipe.json");
    let script = format!("{} record -q -o >(cat > {}) -- true", recorder_bin().display(), sink.display());
    let out = Command::new("bash").args(["-c", &script]).output().expect("bash");
    assert_exit(&out, 0, "record -o >(cat)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&sink).is_ok_and(|t| t.ends_with("}\n")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(is_profile(&std::fs::read_to_string(&sink).expect("read")));
}

#[test]
fn a_directory_is_refused_with_one_line_and_exit_11() {
    let dir = tempdir();
    let input = profile_file(dir.path(), "in.json");
    let out = recorder(&["convert", input.to_str().expect("utf8"), "-o", dir.path().to_str().expect("utf8")]);
    assert_exit(&out, 11, "convert -o <directory>");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is a directory"), "{stderr}");
}

#[test]
fn two_outputs_naming_one_file_are_refused() {
    let dir = tempdir();
    let a = profile_file(dir.path(), "a.json");
    let p = dir.path().join("p.json");
    let out = recorder(&[
        "merge",
        a.to_str().expect("utf8"),
        "-o",
        p.to_str().expect("utf8"),
        "--coverage",
        dir.path().join("./p.json").to_str().expect("utf8"),
    ]);
    assert_exit(&out, 11, "merge -o p.json --coverage p.json");
    assert!(!p.exists(), "nothing was written");
}

/// The recorder's own `rec-*` cgroups.
fn recording_cgroups() -> Vec<PathBuf> {
    let v2 = recorder_tests::containers::cgroup2_mount().expect("mountinfo").expect("cgroup v2");
    match std::fs::read_dir(v2.join("recorder")) {
        Ok(dir) => dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("rec-")))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn kill_9_leaves_no_temp_file_and_the_next_run_cleans_up() {
    if skip_bpf_tests() {
        return;
    }
    let dir = tempdir();
    let output = dir.path().join("p.json");
    let pids = dir.path().join("pids");
    // CMD writes its own PID and a double-forked daemon's, then waits.
    let script = format!("sh -c 'echo $$ > {p}.d; exec sleep 1000' & echo $$ > {p}; wait", p = pids.display());
    let mut rec = Command::new(recorder_bin())
        .args(["record", "-q", "-o", output.to_str().expect("utf8"), "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .spawn()
        .expect("record");
    let deadline = Instant::now() + Duration::from_secs(20);
    let read_pid = |p: &Path| std::fs::read_to_string(p).ok().and_then(|t| t.trim().parse::<i32>().ok());
    while (read_pid(&pids).is_none() || read_pid(&pids.with_extension("d")).is_none()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (cmd, daemon) = (read_pid(&pids).expect("CMD started"), read_pid(&pids.with_extension("d")).expect("daemon"));
    rec.kill().expect("kill -9");
    rec.wait().expect("reap");

    // The command dies with its recorder (parent-death signal).
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(cmd) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pid_alive(cmd), "CMD outlived its recorder");
    assert_eq!(entries(dir.path()), ["pids", "pids.d"], "no profile and no temporary file after kill -9");

    // The next recorder removes the orphaned cgroup and what runs in it.
    let out = recorder(&["record", "-q", "-o", "/dev/null", "--", "true"]);
    assert_exit(&out, 0, "the next record");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(daemon) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pid_alive(daemon), "the orphaned daemon was killed");
    let mine = format!("rec-{}-", rec.id());
    assert!(
        !recording_cgroups().iter().any(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&mine))),
        "the orphaned cgroup was removed: {:?}",
        recording_cgroups()
    );
}
