//! Durations as people write them, for every part of Rampart that reads one: the
//! policy file and the CA's `config.toml` ([`parse_duration`]), the `rampart` command
//! line and the PAM module's arguments ([`parse_duration_with`] and their own
//! [`DurationRules`]).
//!
//! The grammar is one everywhere: one or more `<digits><unit>` groups, summed, with
//! units `w` (7 days), `d`, `h`, `m` and `s` — `90s`, `15m`, `1h30m`, `7d`, `2w`.
//! Where a field says so, `ms` is a unit too (the PAM module's `agent_timeout`)
//! and a bare number is seconds (command-line flags and PAM arguments; in a TOML
//! file the unit is required, since a file is read long after it was written and a
//! missing unit there is more likely a slip than a choice). Anything else — empty,
//! signed, fractional, spaced, upper-case or overflowing — is an error, because a
//! typo in a TTL is a security decision, not something to guess at. What differs
//! between fields is the range: whether zero is allowed and the longest value.

use std::fmt;
use std::time::Duration;

/// Units with their length in milliseconds, largest first (how [`format_duration`]
/// writes them).
const UNITS: [(&str, u64); 6] = [
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Longest duration a TOML file may hold (about 100 years), so later
/// `DateTime + Duration` arithmetic cannot overflow.
const TOML_MAX: Duration = Duration::from_secs(100 * 365 * 86_400);

/// What one field accepts on top of the common grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRules {
    /// A number without a unit is that many seconds.
    pub bare_seconds: bool,
    /// `ms` is a unit.
    pub millis: bool,
    /// Zero (`0s`, `0h0m`, or a bare `0` with `bare_seconds`) is a value.
    pub zero: bool,
    /// The longest value accepted.
    pub max: Duration,
}

impl DurationRules {
    /// The policy file and the CA's `config.toml`: a unit is required, zero is
    /// refused, at most about 100 years.
    pub const TOML: Self = Self {
        bare_seconds: false,
        millis: false,
        zero: false,
        max: TOML_MAX,
    };
}

/// Why a duration was refused. The text is the reason alone; callers put the input
/// and the field's expectations around it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing at all.
    #[error("empty")]
    Empty,
    /// A character that cannot start or continue a group (a sign, a dot, a space, a
    /// unit with no number before it).
    #[error("unexpected {0:?}")]
    Unexpected(char),
    /// Letters after a number that are not a unit this field takes.
    #[error("unknown unit {unit:?} (use {allowed})")]
    UnknownUnit {
        /// The letters as written.
        unit: String,
        /// The units this field takes, for the message.
        allowed: &'static str,
    },
    /// Digits at the end with no unit, where a bare number is not seconds.
    #[error("missing unit after the last number")]
    MissingUnit,
    /// The number or the sum does not fit in 64 bits of milliseconds.
    #[error("too large")]
    Overflow,
    /// Longer than the field's maximum.
    #[error("longer than the field allows")]
    TooLong,
    /// Zero, where the field needs a positive duration.
    #[error("must be greater than zero")]
    Zero,
}

/// Parse `input` with the grammar in the module doc and the field's `rules`.
pub fn parse_duration_with(input: &str, rules: &DurationRules) -> Result<Duration, DurationError> {
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    let allowed = if rules.millis {
        "w, d, h, m, s or ms"
    } else {
        "w, d, h, m or s"
    };
    let mut total_ms: u64 = 0;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        if number.is_empty() {
            // A sign, a dot, a space, or a unit with no number before it.
            return Err(DurationError::Unexpected(
                rest.chars().next().unwrap_or(' '),
            ));
        }
        let n: u64 = number.parse().map_err(|_| DurationError::Overflow)?;
        let unit_ms = if unit.is_empty() {
            match tail.chars().next() {
                Some(c) => return Err(DurationError::Unexpected(c)),
                // A bare number is seconds only when it is the whole input.
                None if rules.bare_seconds && digits == input.len() => 1_000,
                None => return Err(DurationError::MissingUnit),
            }
        } else {
            UNITS
                .iter()
                .find(|(u, _)| *u == unit && (rules.millis || *u != "ms"))
                .map(|(_, ms)| *ms)
                .ok_or_else(|| DurationError::UnknownUnit {
                    unit: unit.to_owned(),
                    allowed,
                })?
        };
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|part| total_ms.checked_add(part))
            .ok_or(DurationError::Overflow)?;
        rest = tail;
    }
    let total = Duration::from_millis(total_ms);
    if total.is_zero() && !rules.zero {
        return Err(DurationError::Zero);
    }
    if total > rules.max {
        return Err(DurationError::TooLong);
    }
    Ok(total)
}

