//! A private containerd, hand-made root filesystems and `ctr run` for container tests.
//!
//! Everything here runs the real Debian binaries (`containerd`, `ctr`, `runc`, `crun`);
//! nothing is pulled from a registry. The usual flow is:
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use recorder_tests::containers::{ctr_run, rootfs_with, Containerd, Runtime};
//! let tmp = tempfile::tempdir()?;
//! let containerd = Containerd::start(tmp.path())?;
//! let rootfs = rootfs_with(&[std::path::Path::new("/tmp/hello")], tmp.path())?;
//! let out = ctr_run(&containerd, &rootfs, None, Runtime::Runc, &["/bin/hello"])?;
//! assert!(out.status.success());
//! # Ok(()) }
//! ```
//!
//! Facts about the hosts these tests run on (hybrid cgroups, crun's hugetlb quirk, no
//! CAP_SYS_RESOURCE) are in `docs/containers-harness.md`.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

/// The containerd namespace every harness container lives in. containerd's runc shim uses
/// `/<namespace>/<id>` as the cgroup path, so this also names the parent cgroup
/// (`/sys/fs/cgroup/<controller>/recorder-tests/<id>` and `<cgroup2>/recorder-tests/<id>`).
pub const NAMESPACE: &str = "recorder-tests";

/// Image reference the CRI plugin uses for pod sandboxes. Nothing can be pulled here: a test
/// that creates CRI pods must first import an image under this name into the `k8s.io`
/// namespace (`ctr -n k8s.io images import`).
pub const SANDBOX_IMAGE: &str = "localhost/recorder-tests/pause:local";

/// How long `ctr run` may take before the harness kills it. The containers the tests run are
/// tiny; anything this slow is hung (e.g. a Go runtime looping on a denied `rt_sigreturn`).
const CTR_RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long containerd may take to answer on its socket after it was started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// `sun_path` holds 108 bytes including the NUL; containerd also appends `.ttrpc`.
const MAX_SOCKET_PATH: usize = 100;

/// The OCI runtime `ctr` hands to containerd's `io.containerd.runc.v2` shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// runc (Debian: 1.1.5+ds1 with the CVE-2024-21626 backport).
    Runc,
    /// crun (Debian: 1.8.1). Needs [`fix_crun_hybrid_hugetlb`] on hybrid-cgroup hosts.
    Crun,
}

impl Runtime {
    /// Both runtimes, for tests that loop over them.
    pub const ALL: [Runtime; 2] = [Runtime::Runc, Runtime::Crun];

    /// Executable name, looked up in `PATH` plus the sbin directories.
    pub fn binary_name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Crun => "crun",
        }
    }

    /// Name of the CRI runtime handler configured for this runtime by [`Containerd::start`]
    /// (`RuntimeHandler` in `RunPodSandboxRequest`).
    pub fn handler(self) -> &'static str {
        self.binary_name()
    }

    /// Absolute path of the runtime binary.
    pub fn binary(self) -> anyhow::Result<PathBuf> {
        find_program(self.binary_name()).with_context(|| {
            format!(
                "{} not found; install it with `apt-get install -y {}`",
                self.binary_name(),
                self.binary_name()
            )
        })
    }

    /// Syscalls this runtime makes on the container's thread after it installed the
    /// container's seccomp filter (see [`crate::runtime_base`]). A profile enforced through
    /// this runtime must allow them or the container never reaches its entrypoint.
    pub fn post_filter_base(self) -> &'static [&'static str] {
        match self {
            Runtime::Runc => crate::runtime_base::RUNC_1_1_5_POST_FILTER,
            Runtime::Crun => crate::runtime_base::CRUN_1_8_1_POST_FILTER,
        }
    }
}

/// A containerd daemon private to one test: own config, root, state, socket and runtime
/// state directories under a temporary directory, so it neither sees nor disturbs the host's
/// containerd or another test's.
///
/// Dropping it kills every task it still runs, stops the daemon and the shims it started,
/// unmounts what it left mounted and removes its directory.
#[derive(Debug)]
pub struct Containerd {
    child: Child,
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
        let program = find_program("containerd")
            .context("containerd not found; install it with `apt-get install -y containerd`")?;
        let ctr =
            find_program("ctr").context("ctr not found; it ships in the `containerd` package")?;
        let runc = Runtime::Runc.binary()?;
        // crun is optional for runc-only tests; the handler is configured with the Debian
        // path when crun is missing and fails only when a test uses it.
        let crun = Runtime::Crun
            .binary()
            .unwrap_or_else(|_| PathBuf::from("/usr/bin/crun"));

