//! The original OCI-only entry points, kept for callers that want exactly
//! OCI JSON; both accept every dialect now (see [`super::read_file`]).

use std::path::Path;

use super::{Profile, ProfileError};

/// Largest profile file we read. Real profiles are tens of KiB; this refuses
/// hostile input before it is read into memory.
pub const MAX_PROFILE_BYTES: u64 = 16 * 1024 * 1024;

/// Parses a seccomp profile (any dialect). `source` names the input in error messages.
pub fn parse_oci_json(text: &str, source: &str) -> Result<Profile, ProfileError> {
    super::parse_str(text, source).map(|loaded| loaded.profile)
}

/// Reads and parses a seccomp profile file (any dialect).
pub fn read_oci_file(path: &Path) -> Result<Profile, ProfileError> {
    super::read_file(path).map(|loaded| loaded.profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_has_line_and_column() {
        let err =
            parse_oci_json("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  oops\n}", "p.json").expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.starts_with("p.json:3:3: invalid seccomp profile"), "{msg}");
    }

    #[test]
    fn unknown_action_is_rejected() {
        let err = parse_oci_json(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#, "p.json").expect_err("fails");
        assert!(err.to_string().contains("SCMP_ACT_NOPE"), "{err}");
    }
}
