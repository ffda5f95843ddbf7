//! Cgroup placement of processes on v1, v2 and hybrid hosts, and crun's hybrid-mode fix.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

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
    let controllers = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut changed = false;
    for controller in controllers.split_whitespace() {
        let target = Path::new("/sys/fs/cgroup").join(controller);
        fs::create_dir_all(&target).with_context(|| format!("creating {} (needs root)", target.display()))?;
        let source = CString::new("cgroup")?;
        let fstype = CString::new("cgroup")?;
        let options = CString::new(controller)?;
        let target_c = CString::new(target.as_os_str().as_bytes())?;
        // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
        let rc =
            unsafe { libc::mount(source.as_ptr(), target_c.as_ptr(), fstype.as_ptr(), 0, options.as_ptr().cast()) };
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
            let (Some(id), Some(controllers), Some(cgroup)) = (parts.next(), parts.next(), parts.next()) else {
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
            let mount = mounts
                .iter()
                .find(|m| m.fs_type == "cgroup" && wanted.iter().all(|w| m.super_options.split(',').any(|o| o == *w)));
            if let Some(m) = mount {
                v1.push((controllers.to_owned(), m.mount_point.join(relative)));
            }
        }
        Ok(ProcCgroups { v1, unified })
    }

    /// The v1 directory of the hierarchy holding `controller` (e.g. `"memory"`).
    pub fn v1_path(&self, controller: &str) -> Option<&Path> {
        self.v1.iter().find(|(c, _)| c.split(',').any(|x| x == controller)).map(|(_, p)| p.as_path())
    }

    /// The kernel's id of the process's v2 cgroup (what `bpf_get_current_cgroup_id()`
    /// returns for its threads).
    pub fn unified_id(&self) -> anyhow::Result<u64> {
        let path = self.unified.as_deref().ok_or_else(|| anyhow!("no cgroup v2 hierarchy is mounted"))?;
        cgroup_id(path)
    }
}

/// The cgroup v2 id of a cgroup directory: on cgroup2 (kernfs) the inode number is the
/// kernfs node id, which is the cgroup id (`cgroup_id()` in include/linux/cgroup.h).
pub fn cgroup_id(dir: &Path) -> anyhow::Result<u64> {
    Ok(fs::metadata(dir).with_context(|| format!("stat {}", dir.display()))?.ino())
}

/// Mount point of the cgroup v2 hierarchy, if one is mounted (`/sys/fs/cgroup/unified` on
/// hybrid hosts, `/sys/fs/cgroup` on pure v2 hosts).
pub fn cgroup2_mount() -> anyhow::Result<Option<PathBuf>> {
    Ok(mount_points()?.into_iter().find(|m| m.fs_type == "cgroup2").map(|m| m.mount_point))
}

/// Mount points of every cgroup hierarchy, v1 and v2.
pub fn cgroup_mounts() -> anyhow::Result<Vec<PathBuf>> {
    Ok(mount_points()?
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .map(|m| m.mount_point)
        .collect())
}

#[derive(Debug)]
pub(super) struct MountPoint {
    pub(super) mount_point: PathBuf,
    pub(super) fs_type: String,
    super_options: String,
}

/// Parses `/proc/self/mountinfo` (proc(5)): fields up to `-`, then fstype, source, super
/// options. Octal escapes in paths (`\040`) are decoded.
pub(super) fn mount_points() -> anyhow::Result<Vec<MountPoint>> {
    let text = fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut right = right.split(' ');
        let (Some(fs_type), Some(_source), Some(options)) = (right.next(), right.next(), right.next()) else {
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
            && let Some(v) = s.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(d, 8).ok())
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

/// Spawns `cmd` inside the cgroup v2 directory `dir` (created if missing): the child
/// joins it before its exec, so everything it runs is in there.
pub fn spawn_in_cgroup(cmd: &mut std::process::Command, dir: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt as _;
    fs::create_dir_all(dir).expect("mkdir cgroup");
    let procs = fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs")).expect("cgroup.procs");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&procs);
    // SAFETY: only write(2) in the child before exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        });
    }
    cmd.spawn().expect("the command starts in its cgroup")
}

/// `sleep 600` started inside a cgroup v2 directory of a test's own (created if missing, so
/// its execve happened before any recording), killed and the directory removed on drop.
pub struct Sleeper {
    pub dir: PathBuf,
    pub child: std::process::Child,
}

impl Sleeper {
    pub fn start_in(dir: PathBuf) -> Sleeper {
        let child = spawn_in_cgroup(std::process::Command::new("sleep").arg("600"), &dir);
        Sleeper { dir, child }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Cgroup directories of a test's own, created in order and removed (deepest first) on
/// drop.
pub struct CgroupDirs(pub Vec<PathBuf>);

impl CgroupDirs {
    pub fn create(dirs: Vec<PathBuf>) -> CgroupDirs {
        for dir in &dirs {
            fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        }
        CgroupDirs(dirs)
    }
}

impl Drop for CgroupDirs {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}
