//! Command-line interface: clap definitions and dispatch.

pub mod baseline;
pub mod check;
pub mod collect;
pub mod completions;
pub mod convert;
pub mod daemon;
pub mod diff;
pub mod duration;
pub mod exit;
pub mod explain;
pub mod inspect;
pub mod likely;
pub mod merge;
pub mod record;
pub mod run;
pub mod suggest;

use std::io::IsTerminal as _;

use clap::{Parser, Subcommand};

use crate::{
    cli::exit::{EXIT_CODES_HELP, Failure},
    text::Paint,
};

/// Record the syscalls a workload makes and write a minimal seccomp profile.
#[derive(Debug, Parser)]
#[command(name = "recorder", version, about, long_about = None, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// More logging on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colour in diff, check and explain output: auto (when stdout is a
    /// terminal and NO_COLOR is unset), always or never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Colour for what goes to stdout. `auto` follows no-color.org (a
    /// non-empty NO_COLOR turns it off) and leaves dumb terminals alone; an
    /// explicit `--color always` wins over NO_COLOR.
    pub fn paint(self) -> Paint {
        let enabled = match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
            }
        };
        Paint { enabled }
    }
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
    Explain(explain::ExplainArgs),
    Completions(completions::CompletionsArgs),
    #[command(hide = true)]
    Man(completions::ManArgs),
    Likely(likely::LikelyArgs),
    Inspect(inspect::InspectArgs),
}

/// Runs the chosen subcommand. Returns the process exit status.
pub fn dispatch(cli: Cli) -> Result<u8, Failure> {
    let paint = cli.color.paint();
    match cli.command {
        Command::Record(args) => record::execute(*args),
        Command::Run(args) => run::execute(args),
        Command::Diff(args) => diff::execute(args, paint),
        Command::Merge(args) => merge::execute(args),
        Command::Convert(args) => convert::execute(args),
        Command::Check(args) => check::execute(args, paint),
        Command::Baseline(args) => baseline::execute(args),
        Command::Daemon(args) => daemon::execute(*args),
        Command::Collect(args) => collect::execute(args),
        Command::Suggest(args) => suggest::execute(args),
        Command::Explain(args) => explain::execute(args, paint),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
        Command::Likely(args) => likely::execute(args),
        Command::Inspect(args) => inspect::execute(args),
    }
}
