//! Root filesystems made of host binaries, and OCI images made of root filesystems.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, anyhow, bail};

use super::ctr::container_id;
use super::{Containerd, SANDBOX_IMAGE, absolute, find_program};

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
        let name = file.file_name().ok_or_else(|| anyhow!("{} has no file name", file.display()))?;
        let target = rootfs.join("bin").join(name);
        fs::copy(file, &target).with_context(|| format!("copying {} into the rootfs", file.display()))?;
        libraries.extend(shared_libraries(file)?);
    }
    for lib in libraries {
        let relative = lib.strip_prefix("/").unwrap_or(&lib);
        let target = rootfs.join(relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        // fs::copy follows symlinks, so /lib64/ld-linux-x86-64.so.2 arrives as a file.
        fs::copy(&lib, &target).with_context(|| format!("copying {} into the rootfs", lib.display()))?;
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
    let umoci = find_program("umoci").context("umoci not found; install it with `apt-get install -y umoci`")?;
    let work = absolute(work)?.join(format!("image-{}", container_id()));
    let layout = work.join("layout");
    let bundle = work.join("bundle");
    let image = format!("{}:{tag}", layout.display());
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    run_checked(Command::new(&umoci).arg("init").arg("--layout").arg(&layout))?;
    run_checked(Command::new(&umoci).args(["new", "--image", &image]))?;
    run_checked(Command::new(&umoci).args(["unpack", "--image", &image]).arg(&bundle))?;
    let mut copy_from = absolute(rootfs)?.into_os_string();
    copy_from.push("/.");
    run_checked(Command::new("cp").arg("-a").arg(copy_from).arg(bundle.join("rootfs")))?;
    run_checked(Command::new(&umoci).args(["repack", "--image", &image]).arg(&bundle))?;
    let mut config = Command::new(&umoci);
    config.args(["config", "--image", &image]);
    for arg in entrypoint {
        config.arg(format!("--config.entrypoint={arg}"));
    }
    run_checked(&mut config)?;
    let archive = work.join("image.tar");
    run_checked(Command::new("tar").arg("-C").arg(&layout).arg("-cf").arg(&archive).arg("."))?;
    // The layout's index names the manifest by tag only; --base-name supplies the name.
    run_checked(c.ctr_in(namespace).args(["images", "import", "--base-name", name]).arg(&archive))?;
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
    import_image(c, &rootfs, SANDBOX_IMAGE, &["/bin/sleep", "infinity"], "k8s.io", work)
}

/// Runs `cmd`, failing with its stderr when it does not exit 0.
fn run_checked(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Absolute paths of the shared objects `binary` loads, the dynamic loader included; empty
/// for a static binary.
pub fn shared_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out =
        Command::new("ldd").arg(binary).stdin(Stdio::null()).output().context("running ldd (package libc-bin)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // glibc's ldd says this (exit 1) for static executables.
        if stdout.contains("not a dynamic executable") || stderr.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        bail!("ldd {} failed: {stdout}{stderr}", binary.display());
    }
    let mut libs = Vec::new();
    for line in stdout.lines() {
        let line = line.trim();
        if line.contains("=> not found") {
            bail!("{} needs a library the host lacks: {line}", binary.display());
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
