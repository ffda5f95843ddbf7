//! `cargo xtask image`: the recorder's OCI image, built locally with umoci
//! (no registry, no daemon): one layer holding the static `recorder` binary
//! and its own seccomp profile, nothing else.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::util;

/// The image's name, as deploy/kubernetes/base names it.
pub const NAME: &str = "localhost/recorder";

/// The image's tag: the recorder crate's version.
pub fn tag() -> Result<String> {
    let manifest = util::workspace_root().join("recorder/Cargo.toml");
    let text = fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("version = \"").and_then(|v| v.strip_suffix('"')))
        .map(str::to_owned)
        .context("recorder/Cargo.toml has no version line")
}

/// Where the image archive goes (an OCI layout as a tar, for
/// `ctr images import --base-name localhost/recorder`).
pub fn archive() -> PathBuf {
    util::workspace_root().join("target/image/recorder.oci.tar")
}

/// What `build` made, for BENCHMARKS.md.
pub struct Built {
    pub archive: PathBuf,
    pub reference: String,
    /// Bytes of the compressed layer (what a node downloads).
    pub layer_bytes: u64,
    /// Bytes of the OCI archive (layer, config, manifest, index).
    pub archive_bytes: u64,
    /// Bytes of the files in the image.
    pub binary_bytes: u64,
    pub profile_bytes: u64,
}

pub fn build() -> Result<Built> {
    let binary = util::static_recorder_bin();
    check_static(&binary)?;
    let profile = util::workspace_root().join("deploy/recorder-seccomp.json");
    if !profile.exists() {
        bail!("{} is missing; run `cargo xtask self-profile`", profile.display());
    }
    let umoci = which("umoci").context("umoci not found; `cargo xtask setup` installs it")?;
    let tag = tag()?;
    let dir = util::workspace_root().join("target/image");
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    for old in [&layout, &bundle] {
        if old.exists() {
            fs::remove_dir_all(old).with_context(|| format!("removing {}", old.display()))?;
        }
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let image = format!("{}:{tag}", layout.display());
    util::run(Command::new(&umoci).arg("init").arg("--layout").arg(&layout))?;
    util::run(Command::new(&umoci).args(["new", "--image", &image]))?;
    util::run(Command::new(&umoci).args(["unpack", "--image", &image]).arg(&bundle))?;
    let rootfs = bundle.join("rootfs");
    let in_image = rootfs.join("recorder");
    fs::copy(&binary, &in_image).with_context(|| format!("copying {}", binary.display()))?;
    // Symbols only: the embedded BPF object is data and stays.
    util::run(Command::new("strip").arg("--strip-all").arg(&in_image))?;
    let binary_bytes = fs::metadata(&in_image).map(|m| m.len()).context("stat the image's binary")?;
    fs::copy(&profile, rootfs.join("recorder-seccomp.json")).context("copying the seccomp profile")?;
    util::run(Command::new(&umoci).args(["repack", "--image", &image]).arg(&bundle))?;
    util::run(Command::new(&umoci).args([
        "config",
        "--image",
        &image,
        "--config.entrypoint=/recorder",
        "--config.cmd=daemon",
        "--config.user=0:0",
        "--config.workingdir=/",
        "--config.label=org.opencontainers.image.title=recorder",
        &format!("--config.label=org.opencontainers.image.version={tag}"),
        "--config.label=org.opencontainers.image.description=seccomp profiles from what workloads really call (eBPF)",
    ]))?;
    util::run(Command::new(&umoci).args(["gc", "--layout"]).arg(&layout))?;
    let archive = archive();
    let _ = fs::remove_file(&archive);
    util::run(Command::new("tar").arg("-C").arg(&layout).arg("-cf").arg(&archive).arg("."))?;
    fs::remove_dir_all(&bundle).with_context(|| format!("removing {}", bundle.display()))?;

    let layer_bytes = largest_blob(&layout.join("blobs/sha256"))?;
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).with_context(|| format!("stat {}", p.display()));
    Ok(Built {
        reference: format!("{NAME}:{tag}"),
        layer_bytes,
        archive_bytes: size(&archive)?,
        binary_bytes,
        profile_bytes: size(&profile)?,
        archive,
    })
}

/// The image must not need anything from a base image: no dynamic loader,
/// no shared library.
fn check_static(binary: &Path) -> Result<()> {
    let out = Command::new("ldd").arg(binary).output().context("running ldd")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !(text.contains("not a dynamic executable") || text.contains("statically linked")) {
        bail!("{} is not statically linked:\n{text}", binary.display());
    }
    Ok(())
}

/// The layer is the largest blob (config, manifest and index are small).
fn largest_blob(dir: &Path) -> Result<u64> {
    let mut largest = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        largest = largest.max(entry?.metadata()?.len());
    }
    Ok(largest)
}

fn which(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} is not in PATH"))
}

/// The "Container image" section of BENCHMARKS.md.
pub fn benchmarks_section(built: &Built) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    format!(
        "Written by `cargo xtask image`. One layer, no base image: the static `recorder` binary (glibc \
         static, libseccomp static, the BPF object embedded) and its own seccomp profile.\n\n\
         | what | bytes | MiB |\n|---|---:|---:|\n\
         | `/recorder` (static, stripped) | {} | {:.1} |\n\
         | `/recorder-seccomp.json` | {} | {:.3} |\n\
         | compressed layer (what a node pulls) | {} | {:.1} |\n\
         | OCI archive `{}` | {} | {:.1} |\n\nImage: `{}`.\n",
        built.binary_bytes,
        mib(built.binary_bytes),
        built.profile_bytes,
        mib(built.profile_bytes),
        built.layer_bytes,
        mib(built.layer_bytes),
        built.archive.strip_prefix(util::workspace_root()).unwrap_or(&built.archive).display(),
        built.archive_bytes,
        mib(built.archive_bytes),
        built.reference,
    )
}
