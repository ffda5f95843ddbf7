//! The profile algebra: comparing profiles (`diff`) and combining them
//! (`merge`), with property tests that tie the two together; and what one
//! syscall name means to profiles (`explain`).

pub mod diff;
pub mod explain;
pub mod merge;

#[cfg(test)]
mod props;
