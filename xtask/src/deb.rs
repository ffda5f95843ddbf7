//! `cargo xtask man` and `cargo xtask deb`.
//!
//! Man pages and completions come from the built binary (`recorder man
//! --dir`, `recorder completions SHELL`), which generates them from its own
//! clap definitions: xtask does not depend on the recorder crate (that would
//! build the BPF object inside xtask's build), and a separate crate holding
//! only the clap definitions would have to take half of recorder with it
//! (value types, the profile formats).
//!
//! The package is assembled with `dpkg-deb`, which every Debian machine has,
//! rather than cargo-deb, which would be one more tool to build here and
//! still could not generate the man pages and completions itself. Depends
//! comes from `dpkg-shlibdeps`, as in any Debian package build.

use std::{
    fs,
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::util::{self, output, recorder_bin, workspace_root};

/// Where `cargo xtask man` writes by default.
pub fn default_man_dir() -> PathBuf {
    workspace_root().join("target/man")
}

/// Writes one man page per command into `dir` from the built binary.
pub fn man(dir: &Path) -> Result<()> {
    let bin = recorder_bin();
    if !bin.exists() {
        bail!("{} does not exist; run `cargo xtask build` first", bin.display());
    }
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    util::run(Command::new(&bin).arg("man").arg("--dir").arg(dir))?;
    Ok(())
}

/// Where the package is written: target/debian/recorder_VERSION_ARCH.deb.
pub fn deb_dir() -> PathBuf {
    workspace_root().join("target/debian")
}

/// Builds the .deb from the release binary; returns its path.
pub fn build() -> Result<PathBuf> {
    let root = workspace_root();
    let bin = recorder_bin();
    // "recorder 0.1.0": the version the binary itself reports.
    let version_line = output(Command::new(&bin).arg("--version"))?;
    let version = version_line.split_whitespace().nth(1).context("recorder --version printed no version")?.to_owned();
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?.trim().to_owned();

    let out_dir = deb_dir();
    let stage = out_dir.join("stage");
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    fs::create_dir_all(&stage)?;

    let staged_bin = stage.join("usr/bin/recorder");
    install(&bin, &staged_bin, 0o755)?;
    // Debian ships binaries stripped (policy 10.1); the BPF object the
    // binary embeds is data and stays.
    util::run(Command::new("strip").args(["--strip-unneeded", "--remove-section=.comment"]).arg(&staged_bin))?;

    // Man pages, gzip -9n (no name or time stamp: reproducible).
    let man_tmp = out_dir.join("man");
    man(&man_tmp)?;
    let man1 = stage.join("usr/share/man/man1");
    fs::create_dir_all(&man1)?;
    let mut pages = Vec::new();
    for entry in fs::read_dir(&man_tmp)? {
        pages.push(entry?.path());
    }
    pages.sort();
    for page in &pages {
        let name = page.file_name().context("page name")?;
        let gz = man1.join(format!("{}.gz", name.to_string_lossy()));
        let data = Command::new("gzip").args(["-9n", "-c"]).arg(page).output().context("gzip")?;
        if !data.status.success() {
            bail!("gzip {} failed", page.display());
        }
        fs::write(&gz, data.stdout)?;
        fs::set_permissions(&gz, fs::Permissions::from_mode(0o644))?;
    }

    // Completions, where each shell's packaged completions go on Debian.
    for (shell, path) in [
        ("bash", "usr/share/bash-completion/completions/recorder"),
        ("zsh", "usr/share/zsh/vendor-completions/_recorder"),
        ("fish", "usr/share/fish/vendor_completions.d/recorder.fish"),
    ] {
        let script = output(Command::new(&bin).args(["completions", shell]))?;
        write(&stage.join(path), script.as_bytes(), 0o644)?;
    }

    // The shipped base sets and shutdown sets (the binary embeds them; these
    // are for reading and for `recorder diff`/`merge`).
    for set in ["baseline", "shutdown"] {
        let from = root.join("recorder/data").join(set);
        for entry in fs::read_dir(&from).with_context(|| format!("reading {}", from.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = path.file_name().context("file name")?;
                install(&path, &stage.join("usr/share/recorder").join(set).join(name), 0o644)?;
            }
        }
    }

    // Documentation, and the example DaemonSet when the tree has one.
    let doc = stage.join("usr/share/doc/recorder");
    install(&root.join("README.md"), &doc.join("README.md"), 0o644)?;
    write(&doc.join("copyright"), copyright().as_bytes(), 0o644)?;
    let deploy = root.join("deploy/kubernetes");
    if deploy.is_dir() {
        copy_tree(&deploy, &doc.join("examples/kubernetes"))?;
    } else {
        eprintln!("xtask deb: no deploy/kubernetes in this tree; the package has no example DaemonSet");
    }

    let installed_kib = du_kib(&stage)?;
    let depends = shlib_depends(&bin)?;
    let control = format!(
        "Package: recorder\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: {maintainer}\n\
         Installed-Size: {installed_kib}\n\
         Depends: {depends}\n\
         Section: admin\n\
         Priority: optional\n\
         Description: record a workload's syscalls with eBPF and write a seccomp profile\n \
         recorder watches the syscalls a command, a cgroup, a container or a\n \
         Kubernetes pod makes, from inside the kernel (an eBPF program on\n \
         raw_syscalls:sys_enter), and writes the minimal OCI seccomp profile\n \
         it needs. It also compares, merges, converts and checks profiles.\n",
        maintainer = std::env::var("DEBEMAIL").unwrap_or_else(|_| "recorder developers <root@localhost>".to_owned()),
    );
    write(&stage.join("DEBIAN/control"), control.as_bytes(), 0o644)?;
    write(&stage.join("DEBIAN/md5sums"), md5sums(&stage)?.as_bytes(), 0o644)?;

    let deb = out_dir.join(format!("recorder_{version}_{arch}.deb"));
    util::run(Command::new("dpkg-deb").args(["--root-owner-group", "-Zxz", "--build"]).arg(&stage).arg(&deb))?;
    eprintln!("xtask deb: {}", deb.display());
    Ok(deb)
}

fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    let data = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write(to, &data, mode)
}

