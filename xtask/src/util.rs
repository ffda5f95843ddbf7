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
    // fuzz/ is its own workspace: `cargo fmt --all` does not reach it.
    run(cargo().args(["fmt", "--check", "--manifest-path", "fuzz/Cargo.toml"]))
        .context("the fuzz targets are not formatted; run `cargo fmt --manifest-path fuzz/Cargo.toml`")?;
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

pub fn test(extra: &[String], deb: &Path) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["test", "--no-fail-fast"])
        .args(extra)
        .env("RECORDER_BIN", static_recorder_bin())
        .env("RECORDER_IMAGE", workspace_root().join("target/image/recorder.oci.tar"))
        .env("RECORDER_DEB", deb);
    run(&mut cmd)
}

/// Compiles a C benchmark/test program with gcc.
pub fn compile_c(source: &Path, out: &Path, flags: &[&str]) -> Result<()> {
    run(Command::new("gcc").args(flags).arg("-o").arg(out).arg(source))
}

/// The host's Rust target triple (the static build names it explicitly, so
/// build scripts and proc macros stay dynamic).
pub fn host_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// The statically linked binary `build_static` makes: what the image ships
/// and what the tests run.
pub fn static_recorder_bin() -> PathBuf {
    workspace_root().join("target").join(host_triple()).join("release/recorder")
}

/// `cargo build --release -p recorder` for the host triple, statically
/// linked: glibc with `crt-static` and Debian's libseccomp.a. The binary
/// runs on any Linux of the same architecture and needs nothing from an
/// image but itself (it makes no NSS lookup and loads no module).
pub fn build_static() -> Result<()> {
    let triple = host_triple();
    let libdir = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    let env_name = format!("CARGO_TARGET_{}_RUSTFLAGS", triple.to_uppercase().replace('-', "_"));
    run(cargo()
        .args(["build", "--release", "-p", "recorder", "--target", &triple])
        .env(env_name, "-C target-feature=+crt-static")
        .env("LIBSECCOMP_LINK_TYPE", "static")
        .env("LIBSECCOMP_LIB_PATH", libdir))
}

/// Replaces the `## title` section of BENCHMARKS.md with `body` (or appends
/// it), leaving every other section as it is.
pub fn write_benchmarks_section(title: &str, body: &str) -> Result<()> {
    let path = workspace_root().join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let new = replace_section(&old, title, body);
    std::fs::write(&path, new).with_context(|| format!("writing {}", path.display()))
}

/// The text with its `## title` section (up to the next `## `) replaced.
pub fn replace_section(text: &str, title: &str, body: &str) -> String {
    let heading = format!("## {title}\n");
    let section = format!("{heading}\n{}\n", body.trim_end());
    let Some(start) = text.find(&heading) else {
        return format!("{}\n\n{section}", text.trim_end());
    };
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n## ").map_or(text.len(), |i| start + heading.len() + i + 1);
    format!(
        "{}{section}{}",
        &text[..start],
        if end < text.len() { format!("\n{}", &text[end..]) } else { String::new() }
    )
}

/// The sections of `old` that `new` lacks, appended to `new` (for writers
/// that own only some sections of BENCHMARKS.md).
pub fn keep_other_sections(new: &str, old: &str) -> String {
    let mut out = new.trim_end().to_owned();
    for section in old.split("\n## ").skip(1) {
        let title = section.lines().next().unwrap_or_default();
        if !new.contains(&format!("\n## {title}\n")) {
            out.push_str("\n\n## ");
            out.push_str(section.trim_end());
        }
    }
    out.push('\n');
    out
}
