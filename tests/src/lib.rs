//! Shared harness for the integration tests.

pub mod containers;
pub mod runtime_base;
