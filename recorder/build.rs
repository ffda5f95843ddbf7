//! Builds recorder-ebpf for the BPF target and leaves the object in OUT_DIR,
//! where `src/bpf/loader.rs` embeds it: aya-template's build script.
//! aya-build runs `rustup run nightly cargo build --target bpfel-unknown-none
//! -Z build-std=core` on the recorder-ebpf package; recorder-ebpf is also a
//! build-dependency, so cargo rebuilds this when it or recorder-common
//! changes. `cargo xtask setup` installs what that needs (nightly's rust-src
//! and bpf-linker).
//!
//! `AYA_BUILD_SKIP=1` (aya-build's own switch) skips the BPF build, for
//! `cargo check` and clippy without nightly: an empty object is embedded,
//! and a binary built that way refuses to record with a clear error. A build
//! that should produce the object and cannot fails; nothing else is ever
//! embedded.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?);
    let ebpf_dir = manifest_dir.parent().context("recorder has no parent directory")?.join("recorder-ebpf");
    let root_dir = ebpf_dir.to_str().ok_or_else(|| anyhow!("{} is not UTF-8", ebpf_dir.display()))?;
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let object = out_dir.join("recorder");
    // A previous build's object must never survive a failed or skipped one.
    match std::fs::remove_file(&object) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing the old {}", object.display())),
    }
    let package = aya_build::Package { name: "recorder-ebpf", root_dir, ..Default::default() };
    aya_build::build_ebpf([package], aya_build::Toolchain::default()).context(
        "building the BPF object (recorder-ebpf) failed; run `cargo xtask setup` to install nightly's rust-src and \
         bpf-linker, or set AYA_BUILD_SKIP=1 to check or lint without it",
    )?;
    if !object.exists() {
        // aya-build skipped the build (AYA_BUILD_SKIP): embed an empty object,
        // which the loader refuses at run time.
        std::fs::write(&object, []).with_context(|| format!("writing {}", object.display()))?;
    }
    Ok(())
}
