//! `ctr run` of a root filesystem directory, attached or detached.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use super::containerd::quiet;
use super::{CTR_RUN_TIMEOUT, Containerd, ProcCgroups, Runtime, absolute};

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
    let mut cmd = run_command(c, rootfs, profile, runtime, &id, true, &[])?;
    cmd.args(args);
    let child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().context("spawning ctr")?;
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
    ctr_run_detached_with(c, rootfs, profile, runtime, &[], args)
}

/// [`ctr_run_detached`] with more `ctr run` options, e.g. `--net-host` for a server the
/// host's clients reach on loopback.
pub fn ctr_run_detached_with<'c>(
    c: &'c Containerd,
    rootfs: &Path,
    profile: Option<&Path>,
    runtime: Runtime,
    options: &[&str],
    args: &[&str],
) -> anyhow::Result<Task<'c>> {
    let id = container_id();
    let mut cmd = run_command(c, rootfs, profile, runtime, &id, false, options)?;
    let out = cmd.args(args).stdin(Stdio::null()).output().context("running ctr run -d")?;
    if !out.status.success() {
        bail!("ctr run -d {id} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
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
    options: &[&str],
) -> anyhow::Result<Command> {
    let rootfs = absolute(rootfs)?;
    let mut cmd = c.ctr();
    cmd.arg("run");
    cmd.arg(if remove { "--rm" } else { "--detach" });
    cmd.arg("--runc-binary").arg(runtime.binary()?);
    cmd.arg("--runc-root").arg(c.runtime_root());
    cmd.arg("--fifo-dir").arg(c.fifo_dir());
    if let Some(profile) = profile {
        cmd.arg("--seccomp").arg("--seccomp-profile").arg(absolute(profile)?);
    }
    cmd.args(options);
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

    /// The task's status in `ctr tasks ls` (`RUNNING`, `STOPPED`, ...); empty when it is
    /// not listed.
    pub fn status(&self) -> anyhow::Result<String> {
        let out = self
            .containerd
            .ctr()
            .args(["tasks", "ls"])
            .stdin(Stdio::null())
            .output()
            .context("running ctr tasks ls")?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cols| cols.first() == Some(&self.id.as_str()))
            .and_then(|cols| cols.get(2).map(|s| s.to_string()))
            .unwrap_or_default())
    }

    /// `ctr tasks kill -s SIGNAL`: the signal goes to the container's init process only,
    /// as containerd (and the kubelet through it) delivers a stop signal.
    pub fn kill(&self, signal: &str) -> anyhow::Result<()> {
        let out = self
            .containerd
            .ctr()
            .args(["tasks", "kill", "-s", signal, &self.id])
            .stdin(Stdio::null())
            .output()
            .context("running ctr tasks kill")?;
        if !out.status.success() {
            bail!("ctr tasks kill -s {signal} {} failed: {}", self.id, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Cgroups of the container's init process.
    pub fn cgroups(&self) -> anyhow::Result<ProcCgroups> {
        ProcCgroups::of_pid(self.pid()?)
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        let c = self.containerd;
        let _ = quiet(c.ctr().args(["tasks", "kill", "-a", "-s", "SIGKILL", &self.id]));
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

/// A container id unique on this host across processes and calls.
pub(super) fn container_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("rt-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
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
    let stdout = out_reader.join().map_err(|_| anyhow!("stdout reader thread panicked"))?;
    let stderr = err_reader.join().map_err(|_| anyhow!("stderr reader thread panicked"))?;
    Ok(status.map(|status| Output { status, stdout, stderr }))
}
