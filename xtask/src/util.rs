use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

pub fn recorder_bin() -> PathBuf {
    workspace_root().join("target/release/recorder")
}

/// Runs a command, inheriting stdio; fails with the command line if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// Runs a command and returns its stdout.
pub fn output(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed with {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(workspace_root()).stdin(std::process::Stdio::null());
    cmd
}

/// `cargo build --release -p recorder`: recorder/build.rs builds the BPF
/// object from source (aya-build) as part of it.
pub fn build_release() -> Result<()> {
    run(cargo().args(["build", "--release", "-p", "recorder"]))
}

/// `cargo fmt --check` and clippy with `-D warnings`: the userspace crates
/// on the host, and recorder-ebpf on its own BPF target with nightly.
pub fn lint() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))
        .context("cargo fmt --check found unformatted code; run `cargo fmt`")?;
    // The BPF object is not needed to lint the host crates (AYA_BUILD_SKIP:
    // build.rs embeds an empty one instead of building it again).
    run(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]).env("AYA_BUILD_SKIP", "1"))?;
    run(Command::new("rustup")
        .args(["run", "nightly", "cargo", "clippy", "--release", "-p", "recorder-ebpf"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core", "--target-dir"])
        .arg(workspace_root().join("target/lint-bpf"))
        .args(["--", "-D", "warnings"])
        .env("CARGO_ENCODED_RUSTFLAGS", format!("--cfg=bpf_target_arch=\"{}\"", std::env::consts::ARCH))
        .current_dir(workspace_root().join("recorder-ebpf"))
        .stdin(std::process::Stdio::null()))
}

/// Cross-builds the binary (and its BPF object, for aarch64's `pt_regs`)
/// for aarch64: no arm64 machine runs here, so this proves it builds.
pub fn cross_aarch64() -> Result<()> {
    run(cargo()
        .args(["build", "-p", "recorder", "--target", "aarch64-unknown-linux-gnu"])
        .env("PKG_CONFIG_ALLOW_CROSS", "1")
        .env("PKG_CONFIG_PATH", "/usr/lib/aarch64-linux-gnu/pkgconfig")
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc"))
}

/// This binary's `floor` subcommand (see `floor`), for benchmarks to run in
/// the background.
pub fn xtask_floor() -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap_or_else(|_| PathBuf::from("xtask")));
    cmd.arg("floor");
    cmd
}

pub fn test(extra: &[String]) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["test", "--no-fail-fast"]).args(extra).env("RECORDER_BIN", recorder_bin());
    run(&mut cmd)
}

/// Compiles a C benchmark/test program with gcc.
pub fn compile_c(source: &Path, out: &Path, flags: &[&str]) -> Result<()> {
    run(Command::new("gcc").args(flags).arg("-o").arg(out).arg(source))
}
