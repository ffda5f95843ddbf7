//! Writing a profile in each output dialect. Deterministic: the same profile
//! and options always give the same bytes.

use std::{collections::BTreeMap, fmt::Write as _};

use serde_json::{Map, Value, json};

use super::{
    ArgCondition, DEFAULT_ERRNO, EvalContext, Filter, Profile, SyscallRule, arches::effective_arches, catalog,
};

const NATIVE: &str = "SCMP_ARCH_NATIVE";

/// Output dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Pure OCI seccomp JSON (runc, crun, containerd, CRI-O, kubelet Localhost).
    Oci,
    /// Security Profiles Operator SeccompProfile (v1) YAML.
    Spo,
    /// moby/Docker JSON, keeping archMap and includes/excludes.
    Moby,
    /// The Kubernetes securityContext that points at the profile.
    K8sSnippet,
}

impl Format {
    /// The name `--format` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Oci => "oci",
            Format::Spo => "spo",
            Format::Moby => "moby",
            Format::K8sSnippet => "k8s-snippet",
        }
    }
}

/// What the SPO and snippet writers need besides the profile.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// metadata.name (SPO) and the profile's file name (snippet).
    pub name: Option<String>,
    /// Extra metadata.annotations (SPO), e.g. syscall coverage.
    pub annotations: BTreeMap<String, String>,
}

/// A written profile and what could not be carried over exactly.
#[derive(Clone, Debug)]
pub struct Written {
    pub text: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{format} cannot express {what}; {fix}")]
    Unrepresentable { format: &'static str, what: String, fix: String },
    #[error(
        "{name:?} is not a valid Kubernetes object name; use lowercase letters, digits, '-' and '.', e.g. --name my-app"
    )]
    BadName { name: String },
    #[error("--format {format} needs a name; pass --name NAME (lowercase letters, digits, '-')")]
    NoName { format: &'static str },
}

/// Writes `profile` as `format`. Templates (moby `includes`/`archMap`) are
/// evaluated for this host first, except for `moby`, which keeps them.
pub fn write(profile: &Profile, format: Format, opts: &WriteOptions) -> Result<Written, WriteError> {
    let mut warnings = Vec::new();
    let evaluated;
    let plain = if profile.is_template() && format != Format::Moby {
        let ctx = EvalContext::host();
        warnings.push(format!(
            "moby archMap/includes/excludes were evaluated for {} with Docker's default capabilities{}; use --format moby to keep them",
            catalog::goarch(ctx.native),
            ctx.kernel.map(|(a, b)| format!(" and kernel {a}.{b}")).unwrap_or_default()
        ));
        evaluated = profile.evaluate(&ctx);
        &evaluated
    } else {
        profile
    };
    // runc refuses SCMP_ARCH_NATIVE (a libseccomp name): OCI and SPO output
    // name the host's architecture instead, which is what libseccomp means.
    let resolved;
    let plain = if matches!(format, Format::Oci | Format::Spo) && plain.architectures.iter().any(|a| a == NATIVE) {
        let mut p = plain.clone();
        p.architectures = effective_arches(plain);
        warnings.push(format!(
            "SCMP_ARCH_NATIVE was resolved to this host's {}; convert on a machine of the architecture that will load the profile",
            p.architectures.join(", ")
        ));
        resolved = p;
        &resolved
    } else {
        plain
    };
    let text = match format {
        Format::Oci => oci_json(plain),
        Format::Moby => moby_json(plain),
        Format::Spo => spo_yaml(plain, opts, &mut warnings)?,
        Format::K8sSnippet => k8s_snippet(opts)?,
    };
    Ok(Written { text, warnings })
}

fn pretty(value: &Value) -> String {
    // Serialising a serde_json::Value cannot fail.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn arg_json(c: &ArgCondition) -> Value {
    let mut m = Map::new();
    m.insert("index".into(), json!(c.index));
    m.insert("value".into(), json!(c.value));
    if c.value_two != 0 {
        m.insert("valueTwo".into(), json!(c.value_two));
    }
    m.insert("op".into(), json!(c.op.as_str()));
    Value::Object(m)
}

fn rule_json(rule: &SyscallRule, moby: bool) -> Value {
    let mut m = Map::new();
    m.insert("names".into(), json!(rule.names));
    m.insert("action".into(), json!(rule.action.as_str()));
    if let Some(e) = rule.errno_ret {
        m.insert("errnoRet".into(), json!(e));
    }
    if !rule.args.is_empty() {
        m.insert("args".into(), Value::Array(rule.args.iter().map(arg_json).collect()));
    }
    if moby {
        if let Some(c) = &rule.comment {
            m.insert("comment".into(), json!(c));
        }
        for (key, filter) in [("includes", &rule.includes), ("excludes", &rule.excludes)] {
            if !filter.is_empty() {
                m.insert(key.into(), filter_json(filter));
            }
        }
    }
    Value::Object(m)
}

