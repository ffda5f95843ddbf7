//! Command-line interface: clap definitions and dispatch.

pub mod baseline;
pub mod check;
pub mod collect;
pub mod convert;
pub mod daemon;
pub mod diff;
pub mod duration;
pub mod exit;
pub mod merge;
pub mod record;
pub mod run;
pub mod suggest;

use clap::{Parser, Subcommand};

use crate::cli::exit::{EXIT_CODES_HELP, Failure};

/// Record the syscalls a workload makes and write a minimal seccomp profile.
#[derive(Debug, Parser)]
#[command(name = "recorder", version, about, long_about = None, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// More logging on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Record(Box<record::RecordArgs>),
    Run(run::RunArgs),
    Diff(diff::DiffArgs),
    Merge(merge::MergeArgs),
    Convert(convert::ConvertArgs),
    Check(check::CheckArgs),
    Baseline(baseline::BaselineArgs),
    Daemon(Box<daemon::DaemonArgs>),
    Collect(collect::CollectArgs),
    Suggest(suggest::SuggestArgs),
}

/// Runs the chosen subcommand. Returns the process exit status.
pub fn dispatch(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Record(args) => record::execute(*args),
        Command::Run(args) => run::execute(args),
        Command::Diff(args) => diff::execute(args),
        Command::Merge(args) => merge::execute(args),
        Command::Convert(args) => convert::execute(args),
        Command::Check(args) => check::execute(args),
        Command::Baseline(args) => baseline::execute(args),
        Command::Daemon(args) => daemon::execute(*args),
        Command::Collect(args) => collect::execute(args),
        Command::Suggest(args) => suggest::execute(args),
    }
}
