//! What to record: a command we start, a cgroup, a process's cgroup, a
//! container found by id, or a Kubernetes pod found through the CRI. Each
//! source ends as a cgroup v2 directory, which is what the BPF side keys by.

pub mod cgroup;
pub mod command;
pub mod container;
pub mod death_watch;
pub mod owned;
pub mod pod;
pub mod proc_text;

pub use cgroup::{Cgroup, CgroupError, Hierarchy};
pub use command::{Command, CommandError};
pub use owned::OwnedCgroup;
