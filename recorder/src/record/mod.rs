//! A recording session.
