//! Running `recorder daemon` in tests: a private bpffs for its pins, a private cgroup parent
//! for its pods, its own port and state directory, and a small HTTP client and Prometheus
//! text parser for its API.
//!
//! The daemon never touches `/sys/fs/bpf`: every [`DaemonEnv`] mounts a bpffs of its own in
//! its temporary directory, and removes the pins and the mount when dropped.

use std::{
    collections::BTreeMap,
    fs,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{containers::cgroup_mounts, recorder_bin};

/// How long a daemon may take to load, attach and answer `/readyz`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One "node" for a daemon: a temporary directory holding its state directory and a bpffs
/// mount for its pins, and a cgroup subtree of its own (`<root>/kubepods`) as the kubelet's
/// parent. Dropping it removes the pins, unmounts the bpffs, and removes the cgroup subtree
/// in every hierarchy (drop the daemons and pods first).
pub struct DaemonEnv {
    pub dir: tempfile::TempDir,
    /// Relative to each cgroup mount: `recorder-daemon-<pid>-<name>`.
    pub cgroup_root: String,
    bpffs: crate::deploy::Bpffs,
}

impl DaemonEnv {
    /// Makes the directory, mounts the bpffs and creates the v2 cgroup parent.
    pub fn new(name: &str) -> DaemonEnv {
        let dir = tempfile::Builder::new().prefix("recorder-daemon-").tempdir_in("/tmp").expect("tempdir");
        let bpffs = crate::deploy::Bpffs::mount().expect("a bpffs for the daemon's pins");
        let env = DaemonEnv { dir, cgroup_root: format!("recorder-daemon-{}-{name}", std::process::id()), bpffs };
        fs::create_dir_all(env.parent_dir()).expect("creating the daemon's cgroup parent");
        env
    }

    /// The kubelet parent, relative to the cgroup root (for [`crate::cri::Pods::new_under`]).
    pub fn parent(&self) -> String {
        format!("{}/kubepods", self.cgroup_root)
    }

    /// The kubelet parent's cgroup v2 directory (`--cgroup-parent`).
    pub fn parent_dir(&self) -> PathBuf {
        v2_mount().join(self.parent())
    }

    /// A pin directory inside this env's bpffs.
    pub fn pin_dir(&self, name: &str) -> PathBuf {
        self.bpffs.path().join(name)
    }

    /// A state directory inside this env.
    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("state-{name}"))
    }

    /// `recorder daemon --unpin --pin-dir DIR`; asserts it worked.
    pub fn unpin(&self, name: &str) {
        let out = Command::new(recorder_bin())
            .args(["daemon", "--unpin", "--pin-dir"])
            .arg(self.pin_dir(name))
            .output()
            .expect("recorder daemon --unpin");
        crate::assert_exit(&out, 0, "recorder daemon --unpin");
    }
}