fn write(to: &Path, data: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut f = fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
    f.write_all(data)?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from)? {
        let path = entry?.path();
        let name = path.file_name().context("file name")?;
        if path.is_dir() {
            copy_tree(&path, &to.join(name))?;
        } else {
            install(&path, &to.join(name), 0o644)?;
        }
    }
    Ok(())
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Installed-Size: the payload in KiB, rounded up per file.
fn du_kib(stage: &Path) -> Result<u64> {
    let mut all = Vec::new();
    files(stage, &mut all)?;
    let mut kib = 0;
    for f in all {
        kib += fs::metadata(&f)?.len().div_ceil(1024);
    }
    Ok(kib)
}

/// DEBIAN/md5sums: one line per payload file, as dpkg --verify reads it.
fn md5sums(stage: &Path) -> Result<String> {
    let mut all = Vec::new();
    files(stage, &mut all)?;
    all.retain(|f| !f.starts_with(stage.join("DEBIAN")));
    all.sort();
    let mut cmd = Command::new("md5sum");
    cmd.current_dir(stage);
    for f in &all {
        cmd.arg(f.strip_prefix(stage)?);
    }
    output(&mut cmd)
}

/// The binary's shared-library dependencies as Debian packages, from
/// dpkg-shlibdeps (it wants a debian/control to read; a minimal one in a
/// scratch directory will do).
fn shlib_depends(bin: &Path) -> Result<String> {
    let scratch = tempfile::tempdir()?;
    fs::create_dir_all(scratch.path().join("debian"))?;
    fs::write(scratch.path().join("debian/control"), "Source: recorder\n\nPackage: recorder\nArchitecture: any\n")?;
    let out = output(Command::new("dpkg-shlibdeps").arg("-O").arg("-e").arg(bin).current_dir(scratch.path()))
        .context("dpkg-shlibdeps (Debian's dpkg-dev; `cargo xtask setup` installs it)")?;
    let depends = out
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .context("dpkg-shlibdeps printed no shlibs:Depends")?;
    Ok(depends.trim().to_owned())
}

fn copyright() -> String {
    "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
     Upstream-Name: recorder\n\
     \n\
     Files: *\n\
     License: MIT or Apache-2.0\n\
     \n\
     Files: usr/share/recorder/*\n\
     Comment: runtime base sets and shutdown sets measured on Debian 12 (see README.md)\n\
     License: MIT or Apache-2.0\n\
     \n\
     Files: usr/bin/recorder\n\
     Comment: the one-line syscall descriptions `recorder explain` prints are the NAME\n \
     lines of section 2 of Linux man-pages 6.03 (recorder/data/syscall-descriptions.tsv),\n \
     each under its page's license, mostly Linux-man-pages-copyleft.\n\
     License: (MIT or Apache-2.0) and Linux-man-pages-copyleft\n"
        .to_owned()
}
