//! `recorder completions SHELL` and the hidden `recorder man --dir DIR`:
//! shell completions and man pages generated from the clap definitions
//! (clap_complete, clap_mangen), so they never drift from `--help`.

use std::path::PathBuf;

use clap::CommandFactory as _;

use crate::cli::{
    Cli,
    exit::{Code, Failure},
};

const EXAMPLES: &str = "\
Examples:
  recorder completions bash > /etc/bash_completion.d/recorder
  recorder completions zsh > \"${fpath[1]}/_recorder\"
  recorder completions fish > ~/.config/fish/completions/recorder.fish

The Debian package (cargo xtask deb) installs all three in their standard places.";

/// Print a shell completion script (bash, zsh, fish, elvish, powershell).
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Write one man page per command (recorder.1, recorder-record.1, ...).
/// Used by `cargo xtask man` and `cargo xtask deb`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages into; it must exist (recorder creates no directories).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

pub fn completions(args: CompletionsArgs) -> Result<u8, Failure> {
    let mut cmd = Cli::command();
    let mut text = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "recorder", &mut text);
    crate::output::Output::prepare(None)?.commit(&String::from_utf8_lossy(&text))?;
    Ok(Code::Ok.as_u8())
}

pub fn man(args: ManArgs) -> Result<u8, Failure> {
    let unwritable = |e: std::io::Error| {
        Failure::new(Code::OutputUnwritable, anyhow::anyhow!("cannot write man pages to {}: {e}", args.dir.display()))
    };
    crate::output::prepare_dir(&args.dir)?;
    clap_mangen::generate_to(Cli::command(), &args.dir).map_err(unwritable)?;
    Ok(Code::Ok.as_u8())
}
