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
    if run(cargo().args(["build", "--release", "-p", "recorder"])).is_ok() {
        return Ok(());
    }
    // A nested cargo (aya-build's) can cache a failed rustc probe in its
    // .rustc_info.json; drop those caches and try once more.
    eprintln!("xtask: release build failed; clearing the BPF build's rustc caches and retrying once");
    clear_rustc_info(&workspace_root().join("target"));
    run(cargo().args(["build", "--release", "-p", "recorder"]))
}

fn clear_rustc_info(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == ".rustc_info.json") {
            let _ = std::fs::remove_file(&path);
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            clear_rustc_info(&path);
        }
    }
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
