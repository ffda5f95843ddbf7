//! Rendering a [`Diff`]: a short table for people, a stable object for scripts.

use std::{collections::BTreeSet, fmt::Write as _};

use serde_json::{Map, Value, json};

use super::{ArchDiff, Diff, Treatment, risky};
use crate::{profile::ArgCondition, text::Paint};

/// How many names of "attack surface removed" the table shows.
const NOTABLE: usize = 12;

fn cond_json(c: &ArgCondition) -> Value {
    let mut m = Map::new();
    m.insert("index".into(), json!(c.index));
    m.insert("op".into(), json!(c.op.as_str()));
    m.insert("value".into(), json!(c.value));
    if c.value_two != 0 {
        m.insert("valueTwo".into(), json!(c.value_two));
    }
    Value::Object(m)
}

fn treatment_json(t: &Treatment) -> Value {
    let (name, when) = match t {
        Treatment::Blocked => ("blocked", None),
        Treatment::Allowed => ("allowed", None),
        Treatment::AllowedWhen(w) => ("allowed_when", Some(w)),
        Treatment::BlockedWhen(w) => ("blocked_when", Some(w)),
    };
    let mut m = Map::new();
    m.insert("treatment".into(), json!(name));
    if let Some(w) = when {
        let sets: Vec<Value> = w.iter().map(|set| Value::Array(set.iter().map(cond_json).collect())).collect();
        m.insert("when".into(), Value::Array(sets));
    }
    Value::Object(m)
}

/// `{"all": v}` when every architecture has the same value, else one entry per architecture.
fn per_arch(diff: &Diff, f: impl Fn(&ArchDiff) -> Value) -> Value {
    let values: Vec<(&String, Value)> = diff.iter().map(|(a, d)| (a, f(d))).collect();
    let mut m = Map::new();
    if let Some((_, first)) = values.first()
        && values.iter().all(|(_, v)| v == first)
    {
        m.insert("all".into(), first.clone());
        return Value::Object(m);
    }
    for (arch, v) in values {
        m.insert(arch.clone(), v);
    }
    Value::Object(m)
}

fn names(set: &BTreeSet<String>) -> Value {
    json!(set)
}

/// The `--json` object. Keys and their shapes are documented in
/// docs/profile-algebra.md; add keys, never change existing ones.
pub fn json(diff: &Diff) -> String {
    let mut m = Map::new();
    m.insert("base".into(), per_arch(diff, |d| names(&d.base)));
    m.insert("profile".into(), per_arch(diff, |d| names(&d.profile)));
    m.insert("only_in_profile".into(), per_arch(diff, |d| names(&d.only_in_profile)));
    m.insert("only_in_base".into(), per_arch(diff, |d| names(&d.only_in_base)));
    m.insert("in_both".into(), per_arch(diff, |d| names(&d.in_both)));
    m.insert(
        "conditional".into(),
        per_arch(diff, |d| {
            Value::Array(
                d.conditional
                    .iter()
                    .map(
                        |(name, (b, p))| json!({"name": name, "base": treatment_json(b), "profile": treatment_json(p)}),
                    )
                    .collect(),
            )
        }),
    );
    m.insert("risky".into(), per_arch(diff, |d| names(&d.risky)));
    let reasons: BTreeSet<&String> = diff.iter().flat_map(|(_, d)| &d.risky).collect();
    let reasons: Map<String, Value> =
        reasons.into_iter().filter_map(|n| risky::reason(n).map(|r| (n.clone(), json!(r)))).collect();
    m.insert("risky_reasons".into(), Value::Object(reasons));
    if !diff.made_by.is_empty() {
        let risky: BTreeSet<&String> = diff.iter().flat_map(|(_, d)| &d.risky).collect();
        let made_by: Map<String, Value> =
            risky.into_iter().map(|n| (n.clone(), json!(diff.made_by.get(n).cloned().unwrap_or_default()))).collect();
        m.insert("risky_made_by".into(), Value::Object(made_by));
    }
    m.insert("sources".into(), json!({"base": diff.base_label, "profile": diff.profile_label}));
    m.insert("architectures".into(), json!(diff.arches));
    m.insert(
        "counts".into(),
        per_arch(diff, |d| {
            json!({
                "base": d.base.len(),
                "profile": d.profile.len(),
                "only_in_profile": d.only_in_profile.len(),
                "only_in_base": d.only_in_base.len(),
                "in_both": d.in_both.len(),
                "removed_percent": percent(d.only_in_base.len(), d.base.len()),
            })
        }),
    );
    let mut text = serde_json::to_string_pretty(&Value::Object(m)).unwrap_or_default();
    text.push('\n');
    text
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    // One decimal, so the JSON is stable across float formatting.
    ((part as f64) * 1000.0 / (whole as f64)).round() / 10.0
}

fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let v: Vec<String> = names.into_iter().map(|n| n.as_ref().to_owned()).collect();
    if v.is_empty() { "-".to_owned() } else { v.join(", ") }
}

