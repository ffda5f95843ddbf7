//! Paths not taken (`record --likely`, `--with-likely`, `recorder likely`,
//! `diff --likely`) on real programs, enforced with `recorder run`:
//!
//! - redis recorded with saving off never forks. Its recorded profile makes
//!   BGSAVE fail (`fork: Operation not permitted`); the warning names
//!   `clone` because redis imports `fork`; with `--with-likely` BGSAVE
//!   succeeds and writes its RDB file.
//! - nginx recorded without a reload: the one call its reload path adds
//!   (measured: `clock_nanosleep`, the master's sleep after starting new
//!   workers) is named, and under the `--with-likely` profile a reload
//!   (`nginx -s reload`) starts a new worker and nginx still serves.
//!
//! Needs root and BPF; fails when it cannot run (RECORDER_SKIP_BPF_TESTS=1
//! skips). Every process started here is killed at the end.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use recorder_tests::{assert_exit, recorder, recorder_bin, scratch_dir, skip_bpf_tests};
use serde_json::Value;

/// Kills (SIGKILL) and reaps a started process when dropped.
/// The process is the leader of its own process group, and the whole group
/// goes: nginx's workers outlive a killed master otherwise.
struct Started(Child);

impl Started {
    fn spawn(cmd: &mut Command, what: &str) -> Started {
        use std::os::unix::process::CommandExt as _;
        Started(cmd.process_group(0).spawn().unwrap_or_else(|e| panic!("{what}: {e}")))
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let pgid = self.0.id() as i32;
        // SAFETY: kill(2) on the process group this test created (its
        // leader not yet reaped, so the id cannot have been reused).
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

fn likely_names(summary: &Value) -> Vec<String> {
    summary["profiles"][0]["likely"]["calls"]
        .as_array()
        .expect("likely.calls")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect()
}

fn reasons_of<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["profiles"][0]["likely"]["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| &c["reasons"])
        .unwrap_or(&Value::Null)
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not happen in 20s");
        thread::sleep(Duration::from_millis(50));
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (apt-get install redis-tools)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn redis_args(port: u16, dir: &Path) -> Vec<String> {
    [
        "redis-server",
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        s(dir),
        "--logfile",
        s(&dir.join("redis.log")),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Records redis for a few seconds of light load with saving off; returns
/// the JSON summary.
fn record_redis(port: u16, dir: &Path, profile: &Path, extra: &[&str]) -> Value {
    let summary = dir.join(format!("summary-{port}.json"));
    let child = Command::new(recorder_bin())
        .args(["record", "--duration", "4s", "-o", s(profile), "--json-summary", s(&summary)])
        .args(extra)
        .arg("--")
        .args(redis_args(port, dir))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recorder record");
    wait_for("redis answering PING", || redis_cli(port, &["ping"]).contains("PONG"));
    for i in 0..50 {
        assert!(redis_cli(port, &["set", &format!("k{i}"), "v"]).contains("OK"));
    }
    let out = child.wait_with_output().expect("recorder ends");
    assert_exit(&out, 0, "record redis");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{stderr}");
    serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("summary JSON")
}

/// Runs redis under `profile` and asks for a BGSAVE; returns
/// `rdb_last_bgsave_status` and whether the RDB file was written.
fn bgsave_under(profile: &Path, port: u16, dir: &Path) -> (String, bool) {
    let rdb = dir.join("dump.rdb");
    let _ = std::fs::remove_file(&rdb);
    let _redis = Started::spawn(
        Command::new(recorder_bin())
            .args(["run", "--profile", s(profile), "--"])
            .args(redis_args(port, dir))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "recorder run redis",
    );
    wait_for("redis under its profile answering PING", || redis_cli(port, &["ping"]).contains("PONG"));
    assert!(redis_cli(port, &["set", "key", "value"]).contains("OK"));
    let _ = redis_cli(port, &["bgsave"]);
    let mut status = String::new();
    wait_for("BGSAVE to end", || {
        let info = redis_cli(port, &["info", "persistence"]);
        status =
            info.lines().find_map(|l| l.strip_prefix("rdb_last_bgsave_status:")).unwrap_or_default().trim().to_owned();
        info.contains("rdb_bgsave_in_progress:0") && !status.is_empty()
    });
    let _ = redis_cli(port, &["shutdown", "nosave"]);
    (status, rdb.exists())
}

#[test]
fn redis_fork_is_named_before_production_and_with_likely_keeps_bgsave_working() {
    if skip_bpf_tests() {
        return;
    }
    let dir = tempfile::tempdir_in(scratch_dir()).expect("tmp");
    let plain = dir.path().join("redis.json");
    let summary = record_redis(17301, dir.path(), &plain, &["--likely"]);
    let names = likely_names(&summary);
    assert!(names.contains(&"clone".to_owned()), "clone is likely: {names:?}");
    let clone_reasons = reasons_of(&summary, "clone");
    assert!(
        clone_reasons
            .as_array()
            .expect("reasons")
            .iter()
            .any(|r| r["function"] == "fork" && r["object"].as_str().is_some_and(|o| o.ends_with("redis-server"))),
        "redis-server's own fork import is the reason: {clone_reasons}"
    );
    assert_eq!(summary["profiles"][0]["likely"]["merged"], false);
    assert!(!recorder_tests::allowed_names(&plain).contains("clone"), "--likely never adds a name");

    // The time bomb: BGSAVE under the recorded profile.
    let (status, written) = bgsave_under(&plain, 17302, dir.path());
    assert_eq!((status.as_str(), written), ("err", false), "BGSAVE fails under the recorded profile");
    let log = std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default();
    assert!(log.contains("fork: Operation not permitted"), "redis says why: {log}");

    // On purpose: --with-likely.
    let merged = dir.path().join("redis-likely.json");
    let summary = record_redis(17303, dir.path(), &merged, &["--with-likely"]);
    assert_eq!(summary["profiles"][0]["likely"]["merged"], true);
    let first = &summary["profiles"][0]["likely"]["calls"][0];
    assert_eq!(first["status"], "predicted, not observed", "{first}");
    assert!(recorder_tests::allowed_names(&merged).contains("clone"));
    assert!(
        !summary["profiles"][0]["recorded_by_arch"]["SCMP_ARCH_X86_64"]
            .as_array()
            .expect("recorded")
            .iter()
            .any(|n| n == "clone"),
        "a predicted call is not reported as recorded"
    );
    let (status, written) = bgsave_under(&merged, 17304, dir.path());
    assert_eq!((status.as_str(), written), ("ok", true), "BGSAVE succeeds under the --with-likely profile");

    // The same answer from `recorder likely` and `diff --likely`, with the
    // executables from --by-exe.
    let by_exe = dir.path().join("redis.by-exe.json");
    let _ = record_redis(17305, dir.path(), &plain, &["--by-exe", s(&by_exe)]);
    let out = recorder(&["likely", s(&plain), "--by-exe", s(&by_exe)]);
    assert_exit(&out, 0, "recorder likely");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.trim_start().starts_with("clone ")).unwrap_or_default();
    assert!(line.contains("redis-server imports fork"), "{text}");
    let out = recorder(&["diff", s(&plain), "--by-exe", s(&by_exe), "--likely", "--json"]);
    assert_exit(&out, 0, "diff --likely --json");
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(json["likely"]["calls"].as_array().expect("calls").iter().any(|c| c["name"] == "clone"), "{json}");
    let out = recorder(&["diff", s(&plain), "--by-exe", s(&by_exe), "--likely"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Paths not taken"));
    let out_profile = dir.path().join("with.json");
    let out = recorder(&["likely", s(&plain), "--by-exe", s(&by_exe), "--with-likely", "-o", s(&out_profile)]);
    assert_exit(&out, 0, "likely --with-likely -o");
    assert!(recorder_tests::allowed_names(&out_profile).contains("clone"));
}

fn nginx_conf(dir: &Path, port: u16) -> PathBuf {
    let conf = dir.join(format!("nginx-{port}.conf"));
    let d = s(dir);
    std::fs::write(dir.join("index.html"), "likely\n").expect("index");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root root;\npid {d}/nginx-{port}.pid;\n\
             error_log {d}/nginx-{port}.log notice;\nevents {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {d}/cb; proxy_temp_path {d}/px; \
             fastcgi_temp_path {d}/fc; uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;\n\
             server {{ listen 127.0.0.1:{port}; root {d}; }} }}\n"
        ),
    )
    .expect("nginx.conf");
    conf
}

fn http_get(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn nginx_reload_path_is_named_and_survived_with_likely() {
    if skip_bpf_tests() {
        return;
    }
    let dir = tempfile::tempdir_in(scratch_dir()).expect("tmp");
    let port = recorder_tests::deploy::free_port();
    let conf = nginx_conf(dir.path(), port);
    let record = |profile: &Path, extra: &[&str]| -> Value {
        let summary = dir.path().join("nginx-summary.json");
        let child = Command::new(recorder_bin())
            .args(["record", "-q", "--duration", "3s", "-o", s(profile), "--json-summary", s(&summary)])
            .args(extra)
            .args(["--", "nginx", "-c", s(&conf), "-e", "stderr"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("recorder record nginx");
        wait_for("nginx serving", || http_get(port).is_some_and(|r| r.contains("likely")));
        let out = child.wait_with_output().expect("recorder ends");
        assert_exit(&out, 0, "record nginx");
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("JSON")
    };
    // What the reload path adds, measured here: a recording that reloads.
    let reloaded = dir.path().join("nginx-reloaded.json");
    record(&reloaded, &["--exercise", "reload"]);
    let plain = dir.path().join("nginx.json");
    let summary = record(&plain, &["--likely"]);
    let out = recorder(&["diff", s(&reloaded), "--against", s(&plain), "--json"]);
    assert_exit(&out, 0, "diff reload against plain");
    let diff: Value = serde_json::from_slice(&out.stdout).expect("json");
    let reload_only: Vec<String> = diff["only_in_profile"]["all"]
        .as_array()
        .expect("only_in_profile")
        .iter()
        .map(|n| n.as_str().expect("str").to_owned())
        .collect();
    assert!(!reload_only.is_empty(), "the reload path makes a call the plain run does not");
    let names = likely_names(&summary);
    for call in &reload_only {
        assert!(names.contains(call), "the reload path's {call} is named as likely: {names:?}");
    }

    // Under the --with-likely profile, a reload works and nginx serves on.
    let merged = dir.path().join("nginx-likely.json");
    record(&merged, &["--with-likely"]);
    let _nginx = Started::spawn(
        Command::new(recorder_bin())
            .args(["run", "--profile", s(&merged), "--", "nginx", "-c", s(&conf), "-e", "stderr"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "recorder run nginx",
    );
    wait_for("nginx under its profile serving", || http_get(port).is_some_and(|r| r.contains("likely")));
    let out = Command::new("nginx").args(["-c", s(&conf), "-e", "stderr", "-s", "reload"]).output().expect("nginx -s");
    assert!(out.status.success(), "nginx -s reload: {}", String::from_utf8_lossy(&out.stderr));
    let log = dir.path().join(format!("nginx-{port}.log"));
    wait_for("a new worker after the reload", || {
        std::fs::read_to_string(&log).unwrap_or_default().matches("start worker process").count() >= 2
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("[alert]") && !text.contains("[emerg]"), "no alert after the reload: {text}");
    assert!(http_get(port).is_some_and(|r| r.contains("likely")), "nginx serves after the reload");
}
