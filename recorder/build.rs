//! Builds recorder-ebpf for the BPF target (nightly + bpf-linker, see xtask
//! setup) and leaves the object in OUT_DIR, where `src/bpf/loader.rs`
//! embeds it.
//!
//! `cargo xtask` builds the object before the workspace build and passes it
//! in `RECORDER_BPF_OBJECT`. Otherwise this runs the same nested cargo as
//! aya-build's `build_ebpf` (rustup run
//! nightly cargo build --target bpfel-unknown-none -Z build-std=core, with
//! the same rustflags), but with a cleared environment: in a fresh clone,
//! the nested cargo run from aya-build with this build script's environment
//! fed its first `rustc -` target probe garbage (another rustc's warnings)
//! and failed every time, while the same command from a clean shell works.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

/// What aya-build passes (`--cfg bpf_target_arch`, BTF for the loader).
const RUSTFLAGS: &str = "--cfg=bpf_target_arch=\"x86_64\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf";

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    let root = Path::new(&manifest_dir).parent().context("recorder has no parent directory")?;
    let ebpf_dir = root.join("recorder-ebpf");
    println!("cargo:rerun-if-changed={}", ebpf_dir.display());
    println!("cargo:rerun-if-changed={}", root.join("recorder-common").display());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    // `cargo xtask` builds the object first, outside any build script, and
    // points here; a plain `cargo build` builds it below.
    println!("cargo:rerun-if-env-changed=RECORDER_BPF_OBJECT");
    if let Some(object) = std::env::var_os("RECORDER_BPF_OBJECT").map(PathBuf::from)
        && object.exists()
    {
        println!("cargo:rerun-if-changed={}", object.display());
        std::fs::copy(&object, out_dir.join("recorder"))
            .with_context(|| format!("copying {} into OUT_DIR", object.display()))?;
        return Ok(());
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").context("CARGO_CFG_TARGET_ARCH not set")?;
    let target_dir = out_dir.join("bpf-target");

    let mut cmd = Command::new("rustup");
    cmd.env_clear();
    for keep in ["PATH", "HOME", "RUSTUP_HOME", "CARGO_HOME", "RUSTUP_TOOLCHAIN_SOURCE", "TMPDIR"] {
        if let Some(value) = std::env::var_os(keep) {
            cmd.env(keep, value);
        }
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS.replace("x86_64", &arch))
        .args(["run", "nightly", "cargo", "build", "--package", "recorder-ebpf", "--bins", "--release"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core", "--target-dir"])
        .arg(&target_dir)
        .current_dir(&ebpf_dir)
        .stdin(std::process::Stdio::null());
    let out = cmd.output().context("running `rustup run nightly cargo`; is rustup installed?")?;
    if !out.status.success() {
        // Fallback: the object built from this commit's recorder-ebpf,
        // committed for fresh clones where nightly cargo's first `rustc -`
        // probe fails (README, Limits). Refresh it with `cargo xtask build`.
        let prebuilt = Path::new(&manifest_dir).join("prebuilt/recorder-bpfel.o");
        if arch == "x86_64" && prebuilt.exists() {
            println!(
                "cargo:warning=building recorder-ebpf failed ({}); using the committed {}",
                out.status,
                prebuilt.display()
            );
            std::fs::copy(&prebuilt, out_dir.join("recorder")).context("copying the prebuilt BPF object")?;
            return Ok(());
        }
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            println!("cargo:warning={line}");
        }
        bail!(
            "building recorder-ebpf failed ({}); run `cargo xtask setup` to install rust-src and bpf-linker",
            out.status
        );
    }
    let object = target_dir.join("bpfel-unknown-none/release/recorder");
    std::fs::copy(&object, out_dir.join("recorder"))
        .with_context(|| format!("copying {} into OUT_DIR", object.display()))?;
    Ok(())
}
