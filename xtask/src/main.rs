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

/// `cargo xtask` runs this binary through `cargo run`, which leaves it its
/// jobserver (descriptors, and CARGO_MAKEFLAGS naming them). Seen here: the
/// nightly cargo that builds the BPF object, started from inside that
/// context, fed other compilers' output to its first `rustc -` probe in
/// fresh clones; the same command from a shell works. So drop both before
/// starting anything.
fn detach_from_cargo_run() {
    for fd in 3..1024 {
        // SAFETY: first thing in main, before any thread or file is opened
        // by this program: every descriptor above stderr is inherited, and
        // closing one that is not open is harmless (EBADF).
        unsafe { libc::close(fd) };
    }
    for var in ["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"] {
        // SAFETY: still single-threaded; nothing reads the environment yet.
        unsafe { std::env::remove_var(var) };
    }
}