fn filter_json(f: &Filter) -> Value {
    let mut m = Map::new();
    if !f.caps.is_empty() {
        m.insert("caps".into(), json!(f.caps));
    }
    if !f.arches.is_empty() {
        m.insert("arches".into(), json!(f.arches));
    }
    if let Some(k) = &f.min_kernel {
        m.insert("minKernel".into(), json!(k));
    }
    Value::Object(m)
}

fn common_json(p: &Profile, moby: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("defaultAction".into(), json!(p.default_action.as_str()));
    if let Some(e) = p.default_errno_ret {
        m.insert("defaultErrnoRet".into(), json!(e));
    }
    if moby && !p.arch_map.is_empty() {
        let entries: Vec<Value> = p
            .arch_map
            .iter()
            .map(|e| json!({"architecture": e.architecture, "subArchitectures": e.sub_architectures}))
            .collect();
        m.insert("archMap".into(), Value::Array(entries));
    } else if !p.architectures.is_empty() {
        m.insert("architectures".into(), json!(p.architectures));
    }
    if !p.flags.is_empty() {
        m.insert("flags".into(), json!(p.flags));
    }
    if let Some(l) = &p.listener_path {
        m.insert("listenerPath".into(), json!(l));
    }
    if let Some(l) = &p.listener_metadata {
        m.insert("listenerMetadata".into(), json!(l));
    }
    m.insert("syscalls".into(), Value::Array(p.syscalls.iter().map(|r| rule_json(r, moby)).collect()));
    m
}

/// Pure OCI JSON: no moby keys, because containerd silently drops them and
/// a dropped `includes` would turn a conditional rule into an unconditional one.
pub(super) fn oci_json(profile: &Profile) -> String {
    if profile.is_template() {
        return pretty(&Value::Object(common_json(&profile.evaluate(&EvalContext::host()), false)));
    }
    pretty(&Value::Object(common_json(profile, false)))
}

fn moby_json(profile: &Profile) -> String {
    pretty(&Value::Object(common_json(profile, true)))
}

fn spo_yaml(p: &Profile, opts: &WriteOptions, warnings: &mut Vec<String>) -> Result<String, WriteError> {
    const FORMAT: &str = "SPO SeccompProfile v1";
    let name = opts.name.as_deref().ok_or(WriteError::NoName { format: "spo" })?;
    if !crate::k8s_name::is_subdomain(name) {
        return Err(WriteError::BadName { name: name.to_owned() });
    }
    match p.default_errno_ret {
        // EPERM is what runtimes use when the field is unset, so dropping it
        // changes nothing.
        None | Some(DEFAULT_ERRNO) => {}
        Some(other) => {
            return Err(WriteError::Unrepresentable {
                format: FORMAT,
                what: format!("defaultErrnoRet {other} (it has no such field, so denied syscalls would get EPERM)"),
                fix: "use --format oci, or deny with EPERM".to_owned(),
            });
        }
    }
    let mut spec = Map::new();
    spec.insert("defaultAction".into(), json!(p.default_action.as_str()));
    let (kept, dropped): (Vec<&String>, Vec<&String>) =
        p.architectures.iter().partition(|a| catalog::SPO_ARCHES.contains(&a.as_str()));
    if !dropped.is_empty() {
        // Leaving an architecture out makes the profile stricter (libseccomp
        // kills syscalls from unlisted architectures), never looser.
        let names: Vec<&str> = dropped.iter().map(|s| s.as_str()).collect();
        warnings.push(format!("SPO's architecture enum has no {}; left out (stricter, not looser)", names.join(", ")));
    }
    if !kept.is_empty() {
        spec.insert("architectures".into(), json!(kept));
    }
    if !p.flags.is_empty() {
        spec.insert("flags".into(), json!(p.flags));
    }
    if let Some(l) = &p.listener_path {
        spec.insert("listenerPath".into(), json!(l));
    }
    if let Some(l) = &p.listener_metadata {
        spec.insert("listenerMetadata".into(), json!(l));
    }
    let mut rules = Vec::new();
    for rule in &p.syscalls {
        if rule.errno_ret == Some(0) {
            return Err(WriteError::Unrepresentable {
                format: FORMAT,
                what: format!("errnoRet 0 for {} (SPO treats 0 as unset, i.e. EPERM)", rule.names.join(", ")),
                fix: "use --format oci".to_owned(),
            });
        }
        if let Some(c) = rule.args.iter().find(|c| c.value > i64::MAX as u64 || c.value_two > i64::MAX as u64) {
            return Err(WriteError::Unrepresentable {
                format: FORMAT,
                what: format!("the condition {c} on {} (values are int64 there)", rule.names.join(", ")),
                fix: "use --format oci".to_owned(),
            });
        }
        rules.push(rule_json(rule, false));
    }
    if !rules.is_empty() {
        spec.insert("syscalls".into(), Value::Array(rules));
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    if !opts.annotations.is_empty() {
        metadata.insert("annotations".into(), json!(opts.annotations));
    }
    let doc = json!({
        "apiVersion": "security-profiles-operator.x-k8s.io/v1",
        "kind": "SeccompProfile",
        "metadata": Value::Object(metadata),
        "spec": Value::Object(spec),
    });
    let mut out = String::new();
    yaml_emit(&doc, 0, &mut out);
    Ok(out)
}

fn k8s_snippet(opts: &WriteOptions) -> Result<String, WriteError> {
    let name = opts.name.as_deref().ok_or(WriteError::NoName { format: "k8s-snippet" })?;
    if !crate::k8s_name::is_subdomain(name) {
        return Err(WriteError::BadName { name: name.to_owned() });
    }
    Ok(format!(
        "# securityContext for a Pod (spec.securityContext) or a container that runs\n\
         # under the seccomp profile {name:?}. The kubelet reads Localhost profiles\n\
         # relative to its seccomp root, so first put the OCI profile on every node:\n\
         #   recorder convert PROFILE -o /var/lib/kubelet/seccomp/profiles/{name}.json\n\
         # With the Security Profiles Operator, apply `--format spo` instead and use\n\
         # the path it reports in the SeccompProfile's status.localhostProfile.\n\
         securityContext:\n  seccompProfile:\n    type: Localhost\n    localhostProfile: profiles/{name}.json\n"
    ))
}

/// Emits the JSON-shaped `value` as block YAML. Strings that could read as
/// something else (numbers, booleans, null, anything with YAML syntax) are
/// double-quoted with JSON escapes, which YAML's double-quoted style accepts.
fn yaml_emit(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = yaml_scalar(&Value::String(k.clone()));
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        let _ = writeln!(out, "{pad}{key}:");
                        yaml_emit(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let _ = writeln!(out, "{pad}{key}:");
                        yaml_emit(v, indent, out);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}{key}: {}", yaml_scalar(v));
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut nested = String::new();
                        yaml_emit(item, indent + 2, &mut nested);
                        // The first line of the item goes after "- ".
                        let body = nested.get(indent + 2..).unwrap_or("");
                        let _ = write!(out, "{pad}- {body}");
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let _ = writeln!(out, "{pad}-");
                        yaml_emit(item, indent + 2, out);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}- {}", yaml_scalar(item));
                    }
                }
            }
        }
        scalar => {
            let _ = writeln!(out, "{pad}{}", yaml_scalar(scalar));
        }
    }
}

