//! `recorder`: record a workload's syscalls with eBPF and write a minimal
//! seccomp allow-list profile.
//!
//! The binary (`main.rs`) only parses arguments and maps errors to exit
//! codes; everything else lives here so the integration tests can use it.
//!
//! Dependencies point one way (docs/architecture.md):
//! `cli → {record, daemon, runtime, algebra, enforce} → {target, bpf, profile, output}
//! → {cri, syscalls, k8s_name, text}`. A module never imports one from a
//! layer above it.

// Layer 1: the command line.
pub mod cli;

// Layer 2: what the commands do.
pub mod algebra;
pub mod daemon;
pub mod enforce;
pub mod record;
pub mod runtime;

// Layer 3: the parts they are made of.
pub mod audit;
pub mod bpf;
pub mod inspect;
pub mod output;
pub mod profile;
pub mod target;

// Layer 4: leaves.
pub mod cri;
pub mod k8s_name;
pub mod syscalls;
pub mod text;
