//! The seccomp profile model, its dialects, and reading and writing them.
//!
//! The model is the OCI runtime spec's `LinuxSeccomp` (config-linux.md#seccomp),
//! what runc, crun, containerd, CRI-O and the kubelet's `Localhost` profiles
//! accept, plus the few moby template keys (`archMap`, per-rule `includes`,
//! `excludes`, `comment`) so a moby profile survives a round trip. A template
//! becomes plain OCI through [`Profile::evaluate`], the way a runtime does it.
//!
//! Output is deterministic: the same profile always gives the same bytes.

pub mod arches;
pub mod attribution;
pub mod catalog;
mod diag;
pub mod evaluate;
mod json;
pub mod node;
mod oci;
mod read;
pub mod runtime_default;
pub mod write;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};

pub use diag::{Diagnostic, ProfileError, Severity};
pub use evaluate::EvalContext;
pub use oci::{MAX_PROFILE_BYTES, parse_oci_json, read_oci_file};
pub use read::{Dialect, Loaded, Report, check_str, parse_str, read_file, read_text};
pub use write::Format;

use crate::syscalls::{Arch, Family};

/// errno used by generated profiles for denied syscalls (EPERM).
pub const DEFAULT_ERRNO: u32 = 1;

/// ENOSYS: "no such syscall". glibc falls back from clone3 to clone on it.
pub const ENOSYS: u32 = 38;

/// A seccomp action, spelled as in the OCI spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Kill,
    KillProcess,
    KillThread,
    Trap,
    Errno,
    Trace,
    Allow,
    Log,
    Notify,
}

impl Action {
    pub const ALL: [Action; 9] = [
        Action::Kill,
        Action::KillProcess,
        Action::KillThread,
        Action::Trap,
        Action::Errno,
        Action::Trace,
        Action::Allow,
        Action::Log,
        Action::Notify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Kill => "SCMP_ACT_KILL",
            Action::KillProcess => "SCMP_ACT_KILL_PROCESS",
            Action::KillThread => "SCMP_ACT_KILL_THREAD",
            Action::Trap => "SCMP_ACT_TRAP",
            Action::Errno => "SCMP_ACT_ERRNO",
            Action::Trace => "SCMP_ACT_TRACE",
            Action::Allow => "SCMP_ACT_ALLOW",
            Action::Log => "SCMP_ACT_LOG",
            Action::Notify => "SCMP_ACT_NOTIFY",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Does this action take an `errnoRet` (ERRNO's errno, TRACE's message)?
    pub fn takes_errno_ret(self) -> bool {
        matches!(self, Action::Errno | Action::Trace)
    }

    /// Does the syscall run? LOG runs it and logs; the others stop it, or
    /// hand it to a tracer or agent that may refuse it.
    pub fn lets_through(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }

    /// How hard this action stops a syscall, for "never loosen": higher is
    /// stricter. ERRNO and TRAP keep the process alive; KILL does not.
    pub fn strictness(self) -> u8 {
        match self {
            Action::Allow => 0,
            Action::Log => 1,
            Action::Notify => 2,
            Action::Trace => 3,
            Action::Errno => 4,
            Action::Trap => 5,
            Action::Kill | Action::KillThread => 6,
            Action::KillProcess => 7,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison operator for an argument condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    NotEqual,
    Less,
    LessOrEqual,
    Equal,
    GreaterEqual,
    Greater,
    MaskedEqual,
}

impl Op {
    pub const ALL: [Op; 7] =
        [Op::NotEqual, Op::Less, Op::LessOrEqual, Op::Equal, Op::GreaterEqual, Op::Greater, Op::MaskedEqual];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::NotEqual => "SCMP_CMP_NE",
            Op::Less => "SCMP_CMP_LT",
            Op::LessOrEqual => "SCMP_CMP_LE",
            Op::Equal => "SCMP_CMP_EQ",
            Op::GreaterEqual => "SCMP_CMP_GE",
            Op::Greater => "SCMP_CMP_GT",
            Op::MaskedEqual => "SCMP_CMP_MASKED_EQ",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.as_str() == name)
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::NotEqual => "!=",
            Op::Less => "<",
            Op::LessOrEqual => "<=",
            Op::Equal => "==",
            Op::GreaterEqual => ">=",
            Op::Greater => ">",
            Op::MaskedEqual => "&",
        }
    }
}

/// One argument condition: `args[index] op value` (MASKED_EQ: `args[index] & value == value_two`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArgCondition {
    pub index: u32,
    pub value: u64,
    pub value_two: u64,
    pub op: Op,
}

impl std::fmt::Display for ArgCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.op {
            Op::MaskedEqual => {
                write!(f, "arg{} & {:#x} == {:#x}", self.index, self.value, self.value_two)
            }
            op => write!(f, "arg{} {} {}", self.index, op.symbol(), self.value),
        }
    }
}

