//! Durations on the command line: the grammar of [`rampart_policy::parse_duration_with`]
//! (`90s`, `10m`, `1h30m`, `30d`, `2w`), where a bare number is seconds (`90`) and
//! zero is allowed; and their compact rendering for people.

use std::time::Duration;

use rampart_policy::{parse_duration_with, DurationRules};

/// What a `DURATION` flag takes. The longest is ten years: the CA clamps far below
/// this, the bound only keeps arithmetic from overflowing.
const RULES: DurationRules = DurationRules {
    bare_seconds: true,
    millis: false,
    zero: true,
    max: Duration::from_secs(10 * 366 * 24 * 3600),
};

/// Parse a `DURATION` flag; surrounding blanks are ignored. Used as a clap value
/// parser, so the error is one line.
pub fn parse(text: &str) -> Result<Duration, String> {
    parse_duration_with(text.trim(), &RULES)
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 90s, 10m, 1h, 1h30m, 30d"))
}

/// Render seconds compactly for people: `59m`, `7h 59m`, `29d 23h`, `42s`.
pub fn human(secs: i64) -> String {
    if secs < 0 {
        return format!("-{}", human(secs.saturating_neg()));
    }
    let (d, h, m, s) = (
        secs / 86_400,
        (secs % 86_400) / 3600,
        (secs % 3600) / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling a `DURATION` flag accepted before the parsers were merged.
    #[test]
    fn spellings_accepted_before_still_parse() {
        for (text, secs) in [
            ("90", 90),
            ("0", 0),
            ("0s", 0),
            ("90s", 90),
            ("10m", 600),
            ("15m", 900),
            ("1h", 3600),
            ("1h30m", 5400),
            ("7d", 7 * 86_400),
            ("30d", 30 * 86_400),
            ("2w", 14 * 86_400),
            ("30m1h", 5400),
            (" 1h ", 3600),
            ("3660d", 3660 * 86_400),
        ] {
            assert_eq!(parse(text).unwrap(), Duration::from_secs(secs), "{text}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            " ",
            "h",
            "1x",
            "1h30",
            "-5m",
            "1.5h",
            "1 h",
            "250ms",
            "3661d",
            "99999999999999999999d",
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with("invalid duration"), "{text}: {err}");
        }
    }

    #[test]
    fn human_rendering() {
        assert_eq!(human(42), "42s");
        assert_eq!(human(3540), "59m");
        assert_eq!(human(3600 * 7 + 60 * 59), "7h 59m");
        assert_eq!(human(86_400 * 29 + 3600 * 23), "29d 23h");
        assert_eq!(human(-60), "-1m");
        assert_eq!(human(3600), "1h");
        assert_eq!(human(86_400 * 30), "30d");
    }
}