/// Parse a duration as written in Rampart's TOML files (policy and CA config), with
/// [`DurationRules::TOML`]. The error text is meant to follow a key name.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    parse_duration_with(input, &DurationRules::TOML).map_err(|e| {
        let why = match e {
            DurationError::TooLong => "longer than 100 years".to_owned(),
            other => other.to_string(),
        };
        format!(
            r#"invalid duration {input:?}: {why}; expected e.g. "90s", "30m", "1h30m" or "30d""#
        )
    })
}

/// Format a duration in the grammar above, largest unit first and whole seconds
/// (`5400s` → `1h30m`, `75s` → `1m15s`); days are not folded into weeks.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        let n = secs / len;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
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

    /// Every spelling the policy file and `config.toml` accepted before the
    /// parsers were merged, and what it means.
    #[test]
    fn toml_spellings_accepted_before_still_parse() {
        let cases: &[(&str, u64)] = &[
            ("90s", 90),
            ("30m", 1800),
            ("1h", 3600),
            ("8h", 28_800),
            ("7d", 604_800),
            ("30d", 2_592_000),
            ("1h30m", 5400),
            ("1d2h3m4s", 93_784),
            ("0h5m", 300),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(*want)), "{s}");
        }
    }

    /// Spellings the command line and PAM arguments always took, now also valid
    /// in a file: weeks, and groups in any order (they are summed).
    #[test]
    fn toml_takes_the_shared_grammar() {
        let cases: &[(&str, u64)] = &[("2w", 1_209_600), ("30m1h", 5400), ("1h1h", 7200)];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(*want)), "{s}");
        }
    }

    #[test]
    fn toml_rejects_bad_durations() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("0s", "greater than zero"),
            ("0h0m", "greater than zero"),
            ("-1h", "unexpected '-'"),
            ("1.5h", "unexpected '.'"),
            ("h", "unexpected 'h'"),
            // A file needs the unit; a bare number is seconds only on a command line.
            ("10", "missing unit"),
            ("1h30", "missing unit"),
            ("1x", "unknown unit"),
            ("1 h", "unexpected ' '"),
            (" 1h", "unexpected ' '"),
            ("250ms", "unknown unit \"ms\""),
            ("99999999999999999999999s", "too large"),
            ("999999999999999999d", "too large"),
            ("36600000d", "100 years"),
            ("1H", "unknown unit"),
        ];
        for (s, want) in cases {
            let err = parse_duration(s).unwrap_err();
            assert!(err.contains(want), "{s:?}: {err}");
            assert!(err.starts_with("invalid duration"), "{s:?}: {err}");
        }
    }

    #[test]
    fn rules_switch_bare_seconds_millis_and_zero() {
        let open = DurationRules {
            bare_seconds: true,
            millis: true,
            zero: true,
            max: Duration::from_secs(3600),
        };
        let ok: &[(&str, u64)] = &[("90", 90_000), ("0", 0), ("250ms", 250), ("1s500ms", 1500)];
        for (s, want) in ok {
            assert_eq!(
                parse_duration_with(s, &open),
                Ok(Duration::from_millis(*want)),
                "{s}"
            );
        }
        // A bare number is seconds only when it is the whole input.
        assert_eq!(
            parse_duration_with("1m30", &open),
            Err(DurationError::MissingUnit)
        );
        assert_eq!(
            parse_duration_with("2h", &open),
            Err(DurationError::TooLong)
        );
        assert_eq!(
            parse_duration_with("3600s", &open),
            Ok(Duration::from_secs(3600)),
            "the maximum itself is allowed"
        );
        let strict = DurationRules::TOML;
        assert_eq!(
            parse_duration_with("90", &strict),
            Err(DurationError::MissingUnit)
        );
        assert!(matches!(
            parse_duration_with("250ms", &strict),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert_eq!(parse_duration_with("0m", &strict), Err(DurationError::Zero));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["90s", "1m30s", "1h30m", "30d", "1d2h3m4s", "8h"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{s}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(75)), "1m15s");
        assert_eq!(format_duration(Duration::from_secs(90_061)), "1d1h1m1s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
