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
    // Builds read no input; recorder/build.rs embeds the object built by
    // `build_bpf` instead of building it from inside the build.
    cmd.current_dir(workspace_root())
        .stdin(std::process::Stdio::null())
        .env("RECORDER_BPF_OBJECT", bpf_object());
    cmd
}

/// Where `build_bpf` leaves the BPF object.
pub fn bpf_object() -> PathBuf {
    workspace_root().join("target/bpf/bpfel-unknown-none/release/recorder")
}

/// Builds recorder-ebpf for the BPF target, from a clean environment, before
/// any cargo build of the workspace: run from inside a build script (as
/// aya-build does), the nested cargo's first `rustc -` probe was fed other
/// compilers' output in fresh clones and failed. The flags are aya-build's.
pub fn build_bpf() -> Result<()> {
    let root = workspace_root();
    let arch = std::env::consts::ARCH;
    let flags = format!("--cfg=bpf_target_arch=\"{arch}\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf");
    let mut cmd = Command::new("rustup");
    cmd.env_clear();
    for keep in ["PATH", "HOME", "RUSTUP_HOME", "CARGO_HOME", "TMPDIR"] {
        if let Some(value) = std::env::var_os(keep) {
            cmd.env(keep, value);
        }
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", flags)
        .args(["run", "nightly", "cargo", "build", "--package", "recorder-ebpf", "--bins", "--release"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core", "--target-dir"])
        .arg(root.join("target/bpf"))
        .current_dir(root.join("recorder-ebpf"))
        .stdin(std::process::Stdio::null());
    // In a fresh clone the first attempt has been seen to fail in its very
    // first step (nightly cargo's `rustc -` target probe reading garbage) and
    // the next one to succeed; cargo caches the failed probe, so drop the
    // cache before trying again.
    let mut result = run(&mut cmd);
    if result.is_err() {
        eprintln!("xtask: BPF build failed; clearing its rustc cache and retrying once");
        clear_rustc_info(&root.join("target/bpf"));
        std::thread::sleep(std::time::Duration::from_secs(3));
        result = run(&mut cmd);
    }
    match result {
        Ok(()) => {
            // Keep the committed fallback object in step with the source.
            let prebuilt = root.join("recorder/prebuilt/recorder-bpfel.o");
            if std::env::consts::ARCH == "x86_64" {
                let _ = std::fs::copy(bpf_object(), prebuilt);
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("xtask: {e:#}; the build falls back to recorder/prebuilt/recorder-bpfel.o");
            Ok(())
        }
    }
}

pub fn build_release() -> Result<()> {
    build_bpf()?;
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
