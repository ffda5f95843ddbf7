//! `cargo xtask setup`: idempotently install what a fresh machine lacks.
//! The recipe for the BPF toolchain is ../shared/TOOLCHAIN.md's.

use std::{path::PathBuf, process::Command};

use anyhow::{Context as _, Result};

use crate::util::{self, output};

/// Debian packages the build and the tests need.
pub const PACKAGES: &[&str] = &[
    "gcc",
    "libc6-dev",
    "libseccomp-dev",
    "pkg-config",
    "util-linux",
    "strace",
    "runc",
    "crun",
    "containerd",
    "busybox-static",
    "umoci",
    "protobuf-compiler",
    "nginx",
    "wrk",
    "curl",
    // 32-bit (ia32) ground-truth programs: gcc -m32.
    "gcc-multilib",
    // The lifecycle tests' redis and postgres pods (images built from
    // these binaries) and their clients, redis-benchmark and pgbench. The
    // packages' own services stay stopped (policy-rc.d below); postgresql's
    // postinst creates a cluster under /var/lib/postgresql, which nothing
    // here starts.
    "redis-server",
    "redis-tools",
    "postgresql",
    "tzdata",
    // `cargo xtask examples` and tests/tests/examples.rs: caddy, the fourth
    // example profile (a static Go binary, image built from it like the others).
    "caddy",
    // `cargo xtask deb`: dpkg-shlibdeps for the package's Depends.
    "dpkg-dev",
    // script(1): the colour tests run recorder on a pseudo-terminal.
    "bsdutils",
];

const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn run_setup_steps() -> Result<()> {
    rust_src()?;
    bpf_linker()?;
    cargo_fuzz()?;
    debian_packages()?;
    kubernetes_validate()
}

pub fn run() -> Result<()> {
    run_setup_steps().context("cargo xtask setup failed")
}

fn rust_src() -> Result<()> {
    let installed = output(Command::new("rustup").args(["component", "list", "--toolchain", "nightly", "--installed"]))
        .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    eprintln!("xtask setup: installing rust-src for nightly");
    util::run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

fn bpf_linker() -> Result<()> {
    // `bpf-linker --version` cannot tell: run outside rustc it does not find
    // the nightly's libLLVM (rustc puts its sysroot on the library path).
    let installed = output(Command::new("cargo").args(["install", "--list"])).unwrap_or_default();
    if installed.lines().any(|l| l.starts_with(&format!("bpf-linker v{BPF_LINKER_VERSION}"))) {
        return Ok(());
    }
    eprintln!("xtask setup: building bpf-linker {BPF_LINKER_VERSION} against nightly's libLLVM (a few minutes)");
    let sysroot = output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
    let libdir = PathBuf::from(sysroot.trim()).join("lib");
    let llvm = std::fs::read_dir(&libdir)
        .with_context(|| format!("reading {}", libdir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libLLVM.so.") && n.contains("-rust-"))
        })
        .context("nightly has no libLLVM.so.*-rust-*; is the nightly toolchain installed?")?;
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let prefix = PathBuf::from(home).join(".cache/llvm-prefix");
    std::fs::create_dir_all(prefix.join("lib"))?;
    let link = prefix.join("lib/libLLVM.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&llvm, &link)?;
    util::run(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--locked",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", &prefix),
    )
}

const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// cargo-fuzz, for `cargo xtask fuzz` and the fuzz slice of `cargo xtask test`.
fn cargo_fuzz() -> Result<()> {
    let installed = output(Command::new("cargo").args(["install", "--list"])).unwrap_or_default();
    if installed.lines().any(|l| l.starts_with(&format!("cargo-fuzz v{CARGO_FUZZ_VERSION}"))) {
        return Ok(());
    }
    eprintln!("xtask setup: installing cargo-fuzz {CARGO_FUZZ_VERSION}");
    util::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION]))
}

fn debian_packages() -> Result<()> {
    install_missing(PACKAGES)
}

fn install_missing(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .map(|s| !s.contains("install ok installed"))
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask setup: installing Debian packages: {}", missing.join(" "));
    // Keep package scripts from starting services (nginx, containerd) on the
    // host: tests start their own, private instances.
    let policy = PathBuf::from("/usr/sbin/policy-rc.d");
    let created_policy = !policy.exists();
    if created_policy {
        std::fs::write(&policy, "#!/bin/sh\nexit 101\n")?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o755))?;
    }
    let result = util::run(Command::new("apt-get").arg("update").arg("-q")).and_then(|()| {
        util::run(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    });
    if created_policy {
        let _ = std::fs::remove_file(&policy);
    }
    result
}

/// The PyPI tool the manifest tests validate deploy/kubernetes with, offline
/// (it ships the Kubernetes JSON schemas). Pinned; tests/src/deploy.rs
/// names the same version.
pub const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";

/// The virtualenv that holds it: `~/.cache/recorder-tools/kubernetes-validate-VERSION`.
pub fn kubernetes_validate_venv() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(format!(".cache/recorder-tools/kubernetes-validate-{KUBERNETES_VALIDATE_VERSION}")))
}

/// Installs kubernetes-validate into its own virtualenv, once.
fn kubernetes_validate() -> Result<()> {
    let venv = kubernetes_validate_venv()?;
    let tool = venv.join("bin/kubernetes-validate");
    let installed = output(Command::new(&tool).arg("--version")).unwrap_or_default();
    if installed.contains(KUBERNETES_VALIDATE_VERSION) {
        return Ok(());
    }
    eprintln!(
        "xtask setup: installing kubernetes-validate {KUBERNETES_VALIDATE_VERSION} from PyPI into {}",
        venv.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    // The machine's python3 has venv; Debian's needs python3-venv.
    if util::run(Command::new("python3").arg("-m").arg("venv").arg(&venv)).is_err() {
        let _ = std::fs::remove_dir_all(&venv);
        install_missing(&["python3-venv"])?;
        util::run(Command::new("/usr/bin/python3").arg("-m").arg("venv").arg(&venv))?;
    }
    util::run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("kubernetes-validate=={KUBERNETES_VALIDATE_VERSION}"),
    ]))
}

/// What cross-building for aarch64 needs: the Rust target, Debian's cross
/// linker, and libseccomp for arm64 (the binary links it), through dpkg's
/// multiarch.
pub fn cross_aarch64() -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == "aarch64-unknown-linux-gnu") {
        eprintln!("xtask setup: adding the aarch64-unknown-linux-gnu Rust target");
        util::run(Command::new("rustup").args(["target", "add", "aarch64-unknown-linux-gnu"]))?;
    }
    let foreign = output(Command::new("dpkg").arg("--print-foreign-architectures")).unwrap_or_default();
    if !foreign.lines().any(|l| l.trim() == "arm64") {
        eprintln!("xtask setup: enabling arm64 packages (dpkg multiarch) for libseccomp-dev:arm64");
        util::run(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
        util::run(Command::new("apt-get").args(["update", "-q"]))?;
    }
    install_missing(&["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "libseccomp-dev:arm64"])
}