        let dir = absolute(dir)?.join("containerd");
        if dir.exists() {
            bail!(
                "{} already exists; give each Containerd its own directory",
                dir.display()
            );
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
        fs::write(
            &config,
            config_toml(&dir, &address, &runtime_root, &cni, &runc, &crun),
        )
        .with_context(|| format!("writing {}", config.display()))?;

        let log_path = dir.join("containerd.log");
        let log = fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .context("duplicating the containerd log fd")?;
        let child = Command::new(&program)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("spawning {}", program.display()))?;
        let mut containerd = Containerd {
            child,
            ctr,
            dir,
            address,
            runtime_root,
        };
        containerd.wait_ready()?;
        Ok(containerd)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for containerd")? {
                bail!(
                    "containerd exited with {status} during startup; its log ({}):\n{}",
                    self.log_path().display(),
                    self.log_tail()
                );
            }
            if self.address.exists() {
                let out = self
                    .ctr()
                    .arg("version")
                    .stdin(Stdio::null())
                    .output()
                    .context("running `ctr version`")?;
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
        cmd.arg("--address")
            .arg(&self.address)
            .arg("--namespace")
            .arg(namespace);
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
        let mut namespaces: BTreeSet<String> = self
            .ctr_list(NAMESPACE, &["namespaces", "ls", "-q"])
            .into_iter()
            .collect();
        namespaces.insert(NAMESPACE.to_owned());
        for ns in &namespaces {
            for task in self.ctr_list(ns, &["tasks", "ls", "-q"]) {
                let _ = quiet(
                    self.ctr_in(ns)
                        .args(["tasks", "kill", "-a", "-s", "SIGKILL", &task]),
                );
                let _ = quiet(self.ctr_in(ns).args(["tasks", "delete", "-f", &task]));
            }
            for container in self.ctr_list(ns, &["containers", "ls", "-q"]) {
                let _ = quiet(self.ctr_in(ns).args(["containers", "rm", &container]));
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.remove_everything();
        let pid = self.child.id();
        signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Shims outlive containerd by design (they re-parent to init). Ours are the ones
        // started with our socket address; kill them by pid.
        let needle = self.address.as_os_str().as_bytes().to_vec();
        for shim in pids_with_cmdline(|cmdline| {
            cmdline
                .windows(b"containerd-shim".len())
                .any(|w| w == b"containerd-shim")
                && cmdline
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice())
        }) {
            signal(shim, libc::SIGKILL);
        }
        unmount_below(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
        remove_empty_namespace_cgroups();
    }
}

/// Runs `cmd` with all output discarded.
fn quiet(cmd: &mut Command) -> std::io::Result<ExitStatus> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
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
    let mut below: Vec<PathBuf> = mounts
        .into_iter()
        .filter(|m| m.mount_point.starts_with(dir))
        .map(|m| m.mount_point)
        .collect();
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
    for m in mounts
        .iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
    {
        // rmdir fails on a cgroup that still has children or processes; that is fine.
        let _ = fs::remove_dir(m.mount_point.join(NAMESPACE));
    }
}

