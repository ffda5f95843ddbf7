//! Reading any supported dialect, auto-detected, with every problem listed.
//!
//! Dialects: plain OCI (runtime-spec `LinuxSeccomp`); moby (`archMap`,
//! `includes`/`excludes`, `comment`, the old single `name`); containers/common
//! (`errno`/`defaultErrno` names such as "ENOSYS", `SCMP_ARCH_NATIVE`); and the
//! Security Profiles Operator's `SeccompProfile` custom resource, v1 and
//! v1beta1, as YAML or JSON. They share one model, so detection only decides
//! where the profile object sits and which keys are expected.

use std::{collections::BTreeMap, io::Read as _, path::Path};

use super::{
    Action, Profile, catalog,
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
        self.problems.iter().filter(|d| d.severity == Severity::Error).count()
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
    if path == Path::new("-") { "<stdin>".to_owned() } else { path.display().to_string() }
}

/// Reads a file as UTF-8 text, refusing anything over [`super::MAX_PROFILE_BYTES`]
/// before reading it (and, for pipes, as soon as the limit is passed).
pub fn read_text(path: &Path) -> Result<String, ProfileError> {
    let shown = display_path(path);
    let read_err = |source| ProfileError::Read { path: shown.clone(), source };
    let limit = super::MAX_PROFILE_BYTES;
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().lock().take(limit + 1).read_to_end(&mut bytes).map_err(read_err)?;
    } else {
        let file = open_input(path, &shown)?;
        let size = file.metadata().map_err(read_err)?.len();
        if size > limit {
            return Err(ProfileError::TooLarge { path: shown, size });
        }
        file.take(limit + 1).read_to_end(&mut bytes).map_err(read_err)?;
    }
    let size = bytes.len() as u64;
    if size > limit {
        return Err(ProfileError::TooLarge { path: shown, size });
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = valid[line_start..].iter().filter(|b| **b & 0xC0 != 0x80).count() + 1;
        ProfileError::Syntax {
            path: shown.clone(),
            line,
            column,
            message: "not UTF-8 text; is this a binary file?".to_owned(),
        }
    })
}

/// Opens an input for reading without ever blocking in open(2): a FIFO
/// with no writer would otherwise hang here. Regular files are read; a
/// descriptor this process already holds (`/dev/stdin`, `/dev/fd/N`, as
/// `<(cat p.json)` gives) is read as it is; anything else is refused.
fn open_input(path: &Path, shown: &str) -> Result<std::fs::File, ProfileError> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};

    let read_err = |source| ProfileError::Read { path: shown.to_owned(), source };
    if crate::output::own_descriptor(path).is_some() {
        return std::fs::File::open(path).map_err(read_err);
    }
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(read_err)?;
    let kind = file.metadata().map_err(read_err)?.file_type();
    let not_regular = |kind| Err(ProfileError::NotRegular { path: shown.to_owned(), kind });
    if kind.is_file() {
        // O_NONBLOCK means nothing for a regular file's reads.
        Ok(file)
    } else if kind.is_dir() {
        not_regular("directory")
    } else if kind.is_fifo() {
        not_regular("FIFO")
    } else if kind.is_char_device() {
        not_regular("character device")
    } else if kind.is_block_device() {
        not_regular("block device")
    } else {
        not_regular("socket")
    }
}

/// Parses a profile of any dialect. `source` names it in messages. Warnings
/// come back in [`Loaded::warnings`]; any error fails the read.
pub fn parse_str(text: &str, source: &str) -> Result<Loaded, ProfileError> {
    let report = check_str(text, source)?;
    match report.loaded {
        Some(loaded) if report.problems.iter().all(|d| d.severity != Severity::Error) => Ok(loaded),
        _ => Err(ProfileError::Invalid { path: source.to_owned(), problems: report.problems }),
    }
}

/// Parses and validates, listing every problem. Fails only when the text is
/// not well-formed JSON/YAML, or is too large or deep to look at.
pub fn check_str(text: &str, source: &str) -> Result<Report, ProfileError> {
    let root = parse_tree(text).map_err(|f| match f {
        ParseFailure::Syntax { pos, message } => {
            ProfileError::Syntax { path: source.to_owned(), line: pos.line, column: pos.column, message }
        }
        ParseFailure::TooDeep { pos, message } => {
            ProfileError::TooDeep { path: source.to_owned(), line: pos.line, column: pos.column, message }
        }
    })?;
    let mut r = Reader { path: source.to_owned(), problems: Vec::new(), moby: false, common: false, omitted: (0, 0) };
    let result = r.document(&root);
    let dialect = result.as_ref().map(|(_, d, _, _)| *d);
    r.problems.sort_by_key(|d| (d.pos, d.severity));
    let (errors, warnings) = r.omitted;
    if errors + warnings > 0 {
        let pos = r.problems.last().map_or(root.pos, |d| d.pos);
        let severity = if errors > 0 { Severity::Error } else { Severity::Warning };
        r.problems.push(Diagnostic {
            severity,
            path: source.to_owned(),
            pos,
            message: format!("{errors} more errors and {warnings} more warnings not listed; fix these first"),
        });
    }
    let loaded = result.map(|(profile, dialect, name, annotations)| Loaded {
        profile,
        dialect,
        warnings: r.problems.iter().filter(|d| d.severity == Severity::Warning).cloned().collect(),
        name,
        annotations,
    });
    Ok(Report { dialect, problems: r.problems, loaded })
}

