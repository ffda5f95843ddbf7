//! The seccomp profile model, and its OCI runtime-spec JSON form.
//!
//! The model follows the OCI runtime spec's `LinuxSeccomp`
//! (config-linux.md#seccomp): what runc, crun, containerd, CRI-O and the
//! kubelet's `Localhost` profiles accept. Output is deterministic: the same
//! profile always gives the same bytes.

mod oci;

use std::collections::BTreeSet;

pub use oci::{MAX_PROFILE_BYTES, ProfileError, parse_oci_json, read_oci_file};
use serde::{Deserialize, Serialize};

use crate::syscalls::Family;

/// errno used by generated profiles for denied syscalls (EPERM).
pub const DEFAULT_ERRNO: u32 = 1;

/// A seccomp action, spelled as in the OCI spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

impl Action {
    /// Does this action take an `errnoRet` (ERRNO's errno, TRACE's message)?
    pub fn takes_errno_ret(self) -> bool {
        matches!(self, Action::Errno | Action::Trace)
    }
}

/// A comparison operator for an argument condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    #[serde(rename = "SCMP_CMP_LT")]
    Less,
    #[serde(rename = "SCMP_CMP_LE")]
    LessOrEqual,
    #[serde(rename = "SCMP_CMP_EQ")]
    Equal,
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterEqual,
    #[serde(rename = "SCMP_CMP_GT")]
    Greater,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

/// One argument condition: `args[index] op value` (MASKED_EQ: `args[index] & value == value_two`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgCondition {
    pub index: u32,
    pub value: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value_two: u64,
    pub op: Op,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One rule: the action for a set of syscall names, optionally only when
/// the arguments match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCondition>,
}

/// A seccomp profile in OCI form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

impl Profile {
    /// A minimal allow-list: deny with EPERM by default, allow exactly
    /// `names`, for every architecture of `family`.
    pub fn allow_list<I, S>(family: Family, names: I) -> Profile
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: BTreeSet<String> = names.into_iter().map(Into::into).collect();
        let syscalls = if names.is_empty() {
            Vec::new()
        } else {
            vec![SyscallRule {
                names: names.into_iter().collect(),
                action: Action::Allow,
                errno_ret: None,
                args: Vec::new(),
            }]
        };
        Profile {
            default_action: Action::Errno,
            default_errno_ret: Some(DEFAULT_ERRNO),
            architectures: family.scmp_names().into_iter().map(String::from).collect(),
            flags: Vec::new(),
            syscalls,
        }
    }

    /// Names allowed unconditionally (action ALLOW, no argument conditions).
    pub fn allowed_names(&self) -> BTreeSet<&str> {
        self.syscalls
            .iter()
            .filter(|r| r.action == Action::Allow && r.args.is_empty())
            .flat_map(|r| r.names.iter().map(String::as_str))
            .collect()
    }

    /// Pretty OCI JSON with a trailing newline. Deterministic.
    pub fn to_oci_json(&self) -> String {
        oci::to_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_sorts_and_dedups() {
        let p = Profile::allow_list(Family::host(), ["write", "read", "write"]);
        assert_eq!(p.syscalls.len(), 1);
        assert_eq!(p.syscalls[0].names, ["read", "write"]);
        assert_eq!(p.default_errno_ret, Some(1));
    }

    #[test]
    fn same_set_gives_same_bytes() {
        let a = Profile::allow_list(Family::host(), ["b", "a", "c"]).to_oci_json();
        let b = Profile::allow_list(Family::host(), ["c", "b", "a"]).to_oci_json();
        assert_eq!(a, b);
        assert!(a.ends_with('\n'));
    }

    #[test]
    fn json_round_trips() {
        let p = Profile::allow_list(Family::host(), ["read", "write"]);
        let back = parse_oci_json(&p.to_oci_json(), "mem").expect("parses");
        assert_eq!(p, back);
    }
}
