//! What runs around a workload, as the recorder sees it: which recorded
//! calls are a container runtime's setup and which belong in a container's
//! profile (the boundary results), what a runtime itself needs under the
//! container's filter (its base set) and how that is derived, and what a
//! workload needs to end (the shutdown set).

pub mod assemble;
pub mod base_set;
pub mod boundary;
pub mod bundle;
pub mod derive;
pub mod shutdown;
pub mod supervise;
