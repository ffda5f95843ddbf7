//! A small strict JSON reader that keeps positions.
//!
//! serde_json reports a position only for syntax errors; `check` needs the
//! position of every value (an unknown action at 40:17, an empty `names` at
//! 12:5), so profiles are read into a [`Node`] tree here. The grammar is RFC
//! 8259; nesting is capped at [`MAX_DEPTH`] so hostile input cannot exhaust
//! the stack, and duplicate keys are an error because runtimes disagree on
//! which one wins.

use super::node::{Key, MAX_DEPTH, MAX_NODES, Node, ParseFailure, Pos, Value};

/// Parses `text` as one JSON document.
pub fn parse(text: &str) -> Result<Node, ParseFailure> {
    let mut p = Parser { bytes: text.as_bytes(), at: 0, line: 1, column: 1, nodes: 0 };
    // A UTF-8 byte order mark is not JSON, but editors write it; skip it.
    if text.starts_with('\u{feff}') {
        p.at = 3;
    }
    p.skip_ws();
    let node = p.value(0)?;
    p.skip_ws();
    if p.at < p.bytes.len() {
        return Err(p.syntax("unexpected text after the end of the document"));
    }
    Ok(node)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    line: usize,
    column: usize,
    nodes: usize,
}

impl Parser<'_> {
    fn pos(&self) -> Pos {
        Pos { line: self.line, column: self.column }
    }

    fn syntax(&self, message: impl Into<String>) -> ParseFailure {
        ParseFailure::Syntax { pos: self.pos(), message: message.into() }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Advances one byte, keeping line and column (columns count characters,
    /// so UTF-8 continuation bytes do not move the column).
    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        if b == b'\n' {
            self.line += 1;
            self.column = 1;
        } else if b & 0xC0 != 0x80 {
            self.column += 1;
        }
        Some(b)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.bump();
        }
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), ParseFailure> {
        if self.peek() == Some(b) {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn unexpected(&self, wanted: &str) -> ParseFailure {
        match self.peek() {
            None => self.syntax(format!("unexpected end of file, expected {wanted}")),
            Some(b) if b.is_ascii_graphic() => {
                self.syntax(format!("unexpected '{}', expected {wanted}", char::from(b)))
            }
            Some(_) => self.syntax(format!("unexpected character, expected {wanted}")),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, ParseFailure> {
        let pos = self.pos();
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(ParseFailure::TooDeep {
                pos,
                message: format!("more than {MAX_NODES} values; a seccomp profile has a few thousand"),
            });
        }
        let value = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Value::Str(self.string()?),
            Some(b't') => self.literal("true", Value::Bool(true))?,
            Some(b'f') => self.literal("false", Value::Bool(false))?,
            Some(b'n') => self.literal("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(self.unexpected("a value")),
        };
        Ok(Node { value, pos })
    }

    fn enter(&self, depth: usize) -> Result<(), ParseFailure> {
        if depth >= MAX_DEPTH {
            return Err(ParseFailure::TooDeep {
                pos: self.pos(),
                message: format!("nested more than {MAX_DEPTH} levels deep; a seccomp profile needs 5"),
            });
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Value, ParseFailure> {
        self.enter(depth)?;
        self.bump();
        self.skip_ws();
        let mut entries: Vec<(Key, Node)> = Vec::new();
        if self.peek() == Some(b'}') {
            self.bump();
            return Ok(Value::Map(entries));
        }
        loop {
            self.skip_ws();
            let key_pos = self.pos();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a quoted key"));
            }
            let name = self.string()?;
            if entries.iter().any(|(k, _)| k.name == name) {
                return Err(ParseFailure::Syntax {
                    pos: key_pos,
                    message: format!("duplicate key \"{name}\"; runtimes disagree on which one wins, keep one"),
                });
            }
            self.skip_ws();
            self.expect(b':', "':' after the key")?;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            entries.push((Key { name, pos: key_pos }, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.bump();
                }
                Some(b'}') => {
                    self.bump();
                    return Ok(Value::Map(entries));
                }
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseFailure> {
        self.enter(depth)?;
        self.bump();
        self.skip_ws();
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.bump();
            return Ok(Value::Seq(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.bump();
                }
                Some(b']') => {
                    self.bump();
                    return Ok(Value::Seq(items));
                }
                _ => return Err(self.unexpected("',' or ']'")),
            }
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, ParseFailure> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            for _ in 0..word.len() {
                self.bump();
            }
            Ok(value)
        } else {
            Err(self.unexpected("a value"))
        }
    }

    fn number(&mut self) -> Result<Value, ParseFailure> {
        let start = self.at;
        let mut fraction = false;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            Some(b'0') => {
                self.bump();
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.unexpected("a digit")),
        }
        if self.peek() == Some(b'.') {
            fraction = true;
            self.bump();
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit after '.'"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            fraction = true;
            self.bump();
            if let Some(b'+' | b'-') = self.peek() {
                self.bump();
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit in the exponent"));
            }
            self.digits();
        }
        // The slice is ASCII digits and signs, so it is valid UTF-8.
        let text = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or("");
        if !fraction && let Ok(n) = text.parse::<i128>() {
            return Ok(Value::Int(n));
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(self.syntax(format!("number {text} is out of range"))),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.bump();
        }
    }

    fn string(&mut self) -> Result<String, ParseFailure> {
        self.bump(); // opening quote
        let mut out = String::new();
        loop {
            let start = self.at;
            // Copy the run of plain characters in one go.
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.bump();
            }
            // The input is a &str and the run stops only at ASCII bytes, so
            // the slice lies on character boundaries.
            out.push_str(std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or(""));
            match self.peek() {
                None => return Err(self.syntax("unterminated string")),
                Some(b'"') => {
                    self.bump();
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.bump();
                    self.escape(&mut out)?;
                }
                Some(_) => {
                    return Err(self.syntax("control character in string; escape it (\\n, \\t, \\u00XX)"));
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), ParseFailure> {
        let c = match self.bump() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let first = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&first) {
                    if self.peek() != Some(b'\\') {
                        return Err(self.syntax("lone UTF-16 surrogate in \\u escape"));
                    }
                    self.bump();
                    if self.bump() != Some(b'u') {
                        return Err(self.syntax("lone UTF-16 surrogate in \\u escape"));
                    }
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return Err(self.syntax("invalid UTF-16 surrogate pair in \\u escape"));
                    }
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                } else {
                    first
                };
                char::from_u32(code).ok_or_else(|| self.syntax("invalid \\u escape"))?
            }
            _ => return Err(self.syntax("invalid escape in string")),
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, ParseFailure> {
        let mut v = 0;
        for _ in 0..4 {
            let d = match self.bump() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.syntax("expected four hex digits after \\u")),
            };
            v = v * 16 + u32::from(d);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn values_keep_positions() {
        let n = parse("{\n  \"a\": [1, \"x\"],\n  \"b\": null\n}").expect("parses");
        let a = n.get("a").expect("a");
        assert_eq!(a.pos, pos(2, 8));
        let Value::Seq(items) = &a.value else { panic!("seq") };
        assert_eq!(items[1], Node { value: Value::Str("x".into()), pos: pos(2, 12) });
        assert_eq!(n.get("b").map(|b| b.pos), Some(pos(3, 8)));
    }

    #[test]
    fn numbers_cover_u64_and_reject_garbage() {
        let n = parse("[18446744073709551615, -1, 1.5, 0]").expect("parses");
        let Value::Seq(items) = n.value else { panic!("seq") };
        assert_eq!(items[0].value, Value::Int(u64::MAX.into()));
        assert_eq!(items[1].value, Value::Int(-1));
        assert_eq!(items[2].value, Value::Float(1.5));
        for bad in ["01", "1.", "-", "1e", "+1", "1e999"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn strings_unescape() {
        let n = parse(r#""a\"b\\c\u00e9\ud83d\ude00\n""#).expect("parses");
        assert_eq!(n.value, Value::Str("a\"b\\cé😀\n".into()));
        assert!(parse(r#""\ud83d""#).is_err());
        assert!(parse("\"a\nb\"").is_err());
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("{\n  \"a\": 1,\n  \"a\": 2\n}").expect_err("dup");
        assert!(matches!(e, ParseFailure::Syntax { pos: p, .. } if p == pos(3, 3)), "{e:?}");
        let e = parse("[1, 2").expect_err("eof");
        assert!(matches!(e, ParseFailure::Syntax { ref message, .. } if message.contains("end of file")));
        let e = parse("{} x").expect_err("trailing");
        assert!(matches!(e, ParseFailure::Syntax { pos: p, .. } if p == pos(1, 4)));
    }

    #[test]
    fn deep_nesting_fails_fast() {
        let deep = "[".repeat(100_000);
        assert!(matches!(parse(&deep), Err(ParseFailure::TooDeep { .. })));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn too_many_values_fail_fast() {
        let wide = format!("[{}0]", "0,".repeat(MAX_NODES + 1));
        assert!(matches!(parse(&wide), Err(ParseFailure::TooDeep { .. })));
    }

    #[test]
    fn columns_count_characters() {
        let n = parse("{\"é\": 1, \"b\": 2}").expect("parses");
        assert_eq!(n.get("b").map(|b| b.pos), Some(pos(1, 15)));
    }
}
