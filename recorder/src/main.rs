use std::process::ExitCode;

use clap::Parser as _;
use recorder::cli::{self, exit::Code};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "warn,recorder=debug",
        _ => "debug,recorder=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person: a pod's log or a file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();

    match cli::dispatch(cli) {
        Ok(status) => ExitCode::from(status),
        Err(failure) => {
            eprintln!("recorder: error: {failure}");
            if failure.code == Code::Internal {
                eprintln!("recorder: this is a bug; please report it with the command you ran");
            }
            ExitCode::from(failure.code.as_u8())
        }
    }
}
