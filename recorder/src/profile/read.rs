//! Reading any supported dialect, auto-detected, with every problem listed.
//!
//! Dialects: plain OCI (runtime-spec `LinuxSeccomp`); moby (`archMap`,
//! `includes`/`excludes`, `comment`, the old single `name`); containers/common
//! (`errno`/`defaultErrno` names such as "ENOSYS", `SCMP_ARCH_NATIVE`); and the
//! Security Profiles Operator's `SeccompProfile` custom resource, v1 and
//! v1beta1, as YAML or JSON. They share one model, so detection only decides
//! where the profile object sits and which keys are expected.

use std::{
    collections::{BTreeMap, HashSet},
    io::Read as _,
    path::Path,
};

use super::{
    Action, ArchMapEntry, ArgCondition, Filter, Op, Profile, SyscallRule, catalog,
    diag::{Diagnostic, ProfileError, Severity},
    json,
    node::{Key, Node, ParseFailure, Pos, Value},
    yaml,
};

/// Where a profile came from, as far as its keys tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Oci,
    Moby,
    ContainersCommon,
    SpoV1,
    SpoV1beta1,
}

impl Dialect {
    pub fn describe(self) -> &'static str {
        match self {
            Dialect::Oci => "OCI seccomp JSON",
            Dialect::Moby => "moby seccomp profile",
            Dialect::ContainersCommon => "containers/common seccomp profile",
            Dialect::SpoV1 => "SPO SeccompProfile (v1)",
            Dialect::SpoV1beta1 => "SPO SeccompProfile (v1beta1)",
        }
    }
}

/// A profile read from a file, with what was learnt on the way.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub profile: Profile,
    pub dialect: Dialect,
    /// Problems that did not stop the read (unknown syscall names, ...).
    pub warnings: Vec<Diagnostic>,
    /// SPO `metadata.name`, when the input was a custom resource.
    pub name: Option<String>,
    /// SPO `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
}

/// Everything `check` found in a well-formed document.
#[derive(Clone, Debug)]
pub struct Report {
    pub dialect: Option<Dialect>,
    pub problems: Vec<Diagnostic>,
    pub loaded: Option<Loaded>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

const SPO_GROUP: &str = "security-profiles-operator.x-k8s.io";

/// Reads a profile file of any supported dialect. `-` reads stdin.
pub fn read_file(path: &Path) -> Result<Loaded, ProfileError> {
    let shown = display_path(path);
    let text = read_text(path)?;
    parse_str(&text, &shown)
}

fn display_path(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Reads a file as UTF-8 text, refusing anything over [`super::MAX_PROFILE_BYTES`]
/// before reading it (and, for pipes, as soon as the limit is passed).
pub fn read_text(path: &Path) -> Result<String, ProfileError> {
    let shown = display_path(path);
    let read_err = |source| ProfileError::Read {
        path: shown.clone(),
        source,
    };
    let limit = super::MAX_PROFILE_BYTES;
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
    } else {
        let file = std::fs::File::open(path).map_err(read_err)?;
        let size = file.metadata().map_err(read_err)?.len();
        if size > limit {
            return Err(ProfileError::TooLarge { path: shown, size });
        }
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
    }
    let size = bytes.len() as u64;
    if size > limit {
        return Err(ProfileError::TooLarge { path: shown, size });
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = valid[line_start..]
            .iter()
            .filter(|b| **b & 0xC0 != 0x80)
            .count()
            + 1;
        ProfileError::Syntax {
            path: shown.clone(),
            line,
            column,
            message: "not UTF-8 text; is this a binary file?".to_owned(),
        }
    })
}

/// Parses a profile of any dialect. `source` names it in messages. Warnings
/// come back in [`Loaded::warnings`]; any error fails the read.
pub fn parse_str(text: &str, source: &str) -> Result<Loaded, ProfileError> {
    let report = check_str(text, source)?;
    match report.loaded {
        Some(loaded)
            if report
                .problems
                .iter()
                .all(|d| d.severity != Severity::Error) =>
        {
            Ok(loaded)
        }
        _ => Err(ProfileError::Invalid {
            path: source.to_owned(),
            problems: report.problems,
        }),
    }
}

