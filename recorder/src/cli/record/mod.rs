//! `recorder record`: record a workload and write its profile.
//!
//! `args` is the command line; `command` records a command, cgroup, process
//! or container by id into one profile; `pod` records a pod's containers
//! into one profile each; `summary` is the line printed at the end.

mod args;
mod command;
mod pod;
mod summary;

pub use args::RecordArgs;

use super::{duration, exit::Failure};

pub fn execute(args: RecordArgs) -> Result<u8, Failure> {
    let duration = args.duration.as_deref().map(duration::parse).transpose()?;
    let grace = duration::parse(&args.grace)?;
    if args.pod.is_some() {
        return pod::execute(args, duration, grace);
    }
    command::execute(args, duration, grace)
}
