//! Command-line interface: clap definitions and dispatch.

pub mod duration;
pub mod baseline;
pub mod check;
pub mod convert;
pub mod diff;
pub mod merge;
pub mod record;
pub mod record_pod;
pub mod run;

use clap::{Parser, Subcommand};

use crate::exit::{EXIT_CODES_HELP, Failure};

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
    /// Attach only the empty sys_enter program until interrupted: the cost
    /// floor for `cargo xtask bench`.
    #[command(name = "__floor", hide = true)]
    Floor,
}

/// Runs the chosen subcommand. Returns the process exit status.
pub fn dispatch(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Record(args) => record::execute(*args),
        Command::Run(args) => run::execute(args),
        Command::Floor => floor(),
        Command::Diff(args) => diff::execute(args),
        Command::Merge(args) => merge::execute(args),
        Command::Convert(args) => convert::execute(args),
        Command::Check(args) => check::execute(args),
        Command::Baseline(args) => baseline::execute(args),
    }
}

fn floor() -> Result<u8, Failure> {
    use crate::exit::Code;
    let _floor = crate::bpf::loader::Floor::attach().map_err(|e| Failure::new(Code::BpfFailed, e))?;
    println!("attached");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Code::Internal, e))?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        Ok::<(), std::io::Error>(())
    })
    .map_err(|e| Failure::new(Code::Internal, e))?;
    Ok(0)
}
