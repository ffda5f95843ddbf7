//! Preflight checks.