fn config_toml(
    dir: &Path,
    address: &Path,
    runtime_root: &Path,
    cni: &Path,
    runc: &Path,
    crun: &Path,
) -> String {
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

/// Makes crun usable on a hybrid-cgroup host. Idempotent; returns whether it changed
/// anything.
///
/// crun 1.8.1 refuses every container with "cgroups in hybrid mode not supported, drop all
/// controllers from cgroupv2" while the v2 hierarchy holds any controller. On the hosts
/// here that is `hugetlb`, which no v1 hierarchy claims. Mounting a v1 hierarchy for each
/// such controller at `/sys/fs/cgroup/<controller>` moves it off v2. Does nothing when there
/// is no v2 mount or its `cgroup.controllers` is empty (pure v1, or already fixed), and on a
/// pure v2 host (v2 mounted at `/sys/fs/cgroup` itself), where crun works as it is.
pub fn fix_crun_hybrid_hugetlb() -> anyhow::Result<bool> {
    let Some(v2) = cgroup2_mount()? else {
        return Ok(false);
    };
    if v2 == Path::new("/sys/fs/cgroup") {
        return Ok(false);
    }
    let path = v2.join("cgroup.controllers");
    let controllers =
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut changed = false;
    for controller in controllers.split_whitespace() {
        let target = Path::new("/sys/fs/cgroup").join(controller);
        fs::create_dir_all(&target)
            .with_context(|| format!("creating {} (needs root)", target.display()))?;
        let source = CString::new("cgroup")?;
        let fstype = CString::new("cgroup")?;
        let options = CString::new(controller)?;
        let target_c = CString::new(target.as_os_str().as_bytes())?;
        // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target_c.as_ptr(),
                fstype.as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            bail!(
                "mounting a cgroup v1 hierarchy for {controller} at {} failed: {err}; crun needs \
                 it off cgroup v2 (a v2 cgroup may have it enabled in cgroup.subtree_control)",
                target.display()
            );
        }
        changed = true;
    }
    Ok(changed)
}

/// Builds a root filesystem at `dir/rootfs` holding `binaries` as `/bin/<file name>`, the
/// shared libraries they need at their host paths (from `ldd`, which also names the dynamic
/// loader), busybox as `/bin/busybox` with `/bin/sh`, `sleep`, `cat`, `true` links when the
/// host has it, and empty `/proc`, `/dev`, `/sys`, `/tmp` and `/etc` for the runtime to mount
/// over. Returns the rootfs path, ready for [`ctr_run`].
pub fn rootfs_with(binaries: &[&Path], dir: &Path) -> anyhow::Result<PathBuf> {
    let rootfs = absolute(dir)?.join("rootfs");
    for sub in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        let path = rootfs.join(sub);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
        .context("making rootfs /tmp world-writable")?;

    let mut files: Vec<PathBuf> = binaries.iter().map(|p| p.to_path_buf()).collect();
    let busybox = find_program("busybox").ok();
    if let Some(busybox) = &busybox {
        files.push(busybox.clone());
    }
    let mut libraries = BTreeSet::new();
    for file in &files {
        let name = file
            .file_name()
            .ok_or_else(|| anyhow!("{} has no file name", file.display()))?;
        let target = rootfs.join("bin").join(name);
        fs::copy(file, &target)
            .with_context(|| format!("copying {} into the rootfs", file.display()))?;
        libraries.extend(shared_libraries(file)?);
    }
    for lib in libraries {
        let relative = lib.strip_prefix("/").unwrap_or(&lib);
        let target = rootfs.join(relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        // fs::copy follows symlinks, so /lib64/ld-linux-x86-64.so.2 arrives as a file.
        fs::copy(&lib, &target)
            .with_context(|| format!("copying {} into the rootfs", lib.display()))?;
    }
    if busybox.is_some() {
        for applet in ["sh", "sleep", "cat", "true"] {
            let link = rootfs.join("bin").join(applet);
            if fs::symlink_metadata(&link).is_err() {
                symlink("busybox", &link).with_context(|| format!("linking {}", link.display()))?;
            }
        }
    }
    Ok(rootfs)
}

/// Packs `rootfs` into a single-layer OCI image with umoci, tags it `reference`
/// (`name:tag`), and imports it into `namespace` of `c` (`ctr images import`). Use namespace
/// `k8s.io` for images the CRI plugin should see. `work` holds the temporary OCI layout.
pub fn import_image(
    c: &Containerd,
    rootfs: &Path,
    reference: &str,
    entrypoint: &[&str],
    namespace: &str,
    work: &Path,
) -> anyhow::Result<()> {
    let (name, tag) = reference
        .rsplit_once(':')
        .filter(|(name, tag)| !name.is_empty() && !tag.contains('/'))
        .ok_or_else(|| anyhow!("image reference {reference:?} is not name:tag"))?;
    let umoci = find_program("umoci")
        .context("umoci not found; install it with `apt-get install -y umoci`")?;
    let work = absolute(work)?.join(format!("image-{}", container_id()));
    let layout = work.join("layout");
    let bundle = work.join("bundle");
    let image = format!("{}:{tag}", layout.display());
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    run_checked(
        Command::new(&umoci)
            .arg("init")
            .arg("--layout")
            .arg(&layout),
    )?;
    run_checked(Command::new(&umoci).args(["new", "--image", &image]))?;
    run_checked(
        Command::new(&umoci)
            .args(["unpack", "--image", &image])
            .arg(&bundle),
    )?;
    let mut copy_from = absolute(rootfs)?.into_os_string();
    copy_from.push("/.");
    run_checked(
        Command::new("cp")
            .arg("-a")
            .arg(copy_from)
            .arg(bundle.join("rootfs")),
    )?;
    run_checked(
        Command::new(&umoci)
            .args(["repack", "--image", &image])
            .arg(&bundle),
    )?;
    let mut config = Command::new(&umoci);
    config.args(["config", "--image", &image]);
    for arg in entrypoint {
        config.arg(format!("--config.entrypoint={arg}"));
    }
    run_checked(&mut config)?;
    let archive = work.join("image.tar");
    run_checked(
        Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&archive)
            .arg("."),
    )?;
    // The layout's index names the manifest by tag only; --base-name supplies the name.
    run_checked(
        c.ctr_in(namespace)
            .args(["images", "import", "--base-name", name])
            .arg(&archive),
    )?;
    let _ = fs::remove_dir_all(&work);
    Ok(())
}

