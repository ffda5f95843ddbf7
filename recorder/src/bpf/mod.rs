//! Loading the BPF programs and reading what they aggregated.
//!
//! `loader` loads and attaches the embedded object for one target cgroup
//! (with `btf` reading the kernel's field offsets it needs);
//! `reader` turns its maps into an [`Observation`], which `observation`
//! names; `events` decodes the ring buffer; `preflight` turns missing
//! privileges and kernel features into one-line errors first. The map is
//! the source of truth; events only make the live status responsive.

pub mod btf;
pub mod events;
pub mod loader;
pub mod observation;
pub mod preflight;
pub mod reader;

pub use loader::{BpfError, LearnHook, Probe, ProbeConfig};
pub use observation::{
    ArgValues, ByExe, Denied, EXEC_NOT_SEEN, Named, Observation, Select, by_exe_owned, name_denials,
};
pub use reader::Stats;
