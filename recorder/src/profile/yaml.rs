//! YAML (SPO `SeccompProfile` manifests) into the positioned [`Node`] tree.
//!
//! serde-saphyr does the parsing: it is maintained, forbids `unsafe`, is
//! fuzzed, reports line and column for every value through `Spanned`, and
//! enforces budgets (nesting depth, alias expansion, node count) so a
//! "billion laughs" document or a deeply nested one fails fast instead of
//! exhausting memory or the stack.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Budget, Options, Spanned};

use super::node::{Key, MAX_DEPTH, MAX_NODES, Node, ParseFailure, Pos, Value};

/// YAML aliases a profile may use (it needs none).
const MAX_ALIASES: usize = 1_000;

/// Parses `text` as one YAML document.
pub fn parse(text: &str) -> Result<Node, ParseFailure> {
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    budget.max_aliases = MAX_ALIASES;
    budget.max_documents = 1;
    let mut options = Options::default();
    options.budget = Some(budget);
    match serde_saphyr::from_str_with_options::<Spanned<YValue>>(text, options) {
        Ok(root) => Ok(into_node(root)),
        Err(e) => Err(failure(&e)),
    }
}

fn failure(e: &serde_saphyr::Error) -> ParseFailure {
    let pos = e
        .location()
        .map(|l| Pos { line: usize::try_from(l.line()).unwrap_or(0), column: usize::try_from(l.column()).unwrap_or(0) })
        .unwrap_or(Pos { line: 1, column: 1 });
    if let Some(failure) = in_our_words(innermost(e), pos) {
        return failure;
    }
    // The library renders a snippet under the message; we print one line.
    let rendered = e.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    ParseFailure::Syntax { pos, message: strip_location(first).to_owned() }
}

/// The error itself, without the snippet and alias wrappers around it.
fn innermost(e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    let mut e = e;
    loop {
        match e {
            serde_saphyr::Error::WithSnippet { error, .. } => e = error,
            serde_saphyr::Error::AliasError { error, .. } => e = error,
            other => return other,
        }
    }
}

/// The library's messages name its own types and options ("set
/// DuplicateKeyPolicy in Options", "Nodes { nodes: 200001 }"); these are
/// the ones a profile's author can meet, said in their terms.
fn in_our_words(e: &serde_saphyr::Error, pos: Pos) -> Option<ParseFailure> {
    use serde_saphyr::{Error as E, budget::BudgetBreach as B};
    let syntax = |message: String| Some(ParseFailure::Syntax { pos, message });
    let too_large = |message: String| Some(ParseFailure::TooDeep { pos, message });
    match e {
        E::DuplicateMappingKey { key, .. } => syntax(match key {
            Some(k) => format!("duplicate key \"{k}\"; runtimes disagree on which one wins, keep one"),
            None => "duplicate key; runtimes disagree on which one wins, keep one".to_owned(),
        }),
        E::RecursiveReferencesRequireWeakTypes { .. } => {
            syntax("a YAML alias refers to the anchor it is inside; a profile cannot contain itself".to_owned())
        }
        E::MultipleDocuments { .. } | E::Budget { breach: B::Documents { .. }, .. } => syntax(
            "more than one YAML document (a `---` separator); a profile is one document, put each in its own file"
                .to_owned(),
        ),
        E::Budget { breach, .. } => match breach {
            B::Depth { .. } => {
                too_large(format!("nested more than {MAX_DEPTH} levels deep; a seccomp profile needs 5"))
            }
            B::Nodes { .. } | B::Events { .. } => {
                too_large(format!("more than {MAX_NODES} values; a seccomp profile has a few thousand"))
            }
            B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } | B::MergeKeys { .. } => {
                too_large(format!("more than {MAX_ALIASES} YAML aliases or anchors; a seccomp profile needs none"))
            }
            _ => too_large("too large for a seccomp profile".to_owned()),
        },
        E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => {
            too_large("YAML aliases expand to too much; a seccomp profile needs none".to_owned())
        }
        _ => None,
    }
}

/// Drops a trailing " at line L, column C" that we print ourselves.
fn strip_location(message: &str) -> &str {
    match message.find(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

fn pos_of<T>(s: &Spanned<T>) -> Pos {
    Pos {
        line: usize::try_from(s.referenced.line()).unwrap_or(0),
        column: usize::try_from(s.referenced.column()).unwrap_or(0),
    }
}

fn into_node(s: Spanned<YValue>) -> Node {
    let pos = pos_of(&s);
    Node { value: s.value.0, pos }
}

/// A value whose children carry their own spans.
struct YValue(Value);

impl<'de> Deserialize<'de> for YValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YVisitor)
    }
}

