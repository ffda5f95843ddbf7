//! `recorder`: record a workload's syscalls with eBPF and write a minimal
//! seccomp allow-list profile.
//!
//! The binary (`main.rs`) only parses arguments and maps errors to exit codes;
//! everything else lives here so the integration tests and xtask can use it.

pub mod bpf;
pub mod cgroup;
pub mod cri;
pub mod cli;
pub mod container;
pub mod diff;
pub mod enforce;
pub mod exit;
pub mod merge;
pub mod output;
pub mod pod;
pub mod preflight;
pub mod profile;
pub mod record;
pub mod syscalls;
pub mod target;

#[cfg(test)]
mod algebra_props;
