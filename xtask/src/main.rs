//! Project automation: `cargo xtask setup|build|test|bench|reliability|demo|examples|man|deb|fuzz`.
//!
//! This is the only place that knows toolchain details (nightly, rust-src,
//! bpf-linker, Debian packages).

mod bench;
mod bench_pod;
mod bench_stats;
mod deb;
mod demo;
mod examples;
mod floor;
mod fuzz;
mod image;
mod nginx;
mod reliability;
mod reliability_svg;
mod self_profile;
mod setup;
mod util;

use std::path::PathBuf;

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
        /// Measure only this part and print its table; BENCHMARKS.md is
        /// not written (`nginx`: nginx + wrk, plain, under the empty
        /// program, recorded; `--runs` rounds).
        #[arg(long, value_parser = ["nginx"])]
        only: Option<String>,
    },
    /// Setup, build, record nginx serving a page, then run it under the
    /// profile: serve, reload, stop.
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
    /// Setup, static build, then record nginx, redis, postgres and caddy
    /// through the CRI under runc and crun, prove each profile and write
    /// examples/profiles (tests/tests/examples.rs's `regenerate`).
    Examples {
        /// Write nothing: prove every shipped profile again under runc and
        /// crun and fail when the files are stale.
        #[arg(long)]
        check: bool,
        /// Only these examples (a comma list, e.g. `redis,caddy`).
        #[arg(long, value_name = "NAMES", conflicts_with = "check")]
        only: Option<String>,
    },
    /// Setup, build, then the load and fault scenarios (tests/tests/reliability) at full
    /// size against the release binary, written to RELIABILITY.md.
    Reliability {
        /// The CI's sizes; print the table, write nothing.
        #[arg(long, conflicts_with = "long")]
        short: bool,
        /// Only the long run: the daemon under churn, sampled and plotted
        /// (reliability-long.svg and RELIABILITY.md's "Long run" section).
        #[arg(long)]
        long: bool,
        /// Minutes of the long run.
        #[arg(long, default_value_t = 60.0, requires = "long")]
        minutes: f64,
    },
    /// Setup, then run every cargo-fuzz target (fuzz/) and write
    /// docs/fuzzing.md: executions, crashes (must be 0), corpus sizes.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Hours for all targets together (overrides --seconds).
        #[arg(long)]
        hours: Option<f64>,
    },
    /// Cross-build recorder (binary and BPF object) for aarch64.
    Cross,
    /// Build, then write one man page per command (generated from the clap
    /// definitions by the built binary).
    Man {
        /// Where to write the pages (default: target/man).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build, then a Debian package in target/debian: the binary, man pages,
    /// bash/zsh/fish completions, the shipped base and shutdown sets, docs.
    Deb,
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
            util::build_release()?;
            // The package test installs this .deb (RECORDER_DEB).
            let deb = deb::build()?;
            // The static binary is what the image ships, so it is what
            // every test runs; the image is built for the deploy tests.
            util::build_static()?;
            image_step()?;
            // The full suite (no test filter) runs a short slice of every
            // fuzz target too; a filtered run is for one test.
            let fuzzed = if args.is_empty() { fuzz::ci_slice() } else { Ok(()) };
            let tested = util::test(&args, &deb);
            fuzzed.and(tested)
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
        Cmd::Examples { check, only } => {
            setup::run()?;
            util::build_static()?;
            examples::run(check, only.as_deref())
        }
        Cmd::Bench { iterations, runs, wrk_seconds, only } => {
            setup::run()?;
            util::build_release()?;
            match only.as_deref() {
                Some("nginx") => bench::nginx_only(runs, wrk_seconds),
                _ => bench::run(iterations, runs, wrk_seconds),
            }
        }
        Cmd::Reliability { short, long, minutes } => {
            setup::run()?;
            util::build_release()?;
            reliability::run(short, long.then_some(minutes))
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
        Cmd::Man { dir } => {
            setup::run()?;
            util::build_release()?;
            let dir = dir.unwrap_or_else(deb::default_man_dir);
            deb::man(&dir)?;
            eprintln!("xtask man: pages in {}", dir.display());
            Ok(())
        }
        Cmd::Deb => {
            setup::run()?;
            util::build_release()?;
            deb::build().map(drop)
        }
        Cmd::Fuzz { seconds, hours } => {
            setup::run()?;
            fuzz::run(seconds, hours)
        }
        Cmd::Floor => floor::run(),
    }
}