/// Parses and validates, listing every problem. Fails only when the text is
/// not well-formed JSON/YAML, or is too large or deep to look at.
pub fn check_str(text: &str, source: &str) -> Result<Report, ProfileError> {
    let root = parse_tree(text).map_err(|f| match f {
        ParseFailure::Syntax { pos, message } => ProfileError::Syntax {
            path: source.to_owned(),
            line: pos.line,
            column: pos.column,
            message,
        },
        ParseFailure::TooDeep { pos, message } => ProfileError::TooDeep {
            path: source.to_owned(),
            line: pos.line,
            column: pos.column,
            message,
        },
    })?;
    let mut r = Reader {
        path: source.to_owned(),
        problems: Vec::new(),
        moby: false,
        common: false,
        omitted: (0, 0),
    };
    let result = r.document(&root);
    let dialect = result.as_ref().map(|(_, d, _, _)| *d);
    r.problems.sort_by_key(|d| (d.pos, d.severity));
    let (errors, warnings) = r.omitted;
    if errors + warnings > 0 {
        let pos = r.problems.last().map_or(root.pos, |d| d.pos);
        let severity = if errors > 0 {
            Severity::Error
        } else {
            Severity::Warning
        };
        r.problems.push(Diagnostic {
            severity,
            path: source.to_owned(),
            pos,
            message: format!(
                "{errors} more errors and {warnings} more warnings not listed; fix these first"
            ),
        });
    }
    let loaded = result.map(|(profile, dialect, name, annotations)| Loaded {
        profile,
        dialect,
        warnings: r
            .problems
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .cloned()
            .collect(),
        name,
        annotations,
    });
    Ok(Report {
        dialect,
        problems: r.problems,
        loaded,
    })
}

/// JSON when the document starts like JSON, YAML otherwise. JSON is also
/// YAML, but our JSON reader gives exact positions and JSON's own messages.
fn parse_tree(text: &str) -> Result<Node, ParseFailure> {
    let body = text.trim_start_matches('\u{feff}').trim_start();
    if body.starts_with('{') || body.starts_with('[') {
        json::parse(text)
    } else {
        yaml::parse(text)
    }
}

type Document = (Profile, Dialect, Option<String>, BTreeMap<String, String>);

struct Reader {
    path: String,
    problems: Vec<Diagnostic>,
    /// moby-only keys were seen.
    moby: bool,
    /// containers/common-only keys were seen.
    common: bool,
    /// (errors, warnings) past [`MAX_PROBLEMS`], counted but not kept.
    omitted: (usize, usize),
}

/// Problems listed per file. A hostile file can hold millions; the first
/// thousand say what is wrong, and keeping them all would cost memory.
const MAX_PROBLEMS: usize = 1_000;

const PROFILE_KEYS: [&str; 10] = [
    "defaultAction",
    "defaultErrnoRet",
    "defaultErrno",
    "architectures",
    "archMap",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
    "seccomp",
];
const SPO_SPEC_KEYS: [&str; 8] = [
    "defaultAction",
    "architectures",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
    "baseProfileName",
    "disabled",
];
const RULE_KEYS: [&str; 9] = [
    "names", "name", "action", "errnoRet", "errno", "args", "comment", "includes", "excludes",
];
const ARG_KEYS: [&str; 4] = ["index", "value", "valueTwo", "op"];
const FILTER_KEYS: [&str; 3] = ["caps", "arches", "minKernel"];

/// Largest syscall argument index (seccomp_data.args has six).
const MAX_ARGS: usize = 6;

