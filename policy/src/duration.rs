//! Human durations in the policy file: `"90s"`, `"30m"`, `"1h30m"`, `"30d"`.
//!
//! The grammar is deliberately small: one or more `<digits><unit>` groups, units
//! `d`, `h`, `m`, `s`, each at most once and largest first. Anything else — empty,
//! signed, fractional, zero, or overflowing — is an error, because a typo in a TTL is
//! a security decision, not something to guess at.

use std::fmt;
use std::time::Duration;

/// Units in the order they must appear, with their length in seconds.
const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// Parse a duration as written in Rampart's TOML files (policy and CA config).
/// The error text is meant to follow a key name.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let hint = r#"expected e.g. "90s", "30m", "1h30m" or "30d""#;
    let bad = |why: &str| format!("invalid duration {input:?}: {why}; {hint}");
    if input.is_empty() {
        return Err(bad("empty"));
    }
    let mut total: u64 = 0;
    // Index into UNITS of the next unit allowed; enforces "largest first, once each".
    let mut next_unit = 0usize;
    let mut digits = String::new();
    for c in input.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.is_empty() || !c.is_ascii_alphabetic() {
            return Err(bad(&format!("unexpected {c:?}")));
        }
        let pos = UNITS
            .iter()
            .position(|(u, _)| *u == c)
            .ok_or_else(|| bad(&format!("unknown unit {c:?} (use d, h, m or s)")))?;
        if pos < next_unit {
            return Err(bad("units must appear once each, largest first"));
        }
        next_unit = pos.saturating_add(1);
        let secs_per = UNITS.get(pos).map(|(_, s)| *s).unwrap_or(1);
        let n: u64 = digits.parse().map_err(|_| bad("number too large"))?;
        let part = n.checked_mul(secs_per).ok_or_else(|| bad("too large"))?;
        total = total.checked_add(part).ok_or_else(|| bad("too large"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad("missing unit after the last number"));
    }
    if total == 0 {
        return Err(bad("must be greater than zero"));
    }
    // Cap at ~100 years so later `DateTime + Duration` arithmetic cannot overflow.
    if total > 100 * 365 * 86_400 {
        return Err(bad("longer than 100 years"));
    }
    Ok(Duration::from_secs(total))
}

/// Format a duration the way the policy file spells it (`5400s` → `1h30m`).
pub(crate) fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, len) in UNITS {
        let n = secs / len;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push(unit);
            secs %= len;
        }
    }
    out
}

/// A duration value as read from TOML; parsing errors carry the key's location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DurationValue(pub(crate) Duration);

impl<'de> serde::Deserialize<'de> for DurationValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration string such as "90s", "30m", "1h30m" or "30d""#)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DurationValue, E> {
                parse_duration(v).map(DurationValue).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_good_durations() {
        let cases: &[(&str, u64)] = &[
            ("90s", 90),
            ("30m", 1800),
            ("1h", 3600),
            ("8h", 28_800),
            ("30d", 2_592_000),
            ("1h30m", 5400),
            ("1d2h3m4s", 93_784),
            ("0h5m", 300),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(*want)), "{s}");
        }
    }

    #[test]
    fn rejects_bad_durations() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("0s", "greater than zero"),
            ("0h0m", "greater than zero"),
            ("-1h", "unexpected '-'"),
            ("1.5h", "unexpected '.'"),
            ("h", "unexpected 'h'"),
            ("10", "missing unit"),
            ("1x", "unknown unit"),
            ("1 h", "unexpected ' '"),
            ("30m1h", "largest first"),
            ("1h1h", "largest first"),
            ("99999999999999999999999s", "too large"),
            ("999999999999999999d", "too large"),
            ("36600000d", "100 years"),
            ("1H", "unknown unit"),
        ];
        for (s, want) in cases {
            let err = parse_duration(s).unwrap_err();
            assert!(err.contains(want), "{s:?}: {err}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in ["90s", "1m30s", "1h30m", "30d", "1d2h3m4s", "8h"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{s}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