impl Drop for DaemonEnv {
    fn drop(&mut self) {
        if let Ok(entries) = fs::read_dir(self.bpffs.path()) {
            for entry in entries.flatten() {
                let _ = Command::new(recorder_bin())
                    .args(["daemon", "--unpin", "--pin-dir"])
                    .arg(entry.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // The bpffs field unmounts itself after this.
        for mount in cgroup_mounts().unwrap_or_default() {
            remove_cgroup_tree(&mount.join(&self.cgroup_root));
        }
    }
}

/// Removes a cgroup directory and everything below it, deepest first (rmdir only: a cgroup
/// still in use stays).
pub fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Starts `program` with `args` inside the cgroup `dir` (the shell joins it before it
/// execs, so every call of `program` is made there).
pub fn spawn_in_cgroup(dir: &Path, program: &str, args: &[&str]) -> Child {
    Command::new("/bin/sh")
        .arg("-c")
        .arg("echo $$ > \"$0/cgroup.procs\" && exec \"$@\"")
        .arg(dir)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("/bin/sh for {program} in {}: {e}", dir.display()))
}

/// Runs `program` with `args` inside the cgroup `dir` to its end; asserts it exits 0.
pub fn run_in_cgroup(dir: &Path, program: &str, args: &[&str]) {
    let status = spawn_in_cgroup(dir, program, args).wait().expect("wait");
    assert!(status.success(), "{program} in {}: {status}", dir.display());
}

/// Removes the (empty) cgroup `dir`, retrying while the kernel still counts an exiting
/// process in it; leaves it when it stays busy (the env's drop tries again).
pub fn remove_cgroup(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Err(e) = fs::remove_dir(dir) {
        if e.kind() == std::io::ErrorKind::NotFound || Instant::now() > deadline {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The cgroup v2 mount.
pub fn v2_mount() -> PathBuf {
    crate::containers::cgroup2_mount().expect("mountinfo").expect("a cgroup v2 mount")
}

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it in
/// between, which is rare enough on a test machine).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind").local_addr().expect("addr").port()
}

/// CPU time (user + system) of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Options of one daemon beyond its env's.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// Names its pin and state directories inside the env.
    pub name: String,
    pub port: u16,
    pub endpoint: PathBuf,
    pub extra: Vec<String>,
}

impl DaemonOptions {
    /// A daemon named `name` for the containerd at `endpoint`, on a free
    /// port, polling every 200 ms and saving every second, with `extra`
    /// flags.
    pub fn fast(name: &str, endpoint: &Path, extra: &[&str]) -> DaemonOptions {
        let base = ["--poll-interval", "200ms", "--snapshot-interval", "1s"];
        DaemonOptions {
            name: name.to_owned(),
            port: free_port(),
            endpoint: endpoint.to_path_buf(),
            extra: base.iter().chain(extra).map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// A running `recorder daemon`, killed (SIGKILL) when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts a daemon for `env` and waits until `/readyz` answers 200.
    pub fn start(env: &DaemonEnv, options: &DaemonOptions) -> Daemon {
        let log = env.dir.path().join(format!("daemon-{}.log", options.name));
        let stderr = fs::OpenOptions::new().create(true).append(true).open(&log).expect("daemon log");
        let child = Command::new(recorder_bin())
            .args(["-v", "daemon", "--listen"])
            .arg(format!("127.0.0.1:{}", options.port))
            .arg("--state-dir")
            .arg(env.state_dir(&options.name))
            .arg("--pin-dir")
            .arg(env.pin_dir(&options.name))
            .arg("--cgroup-parent")
            .arg(env.parent_dir())
            .arg("--runtime-endpoint")
            .arg(&options.endpoint)
            .args(&options.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("recorder daemon starts");
        let mut daemon = Daemon { child: Some(child), port: options.port, log };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = daemon.child.as_mut().and_then(|c| c.try_wait().expect("wait")) {
                panic!("the daemon exited with {status} before it was ready; log:\n{}", daemon.log_text());
            }
            if matches!(daemon.try_get("/readyz"), Ok((200, _))) {
                return daemon;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon was not ready in {READY_TIMEOUT:?}; log:\n{}",
                daemon.log_text()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What the daemon logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no snapshot, no cleanup; the pins stay.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the exit status (the daemon saves a last snapshot).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on the pid of our own child, which has not been waited for.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().expect("wait")
    }

    /// `GET path`: (status, body).
    pub fn try_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.port, path)
    }

    /// `GET path`, which must answer 200.
    pub fn get(&self, path: &str) -> String {
        match self.try_get(path) {
            Ok((200, body)) => body,
            other => panic!("GET {path}: {other:?}; daemon log:\n{}", self.log_text()),
        }
    }

    /// `/v1/workloads`.
    pub fn workloads(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.get("/v1/workloads")).expect("/v1/workloads is a JSON list")
    }

    /// The `/v1/workloads` entry for (namespace, workload, container), if listed.
    pub fn workload(&self, namespace: &str, workload: &str, container: &str) -> Option<serde_json::Value> {
        self.workloads()
            .into_iter()
            .find(|w| w["namespace"] == namespace && w["workload"] == workload && w["container"] == container)
    }

    /// `/metrics`, checked and parsed.
    pub fn metrics(&self) -> Metrics {
        parse_metrics(&self.get("/metrics")).unwrap_or_else(|e| panic!("/metrics is not Prometheus text: {e}"))
    }

    /// VmRSS of the daemon, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `GET path` on 127.0.0.1:`port` over HTTP/1.1 with `Connection: close`.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other("no header end"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Err(std::io::Error::other("chunked responses are not expected from the daemon"));
    }
    Ok((status, body.to_owned()))
}

/// Polls `probe` until it returns `Some`, failing with `what` (and `context()`) after
/// `timeout`. For "it eventually happens", never for how fast.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    context: impl Fn() -> String,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}\n{}", context());
        thread::sleep(Duration::from_millis(100));
    }
}

/// Samples by metric name: (labels, value).
pub type Metrics = BTreeMap<String, Vec<(BTreeMap<String, String>, f64)>>;

/// The value of an unlabelled sample.
pub fn metric(metrics: &Metrics, name: &str) -> f64 {
    let samples = metrics.get(name).unwrap_or_else(|| panic!("no metric {name}"));
    assert_eq!(samples.len(), 1, "{name} has {} samples", samples.len());
    samples[0].1
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses Prometheus text exposition format 0.0.4 strictly: `# HELP name text` and
/// `# TYPE name counter|gauge|histogram|summary|untyped` at most once per name and before
/// its samples; every other non-empty line `name{label="value",...} value [timestamp]` with
/// valid names, well-escaped label values, no duplicate label, and a numeric value.
pub fn parse_metrics(text: &str) -> Result<Metrics, String> {
    let mut metrics = Metrics::new();
    let mut help = std::collections::BTreeSet::new();
    let mut types = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = |msg: &str| format!("line {}: {msg}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut words = rest.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), Some(_)) if !valid_metric_name(name) || !help.insert(name.to_owned()) => {
                    return Err(at("bad or repeated HELP"));
                }
                (Some("TYPE"), Some(name), Some(kind))
                    if !valid_metric_name(name)
                        || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
                        || types.insert(name.to_owned(), kind.to_owned()).is_some()
                        || metrics.contains_key(name) =>
                {
                    return Err(at("bad, repeated or late TYPE"));
                }
                _ => {}
            }
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => return Err(at("no value")),
        };
        if !valid_metric_name(name) {
            return Err(at("bad metric name"));
        }
        let mut labels = BTreeMap::new();
        let rest = if let Some(mut inner) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = inner.strip_prefix('}') {
                    break after;
                }
                let eq = inner.find('=').ok_or_else(|| at("label without ="))?;
                let label = &inner[..eq];
                if !valid_label_name(label) {
                    return Err(at("bad label name"));
                }
                let mut value = String::new();
                let mut chars = inner[eq + 1..].strip_prefix('"').ok_or_else(|| at("unquoted label value"))?.chars();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            _ => return Err(at("bad escape in a label value")),
                        },
                        Some('"') => break,
                        Some('\n') | None => return Err(at("unterminated label value")),
                        Some(c) => value.push(c),
                    }
                }
                if labels.insert(label.to_owned(), value).is_some() {
                    return Err(at("repeated label"));
                }
                inner = chars.as_str();
                inner = inner.strip_prefix(',').unwrap_or(inner);
            }
        } else {
            rest
        };
        let mut fields = rest.split_whitespace();
        let value = fields.next().ok_or_else(|| at("no value"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| at("value is not a number"))?,
        };
        if let Some(timestamp) = fields.next() {
            timestamp.parse::<i64>().map_err(|_| at("timestamp is not an integer"))?;
        }
        if fields.next().is_some() || !rest.starts_with(' ') {
            return Err(at("trailing text"));
        }
        if !types.contains_key(name) {
            return Err(at("sample without a TYPE line before it"));
        }
        metrics.entry(name.to_owned()).or_default().push((labels, value));
    }
    Ok(metrics)
}

