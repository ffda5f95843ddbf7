//! Reliability under load and faults (issue 14), against the real binary and kernel.
//!
//! Each scenario runs small by default (the CI's short version, well under two minutes
//! together) and at full size with `RECORDER_RELIABILITY_SCALE=full`, which is what
//! `cargo xtask reliability` runs to write RELIABILITY.md. Every scenario asserts, and
//! reports its figures as one JSON object per line to `RECORDER_RELIABILITY_OUT` when set
//! (stderr always). The `long_churn` test is ignored: `cargo xtask reliability --long` runs it.
//!
//! - load: a ring-buffer flood with the reader stopped, 10,000 cgroups churned under
//!   `record --cgroup` and under the daemon, 32 recordings at once, each enforced;
//! - faults: `kill -9` of `record` and of the daemon, a full disk under `-o` and under the
//!   daemon's `--state-dir`, bpffs or BTF missing;
//! - long: the daemon under churn for `RECORDER_RELIABILITY_MINUTES`, sampled.
//!
//! Needs root and BPF; fails when it cannot run (RECORDER_SKIP_BPF_TESTS=1 skips).

mod faults;
mod load;
mod long;

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    time::Instant,
};

use serde_json::Value;

/// True for the full-size run (`RECORDER_RELIABILITY_SCALE=full`).
fn full() -> bool {
    std::env::var("RECORDER_RELIABILITY_SCALE").as_deref() == Ok("full")
}

/// `short` in the CI's version, `full` in `cargo xtask reliability`.
fn size(short: usize, full_size: usize) -> usize {
    if full() { full_size } else { short }
}

/// Appends one scenario's figures (with its verdict and wall time) to the report.
fn report(scenario: &str, started: Instant, figures: Value) {
    let line = serde_json::json!({
        "scenario": scenario,
        // libtest names each test's thread after the test: xtask matches it to the verdict.
        "test": std::thread::current().name().unwrap_or("?"),
        "scale": if full() { "full" } else { "short" },
        "seconds": started.elapsed().as_secs_f64(),
        "figures": figures,
    });
    eprintln!("RELIABILITY {line}");
    if let Some(path) = std::env::var_os("RECORDER_RELIABILITY_OUT") {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("report file");
        writeln!(file, "{line}").expect("write report");
    }
}

/// A fresh cgroup v2 directory of this test's own, removed (with what is below it) on drop.
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        let dir = recorder_tests::daemon::v2_mount().join(format!("recorder-rel-{}-{name}", std::process::id()));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TestCgroup(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Kills what is left inside (cgroup.kill) and removes the tree.
    fn kill_all(&self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        self.kill_all();
        std::thread::sleep(std::time::Duration::from_millis(50));
        recorder_tests::daemon::remove_cgroup_tree(&self.0);
    }
}

/// The summary `record --json-summary` wrote.
fn summary(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("the JSON summary is JSON")
}

/// Sends `signal` to `pid` (a child this test started).
fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a pid this test started and has not reaped.
    let rc = unsafe { libc::kill(pid as i32, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
}
