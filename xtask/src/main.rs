//! Project automation: `cargo xtask setup|build|test|bench|demo`.
//!
//! This is the only place that knows toolchain details (nightly, rust-src,
//! bpf-linker, Debian packages).

mod bench;
mod bench_pod;
mod bench_stats;
mod demo;
mod floor;
mod image;
mod nginx;
mod self_profile;
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
    /// `cargo fmt --check` and clippy with `-D warnings` (host crates, and
    /// the BPF crate on its own target).
    Lint,
    /// Setup, static build, then the OCI image (umoci, no registry) in
    /// target/image/recorder.oci.tar; its size goes to BENCHMARKS.md.
    Image,
    /// Setup, static build, then record the daemon doing its whole job and
    /// write its own seccomp profile, deploy/recorder-seccomp.json (and its
    /// memory use to BENCHMARKS.md).
    SelfProfile,
    /// Cross-build recorder (binary and BPF object) for aarch64.
    Cross,
    /// Attach only an empty program to sys_enter until interrupted: the cost
    /// floor `bench` measures against.
    #[command(hide = true)]
    Floor,
}

/// Builds the image and records its size in BENCHMARKS.md.
fn image_step() -> Result<()> {
    let built = image::build()?;
    util::write_benchmarks_section("Container image", &image::benchmarks_section(&built))?;
    eprintln!("xtask image: {} in {} (layer {} bytes)", built.reference, built.archive.display(), built.layer_bytes);
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Setup => setup::run(),
        Cmd::Build => {
            setup::run()?;
            util::build_release()
        }
        Cmd::Test { args } => {
            setup::run()?;
            // The static binary is what the image ships, so it is what
            // every test runs; the image is built for the deploy tests.
            util::build_static()?;
            image_step()?;
            util::test(&args)
        }
        Cmd::Image => {
            setup::run()?;
            util::build_static()?;
            image_step()
        }
        Cmd::SelfProfile => {
            setup::run()?;
            util::build_static()?;
            self_profile::run()?;
            image_step()
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
        Cmd::Lint => {
            setup::run()?;
            util::lint()
        }
        Cmd::Cross => {
            setup::run()?;
            setup::cross_aarch64()?;
            util::cross_aarch64()
        }
        Cmd::Floor => floor::run(),
    }
}
