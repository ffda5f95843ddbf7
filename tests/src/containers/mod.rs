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

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};

mod cgroups;
mod containerd;
mod ctr;
mod rootfs;

pub use cgroups::{
    CgroupDirs, ProcCgroups, Sleeper, cgroup_id, cgroup_mounts, cgroup2_mount, fix_crun_hybrid_hugetlb, spawn_in_cgroup,
};
pub use containerd::Containerd;
pub use ctr::{Task, ctr_run, ctr_run_detached, ctr_run_detached_with};
pub use rootfs::{import_image, import_pause_image, rootfs_with, shared_libraries};

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
pub(crate) const CTR_RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long containerd may take to answer on its socket after it was started.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// `sun_path` holds 108 bytes including the NUL; containerd also appends `.ttrpc`.
pub(crate) const MAX_SOCKET_PATH: usize = 100;

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
            format!("{} not found; install it with `apt-get install -y {}`", self.binary_name(), self.binary_name())
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

/// Finds `name` in `PATH`, then in the sbin directories (runc lives in /usr/sbin, which a
/// non-login root shell or CI may not have in `PATH`).
pub fn find_program(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .ok_or_else(|| anyhow!("{name} not found in PATH or the sbin directories"))
}

pub(crate) fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}
