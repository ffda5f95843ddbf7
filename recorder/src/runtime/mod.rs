//! Container runtimes as the recorder sees them: which recorded calls are
//! the runtime's setup and which belong in a container's profile (the
//! boundary results), what a runtime itself needs under the container's
//! filter (its base set), and how that base set is derived.

pub mod base_set;
pub mod boundary;
pub mod bundle;
pub mod derive;
