//! Builds recorder-ebpf for the BPF target with aya-build (nightly +
//! bpf-linker, see xtask setup) and leaves the object in OUT_DIR, where
//! `src/bpf/loader.rs` embeds it.
use anyhow::Context as _;
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    detach_stdin()?;
    // The nested cargo must not join this build's jobserver: its pipe fds
    // are named in CARGO_MAKEFLAGS but are not ours to share, and a fresh
    // clone's parallel build was seen feeding other rustc output into the
    // nested cargo's first `rustc -` probe. Let it run its own.
    for var in ["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"] {
        // SAFETY: build scripts are single-threaded; nothing reads the
        // environment concurrently.
        unsafe { std::env::remove_var(var) };
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    let root = std::path::Path::new(&manifest_dir)
        .parent()
        .context("recorder has no parent directory")?;
    let ebpf_dir = root.join("recorder-ebpf");
    let common_dir = root.join("recorder-common");
    println!("cargo:rerun-if-changed={}", common_dir.display());
    let ebpf_dir = ebpf_dir.to_str().context("non-UTF-8 path to recorder-ebpf")?;
    let build = || {
        aya_build::build_ebpf(
            [Package { name: "recorder-ebpf", root_dir: ebpf_dir, ..Default::default() }],
            Toolchain::Nightly,
        )
    };
    // The nested cargo's first step, a `rustc -` probe of the BPF target,
    // has been seen here to fail intermittently on garbage input ("unknown
    // start of token" in other crates' compiler output), and cargo caches
    // that failure in the nested target dir's .rustc_info.json. Drop the
    // cache and try again before giving up.
    let mut result = build();
    for _ in 0..2 {
        if result.is_ok() {
            break;
        }
        println!("cargo:warning=BPF build failed; clearing the nested rustc cache and retrying");
        if let Some(out) = std::env::var_os("OUT_DIR") {
            remove_rustc_info(&std::path::Path::new(&out).join("aya-build"));
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        result = build();
    }
    result.context("building recorder-ebpf failed; run `cargo xtask setup` to install rust-src and bpf-linker")
}

fn remove_rustc_info(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == ".rustc_info.json") {
            let _ = std::fs::remove_file(&path);
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_rustc_info(&path);
        }
    }
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