impl Reader {
    fn push(&mut self, severity: Severity, pos: Pos, message: impl Into<String>) {
        if self.problems.len() >= MAX_PROBLEMS {
            match severity {
                Severity::Error => self.omitted.0 += 1,
                Severity::Warning => self.omitted.1 += 1,
            }
            return;
        }
        self.problems.push(Diagnostic {
            severity,
            path: self.path.clone(),
            pos,
            message: message.into(),
        });
    }

    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(Severity::Error, pos, message);
    }

    fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(Severity::Warning, pos, message);
    }

    fn document(&mut self, root: &Node) -> Option<Document> {
        let Value::Map(entries) = &root.value else {
            self.err(
                root.pos,
                format!("expected a seccomp profile object, found {}", root.kind()),
            );
            return None;
        };
        if root.get("securityContext").is_some() {
            self.err(root.pos, "this is a Kubernetes securityContext snippet, not a profile; pass the profile it names");
            return None;
        }
        if root.get("apiVersion").is_some() || root.get("kind").is_some() {
            return self.spo(root, entries);
        }
        let profile = self.profile(root, entries, &PROFILE_KEYS)?;
        let dialect = if self.moby {
            Dialect::Moby
        } else if self.common {
            Dialect::ContainersCommon
        } else {
            Dialect::Oci
        };
        Some((profile, dialect, None, BTreeMap::new()))
    }

    fn spo(&mut self, root: &Node, entries: &[(Key, Node)]) -> Option<Document> {
        let kind = root.get("kind");
        match kind.and_then(Node::as_str) {
            Some("SeccompProfile") => {}
            Some(other) => {
                let pos = kind.map_or(root.pos, |k| k.pos);
                self.err(
                    pos,
                    format!(
                        "kind is {other:?}; only SeccompProfile resources hold a seccomp profile"
                    ),
                );
                return None;
            }
            None => {
                self.err(root.pos, "missing kind: SeccompProfile");
                return None;
            }
        }
        let api = root.get("apiVersion");
        let dialect = match api.and_then(Node::as_str) {
            Some(v) if v == format!("{SPO_GROUP}/v1") => Dialect::SpoV1,
            Some(v)
                if v == format!("{SPO_GROUP}/v1beta1") || v == format!("{SPO_GROUP}/v1alpha1") =>
            {
                Dialect::SpoV1beta1
            }
            Some(v) => {
                let pos = api.map_or(root.pos, |a| a.pos);
                self.err(pos, format!("apiVersion {v:?} is not a SeccompProfile version; use {SPO_GROUP}/v1 or /v1beta1"));
                return None;
            }
            None => {
                self.err(root.pos, format!("missing apiVersion; use {SPO_GROUP}/v1"));
                return None;
            }
        };
        for (key, _) in entries {
            if !["apiVersion", "kind", "metadata", "spec", "status"].contains(&key.name.as_str()) {
                self.unknown_key(key, &["apiVersion", "kind", "metadata", "spec", "status"]);
            }
        }
        let mut name = None;
        let mut annotations = BTreeMap::new();
        if let Some(meta) = root.get("metadata") {
            name = meta
                .get("name")
                .and_then(|n| self.string(n, "metadata.name"));
            if let Some(Value::Map(items)) = meta.get("annotations").map(|a| &a.value) {
                for (k, v) in items {
                    if let Some(v) = self.string(v, "an annotation value") {
                        annotations.insert(k.name.clone(), v);
                    }
                }
            }
        }
        let Some(spec) = root.get("spec") else {
            self.err(root.pos, "SeccompProfile has no spec");
            return None;
        };
        let Value::Map(spec_entries) = &spec.value else {
            self.err(
                spec.pos,
                format!("spec must be an object, found {}", spec.kind()),
            );
            return None;
        };
        if let Some(base) = spec.get("baseProfileName").and_then(Node::as_str)
            && !base.is_empty()
        {
            self.warn(
                spec.pos,
                format!("baseProfileName {base:?} is not resolved here; its syscalls are not part of this profile"),
            );
        }
        let mut keys: Vec<&str> = SPO_SPEC_KEYS.to_vec();
        // Not part of the CRD (the API server prunes it), but the intent is clear.
        keys.push("defaultErrnoRet");
        let profile = self.profile(spec, spec_entries, &keys)?;
        if let Some((k, _)) = spec_entries
            .iter()
            .find(|(k, _)| k.name == "defaultErrnoRet")
        {
            self.warn(k.pos, "SPO SeccompProfile has no defaultErrnoRet; the API server drops it and EPERM applies");
        }
        Some((profile, dialect, name, annotations))
    }

    fn unknown_key(&mut self, key: &Key, known: &[&str]) {
        let hint = match catalog::suggest(&key.name, known.iter().copied()) {
            Some(s) => format!("; did you mean \"{s}\"?"),
            None => format!("; known keys: {}", known.join(", ")),
        };
        self.warn(
            key.pos,
            format!("unknown key \"{}\" is ignored{hint}", key.name),
        );
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.err(
                    node.pos,
                    format!("{what} must be a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn list<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            // Go marshals a nil slice as null; moby's own profile has some.
            Value::Null => Some(&[]),
            _ => {
                self.err(
                    node.pos,
                    format!("{what} must be a list, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn strings(&mut self, node: &Node, what: &str) -> Vec<(String, Pos)> {
        let Some(items) = self.list(node, what) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|n| self.string(n, what).map(|s| (s, n.pos)))
            .collect()
    }

    fn uint(&mut self, node: &Node, what: &str, max: u64) -> Option<u64> {
        match node.value {
            Value::Int(n) if (0..=i128::from(max)).contains(&n) => u64::try_from(n).ok(),
            Value::Int(n) => {
                self.err(node.pos, format!("{what} is {n}, outside 0..={max}"));
                None
            }
            _ => {
                self.err(
                    node.pos,
                    format!(
                        "{what} must be a non-negative integer, found {}",
                        node.kind()
                    ),
                );
                None
            }
        }
    }

    /// An errno given as a number, a numeric string (SPO v1beta1 once typed
    /// errnoRet as a string) or a name such as "ENOSYS" (containers/common).
    fn errno(&mut self, node: &Node, what: &str) -> Option<u32> {
        if let Value::Str(s) = &node.value {
            if let Ok(n) = s.parse::<u32>() {
                return self.errno_in_range(node.pos, what, n.into());
            }
            if let Some(n) = catalog::errno_from_name(s) {
                self.common = true;
                return Some(n);
            }
            let hint = catalog::suggest(s, catalog::ERRNOS.iter().map(|(n, _)| *n))
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_else(|| "; use a number or a name such as EPERM or ENOSYS".to_owned());
            self.err(node.pos, format!("{what}: unknown errno name {s:?}{hint}"));
            return None;
        }
        let n = self.uint(node, what, u64::MAX)?;
        self.errno_in_range(node.pos, what, n)
    }

    fn errno_in_range(&mut self, pos: Pos, what: &str, n: u64) -> Option<u32> {
        match u32::try_from(n) {
            Ok(v) if v <= catalog::MAX_ERRNO => Some(v),
            _ => {
                self.err(
                    pos,
                    format!(
                        "{what} is {n}; errno values run from 0 to {}",
                        catalog::MAX_ERRNO
                    ),
                );
                None
            }
        }
    }

    fn action(&mut self, node: &Node, what: &str) -> Option<Action> {
        let name = self.string(node, what)?;
        if let Some(a) = Action::from_name(&name) {
            return Some(a);
        }
        let hint = catalog::suggest(&name, Action::ALL.iter().map(|a| a.as_str()))
            .map(|s| format!("did you mean {s}?"))
            .unwrap_or_else(|| {
                "use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, ...".to_owned()
            });
        self.err(node.pos, format!("unknown action {name:?}; {hint}"));
        None
    }

    fn arch(&mut self, name: &str, pos: Pos) -> bool {
        if catalog::SCMP_ARCHES.contains(&name) {
            if name == "SCMP_ARCH_NATIVE" {
                self.common = true;
            }
            return true;
        }
        let hint = catalog::arch_alias(name)
            .or_else(|| catalog::suggest(name, catalog::SCMP_ARCHES))
            .map(|s| format!("did you mean {s}?"))
            .unwrap_or_else(|| "use SCMP_ARCH_* names such as SCMP_ARCH_X86_64".to_owned());
        self.err(pos, format!("unknown architecture {name:?}; {hint}"));
        false
    }

    fn profile(&mut self, node: &Node, entries: &[(Key, Node)], known: &[&str]) -> Option<Profile> {
        let mut ok = true;
        let mut profile = Profile::empty(Action::Errno);
        let mut default_errno_named: Option<(u32, Pos)> = None;
        let mut saw_default = false;
        for (key, value) in entries {
            if !known.contains(&key.name.as_str()) {
                self.unknown_key(key, known);
                continue;
            }
            match key.name.as_str() {
                "defaultAction" => {
                    saw_default = true;
                    match self.action(value, "defaultAction") {
                        Some(a) => profile.default_action = a,
                        None => ok = false,
                    }
                }
                "defaultErrnoRet" => {
                    profile.default_errno_ret = self.errno(value, "defaultErrnoRet")
                }
                "defaultErrno" => {
                    self.common = true;
                    if let Some(n) = self.errno(value, "defaultErrno") {
                        default_errno_named = Some((n, value.pos));
                    }
                }
                "architectures" => {
                    for (name, pos) in self.strings(value, "architectures") {
                        if self.arch(&name, pos) && !profile.architectures.contains(&name) {
                            profile.architectures.push(name);
                        }
                    }
                }
                "archMap" => {
                    self.moby = true;
                    profile.arch_map = self.arch_map(value);
                }
                "flags" => {
                    for (flag, pos) in self.strings(value, "flags") {
                        if catalog::FLAGS.contains(&flag.as_str()) {
                            profile.flags.push(flag);
                        } else {
                            let hint = catalog::suggest(&flag, catalog::FLAGS)
                                .map(|s| format!("did you mean {s}?"))
                                .unwrap_or_else(|| {
                                    format!("known flags: {}", catalog::FLAGS.join(", "))
                                });
                            self.err(pos, format!("unknown flag {flag:?}; {hint}"));
                        }
                    }
                }
                "listenerPath" => profile.listener_path = self.string(value, "listenerPath"),
                "listenerMetadata" => {
                    profile.listener_metadata = self.string(value, "listenerMetadata")
                }
                "syscalls" => {
                    if let Some(items) = self.list(value, "syscalls") {
                        for item in items {
                            if let Some(rule) = self.rule(item) {
                                profile.syscalls.push(rule);
                            }
                        }
                    }
                }
                "seccomp" => {
                    self.err(key.pos, "this looks like a runtime config with a nested seccomp object; pass that object's contents as the profile");
                }
                // SPO-only keys with no meaning for enforcement.
                _ => {}
            }
        }
        if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
            self.err(
                node.pos,
                "use either architectures or archMap, not both (moby refuses both)",
            );
        }
        if !saw_default {
            self.err(node.pos, "missing defaultAction; a profile needs one, e.g. \"defaultAction\": \"SCMP_ACT_ERRNO\"");
            ok = false;
        }
        if let Some((n, pos)) = default_errno_named {
            match profile.default_errno_ret {
                Some(m) if m != n => self.err(
                    pos,
                    format!("defaultErrno ({n}) disagrees with defaultErrnoRet ({m}); keep one"),
                ),
                _ => profile.default_errno_ret = Some(n),
            }
        }
        if profile.default_errno_ret.is_some()
            && saw_default
            && !profile.default_action.takes_errno_ret()
        {
            let pos = entries
                .iter()
                .find(|(k, _)| k.name.starts_with("defaultErrno"))
                .map_or(node.pos, |(k, _)| k.pos);
            self.err(
                pos,
                format!(
                    "defaultErrnoRet has no effect with {}; remove it or use SCMP_ACT_ERRNO",
                    profile.default_action
                ),
            );
        }
        if profile.default_action == Action::Notify {
            self.err(node.pos, "SCMP_ACT_NOTIFY cannot be the default action (runtimes refuse it); use SCMP_ACT_ERRNO");
        }
        let notifies = profile.syscalls.iter().any(|r| r.action == Action::Notify);
        if notifies && profile.listener_path.as_deref().unwrap_or("").is_empty() {
            self.err(
                node.pos,
                "SCMP_ACT_NOTIFY rules need a listenerPath naming the seccomp agent's socket",
            );
        }
        ok.then_some(profile)
    }

    fn arch_map(&mut self, node: &Node) -> Vec<ArchMapEntry> {
        let Some(items) = self.list(node, "archMap") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Value::Map(entries) = &item.value else {
                self.err(
                    item.pos,
                    format!("archMap entries must be objects, found {}", item.kind()),
                );
                continue;
            };
            let mut architecture = None;
            let mut subs = Vec::new();
            for (key, value) in entries {
                match key.name.as_str() {
                    "architecture" => {
                        architecture = self
                            .string(value, "architecture")
                            .filter(|a| self.arch(a, value.pos));
                    }
                    "subArchitectures" => {
                        for (name, pos) in self.strings(value, "subArchitectures") {
                            if self.arch(&name, pos) {
                                subs.push(name);
                            }
                        }
                    }
                    _ => self.unknown_key(key, &["architecture", "subArchitectures"]),
                }
            }
            match architecture {
                Some(architecture) => out.push(ArchMapEntry {
                    architecture,
                    sub_architectures: subs,
                }),
                None if item.get("architecture").is_none() => {
                    self.err(item.pos, "archMap entry has no architecture")
                }
                None => {}
            }
        }
        out
    }

    fn rule(&mut self, node: &Node) -> Option<SyscallRule> {
        let Value::Map(entries) = &node.value else {
            self.err(
                node.pos,
                format!(
                    "each syscalls entry must be an object, found {}",
                    node.kind()
                ),
            );
            return None;
        };
        let mut ok = true;
        let mut rule = SyscallRule::new(Vec::<String>::new(), Action::Allow);
        let mut seen = HashSet::new();
        let mut action_pos = None;
        let mut names_node = None;
        let mut errno_named: Option<(u32, Pos)> = None;
        let mut errno_key = None;
        for (key, value) in entries {
            match key.name.as_str() {
                "names" => {
                    names_node = Some(value);
                    for (name, pos) in self.strings(value, "names") {
                        self.syscall_name(&name, pos, &mut seen);
                        rule.names.push(name);
                    }
                }
                "name" => {
                    self.moby = true;
                    if let Some(name) = self.string(value, "name") {
                        self.syscall_name(&name, value.pos, &mut seen);
                        rule.names.insert(0, name);
                    }
                }
                "action" => {
                    action_pos = Some(value.pos);
                    match self.action(value, "action") {
                        Some(a) => rule.action = a,
                        None => ok = false,
                    }
                }
                "errnoRet" => {
                    errno_key = Some(key.pos);
                    rule.errno_ret = self.errno(value, "errnoRet");
                }
                "errno" => {
                    self.common = true;
                    errno_key.get_or_insert(key.pos);
                    if let Some(n) = self.errno(value, "errno") {
                        errno_named = Some((n, value.pos));
                    }
                }
                "args" => {
                    if let Some(items) = self.list(value, "args") {
                        if items.len() > MAX_ARGS {
                            self.err(
                                value.pos,
                                format!("{} argument conditions; a syscall has at most {MAX_ARGS} arguments", items.len()),
                            );
                            ok = false;
                        }
                        for item in items {
                            match self.arg(item) {
                                Some(c) => rule.args.push(c),
                                None => ok = false,
                            }
                        }
                    }
                }
                "comment" => {
                    if let Some(c) = self.string(value, "comment")
                        && !c.is_empty()
                    {
                        self.moby = true;
                        rule.comment = Some(c);
                    }
                }
                "includes" => rule.includes = self.filter(value, "includes"),
                "excludes" => rule.excludes = self.filter(value, "excludes"),
                _ => self.unknown_key(key, &RULE_KEYS),
            }
        }
        if action_pos.is_none() {
            self.err(
                node.pos,
                "rule has no action; add e.g. \"action\": \"SCMP_ACT_ALLOW\"",
            );
            ok = false;
        }
        if names_node.is_some() && entries.iter().any(|(k, _)| k.name == "name") {
            self.err(
                node.pos,
                "rule has both name and names; moby refuses that, keep names",
            );
            ok = false;
        }
        if rule.names.is_empty() {
            let pos = names_node.map_or(node.pos, |n| n.pos);
            self.err(
                pos,
                "names is empty; list at least one syscall or delete this rule",
            );
            ok = false;
        }
        if let Some((n, pos)) = errno_named {
            match rule.errno_ret {
                Some(m) if m != n => self.err(
                    pos,
                    format!("errno ({n}) disagrees with errnoRet ({m}); keep one"),
                ),
                _ => rule.errno_ret = Some(n),
            }
        }
        if rule.errno_ret.is_some() && action_pos.is_some() && !rule.action.takes_errno_ret() {
            self.err(
                errno_key.unwrap_or(node.pos),
                format!(
                    "errnoRet has no effect with {}; remove it, or use SCMP_ACT_ERRNO",
                    rule.action
                ),
            );
            ok = false;
        }
        if !rule.includes.is_empty() || !rule.excludes.is_empty() {
            self.moby = true;
        }
        ok.then_some(rule)
    }

    fn syscall_name(&mut self, name: &str, pos: Pos, seen: &mut HashSet<String>) {
        if self.problems.len() >= MAX_PROBLEMS {
            // Past the cap nothing is listed; skip the costly suggestion but
            // keep the count honest.
            if !seen.insert(name.to_owned()) || !catalog::is_known_syscall(name) {
                self.omitted.1 += 1;
            }
            return;
        }
        if !seen.insert(name.to_owned()) {
            self.warn(
                pos,
                format!("syscall {name:?} is listed twice in this rule"),
            );
        } else if !catalog::is_known_syscall(name) {
            let hint = match catalog::suggest(name, catalog::known_syscalls().iter().copied()) {
                Some(s) => format!("; did you mean {s:?}?"),
                None => "; runtimes skip names their libseccomp does not know".to_owned(),
            };
            self.warn(pos, format!("unknown syscall {name:?}{hint}"));
        }
    }

    fn arg(&mut self, node: &Node) -> Option<ArgCondition> {
        let Value::Map(entries) = &node.value else {
            self.err(
                node.pos,
                format!("each args entry must be an object, found {}", node.kind()),
            );
            return None;
        };
        let (mut index, mut value, mut value_two, mut op) = (None, Some(0), Some(0), None);
        for (key, v) in entries {
            match key.name.as_str() {
                "index" => index = self.uint(v, "index", (MAX_ARGS - 1) as u64),
                "value" => value = self.uint(v, "value", u64::MAX),
                "valueTwo" => value_two = self.uint(v, "valueTwo", u64::MAX),
                "op" => {
                    if let Some(name) = self.string(v, "op") {
                        op = Op::from_name(&name);
                        if op.is_none() {
                            let hint = catalog::suggest(&name, Op::ALL.iter().map(|o| o.as_str()))
                                .map(|s| format!("did you mean {s}?"))
                                .unwrap_or_else(|| {
                                    "use SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_MASKED_EQ, ..."
                                        .to_owned()
                                });
                            self.err(v.pos, format!("unknown op {name:?}; {hint}"));
                        }
                    }
                }
                _ => self.unknown_key(key, &ARG_KEYS),
            }
        }
        if entries.iter().all(|(k, _)| k.name != "index") {
            self.err(node.pos, "argument condition has no index (0 to 5)");
        }
        if entries.iter().all(|(k, _)| k.name != "op") {
            self.err(
                node.pos,
                "argument condition has no op; use e.g. SCMP_CMP_EQ",
            );
        }
        let index = u32::try_from(index?).ok()?;
        Some(ArgCondition {
            index,
            value: value?,
            value_two: value_two?,
            op: op?,
        })
    }

    fn filter(&mut self, node: &Node, what: &str) -> Filter {
        let mut filter = Filter::default();
        let Value::Map(entries) = &node.value else {
            if node.value != Value::Null {
                self.err(
                    node.pos,
                    format!("{what} must be an object, found {}", node.kind()),
                );
            }
            return filter;
        };
        for (key, value) in entries {
            match key.name.as_str() {
                "caps" => {
                    for (cap, pos) in self.strings(value, "caps") {
                        if !catalog::CAPS.contains(&cap.as_str()) {
                            let hint = catalog::suggest(&cap, catalog::CAPS)
                                .map(|s| format!("; did you mean {s}?"))
                                .unwrap_or_default();
                            self.warn(pos, format!("unknown capability {cap:?}{hint}"));
                        }
                        filter.caps.push(cap);
                    }
                }
                "arches" => {
                    for (arch, pos) in self.strings(value, "arches") {
                        if !catalog::GOARCHES.contains(&arch.as_str()) {
                            self.warn(pos, format!("unknown architecture {arch:?}; moby compares these with Go's GOARCH (amd64, arm64, ...)"));
                        }
                        filter.arches.push(arch);
                    }
                }
                "minKernel" => {
                    if let Some(v) = self.string(value, "minKernel") {
                        if super::evaluate::parse_kernel(&v).is_none() {
                            self.err(
                                value.pos,
                                format!("minKernel {v:?} is not a kernel version like \"4.8\""),
                            );
                        }
                        filter.min_kernel = Some(v);
                    }
                }
                _ => self.unknown_key(key, &FILTER_KEYS),
            }
        }
        filter
    }
}

#[cfg(test)]
mod tests;
