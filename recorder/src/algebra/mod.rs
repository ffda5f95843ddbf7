//! The profile algebra: comparing profiles (`diff`), combining them
//! (`merge`) and healing one from its denials (`suggest`), with property
//! tests that tie them together; and what one syscall name means to
//! profiles (`explain`).

pub mod diff;
pub mod explain;
pub mod merge;
pub mod suggest;

#[cfg(test)]
mod props;