/// Names of the syscalls a program made, from `strace -f -o FILE` output.
pub fn strace_names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
            let name = &line[..line.find('(')?];
            (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
                .then(|| name.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_parser_accepts_good_text_and_refuses_bad() {
        let good = "# HELP a_total Things.\n# TYPE a_total counter\na_total 3\n# TYPE b gauge\nb{x=\"1\",y=\"q\\\"\\\\\\n\"} 1.5\n";
        let parsed = parse_metrics(good).expect("good text");
        assert_eq!(metric(&parsed, "a_total"), 3.0);
        assert_eq!(parsed["b"][0].0["y"], "q\"\\\n");
        for bad in [
            "a 1\n",
            "# TYPE a gauge\na one\n",
            "# TYPE a gauge\na{x=1} 1\n",
            "# TYPE a gauge\na{x=\"1\"} 1 2 3\n",
            "# TYPE a gauge\n# TYPE a gauge\n",
            "# TYPE a gauges\n",
            "# TYPE 1a gauge\n1a 1\n",
            "# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",
        ] {
            assert!(parse_metrics(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn strace_lines_become_names() {
        let text = "12 execve(\"/x\", [\"x\"]) = 0\n12 uname({}) = 0\n12 +++ exited with 0 +++\n";
        assert_eq!(strace_names(text), ["execve", "uname"].into_iter().map(str::to_owned).collect());
    }
}
