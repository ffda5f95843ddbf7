//! The profile algebra: comparing profiles (`diff`) and combining them
//! (`merge`), with property tests that tie the two together.

pub mod diff;
pub mod merge;

#[cfg(test)]
mod props;
