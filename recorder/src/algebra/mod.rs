//! The profile algebra: comparing profiles (`diff`), combining them
//! (`merge`) and healing one from its denials (`suggest`), with property
//! tests that tie them together.

pub mod diff;
pub mod merge;
pub mod suggest;

#[cfg(test)]
mod props;