/// moby's per-rule conditions: capabilities, runtime GOARCH names, kernel version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Filter {
    pub caps: Vec<String>,
    pub arches: Vec<String>,
    pub min_kernel: Option<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// One rule: the action for a set of syscall names, optionally only when
/// the arguments match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: Action,
    pub errno_ret: Option<u32>,
    pub args: Vec<ArgCondition>,
    /// moby only: a note for readers.
    pub comment: Option<String>,
    /// moby only: the rule applies only when all of these hold.
    pub includes: Filter,
    /// moby only: the rule is dropped when any of these holds.
    pub excludes: Filter,
}

impl SyscallRule {
    pub fn new<I, S>(names: I, action: Action) -> SyscallRule
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        SyscallRule {
            names: names.into_iter().map(Into::into).collect(),
            action,
            errno_ret: None,
            args: Vec::new(),
            comment: None,
            includes: Filter::default(),
            excludes: Filter::default(),
        }
    }

    /// Does this rule need a runtime's evaluation (moby includes/excludes)?
    pub fn is_template(&self) -> bool {
        !self.includes.is_empty() || !self.excludes.is_empty()
    }
}

/// moby's `archMap` entry: a native architecture and the ones it also runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchMapEntry {
    pub architecture: String,
    pub sub_architectures: Vec<String>,
}

/// An allow-list built from calls recorded per architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList {
    pub profile: Profile,
    /// Per architecture: names the shared list allows there that were not
    /// recorded there (OCI cannot scope a rule to one architecture).
    pub widened: BTreeMap<Arch, BTreeSet<String>>,
}

/// A seccomp profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub default_action: Action,
    pub default_errno_ret: Option<u32>,
    pub architectures: Vec<String>,
    /// moby only; mutually exclusive with `architectures`.
    pub arch_map: Vec<ArchMapEntry>,
    pub flags: Vec<String>,
    pub listener_path: Option<String>,
    pub listener_metadata: Option<String>,
    pub syscalls: Vec<SyscallRule>,
}

impl Profile {
    /// A profile that denies everything with `action` and has no rules.
    pub fn empty(default_action: Action) -> Profile {
        Profile {
            default_action,
            default_errno_ret: None,
            architectures: Vec::new(),
            arch_map: Vec::new(),
            flags: Vec::new(),
            listener_path: None,
            listener_metadata: None,
            syscalls: Vec::new(),
        }
    }