/// A treatment in words: "allowed with any arguments", "allowed only with
/// these arguments: arg0 == 1".
pub fn describe(t: &Treatment) -> String {
    let sets = |w: &[Vec<ArgCondition>]| {
        w.iter()
            .map(|set| set.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and "))
            .collect::<Vec<_>>()
            .join(", or ")
    };
    match t {
        Treatment::Blocked => "blocked".to_owned(),
        Treatment::Allowed => "allowed with any arguments".to_owned(),
        Treatment::AllowedWhen(w) => format!("allowed only with these arguments: {}", sets(w)),
        Treatment::BlockedWhen(w) => format!("allowed except with these arguments: {}", sets(w)),
    }
}

fn section(out: &mut String, diff: &Diff, d: &ArchDiff, paint: Paint) {
    let (b, p) = (&diff.base_label, &diff.profile_label);
    let mut notable: Vec<&String> = d.only_in_base.iter().filter(|n| risky::reason(n).is_some()).collect();
    notable.extend(d.only_in_base.iter().filter(|n| risky::reason(n).is_none()));
    let more = notable.len().saturating_sub(NOTABLE);
    notable.truncate(NOTABLE);
    let mut removed = format!(
        "{:.1}% of {}'s {}; notable: {}",
        percent(d.only_in_base.len(), d.base.len()),
        b,
        d.base.len(),
        list(&notable)
    );
    if more > 0 {
        let _ = write!(removed, " (+{more} more; --json lists all)");
    }
    // Colour only where it carries meaning: what would break (red), what
    // deserves a second look (yellow).
    let needed = list(&d.only_in_profile);
    let risky_names = list(&d.risky);
    let rows = [
        (
            format!("1. needed by {p}, blocked by {b}"),
            d.only_in_profile.len(),
            if d.only_in_profile.is_empty() { needed } else { paint.red(&needed) },
        ),
        (format!("2. allowed by {b}, removed by {p}"), d.only_in_base.len(), removed),
        (
            format!("3. risky, still allowed by {p}"),
            d.risky.len(),
            if d.risky.is_empty() { risky_names } else { paint.yellow(&risky_names) },
        ),
    ];
    let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    for (q, n, names) in rows {
        let _ = writeln!(out, "  {q:<width$}  {n:>4}  {names}");
    }
    if !d.only_in_profile.is_empty() {
        let note = if b.starts_with("runtime/default") {
            format!("  -> under {b} (type: RuntimeDefault) these calls would be refused.")
        } else {
            format!("  -> under {b} these calls would be refused.")
        };
        let _ = writeln!(out, "{}", paint.red(&note));
    }
    if !d.risky.is_empty() {
        let _ = writeln!(out, "\n  Risky syscalls {p} allows:");
        let w = d.risky.iter().map(|n| n.len()).max().unwrap_or(0);
        for name in &d.risky {
            let cond = match d.conditional.get(name) {
                Some((_, t)) if t.is_conditional() => " (only with certain arguments)",
                _ => "",
            };
            let shown = paint.yellow(&format!("{name:<w$}"));
            let _ = writeln!(out, "    {shown}  {}{cond}{}", risky::reason(name).unwrap_or(""), made_by(diff, name));
        }
    }
    if !d.conditional.is_empty() {
        let _ = writeln!(out, "\n  Argument-conditioned rules:");
        for (name, (bt, pt)) in &d.conditional {
            let _ = writeln!(out, "    {name}");
            let _ = writeln!(out, "      {b}: {}", describe(bt));
            let _ = writeln!(out, "      {p}: {}", describe(pt));
        }
    }
}

/// ` — only /usr/bin/x` (or ` — made by: a, b`) for `diff --by-exe`.
fn made_by(diff: &Diff, name: &str) -> String {
    if diff.made_by.is_empty() {
        return String::new();
    }
    match diff.made_by.get(name) {
        None => " — made by: not recorded (a base set or the shutdown set added it)".to_owned(),
        Some(exes) if exes.len() == 1 => format!(" — only {}", exes.iter().next().map_or("", String::as_str)),
        Some(exes) => format!(" — made by: {}", exes.iter().cloned().collect::<Vec<_>>().join(", ")),
    }
}

/// The table for people; `paint` colours it for a terminal.
pub fn human(diff: &Diff, paint: Paint) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", paint.bold(&format!("{} compared with {}", diff.profile_label, diff.base_label)));
    if diff.uniform() {
        let _ = writeln!(out, "architectures: {}\n", diff.arches.join(", "));
        if let Some((_, d)) = diff.iter().next() {
            section(&mut out, diff, d, paint);
        }
    } else {
        for (arch, d) in diff.iter() {
            let _ = writeln!(out, "\n{}", paint.bold(&format!("{arch}:")));
            section(&mut out, diff, d, paint);
        }
    }
    out
}
