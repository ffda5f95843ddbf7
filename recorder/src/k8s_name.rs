//! Kubernetes object names (RFC 1123), the one rule every name that becomes
//! a file name or an object name goes through. Namespace, pod and container
//! names come from tenants in a multi-tenant cluster: only a name that
//! Kubernetes itself would accept is ever used in a path, which rules out
//! `/`, `..`, NUL, upper case and look-alike Unicode.

/// The kind of name, which decides the rule and the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// DNS-1123 label (at most 63 characters, no dots): namespaces and
    /// container names.
    Namespace,
    Container,
    /// DNS-1123 subdomain (at most 253 characters, dot-separated labels):
    /// pod names and other object names (an SPO `SeccompProfile`).
    Pod,
    Object,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Namespace => "namespace",
            Kind::Container => "container",
            Kind::Pod => "pod",
            Kind::Object => "object",
        }
    }

    fn is_label(self) -> bool {
        matches!(self, Kind::Namespace | Kind::Container)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{} name {name:?} is not a valid Kubernetes name ({}); refusing to use it", .kind.noun(), rule(*.kind))]
pub struct NameError {
    pub kind: Kind,
    pub name: String,
}

fn rule(kind: Kind) -> &'static str {
    if kind.is_label() {
        "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
    } else {
        "lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit, at most 253 characters"
    }
}

/// Checks `name` against the rule for `kind`.
pub fn validate(kind: Kind, name: &str) -> Result<(), NameError> {
    let ok = if kind.is_label() { is_label(name) } else { is_subdomain(name) };
    if ok { Ok(()) } else { Err(NameError { kind, name: name.to_owned() }) }
}

/// A DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 bytes.
pub fn is_label(name: &str) -> bool {
    name.len() <= 63 && is_label_part(name)
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 bytes.
pub fn is_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_label_part)
}

fn is_label_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    !bytes.is_empty()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a..b",
            "-a",
            "a-",
            "a.-b",
            "UPPER",
            "x\0y",
            "a_b",
            "a b",
            "\u{430}pp",
            "a.",
            ".a",
        ] {
            for kind in [Kind::Namespace, Kind::Pod, Kind::Container, Kind::Object] {
                assert!(validate(kind, bad).is_err(), "{kind:?} {bad:?}");
            }
        }
        assert!(validate(Kind::Pod, &"a".repeat(254)).is_err());
        assert!(validate(Kind::Container, &"a".repeat(64)).is_err());
    }

    #[test]
    fn kubernetes_names_are_accepted() {
        for good in ["a", "web", "kube-system", "x1", "0abc"] {
            assert!(validate(Kind::Namespace, good).is_ok(), "{good}");
            assert!(validate(Kind::Pod, good).is_ok(), "{good}");
        }
        assert!(validate(Kind::Pod, "web-7d4b9c-x2x4z.example").is_ok());
        assert!(validate(Kind::Container, "a.b").is_err(), "container names are labels");
        // Kubernetes' subdomain rule has no per-label length limit.
        assert!(validate(Kind::Pod, &"a".repeat(253)).is_ok());
    }
}
