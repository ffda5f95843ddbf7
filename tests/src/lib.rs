//! Shared harness for the integration tests: find the recorder binary,
//! compile the C test programs, read profiles, decide whether BPF tests run.
//!
//! Tests that need root and BPF fail when they cannot run. They skip only
//! when `RECORDER_SKIP_BPF_TESTS=1` asks for it explicitly.

pub mod containers;
pub mod cri;
pub mod daemon;
pub mod deploy;
pub mod examples;
pub mod ground_truth;
pub mod runtime_base;
pub mod servers;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
    time::Duration,
};

/// The workspace root (tests/ is one level down).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The `recorder` binary under test: `RECORDER_BIN`, else the release build,
/// else the debug build. `cargo xtask test` sets `RECORDER_BIN`.
pub fn recorder_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("RECORDER_BIN") {
        return PathBuf::from(bin);
    }
    let root = workspace_root();
    for profile in ["release", "debug"] {
        let bin = root.join("target").join(profile).join("recorder");
        if bin.exists() {
            return bin;
        }
    }
    panic!("no recorder binary: run `cargo build --release` or `cargo xtask test`, or set RECORDER_BIN");
}

/// True when the caller asked to skip BPF tests. Otherwise asserts that we
/// can run them (root), so a test never passes silently without BPF.
pub fn skip_bpf_tests() -> bool {
    if std::env::var("RECORDER_SKIP_BPF_TESTS").as_deref() == Ok("1") {
        eprintln!("RECORDER_SKIP_BPF_TESTS=1: skipping a test that needs root and BPF");
        return true;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root and BPF; run it as root (or set RECORDER_SKIP_BPF_TESTS=1 to skip)");
    false
}

/// A directory for this test binary's build products and scratch files,
/// removed when the test binary exits (a static is never dropped, so an
/// `atexit` handler removes it; the test harness ends with `exit`, also
/// after failures).
pub fn scratch_dir() -> &'static Path {
    SCRATCH.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("recorder-tests.").tempdir().expect("tempdir").keep();
        // SAFETY: registers a plain `extern "C"` function with no arguments;
        // it only reads the OnceLock, which is set before this call returns.
        unsafe { libc::atexit(remove_scratch_dir) };
        dir
    })
}

static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_scratch_dir() {
    if let Some(dir) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Compiles tests/programs/`source` with gcc and `flags` into `name`.
pub fn compile(source: &str, name: &str, flags: &[&str]) -> PathBuf {
    let src = workspace_root().join("tests/programs").join(source);
    let out = scratch_dir().join(name);
    let status = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc must be installed (cargo xtask setup installs it)");
    assert!(status.success(), "compiling {} failed", src.display());
    out
}

/// The ground-truth program (see tests/programs/ground_truth.c).
pub fn ground_truth_program() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile("ground_truth.c", "ground_truth", &["-O2", "-Wall", "-pthread"])).clone()
}

/// A libc-free static program that makes `write` and `exit_group`, plus
/// syscall `extra` and a nanosleep of `sleep_ms` if given.
pub fn minimal_program(extra: Option<u32>, sleep_ms: Option<u32>) -> PathBuf {
    let mut flags = vec!["-static".to_owned(), "-nostdlib".to_owned(), "-O2".to_owned()];
    let mut name = "minimal".to_owned();
    if let Some(nr) = extra {
        flags.push(format!("-DEXTRA={nr}"));
        name.push_str(&format!("-x{nr}"));
    }
    if let Some(ms) = sleep_ms {
        flags.push(format!("-DSLEEP_MS={ms}"));
        name.push_str(&format!("-s{ms}"));
    }
    let out = scratch_dir().join(&name);
    if !out.exists() {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        compile("minimal.c", &name, &flags);
    }
    out
}

/// Runs `recorder ARGS` and returns its output.
pub fn recorder(args: &[&str]) -> Output {
    Command::new(recorder_bin()).args(args).output().expect("recorder runs")
}

/// The one line on stderr (panics when there are more, or none).
pub fn one_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got:\n{text}");
    lines[0].to_owned()
}

/// Runs `recorder ARGS` and kills it if it has not finished after `limit`
/// (a hang is a failure, reported as such rather than as a stuck test).
pub fn recorder_within(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(recorder_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recorder runs");
    let pid = child.id() as i32;
    // Read both pipes while waiting, so a large output cannot block it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            // SAFETY: kill(2) on our own child, which has not been reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let out = rx.recv().expect("reaped").expect("output");
            panic!("recorder {args:?} hung (killed after {limit:?}); stderr: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// Names allowed unconditionally by an OCI profile file.
pub fn allowed_names(profile: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(profile).unwrap_or_else(|e| panic!("reading {}: {e}", profile.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("profile is JSON");
    json["syscalls"]
        .as_array()
        .expect("syscalls array")
        .iter()
        .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
        .flat_map(|r| r["names"].as_array().expect("names").iter().map(|n| n.as_str().expect("str").to_owned()))
        .collect()
}

/// Writes an OCI allow-list profile with `names` (EPERM by default).
pub fn write_profile(path: &Path, names: &BTreeSet<String>) {
    let json = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    });
    std::fs::write(path, serde_json::to_string_pretty(&json).expect("json")).expect("write profile");
}

/// Panics with both output streams when `out` did not exit with `code`.
pub fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}, got {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `prog` (a minimal program) under `profile` with `recorder run`: it must run to its
/// end and print "ok".
pub fn assert_runs_under(profile: &Path, prog: &Path) {
    let out = Command::new(recorder_bin())
        .arg("run")
        .arg("--profile")
        .arg(profile)
        .arg("--")
        .arg(prog)
        .output()
        .expect("recorder run");
    assert!(out.status.success(), "{} under {}: {out:?}", prog.display(), profile.display());
    assert_eq!(out.stdout, b"ok\n", "{} under {}", prog.display(), profile.display());
}
