//! OCI seccomp JSON: parse with line/column errors, emit deterministically.

use std::path::Path;

use super::Profile;

/// Largest profile file we read. Real profiles are tens of KiB; this refuses
/// hostile input before it is read into memory.
pub const MAX_PROFILE_BYTES: u64 = 16 * 1024 * 1024;

/// A profile that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: profile is {size} bytes, more than the {MAX_PROFILE_BYTES}-byte limit; is this really a seccomp profile?")]
    TooLarge { path: String, size: u64 },
    #[error("{path}:{line}:{column}: invalid seccomp profile: {message}")]
    Syntax { path: String, line: usize, column: usize, message: String },
}

/// Parses OCI seccomp JSON. `source` names the input in error messages.
pub fn parse_oci_json(text: &str, source: &str) -> Result<Profile, ProfileError> {
    serde_json::from_str(text).map_err(|e| ProfileError::Syntax {
        path: source.to_owned(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })
}

/// Reads and parses an OCI seccomp JSON file.
pub fn read_oci_file(path: &Path) -> Result<Profile, ProfileError> {
    let shown = path.display().to_string();
    let read_err = |source| ProfileError::Read { path: shown.clone(), source };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_PROFILE_BYTES {
        return Err(ProfileError::TooLarge { path: shown, size });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    parse_oci_json(&text, &shown)
}

/// serde_json appends " at line L column C"; we print the position first.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

pub(super) fn to_json(profile: &Profile) -> String {
    // Serialising plain structs of strings and integers cannot fail.
    let mut text = serde_json::to_string_pretty(profile).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = parse_oci_json("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  oops\n}", "p.json")
            .expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.starts_with("p.json:3:3: invalid seccomp profile"), "{msg}");
    }

    #[test]
    fn unknown_action_is_rejected() {
        let err = parse_oci_json(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#, "p.json").expect_err("fails");
        assert!(err.to_string().contains("SCMP_ACT_NOPE"), "{err}");
    }
}
