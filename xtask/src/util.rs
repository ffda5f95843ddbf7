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
    // Builds read no input; an inherited stdin would reach rustc's `rustc -`
    // target probe (run by aya-build's nested cargo) as source code.
    cmd.current_dir(workspace_root()).stdin(std::process::Stdio::null());
    cmd
}

pub fn build_release() -> Result<()> {
    run(cargo().args(["build", "--release", "-p", "recorder"]))
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
