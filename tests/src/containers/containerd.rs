//! A private containerd daemon per test.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::cgroups::mount_points;
use super::{MAX_SOCKET_PATH, NAMESPACE, Runtime, SANDBOX_IMAGE, STARTUP_TIMEOUT, absolute, find_program};

/// A containerd daemon private to one test: own config, root, state, socket and runtime
/// state directories under a temporary directory, so it neither sees nor disturbs the host's
/// containerd or another test's.
///
/// Dropping it kills every task it still runs, stops the daemon and the shims it started,
/// unmounts what it left mounted and removes its directory.
#[derive(Debug)]
pub struct Containerd {
    /// The daemon; replaced by [`Containerd::restart`].
    child: std::sync::Mutex<Child>,
    ctr: PathBuf,
    dir: PathBuf,
    address: PathBuf,
    runtime_root: PathBuf,
}

impl Containerd {
    /// Starts containerd with everything under `dir/containerd` and waits until its socket
    /// answers.
    ///
    /// Configuration: cgroupfs (not systemd) for both CRI runtime handlers `runc` and `crun`
    /// (both `io.containerd.runc.v2`, differing in `BinaryName`), `restrict_oom_score_adj =
    /// true` (the host lacks CAP_SYS_RESOURCE), CNI pointed at empty directories so only
    /// host-network pods work, sandbox image [`SANDBOX_IMAGE`].
    pub fn start(dir: &Path) -> anyhow::Result<Containerd> {
        Containerd::start_with_handlers(dir, &[])
    }

    /// [`Containerd::start`] with extra CRI runtime handlers, each an
    /// `io.containerd.runc.v2` runtime with its own `BinaryName` (a wrapper
    /// around runc, say), configured like the `runc` handler.
    pub fn start_with_handlers(dir: &Path, handlers: &[(&str, &Path)]) -> anyhow::Result<Containerd> {
        let program = find_program("containerd")
            .context("containerd not found; install it with `apt-get install -y containerd`")?;
        let ctr = find_program("ctr").context("ctr not found; it ships in the `containerd` package")?;
        let runc = Runtime::Runc.binary()?;
        // crun is optional for runc-only tests; the handler is configured with the Debian
        // path when crun is missing and fails only when a test uses it.
        let crun = Runtime::Crun.binary().unwrap_or_else(|_| PathBuf::from("/usr/bin/crun"));

        let dir = absolute(dir)?.join("containerd");
        if dir.exists() {
            bail!("{} already exists; give each Containerd its own directory", dir.display());
        }
        let address = dir.join("containerd.sock");
        if address.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "socket path {} is longer than {MAX_SOCKET_PATH} bytes; use a shorter temporary \
                 directory (e.g. TMPDIR=/tmp)",
                address.display()
            );
        }
        let runtime_root = dir.join("runtime");
        let cni = dir.join("cni");
        for sub in [&dir, &runtime_root, &cni] {
            fs::create_dir_all(sub).with_context(|| format!("creating {}", sub.display()))?;
        }
        let config = dir.join("config.toml");
        let mut toml = config_toml(&dir, &address, &runtime_root, &cni, &runc, &crun);
        for (name, binary) in handlers {
            toml.push_str(&format!(
                r#"      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
          BinaryName = "{binary}"
          Root = "{root}"
          SystemdCgroup = false
"#,
                binary = binary.display(),
                root = runtime_root.display(),
            ));
        }
        fs::write(&config, toml).with_context(|| format!("writing {}", config.display()))?;

        let log_path = dir.join("containerd.log");
        let log = fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the containerd log fd")?;
        let child = spawn_daemon(&program, &config, log, log_err)?;
        let containerd = Containerd { child: std::sync::Mutex::new(child), ctr, dir, address, runtime_root };
        containerd.wait_ready()?;
        Ok(containerd)
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Kills the daemon alone with SIGKILL, as a crash would: its shims and
    /// their containers keep running, and the socket stops answering.
    pub fn kill_daemon(&self) -> anyhow::Result<()> {
        let mut child = self.child();
        child.kill().context("killing containerd")?;
        child.wait().context("waiting for containerd")?;
        Ok(())
    }

    /// Starts the daemon again on the same configuration and state (after
    /// [`Containerd::kill_daemon`]); it finds its shims and containers again.
    pub fn restart(&self) -> anyhow::Result<()> {
        let program = find_program("containerd")?;
        let log_path = self.log_path();
        let log = fs::OpenOptions::new().append(true).open(&log_path).context("opening the containerd log")?;
        let log_err = log.try_clone().context("duplicating the containerd log fd")?;
        *self.child() = spawn_daemon(&program, &self.dir.join("config.toml"), log, log_err)?;
        self.wait_ready()
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child().try_wait().context("waiting for containerd")? {
                bail!(
                    "containerd exited with {status} during startup; its log ({}):\n{}",
                    self.log_path().display(),
                    self.log_tail()
                );
            }
            if self.address.exists() {
                let out = self.ctr().arg("version").stdin(Stdio::null()).output().context("running `ctr version`")?;
                if out.status.success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "containerd did not answer on {} within {STARTUP_TIMEOUT:?}; its log:\n{}",
                    self.address.display(),
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The gRPC socket (`ctr --address`, CRI endpoint `unix://<address>`).
    pub fn address(&self) -> &Path {
        &self.address
    }

    /// Directory holding config, root, state, log and runtime state.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The daemon's log file (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// State root handed to runc/crun (`--root`), separate from the host's
    /// `/run/containerd/runc` so that container ids cannot clash with other containerds.
    pub fn runtime_root(&self) -> &Path {
        &self.runtime_root
    }

    /// Where `ctr run` should put its stdio FIFOs (`--fifo-dir`), instead of the host-wide
    /// `/run/containerd/fifo`.
    pub fn fifo_dir(&self) -> PathBuf {
        self.dir.join("fifo")
    }

    /// The last lines of the daemon's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// A `ctr` command talking to this containerd in namespace [`NAMESPACE`].
    pub fn ctr(&self) -> Command {
        self.ctr_in(NAMESPACE)
    }

    /// A `ctr` command talking to this containerd in `namespace` (e.g. `k8s.io`, where the
    /// CRI plugin keeps its images and containers).
    pub fn ctr_in(&self, namespace: &str) -> Command {
        let mut cmd = Command::new(&self.ctr);
        cmd.arg("--address").arg(&self.address).arg("--namespace").arg(namespace);
        cmd
    }

    /// Lines printed by a quiet `ctr` listing, empty on any error.
    fn ctr_list(&self, namespace: &str, args: &[&str]) -> Vec<String> {
        self.ctr_in(namespace)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kills and deletes every task and container in every namespace (the harness's and the
    /// CRI plugin's `k8s.io`). Errors are ignored: this is cleanup.
    fn remove_everything(&self) {
        let mut namespaces: BTreeSet<String> =
            self.ctr_list(NAMESPACE, &["namespaces", "ls", "-q"]).into_iter().collect();
        namespaces.insert(NAMESPACE.to_owned());
        for ns in &namespaces {
            for task in self.ctr_list(ns, &["tasks", "ls", "-q"]) {
                let _ = quiet(self.ctr_in(ns).args(["tasks", "kill", "-a", "-s", "SIGKILL", &task]));
                let _ = quiet(self.ctr_in(ns).args(["tasks", "delete", "-f", &task]));
            }
            for container in self.ctr_list(ns, &["containers", "ls", "-q"]) {
                let _ = quiet(self.ctr_in(ns).args(["containers", "rm", &container]));
            }
        }
    }
}

/// `containerd --config CONFIG` with its output into the log.
fn spawn_daemon(program: &Path, config: &Path, log: fs::File, log_err: fs::File) -> anyhow::Result<Child> {
    Command::new(program)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .with_context(|| format!("spawning {}", program.display()))
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.remove_everything();
        let mut child = self.child();
        let pid = child.id();
        signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        if !matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Shims outlive containerd by design (they re-parent to init). Ours are the ones
        // started with our socket address; kill them by pid.
        let needle = self.address.as_os_str().as_bytes().to_vec();
        for shim in pids_with_cmdline(|cmdline| {
            cmdline.windows(b"containerd-shim".len()).any(|w| w == b"containerd-shim")
                && cmdline.windows(needle.len()).any(|w| w == needle.as_slice())
        }) {
            signal(shim, libc::SIGKILL);
        }
        unmount_below(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
        remove_empty_namespace_cgroups();
    }
}

/// Runs `cmd` with all output discarded.
pub(super) fn quiet(cmd: &mut Command) -> std::io::Result<ExitStatus> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status()
}

fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and has no memory-safety preconditions; the
    // pid is one this harness started (or found by its own socket path in /proc).
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Pids of processes whose NUL-separated command line matches.
fn pids_with_cmdline(matches: impl Fn(&[u8]) -> bool) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| matches(&c)))
        .collect()
}

