//! Builds recorder-ebpf for the BPF target with aya-build (nightly +
//! bpf-linker, see xtask setup) and leaves the object in OUT_DIR, where
//! `src/bpf/loader.rs` embeds it.
use anyhow::Context as _;
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    detach_stdin()?;
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    let root = std::path::Path::new(&manifest_dir)
        .parent()
        .context("recorder has no parent directory")?;
    let ebpf_dir = root.join("recorder-ebpf");
    let common_dir = root.join("recorder-common");
    println!("cargo:rerun-if-changed={}", common_dir.display());
    let ebpf_dir = ebpf_dir.to_str().context("non-UTF-8 path to recorder-ebpf")?;
    aya_build::build_ebpf(
        [Package { name: "recorder-ebpf", root_dir: ebpf_dir, ..Default::default() }],
        Toolchain::Nightly,
    )
    .context("building recorder-ebpf failed; run `cargo xtask setup` to install rust-src and bpf-linker")
}

/// aya-build runs a nested cargo that inherits this script's stdin, and that
/// cargo probes its rustc with `rustc -` (source on stdin). Seen on these
/// machines: the probe read another build script's compiler output from an
/// inherited descriptor and failed ("unknown start of token"), and cargo
/// then cached the failure. Point fd 0 at /dev/null first.
fn detach_stdin() -> anyhow::Result<()> {
    use std::os::fd::AsRawFd as _;
    let null = std::fs::File::open("/dev/null").context("opening /dev/null")?;
    // SAFETY: dup2 onto fd 0 with a valid open descriptor; `null` stays open
    // until after the call and fd 0 then refers to its own description.
    let rc = unsafe { libc::dup2(null.as_raw_fd(), 0) };
    anyhow::ensure!(rc == 0, "redirecting stdin to /dev/null failed");
    Ok(())
}