struct YVisitor;

impl<'de> Visitor<'de> for YVisitor {
    type Value = YValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<YValue, E> {
        Ok(YValue(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<YValue, E> {
        Ok(YValue(Value::Int(v.into())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<YValue, E> {
        Ok(YValue(Value::Int(v.into())))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<YValue, E> {
        Ok(YValue(Value::Int(v)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<YValue, E> {
        i128::try_from(v).map(|v| YValue(Value::Int(v))).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<YValue, E> {
        Ok(YValue(Value::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<YValue, E> {
        Ok(YValue(Value::Str(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<YValue, E> {
        Ok(YValue(Value::Str(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<YValue, E> {
        Ok(YValue(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<YValue, E> {
        Ok(YValue(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<YValue, D::Error> {
        YValue::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<YValue>>()? {
            items.push(into_node(item));
        }
        Ok(YValue(Value::Seq(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YValue, A::Error> {
        let mut entries: Vec<(Key, Node)> = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<YValue>>()?;
            let key = Key { pos: pos_of(&key), name: key.value };
            entries.push((key, into_node(value)));
        }
        Ok(YValue(Value::Map(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_positions() {
        let n = parse("a:\n  - x\n  - 38\nb: \"SCMP_ACT_ALLOW\"\n").expect("parses");
        let a = n.get("a").expect("a");
        let Value::Seq(items) = &a.value else { panic!("seq {a:?}") };
        assert_eq!(items[0].value, Value::Str("x".into()));
        assert_eq!(items[0].pos, Pos { line: 2, column: 5 });
        assert_eq!(items[1].value, Value::Int(38));
        assert_eq!(n.get("b").map(|b| b.pos.line), Some(4));
        let Value::Map(entries) = &n.value else { panic!("map") };
        assert_eq!(entries[1].0.pos, Pos { line: 4, column: 1 });
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n").expect_err("fails");
        let ParseFailure::Syntax { pos, message } = e else { panic!("{e:?}") };
        assert!(pos.line >= 1, "{pos:?}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn billion_laughs_fails_fast() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        assert!(matches!(parse(&doc), Err(ParseFailure::TooDeep { .. })), "{:?}", parse(&doc).map(|_| ()));
    }

    /// Every message is the user's words: no library types or options.
    #[test]
    fn messages_name_no_internals() {
        let two_docs = "a: 1\n---\nb: 2\n".to_owned();
        let wide = format!("a:\n{}", "  - 0\n".repeat(MAX_NODES + 1));
        let deep = format!("a: {}1{}", "[".repeat(MAX_DEPTH + 2), "]".repeat(MAX_DEPTH + 2));
        let cases = [
            ("a: 1\na: 2\n".to_owned(), "duplicate key \"a\""),
            ("a: &x\n  b: *x\n".to_owned(), "refers to the anchor it is inside"),
            (two_docs, "more than one YAML document"),
            (wide, "more than 200000 values"),
            (deep, "nested more than 64 levels"),
        ];
        for (text, expected) in cases {
            // 64 levels of nested deserializers overflow a test thread's
            // 2 MiB stack in a debug build; main's 8 MiB holds them.
            let parsed = std::thread::Builder::new()
                .stack_size(16 << 20)
                .spawn(move || parse(&text))
                .expect("thread")
                .join()
                .expect("no panic");
            let (ParseFailure::Syntax { message, .. } | ParseFailure::TooDeep { message, .. }) =
                parsed.expect_err("refused");
            assert!(message.contains(expected), "{message}");
            for internal in ["budget", "Options", "Policy", "{", "weak recursion"] {
                assert!(!message.contains(internal), "{message}");
            }
        }
        // A second document is a mistake in the file, not hostile input.
        assert!(matches!(parse("a: 1\n---\nb: 2\n"), Err(ParseFailure::Syntax { .. })));
    }

    #[test]
    fn deep_nesting_fails_fast() {
        let deep = "[".repeat(100_000);
        assert!(matches!(parse(&deep), Err(ParseFailure::TooDeep { .. }) | Err(ParseFailure::Syntax { .. })));
    }
}