/// JSON when the document starts like JSON, YAML otherwise. JSON is also
/// YAML, but our JSON reader gives exact positions and JSON's own messages.
fn parse_tree(text: &str) -> Result<Node, ParseFailure> {
    let body = text.trim_start_matches('\u{feff}').trim_start();
    if body.starts_with('{') || body.starts_with('[') { json::parse(text) } else { yaml::parse(text) }
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
const RULE_KEYS: [&str; 9] =
    ["names", "name", "action", "errnoRet", "errno", "args", "comment", "includes", "excludes"];
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
        self.problems.push(Diagnostic { severity, path: self.path.clone(), pos, message: message.into() });
    }

    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(Severity::Error, pos, message);
    }

    fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(Severity::Warning, pos, message);
    }

    fn document(&mut self, root: &Node) -> Option<Document> {
        let Value::Map(entries) = &root.value else {
            self.err(root.pos, format!("expected a seccomp profile object, found {}", root.kind()));
            return None;
        };
        if root.get("securityContext").is_some() {
            self.err(
                root.pos,
                "this is a Kubernetes securityContext snippet, not a profile; pass the profile it names",
            );
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
                self.err(pos, format!("kind is {other:?}; only SeccompProfile resources hold a seccomp profile"));
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
            Some(v) if v == format!("{SPO_GROUP}/v1beta1") || v == format!("{SPO_GROUP}/v1alpha1") => {
                Dialect::SpoV1beta1
            }
            Some(v) => {
                let pos = api.map_or(root.pos, |a| a.pos);
                self.err(
                    pos,
                    format!("apiVersion {v:?} is not a SeccompProfile version; use {SPO_GROUP}/v1 or /v1beta1"),
                );
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
            name = meta.get("name").and_then(|n| self.string(n, "metadata.name"));
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
            self.err(spec.pos, format!("spec must be an object, found {}", spec.kind()));
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
        if let Some((k, _)) = spec_entries.iter().find(|(k, _)| k.name == "defaultErrnoRet") {
            self.warn(k.pos, "SPO SeccompProfile has no defaultErrnoRet; the API server drops it and EPERM applies");
        }
        Some((profile, dialect, name, annotations))
    }

    fn unknown_key(&mut self, key: &Key, known: &[&str]) {
        let hint = match catalog::suggest(&key.name, known.iter().copied()) {
            Some(s) => format!("; did you mean \"{s}\"?"),
            None => format!("; known keys: {}", known.join(", ")),
        };
        self.warn(key.pos, format!("unknown key \"{}\" is ignored{hint}", key.name));
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.err(node.pos, format!("{what} must be a string, found {}", node.kind()));
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
                self.err(node.pos, format!("{what} must be a list, found {}", node.kind()));
                None
            }
        }
    }

    fn strings(&mut self, node: &Node, what: &str) -> Vec<(String, Pos)> {
        let Some(items) = self.list(node, what) else {
            return Vec::new();
        };
        items.iter().filter_map(|n| self.string(n, what).map(|s| (s, n.pos))).collect()
    }

    fn uint(&mut self, node: &Node, what: &str, max: u64) -> Option<u64> {
        match node.value {
            Value::Int(n) if (0..=i128::from(max)).contains(&n) => u64::try_from(n).ok(),
            Value::Int(n) => {
                self.err(node.pos, format!("{what} is {n}, outside 0..={max}"));
                None
            }
            _ => {
                self.err(node.pos, format!("{what} must be a non-negative integer, found {}", node.kind()));
                None
            }
        }
    }

    /// An errno given as a number, a numeric string (SPO v1beta1 once typed
    /// errnoRet as a string) or a name such as "ENOSYS" (containers/common).
    fn errno(&mut self, node: &Node, what: &str) -> Option<u32> {
        if let Value::Str(s) = &node.value {
            if let Ok(n) = s.parse::<i128>() {
                return self.errno_in_range(node.pos, what, n);
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
        if let Value::Int(n) = node.value {
            return self.errno_in_range(node.pos, what, n);
        }
        self.err(
            node.pos,
            format!("{what} must be an errno number (0 to {}), found {}", catalog::MAX_ERRNO, node.kind()),
        );
        None
    }

    fn errno_in_range(&mut self, pos: Pos, what: &str, n: impl Into<i128>) -> Option<u32> {
        let n = n.into();
        match u32::try_from(n) {
            Ok(v) if v <= catalog::MAX_ERRNO => Some(v),
            _ => {
                self.err(pos, format!("{what} is {n}; errno values run from 0 to {}", catalog::MAX_ERRNO));
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
            .unwrap_or_else(|| "use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, ...".to_owned());
        self.err(node.pos, format!("unknown action {name:?}; {hint}"));
        None
    }

    fn arch(&mut self, name: &str, pos: Pos) -> bool {
        if catalog::SCMP_ARCHES.contains(&name) {
            if name == "SCMP_ARCH_NATIVE" {
                self.common = true;
                self.warn(
                    pos,
                    "SCMP_ARCH_NATIVE is libseccomp's, not OCI's: runc refuses it; `recorder convert --format oci` resolves it to this host's architecture",
                );
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
}

mod rules;
#[cfg(test)]
mod tests;