fn yaml_scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
        Value::String(s) => {
            let plain = !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b))
                && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
                );
            if plain { s.clone() } else { yaml_quoted(s) }
        }
    }
}

/// `s` double-quoted: JSON's escapes, plus `\uXXXX` for what JSON leaves
/// raw but YAML does not allow in a document (DEL, C1 controls, a BOM,
/// the non-characters U+FFFE and U+FFFF): a tenant's annotation must never
/// make the written file unreadable.
fn yaml_quoted(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_default();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        // YAML 1.2 c-printable, minus the BOM (allowed only at a document's start).
        let printable = matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
            && c != '\u{FEFF}';
        if printable {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{:04X}", u32::from(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars_quote_what_needs_it() {
        assert_eq!(yaml_scalar(&json!("read")), "read");
        assert_eq!(yaml_scalar(&json!("SCMP_ACT_ALLOW")), "SCMP_ACT_ALLOW");
        assert_eq!(yaml_scalar(&json!("yes")), "\"yes\"");
        assert_eq!(yaml_scalar(&json!("38")), "\"38\"");
        assert_eq!(yaml_scalar(&json!("a: b")), "\"a: b\"");
        assert_eq!(yaml_scalar(&json!("spo.x-k8s.io/syscall-coverage")), "spo.x-k8s.io/syscall-coverage");
    }

    /// Found by tests/tests/hostile_names.rs: JSON leaves DEL raw, and a YAML
    /// reader refuses it, so an annotation holding one made an unreadable file.
    #[test]
    fn yaml_scalars_escape_what_yaml_cannot_hold_raw() {
        assert_eq!(yaml_scalar(&json!("a\u{7f}")), "\"a\\u007F\"");
        assert_eq!(yaml_scalar(&json!("\u{feff}a\u{9b}\u{2028}")), "\"\\uFEFFa\\u009B\u{2028}\"");
        for s in ["a\u{7f}", "\u{feff}a", "x\u{80}\u{9f}\u{fffe}", "a\nb\0"] {
            let doc = format!("k: {}\n", yaml_scalar(&json!(s)));
            assert!(super::super::yaml::parse(&doc).is_ok(), "{doc:?}");
        }
    }

    #[test]
    fn yaml_nests_lists_of_objects() {
        let mut out = String::new();
        yaml_emit(&json!({"a": [{"b": 1, "c": ["x", "y"]}], "d": {}}), 0, &mut out);
        // "y" is a YAML 1.1 boolean, so it is quoted.
        assert_eq!(out, "a:\n- b: 1\n  c:\n  - x\n  - \"y\"\nd: {}\n");
    }
}
