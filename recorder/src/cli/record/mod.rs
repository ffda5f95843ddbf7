//! `recorder record`: record a workload and write its profile.
//!
//! `args` is the command line; `command` records a command, cgroup, process
//! or container by id into one profile; `pod` records a pod's containers
//! into one profile each; `summary` is the line printed at the end;
//! `by_exe` attributes calls to executables (`--by-exe`).

mod args;
mod by_exe;
mod command;
mod pod;
mod summary;

pub use args::RecordArgs;

use std::path::Path;

use crate::output::Output;

/// Where `--json-summary` (or `--by-exe`) goes: stderr for `-`, else a
/// file checked now.
enum SummarySink {
    Stderr,
    File(Output),
}

impl SummarySink {
    fn prepare(path: Option<&Path>, profile_output: Option<&Output>) -> Result<Option<SummarySink>, Failure> {
        let Some(path) = path else { return Ok(None) };
        if path == Path::new("-") {
            return Ok(Some(SummarySink::Stderr));
        }
        let out = Output::prepare(Some(path))?;
        if let Some(profile) = profile_output {
            out.ensure_distinct(profile)?;
        }
        Ok(Some(SummarySink::File(out)))
    }

    fn write(self, summary: &serde_json::Value) -> Result<(), Failure> {
        let mut text = serde_json::to_string_pretty(summary).map_err(|e| Failure::new(Code::Internal, e))?;
        text.push('\n');
        self.write_text(&text)
    }

    fn write_text(self, text: &str) -> Result<(), Failure> {
        match self {
            SummarySink::Stderr => eprint!("{text}"),
            SummarySink::File(out) => out.commit(text)?,
        }
        Ok(())
    }
}

use super::{
    duration,
    exit::{Code, Failure},
};
use crate::record::stop::{Exercise, StopPolicy};

pub fn execute(args: RecordArgs) -> Result<u8, Failure> {
    let duration = args.duration.as_deref().map(duration::parse).transpose()?;
    let stop = StopPolicy {
        signal: args.stop_signal.parse().map_err(|e| Failure::new(Code::Usage, e))?,
        grace: duration::parse(&args.grace)?,
        exercises: match &args.exercise {
            Some(list) => Exercise::parse_list(list).map_err(|e| Failure::new(Code::Usage, e))?,
            None => Vec::new(),
        },
        exercise_wait: duration::parse(&args.exercise_wait)?,
        until_exit: args.until_exit,
    };
    if args.pod.is_some() {
        return pod::execute(args, duration, stop);
    }
    command::execute(args, duration, stop)
}