/// Imports [`SANDBOX_IMAGE`] (busybox `sleep infinity`) into the `k8s.io` namespace so the
/// CRI plugin can create pod sandboxes without a registry.
pub fn import_pause_image(c: &Containerd, work: &Path) -> anyhow::Result<()> {
    let rootfs = rootfs_with(&[], &absolute(work)?.join("pause"))?;
    if !rootfs.join("bin/busybox").exists() {
        bail!("the pause image needs busybox; install it with `apt-get install -y busybox-static`");
    }
    import_image(
        c,
        &rootfs,
        SANDBOX_IMAGE,
        &["/bin/sleep", "infinity"],
        "k8s.io",
        work,
    )
}

/// Runs `cmd`, failing with its stderr when it does not exit 0.
fn run_checked(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Absolute paths of the shared objects `binary` loads, the dynamic loader included; empty
/// for a static binary.
fn shared_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .stdin(Stdio::null())
        .output()
        .context("running ldd (package libc-bin)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // glibc's ldd says this (exit 1) for static executables.
        if stdout.contains("not a dynamic executable")
            || stderr.contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        bail!("ldd {} failed: {stdout}{stderr}", binary.display());
    }
    let mut libs = Vec::new();
    for line in stdout.lines() {
        let line = line.trim();
        if line.contains("=> not found") {
            bail!(
                "{} needs a library the host lacks: {line}",
                binary.display()
            );
        }
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or
        // `/lib64/ld-linux-x86-64.so.2 (0x...)`; linux-vdso has no path.
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// Runs `args` in a fresh container over `rootfs` with `ctr run --rm --rootfs` and returns
/// ctr's output once the container has exited.
///
/// ctr's exit status is the container process's exit status. When ctr itself fails (the
/// runtime could not create or start the container) it exits 1 and says why on stderr,
/// prefixed `ctr: `; runc init's own errors (e.g. a denied syscall before the entrypoint)
/// also reach stderr.
///
/// `profile` is an OCI `LinuxSeccomp` JSON file (`defaultAction`, `architectures`,
/// `syscalls`), enforced by the runtime through `--seccomp --seccomp-profile`; `None` runs
/// without seccomp. ctr's spec sets `noNewPrivileges`, so runc installs the filter late,
/// right before execve (see [`crate::runtime_base`]). crun is selected with
/// `--runc-binary`, which the runc v2 shim passes through; `--rootfs` works with both. For
/// crun on a hybrid host call [`fix_crun_hybrid_hugetlb`] first.
pub fn ctr_run(
    c: &Containerd,
    rootfs: &Path,
    profile: Option<&Path>,
    runtime: Runtime,
    args: &[&str],
) -> anyhow::Result<Output> {
    let id = container_id();
    let mut cmd = run_command(c, rootfs, profile, runtime, &id, true)?;
    cmd.args(args);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning ctr")?;
    match wait_with_timeout(child, CTR_RUN_TIMEOUT)? {
        Some(output) => Ok(output),
        None => {
            let _ = quiet(c.ctr().args(["tasks", "kill", "-a", "-s", "SIGKILL", &id]));
            let _ = quiet(c.ctr().args(["tasks", "delete", "-f", &id]));
            let _ = quiet(c.ctr().args(["containers", "rm", &id]));
            bail!(
                "container {id} ({args:?} under {}) did not exit within {CTR_RUN_TIMEOUT:?}; \
                 killed it",
                runtime.binary_name()
            )
        }
    }
}

/// Like [`ctr_run`] but returns as soon as the container process started (`ctr run -d`).
/// The returned [`Task`] kills and removes the container when dropped.
pub fn ctr_run_detached<'c>(
    c: &'c Containerd,
    rootfs: &Path,
    profile: Option<&Path>,
    runtime: Runtime,
    args: &[&str],
) -> anyhow::Result<Task<'c>> {
    let id = container_id();
    let mut cmd = run_command(c, rootfs, profile, runtime, &id, false)?;
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ctr run -d")?;
    if !out.status.success() {
        bail!(
            "ctr run -d {id} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let task = Task { containerd: c, id };
    task.pid()?;
    Ok(task)
}

fn run_command(
    c: &Containerd,
    rootfs: &Path,
    profile: Option<&Path>,
    runtime: Runtime,
    id: &str,
    remove: bool,
) -> anyhow::Result<Command> {
    let rootfs = absolute(rootfs)?;
    let mut cmd = c.ctr();
    cmd.arg("run");
    cmd.arg(if remove { "--rm" } else { "--detach" });
    cmd.arg("--runc-binary").arg(runtime.binary()?);
    cmd.arg("--runc-root").arg(c.runtime_root());
    cmd.arg("--fifo-dir").arg(c.fifo_dir());
    if let Some(profile) = profile {
        cmd.arg("--seccomp")
            .arg("--seccomp-profile")
            .arg(absolute(profile)?);
    }
    cmd.arg("--rootfs").arg(rootfs).arg(id);
    Ok(cmd)
}

/// A container started by [`ctr_run_detached`].
#[derive(Debug)]
pub struct Task<'c> {
    containerd: &'c Containerd,
    id: String,
}

impl Task<'_> {
    /// containerd container (and task) id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Host pid of the container's init process, from `ctr tasks ls`.
    pub fn pid(&self) -> anyhow::Result<u32> {
        let out = self
            .containerd
            .ctr()
            .args(["tasks", "ls"])
            .stdin(Stdio::null())
            .output()
            .context("running ctr tasks ls")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        // TASK  PID  STATUS
        stdout
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut cols = l.split_whitespace();
                Some((cols.next()?, cols.next()?))
            })
            .find(|(task, _)| *task == self.id)
            .and_then(|(_, pid)| pid.parse().ok())
            .ok_or_else(|| anyhow!("task {} not in `ctr tasks ls`:\n{stdout}", self.id))
    }

    /// Cgroups of the container's init process.
    pub fn cgroups(&self) -> anyhow::Result<ProcCgroups> {
        ProcCgroups::of_pid(self.pid()?)
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        let c = self.containerd;
        let _ = quiet(
            c.ctr()
                .args(["tasks", "kill", "-a", "-s", "SIGKILL", &self.id]),
        );
        // The task must have exited before it can be deleted.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if quiet(c.ctr().args(["tasks", "delete", &self.id])).is_ok_and(|s| s.success()) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = quiet(c.ctr().args(["containers", "rm", &self.id]));
    }
}