/// Lazily unmounts every mount point at or below `dir` (deepest first).
fn unmount_below(dir: &Path) {
    let Ok(mounts) = mount_points() else {
        return;
    };
    let mut below: Vec<PathBuf> =
        mounts.into_iter().filter(|m| m.mount_point.starts_with(dir)).map(|m| m.mount_point).collect();
    below.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in below {
        let Ok(c) = CString::new(point.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        unsafe {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
    }
}

/// Removes the `NAMESPACE` parent cgroups runc/crun created, when they are empty.
fn remove_empty_namespace_cgroups() {
    let Ok(mounts) = mount_points() else {
        return;
    };
    for m in mounts.iter().filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2") {
        // rmdir fails on a cgroup that still has children or processes; that is fine.
        let _ = fs::remove_dir(m.mount_point.join(NAMESPACE));
    }
}

fn config_toml(dir: &Path, address: &Path, runtime_root: &Path, cni: &Path, runc: &Path, crun: &Path) -> String {
    let root = dir.join("root");
    let state = dir.join("state");
    // Plugins that would touch host paths (/opt/containerd) or need kernel features we do
    // not use are disabled.
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{address}"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    restrict_oom_score_adj = true
    sandbox_image = "{SANDBOX_IMAGE}"
    disable_apparmor = true
    enable_selinux = false
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{cni}"
      conf_dir = "{cni}"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      snapshotter = "overlayfs"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "{runc}"
          Root = "{runtime_root}"
          SystemdCgroup = false
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
          BinaryName = "{crun}"
          Root = "{runtime_root}"
          SystemdCgroup = false
"#,
        root = root.display(),
        state = state.display(),
        address = address.display(),
        cni = cni.display(),
        runc = runc.display(),
        crun = crun.display(),
        runtime_root = runtime_root.display(),
    )
}
