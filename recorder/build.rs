//! Builds recorder-ebpf for the BPF target with aya-build (nightly +
//! bpf-linker, see xtask setup) and leaves the object in OUT_DIR, where
//! `src/bpf/loader.rs` embeds it.
use anyhow::Context as _;
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
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
