use std::{
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
};

use clap::Parser as _;
use recorder::cli::{self, exit::Code};
use tracing_subscriber::EnvFilter;

/// Whether stdout was open when the process was exec'd. Rust's runtime
/// reopens a closed stdout on /dev/null before `main`, so `record >&-`
/// would write the profile nowhere; this runs earlier (.init_array).
static STDOUT_OPEN_AT_EXEC: AtomicBool = AtomicBool::new(true);

extern "C" fn note_stdout_at_exec() {
    // SAFETY: F_GETFD only reads the descriptor table.
    let open = unsafe { libc::fcntl(1, libc::F_GETFD) } != -1;
    STDOUT_OPEN_AT_EXEC.store(open, Ordering::Relaxed);
}

// SAFETY: glibc calls each .init_array entry once, before `main` and before
// Rust's runtime sanitizes fds 0-2; the function only reads a descriptor flag
// and stores an atomic, so running that early is sound.
#[used]
#[unsafe(link_section = ".init_array")]
static NOTE_STDOUT_AT_EXEC: extern "C" fn() = note_stdout_at_exec;

fn main() -> ExitCode {
    if !STDOUT_OPEN_AT_EXEC.load(Ordering::Relaxed) {
        recorder::output::stdout_was_closed();
    }
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