/// Where a process sits in the cgroup hierarchies, as absolute directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroups {
    /// One entry per mounted v1 hierarchy: its controllers as in `/proc/PID/cgroup`
    /// (`"memory"`, `"cpu"`, `"name=systemd"`, ...) and the directory.
    pub v1: Vec<(String, PathBuf)>,
    /// The process's cgroup v2 directory, when a v2 hierarchy is mounted.
    pub unified: Option<PathBuf>,
}

impl ProcCgroups {
    /// Reads `/proc/PID/cgroup` and resolves each line against the cgroup mounts in
    /// `/proc/self/mountinfo`. Assumes the harness runs in the initial cgroup namespace
    /// (the mounts' root is `/`).
    pub fn of_pid(pid: u32) -> anyhow::Result<ProcCgroups> {
        let path = format!("/proc/{pid}/cgroup");
        let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let mounts = mount_points()?;
        let mut v1 = Vec::new();
        let mut unified = None;
        for line in text.lines() {
            // hierarchy-ID:controller-list:cgroup-path
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(cgroup)) =
                (parts.next(), parts.next(), parts.next())
            else {
                bail!("unexpected line in {path}: {line:?}");
            };
            let relative = cgroup.trim_start_matches('/');
            if id == "0" && controllers.is_empty() {
                if let Some(m) = mounts.iter().find(|m| m.fs_type == "cgroup2") {
                    unified = Some(m.mount_point.join(relative));
                }
                continue;
            }
            let wanted: BTreeSet<&str> = controllers.split(',').collect();
            let mount = mounts.iter().find(|m| {
                m.fs_type == "cgroup"
                    && wanted
                        .iter()
                        .all(|w| m.super_options.split(',').any(|o| o == *w))
            });
            if let Some(m) = mount {
                v1.push((controllers.to_owned(), m.mount_point.join(relative)));
            }
        }
        Ok(ProcCgroups { v1, unified })
    }

    /// The v1 directory of the hierarchy holding `controller` (e.g. `"memory"`).
    pub fn v1_path(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(c, _)| c.split(',').any(|x| x == controller))
            .map(|(_, p)| p.as_path())
    }

    /// The kernel's id of the process's v2 cgroup (what `bpf_get_current_cgroup_id()`
    /// returns for its threads).
    pub fn unified_id(&self) -> anyhow::Result<u64> {
        let path = self
            .unified
            .as_deref()
            .ok_or_else(|| anyhow!("no cgroup v2 hierarchy is mounted"))?;
        cgroup_id(path)
    }
}

