//! A parsed document as a tree of values that remember where they came from.
//!
//! Both readers (JSON and YAML) produce this tree, so dialect detection and
//! validation run once, on one shape, and every problem can name the line and
//! column of the value that caused it.

use std::fmt;

/// Deepest nesting a profile may have. Real profiles nest four levels
/// (profile > syscalls > rule > args > condition); anything near this limit is
/// hostile or broken, and refusing it keeps recursion bounded.
pub const MAX_DEPTH: usize = 64;

/// Most values a profile may have. The moby default has about 1,200; a
/// profile with one rule per syscall and arguments on each stays far below.
/// The cap bounds memory: 16 MiB of `[0,0,0,...]` would otherwise be eight
/// million tree nodes.
pub const MAX_NODES: usize = 200_000;

/// A 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A mapping key and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

/// One value of the tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Any integer that fits in i128 (covers u64 and i64).
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order. Duplicates are rejected by the readers.
    Map(Vec<(Key, Node)>),
}

/// A value and the position of its first character.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number with a fraction",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "an object",
        }
    }

    /// The value of `key` if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Why a document could not be turned into a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseFailure {
    /// Not well-formed JSON or YAML.
    Syntax { pos: Pos, message: String },
    /// Nested deeper than [`MAX_DEPTH`], or over another resource budget.
    TooDeep { pos: Pos, message: String },
}
