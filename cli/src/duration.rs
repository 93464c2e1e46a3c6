//! Human durations on the command line: `90s`, `10m`, `1h`, `1h30m`, `30d`, `2w`.

use std::time::Duration;

/// Longest duration accepted anywhere (ten years); the CA clamps far below this, the
/// bound only keeps arithmetic from overflowing.
const MAX_SECONDS: u64 = 10 * 366 * 24 * 3600;

/// Parse `<number><unit>` pairs (units `s`, `m`, `h`, `d`, `w`), e.g. `1h30m`. A
/// bare number is seconds. Used as a clap value parser, so the error is one line.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected e.g. 90s, 10m, 1h, 1h30m, 30d");
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = s.parse::<u64>() {
        return bounded(n).ok_or_else(bad);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    bounded(total).ok_or_else(bad)
}

fn bounded(secs: u64) -> Option<Duration> {
    (secs <= MAX_SECONDS).then(|| Duration::from_secs(secs))
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

    #[test]
    fn parses_units_and_sums() {
        for (text, secs) in [
            ("90", 90),
            ("90s", 90),
            ("10m", 600),
            ("1h", 3600),
            ("1h30m", 5400),
            ("30d", 30 * 86_400),
            ("2w", 14 * 86_400),
        ] {
            assert_eq!(parse(text).unwrap(), Duration::from_secs(secs), "{text}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            "h",
            "1x",
            "1h30",
            "-5m",
            "1.5h",
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
