//! The Debian package (`cargo xtask deb`): it installs with dpkg, the
//! installed binary runs and records, and it uninstalls and purges without
//! a trace. Needs root; fails rather than skips unless
//! RECORDER_SKIP_DEB_TESTS=1. Never replaces a recorder someone else
//! installed.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    thread::sleep,
    time::Duration,
};

use recorder_tests::workspace_root;

const INSTALLED: &str = "/usr/bin/recorder";

/// The package under test: RECORDER_DEB (`cargo xtask test` sets it), else
/// the newest target/debian/recorder_*.deb.
fn deb() -> PathBuf {
    if let Some(p) = std::env::var_os("RECORDER_DEB") {
        return PathBuf::from(p);
    }
    let dir = workspace_root().join("target/debian");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    debs.pop().unwrap_or_else(|| {
        panic!("no package in {}: run `cargo xtask deb` (or `cargo xtask test`), or set RECORDER_DEB", dir.display())
    })
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs a dpkg command, waiting while another dpkg or apt holds its lock
/// (other work on this machine may be installing packages).
fn dpkg(args: &[&str]) -> Output {
    for _ in 0..60 {
        let out = run(Command::new("dpkg").args(args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !stderr.contains("lock") {
            return out;
        }
        sleep(Duration::from_secs(2));
    }
    panic!("dpkg {args:?}: its lock stayed taken for two minutes");
}

fn package_installed() -> bool {
    let out = run(Command::new("dpkg-query").args(["-W", "-f", "${db:Status-Status}", "recorder"]));
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "installed"
}

fn package_known() -> bool {
    let out = run(Command::new("dpkg-query").args(["-W", "-f", "${db:Status-Status}", "recorder"]));
    out.status.success()
        && !String::from_utf8_lossy(&out.stdout).trim().is_empty()
        && String::from_utf8_lossy(&out.stdout).trim() != "not-installed"
}

/// Purges the package when the test ends, however it ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        if package_known() {
            let out = dpkg(&["--purge", "recorder"]);
            if !out.status.success() {
                eprintln!("could not purge the recorder package: {}", text(&out));
            }
        }
    }
}

#[test]
fn the_package_installs_runs_and_uninstalls_cleanly() {
    if std::env::var("RECORDER_SKIP_DEB_TESTS").as_deref() == Ok("1") {
        eprintln!("RECORDER_SKIP_DEB_TESTS=1: skipping the package install test");
        return;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "installing a package needs root (or set RECORDER_SKIP_DEB_TESTS=1 to skip)");
    let deb = deb();
    assert!(deb.exists(), "{} does not exist: run `cargo xtask deb`", deb.display());

    // Never replace what someone else installed.
    assert!(
        !package_known(),
        "a recorder package is already on this machine (dpkg -l recorder); this test will not replace it. \
         Remove it (dpkg --purge recorder) if it was left by an earlier run"
    );
    assert!(
        !Path::new(INSTALLED).exists(),
        "{INSTALLED} exists and is not from the recorder package; this test will not overwrite it"
    );

    let listing = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    assert!(listing.status.success(), "dpkg-deb --contents: {}", text(&listing));
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    // "./usr/bin/recorder" -> "/usr/bin/recorder"; directories end in '/'.
    let payload: Vec<String> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|p| !p.ends_with('/'))
        .map(|p| p.trim_start_matches('.').to_owned())
        .collect();
    for expected in [
        INSTALLED,
        "/usr/share/man/man1/recorder.1.gz",
        "/usr/share/man/man1/recorder-record.1.gz",
        "/usr/share/man/man1/recorder-explain.1.gz",
        "/usr/share/bash-completion/completions/recorder",
        "/usr/share/zsh/vendor-completions/_recorder",
        "/usr/share/fish/vendor_completions.d/recorder.fish",
        "/usr/share/recorder/baseline/runc.json",
        "/usr/share/recorder/baseline/crun.json",
        "/usr/share/recorder/shutdown/nginx.json",
        "/usr/share/doc/recorder/copyright",
        "/usr/share/doc/recorder/README.md",
    ] {
        assert!(payload.iter().any(|p| p == expected), "the package lacks {expected}:\n{listing}");
    }
    if workspace_root().join("deploy/kubernetes").is_dir() {
        assert!(payload.iter().any(|p| p.starts_with("/usr/share/doc/recorder/examples/kubernetes/")));
    }

    let _purge = Purge;
    let out = dpkg(&["--install", deb.to_str().expect("utf8")]);
    assert!(out.status.success(), "dpkg --install: {}", text(&out));
    assert!(package_installed());
    let verify = dpkg(&["--verify", "recorder"]);
    assert!(verify.status.success() && verify.stdout.is_empty(), "dpkg --verify: {}", text(&verify));

    let version = run(Command::new(INSTALLED).arg("--version"));
    assert!(version.status.success(), "{}", text(&version));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("recorder "), "{}", text(&version));

    let dir = tempfile::tempdir().expect("tmp");
    let profile = dir.path().join("p.json");
    let out = run(Command::new(INSTALLED).args(["record", "-q", "-o"]).arg(&profile).args(["--", "true"]));
    assert!(out.status.success(), "recording with the installed binary: {}", text(&out));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).expect("profile")).expect("profile is JSON");
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");

    // The man page is found by man, the bash completion loads.
    let man = run(Command::new("man").args(["-w", "recorder-record"]));
    assert!(man.status.success(), "man -w recorder-record: {}", text(&man));
    let bash = run(Command::new("bash")
        .args(["-c", "source /usr/share/bash-completion/completions/recorder && complete -p recorder"]));
    assert!(bash.status.success(), "bash completion: {}", text(&bash));

    let out = dpkg(&["--remove", "recorder"]);
    assert!(out.status.success(), "dpkg --remove: {}", text(&out));
    assert!(!Path::new(INSTALLED).exists(), "{INSTALLED} is gone after dpkg --remove");
    let out = dpkg(&["--purge", "recorder"]);
    assert!(out.status.success(), "dpkg --purge: {}", text(&out));
    assert!(!package_known(), "dpkg no longer knows the package");
    let left: Vec<&String> = payload.iter().filter(|p| Path::new(p.as_str()).exists()).collect();
    assert!(left.is_empty(), "files left after purge: {left:?}");
    for dir in ["/usr/share/recorder", "/usr/share/doc/recorder"] {
        assert!(!Path::new(dir).exists(), "{dir} is gone after purge");
    }
}