    /// A minimal allow-list for `family`'s native architecture: deny with
    /// EPERM by default, allow exactly `names`.
    pub fn allow_list<I, S>(family: Family, names: I) -> Profile
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: BTreeSet<String> = names.into_iter().map(Into::into).collect();
        Profile::allow_list_by_arch(family, &BTreeMap::from([(family.native, names)])).profile
    }

    /// A minimal allow-list for the architectures that made calls: each
    /// architecture of `by_arch` is listed (the native one always, since
    /// every workload starts with a native execve), and no other. A 32-bit
    /// call from a workload that never made one hits libseccomp's bad-arch
    /// action (the thread is killed with SIGSYS) instead of being allowed.
    ///
    /// OCI rules have one `names` list for every listed architecture, and
    /// libseccomp resolves each name per architecture (skipping names an
    /// architecture does not have), so the list is the union; `widened`
    /// names, per architecture, those that this allows there without the
    /// architecture having recorded them.
    pub fn allow_list_by_arch(family: Family, by_arch: &BTreeMap<Arch, BTreeSet<String>>) -> AllowList {
        let names: BTreeSet<String> = by_arch.values().flatten().cloned().collect();
        let mut profile = Profile::empty(Action::Errno);
        profile.default_errno_ret = Some(DEFAULT_ERRNO);
        // The family's order: native, compat, x32 (moby's archMap order).
        profile.architectures = [Some(family.native), family.compat, family.x32]
            .into_iter()
            .flatten()
            .filter(|arch| *arch == family.native || by_arch.get(arch).is_some_and(|n| !n.is_empty()))
            .map(|arch| arch.scmp_name().to_owned())
            .collect();
        let mut widened = BTreeMap::new();
        for arch_name in &profile.architectures {
            let Some(arch) = Arch::from_scmp_name(arch_name) else { continue };
            let own = by_arch.get(&arch);
            let extra: BTreeSet<String> = names
                .iter()
                .filter(|n| arch.number_of(n).is_some() && !own.is_some_and(|o| o.contains(*n)))
                .cloned()
                .collect();
            if !extra.is_empty() {
                widened.insert(arch, extra);
            }
        }
        if !names.is_empty() {
            profile.syscalls.push(SyscallRule::new(names, Action::Allow));
        }
        AllowList { profile, widened }
    }

    /// Names allowed unconditionally (action ALLOW, no argument conditions,
    /// no moby includes/excludes).
    pub fn allowed_names(&self) -> BTreeSet<&str> {
        self.syscalls
            .iter()
            .filter(|r| r.action == Action::Allow && r.args.is_empty() && !r.is_template())
            .flat_map(|r| r.names.iter().map(String::as_str))
            .collect()
    }

    /// Names that some rule lets through, with or without argument conditions.
    pub fn permitted_names(&self) -> BTreeSet<&str> {
        self.syscalls
            .iter()
            .filter(|r| r.action.lets_through())
            .flat_map(|r| r.names.iter().map(String::as_str))
            .collect()
    }

    /// Is there any rule for `name`?
    pub fn mentions(&self, name: &str) -> bool {
        self.syscalls.iter().any(|r| r.names.iter().any(|n| n == name))
    }

    /// Does this profile need a runtime's evaluation first (moby `archMap`,
    /// `includes`, `excludes`)?
    pub fn is_template(&self) -> bool {
        !self.arch_map.is_empty() || self.syscalls.iter().any(SyscallRule::is_template)
    }

    /// Adds `clone3 -> ERRNO(ENOSYS)` when the profile does not allow clone3,
    /// as every runtime default does: glibc (2.34+) tries clone3 first and
    /// falls back to clone only on ENOSYS, so EPERM would break thread and
    /// process creation. Unchanged when clone3 already has a rule, when the
    /// default action lets it run, or when the default errno is ENOSYS anyway.
    pub fn with_enosys_clone3(mut self) -> Profile {
        let default_is_enosys = self.default_action == Action::Errno && self.default_errno_ret == Some(ENOSYS);
        if self.mentions("clone3") || self.default_action.lets_through() || default_is_enosys {
            return self;
        }
        let mut rule = SyscallRule::new(["clone3"], Action::Errno);
        rule.errno_ret = Some(ENOSYS);
        self.syscalls.push(rule);
        self
    }

    /// Pretty OCI JSON with a trailing newline. Deterministic. moby-only keys
    /// are left out; evaluate a template first (see [`Profile::evaluate`]).
    pub fn to_oci_json(&self) -> String {
        write::oci_json(self)
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

    #[test]
    fn allow_list_json_is_the_documented_shape() {
        let text = Profile::allow_list(Family::host(), ["write", "read"]).to_oci_json();
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        assert_eq!(v["syscalls"][0]["names"], serde_json::json!(["read", "write"]));
        assert_eq!(v["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
        // Only the architecture that made calls: no 32-bit ABI left open.
        assert_eq!(v["architectures"], serde_json::json!([Family::host().native.scmp_name()]));
    }

    #[test]
    fn allow_list_by_arch_lists_seen_architectures_and_reports_the_widening() {
        let family = Family::X86_64;
        let by_arch = BTreeMap::from([
            (Arch::X86_64, BTreeSet::from(["read".to_owned(), "newfstatat".to_owned()])),
            (Arch::X86, BTreeSet::from(["read".to_owned(), "socketcall".to_owned()])),
        ]);
        let list = Profile::allow_list_by_arch(family, &by_arch);
        assert_eq!(list.profile.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
        assert_eq!(
            list.profile.allowed_names(),
            BTreeSet::from(["newfstatat", "read", "socketcall"]),
            "one shared list, the union"
        );
        // socketcall does not exist on x86_64, newfstatat does not on ia32:
        // the shared list widens neither.
        assert!(list.widened.is_empty(), "{:?}", list.widened);
        let by_arch = BTreeMap::from([
            (Arch::X86_64, BTreeSet::from(["getpid".to_owned()])),
            (Arch::X86, BTreeSet::from(["read".to_owned()])),
        ]);
        let list = Profile::allow_list_by_arch(family, &by_arch);
        assert_eq!(list.widened[&Arch::X86], BTreeSet::from(["getpid".to_owned()]));
        assert_eq!(list.widened[&Arch::X86_64], BTreeSet::from(["read".to_owned()]));
    }

    #[test]
    fn enosys_clone3_is_added_once_and_only_when_needed() {
        let p = Profile::allow_list(Family::host(), ["read"]).with_enosys_clone3();
        let rule = p.syscalls.last().expect("rule");
        assert_eq!(
            (rule.names.as_slice(), rule.action, rule.errno_ret),
            (&["clone3".to_owned()][..], Action::Errno, Some(38))
        );
        assert_eq!(p.clone().with_enosys_clone3(), p);
        let allowed = Profile::allow_list(Family::host(), ["clone3"]);
        assert_eq!(allowed.clone().with_enosys_clone3(), allowed);
    }
}
