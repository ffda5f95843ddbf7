//! Loading the BPF programs and reading what they aggregated.
//!
//! `loader` loads and attaches the embedded object for one target cgroup;
//! `reader` turns the per-CPU maps into totals; `events` decodes the ring
//! buffer. The map is the source of truth; events only make the live status
//! responsive.

pub mod events;
pub mod loader;
pub mod reader;

pub use loader::{BpfError, Probe};
pub use reader::{Observation, Stats};
