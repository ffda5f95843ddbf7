//! Project automation: `cargo xtask setup|build|test|bench|demo`.
//!
//! This is the only place that knows toolchain details (nightly, rust-src,
//! bpf-linker, Debian packages).

mod bench;
mod bench_pod;
mod bench_stats;
mod demo;
mod nginx;
mod setup;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Set up, build, test, benchmark and demo recorder")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what a fresh machine lacks (idempotent): rust-src, bpf-linker, Debian packages.
    Setup,
    /// Setup, then `cargo build --release`.
    Build,
    /// Setup, build, then every test (unit and integration, as root, for real).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Setup, build, then measure and write BENCHMARKS.md.
    Bench {
        /// Iterations of the null-syscall loop per run.
        #[arg(long, default_value_t = 3_000_000)]
        iterations: u64,
        /// Runs per scenario (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Seconds per wrk run.
        #[arg(long, default_value_t = 10)]
        wrk_seconds: u64,
    },
    /// Setup, build, record nginx serving a page, then serve it again under the profile.
    Demo,
}

fn main() -> Result<()> {
    detach_from_cargo_run();
    match Cli::parse().command {
        Cmd::Setup => setup::run(),
        Cmd::Build => {
            setup::run()?;
            util::build_release()
        }
        Cmd::Test { args } => {
            setup::run()?;
            util::build_release()?;
            util::test(&args)
        }
        Cmd::Bench { iterations, runs, wrk_seconds } => {
            setup::run()?;
            util::build_release()?;
            bench::run(iterations, runs, wrk_seconds)
        }
        Cmd::Demo => {
            setup::run()?;
            util::build_release()?;
            demo::run()
        }
    }
}

/// `cargo xtask` runs this binary through `cargo run`, under the stable
/// toolchain's rustup proxy: its toolchain directory is first in PATH,
/// RUSTUP_TOOLCHAIN and CARGO name it, and cargo's jobserver is inherited.
/// Seen here: the nightly cargo that builds the BPF object, started from
/// that context, fed other compilers' output to its first `rustc -` probe in
/// fresh clones, while the same binary started from a shell works. So the
/// first thing this does under cargo is re-run itself without that context.
fn detach_from_cargo_run() {
    const MARK: &str = "RECORDER_XTASK_DETACHED";
    if std::env::var_os("CARGO").is_none() || std::env::var_os(MARK).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let path = std::env::var("PATH").unwrap_or_default();
    let path: Vec<&str> = path.split(':').filter(|p| !p.contains("/.rustup/toolchains/")).collect();
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).env(MARK, "1").env("PATH", path.join(":"));
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if key_str.starts_with("CARGO") && key_str != "CARGO_HOME"
            || key_str.starts_with("RUSTUP_TOOLCHAIN")
            || ["RUSTC", "RUSTDOC", "MAKEFLAGS", "MFLAGS", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER"].contains(&key_str.as_ref())
        {
            cmd.env_remove(&key);
        }
    }
    use std::os::unix::process::CommandExt as _;
    // SAFETY: only close(2) between fork and exec: descriptors above stderr
    // are cargo's (jobserver) and must not reach the builds.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 3..1024 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let err = cmd.exec();
    eprintln!("xtask: could not re-run itself outside cargo run ({err}); continuing");
}
