//! Human durations for `--duration` and `--grace`: `30s`, `5m`, `1h30m`,
//! `250ms`, or a bare number of seconds.
//!
//! One rule for zero, whatever the spelling (`0`, `0s`, `0ms`): a duration
//! of nothing is refused (`--duration 0` would record nothing), except for
//! `--grace`, where 0 means "no grace period: kill at once".

use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed duration {input:?}: {why}; use forms like 30s, 5m, 1h30m or 250ms")]
pub struct DurationError {
    pub input: String,
    pub why: &'static str,
}

/// A duration longer than zero.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let total = parse_any(input)?;
    if total.is_zero() {
        return Err(DurationError { input: input.to_owned(), why: "it must be longer than zero" });
    }
    Ok(total)
}

/// `--grace`: zero is allowed and means no grace period at all.
pub fn parse_grace(input: &str) -> Result<Duration, DurationError> {
    parse_any(input)
}

fn parse_any(input: &str) -> Result<Duration, DurationError> {
    let err = |why| DurationError { input: input.to_owned(), why };
    let text = input.trim();
    if text.is_empty() {
        return Err(err("it is empty"));
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        if digits == 0 {
            return Err(err("expected a number"));
        }
        let value: f64 = rest[..digits].parse().map_err(|_| err("bad number"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            "" => return Err(err("a number inside a duration needs a unit")),
            _ => return Err(err("unknown unit (use ms, s, m or h)")),
        };
        let part = Duration::try_from_secs_f64(value * scale).map_err(|_| err("out of range"))?;
        total = total.checked_add(part).ok_or_else(|| err("out of range"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_forms() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("12"), Ok(Duration::from_secs(12)));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "abc", "5x", "s", "-5s", "0s", "1h30", "99999999999999999999h"] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn zero_is_one_rule_whatever_the_spelling() {
        for zero in ["0", "0s", "0ms", "0m0s"] {
            assert!(parse(zero).is_err(), "--duration {zero:?} is refused");
            assert_eq!(parse_grace(zero), Ok(Duration::ZERO), "--grace {zero:?} means kill at once");
        }
        assert!(parse_grace("-1s").is_err());
    }
}