/// The cgroup v2 id of a cgroup directory: on cgroup2 (kernfs) the inode number is the
/// kernfs node id, which is the cgroup id (`cgroup_id()` in include/linux/cgroup.h).
pub fn cgroup_id(dir: &Path) -> anyhow::Result<u64> {
    Ok(fs::metadata(dir)
        .with_context(|| format!("stat {}", dir.display()))?
        .ino())
}

/// Mount point of the cgroup v2 hierarchy, if one is mounted (`/sys/fs/cgroup/unified` on
/// hybrid hosts, `/sys/fs/cgroup` on pure v2 hosts).
pub fn cgroup2_mount() -> anyhow::Result<Option<PathBuf>> {
    Ok(mount_points()?
        .into_iter()
        .find(|m| m.fs_type == "cgroup2")
        .map(|m| m.mount_point))
}

#[derive(Debug)]
struct MountPoint {
    mount_point: PathBuf,
    fs_type: String,
    super_options: String,
}

/// Parses `/proc/self/mountinfo` (proc(5)): fields up to `-`, then fstype, source, super
/// options. Octal escapes in paths (`\040`) are decoded.
fn mount_points() -> anyhow::Result<Vec<MountPoint>> {
    let text =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut right = right.split(' ');
        let (Some(fs_type), Some(_source), Some(options)) =
            (right.next(), right.next(), right.next())
        else {
            continue;
        };
        mounts.push(MountPoint {
            mount_point: PathBuf::from(unescape_octal(point)),
            fs_type: fs_type.to_owned(),
            super_options: options.to_owned(),
        });
    }
    Ok(mounts)
}

fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(v) = s
                .get(i + 1..i + 4)
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A container id unique on this host across processes and calls.
fn container_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "rt-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits for `child`, collecting its output; `None` (child killed) after `timeout`.
fn wait_with_timeout(mut child: Child, timeout: Duration) -> anyhow::Result<Option<Output>> {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_reader = read(stdout.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err_reader = read(stderr.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for ctr")? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let stdout = out_reader
        .join()
        .map_err(|_| anyhow!("stdout reader thread panicked"))?;
    let stderr = err_reader
        .join()
        .map_err(|_| anyhow!("stderr reader thread panicked"))?;
    Ok(status.map(|status| Output {
        status,
        stdout,
        stderr,
    }))
}

/// Finds `name` in `PATH`, then in the sbin directories (runc lives in /usr/sbin, which a
/// non-login root shell or CI may not have in `PATH`).
pub fn find_program(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| anyhow!("{name} not found in PATH or the sbin directories"))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}
