//! The module's arguments (the words after the module path on a PAM service line)
//! and the duration syntax they use.
//!
//! Parsing is strict: an unknown argument, a repeated one or a malformed value is
//! a configuration error, and the module then refuses (fail closed) rather than
//! run with a check silently switched off.

use std::path::PathBuf;
use std::time::Duration;

use rampart_policy::{
    format_duration, parse_duration_with, DurationError, DurationRules, FactorStrength,
};

use crate::error::ConfigError;

/// Default for `krl_max_age`: a day. The krl-sync timer refreshes far more often;
/// a KRL older than this means the sync has stopped and revocations may be missed.
pub const DEFAULT_KRL_MAX_AGE: u64 = 24 * 3600;
/// Default for `max_mfa_age`: 15 minutes.
pub const DEFAULT_MAX_MFA_AGE: u64 = 15 * 60;
/// Default for `agent_timeout`: the whole agent exchange must finish in 5 seconds.
pub const DEFAULT_AGENT_TIMEOUT_MS: u64 = 5_000;
/// Largest duration accepted anywhere (a year): bigger values are typos.
pub const MAX_DURATION_SECS: u64 = 366 * 24 * 3600;

/// The argument names, as the module parses them. Whatever prints a PAM line for
/// this module (`rampart host install`) builds it from these, so a renamed
/// argument cannot leave a printed line the module refuses.
pub mod names {
    /// `ca_keys=FILE`.
    pub const CA_KEYS: &str = "ca_keys";
    /// `krl=FILE`.
    pub const KRL: &str = "krl";
    /// `krl_max_age=DURATION`.
    pub const KRL_MAX_AGE: &str = "krl_max_age";
    /// `max_mfa_age=DURATION`.
    pub const MAX_MFA_AGE: &str = "max_mfa_age";
    /// `min_factor=recovery|otp|phishing-resistant|hardware-bound`.
    pub const MIN_FACTOR: &str = "min_factor";
    /// `agent_timeout=DURATION`.
    pub const AGENT_TIMEOUT: &str = "agent_timeout";
    /// `log_file=PATH`.
    pub const LOG_FILE: &str = "log_file";
}

/// Validated module arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `ca_keys=FILE`: OpenSSH public keys of the user CA, one per line (required).
    pub ca_keys: PathBuf,
    /// `krl=FILE`: the OpenSSH binary KRL kept fresh by `rampart host krl-sync`
    /// (required).
    pub krl: PathBuf,
    /// `krl_max_age=DURATION`: refuse when the KRL's `generated_date` is older
    /// (default 24h).
    pub krl_max_age: u64,
    /// `max_mfa_age=DURATION`: refuse when the certificate's `mfa-time@rampart` is
    /// older (default 15m).
    pub max_mfa_age: u64,
    /// `min_factor=`: weakest acceptable MFA factor (default `otp`).
    pub min_factor: FactorStrength,
    /// `agent_timeout=DURATION`: deadline for the whole agent exchange, in
    /// milliseconds (default 5s; `ms` suffix accepted).
    pub agent_timeout_ms: u64,
    /// `log_file=PATH`: also append each decision line to this file (optional;
    /// used by the end-to-end tests, handy for debugging).
    pub log_file: Option<PathBuf>,
}

impl Args {
    /// Parse the argument words of the PAM service line.
    pub fn parse<'a, I>(words: I) -> Result<Args, ConfigError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut ca_keys = None;
        let mut krl = None;
        let mut krl_max_age = None;
        let mut max_mfa_age = None;
        let mut min_factor = None;
        let mut agent_timeout_ms = None;
        let mut log_file = None;
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| ConfigError::Malformed(word.to_owned()))?;
            let dup = |set: bool| {
                if set {
                    Err(ConfigError::Repeated(key.to_owned()))
                } else {
                    Ok(())
                }
            };
            match key {
                names::CA_KEYS => {
                    dup(ca_keys.is_some())?;
                    ca_keys = Some(abs_path(key, value)?);
                }
                names::KRL => {
                    dup(krl.is_some())?;
                    krl = Some(abs_path(key, value)?);
                }
                names::KRL_MAX_AGE => {
                    dup(krl_max_age.is_some())?;
                    krl_max_age = Some(secs(key, value)?);
                }
                names::MAX_MFA_AGE => {
                    dup(max_mfa_age.is_some())?;
                    max_mfa_age = Some(secs(key, value)?);
                }
                names::MIN_FACTOR => {
                    dup(min_factor.is_some())?;
                    min_factor = Some(value.parse::<FactorStrength>().map_err(|_| {
                        ConfigError::BadValue {
                            key: key.to_owned(),
                            value: value.to_owned(),
                            expected: "one of recovery, otp, unattested-key, phishing-resistant, hardware-bound",
                        }
                    })?);
                }
                names::AGENT_TIMEOUT => {
                    dup(agent_timeout_ms.is_some())?;
                    let ms = parse_duration_ms(value).map_err(|e| ConfigError::BadValue {
                        key: key.to_owned(),
                        value: value.to_owned(),
                        expected: e,
                    })?;
                    if ms == 0 {
                        return Err(ConfigError::BadValue {
                            key: key.to_owned(),
                            value: value.to_owned(),
                            expected: "a duration above zero",
                        });
                    }
                    agent_timeout_ms = Some(ms);
                }
                names::LOG_FILE => {
                    dup(log_file.is_some())?;
                    log_file = Some(abs_path(key, value)?);
                }
                _ => return Err(ConfigError::Unknown(key.to_owned())),
            }
        }
        Ok(Args {
            ca_keys: ca_keys.ok_or(ConfigError::Missing("ca_keys"))?,
            krl: krl.ok_or(ConfigError::Missing("krl"))?,
            krl_max_age: krl_max_age.unwrap_or(DEFAULT_KRL_MAX_AGE),
            max_mfa_age: max_mfa_age.unwrap_or(DEFAULT_MAX_MFA_AGE),
            min_factor: min_factor.unwrap_or(FactorStrength::Otp),
            agent_timeout_ms: agent_timeout_ms.unwrap_or(DEFAULT_AGENT_TIMEOUT_MS),
            log_file,
        })
    }
}

/// The `log_file=` path among raw argument words, even when the other arguments
/// do not parse, so that a configuration error is logged there too.
pub fn log_file_hint<'a, I>(words: I) -> Option<PathBuf>
where
    I: IntoIterator<Item = &'a str>,
{
    words
        .into_iter()
        .filter_map(|w| w.strip_prefix("log_file="))
        .map(PathBuf::from)
        .find(|p| p.is_absolute())
}

fn abs_path(key: &str, value: &str) -> Result<PathBuf, ConfigError> {
    let p = PathBuf::from(value);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: "an absolute path",
        })
    }
}

fn secs(key: &str, value: &str) -> Result<u64, ConfigError> {
    parse_duration(value).map_err(|e| ConfigError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        expected: e,
    })
}

/// What a DURATION argument takes: the shared grammar (see
/// [`rampart_policy::parse_duration_with`]) with `ms`, a bare number as seconds,
/// zero allowed, at most [`MAX_DURATION_SECS`].
const RULES: DurationRules = DurationRules {
    bare_seconds: true,
    millis: true,
    zero: true,
    max: Duration::from_secs(MAX_DURATION_SECS),
};

/// What a malformed DURATION argument is told it should be.
const EXPECTED: &str = "a duration such as 90s, 15m, 1h30m, 2d (units ms, s, m, h, d, w)";

/// Parse a duration in whole seconds: `90`, `90s`, `15m`, `1h30m`, `2d`, `1w`.
/// A bare number is seconds. At most [`MAX_DURATION_SECS`].
pub fn parse_duration(s: &str) -> Result<u64, &'static str> {
    let ms = parse_duration_ms(s)?;
    if ms % 1000 != 0 {
        return Err("whole seconds (e.g. 90s, 15m, 1h30m, 2d)");
    }
    Ok(ms / 1000)
}

/// Parse a duration in milliseconds: like [`parse_duration`], plus an `ms` unit.
pub fn parse_duration_ms(s: &str) -> Result<u64, &'static str> {
    // Arguments come from a PAM service file; nothing sensible is this long.
    if s.len() > 32 {
        return Err(EXPECTED);
    }
    match parse_duration_with(s, &RULES) {
        // At most a year of milliseconds: always fits.
        Ok(d) => u64::try_from(d.as_millis()).map_err(|_| EXPECTED),
        Err(DurationError::TooLong) => Err("a duration of at most 366d"),
        Err(_) => Err(EXPECTED),
    }
}

/// Render seconds compactly for log lines (`75` → `1m15s`).
pub fn format_secs(secs: u64) -> String {
    format_duration(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling a DURATION argument accepted before the parsers were merged.
    #[test]
    fn spellings_accepted_before_still_parse() {
        for (s, want) in [
            ("90", 90),
            ("0", 0),
            ("0s", 0),
            ("90s", 90),
            ("15m", 900),
            ("1h30m", 5400),
            ("2d", 172_800),
            ("7d", 604_800),
            ("1w", 604_800),
            ("1h0m5s", 3605),
            ("30m1h", 5400),
            ("2000ms", 2),
            ("366d", 366 * 86_400),
        ] {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for (s, want) in [
            ("250ms", 250),
            ("1500ms", 1500),
            ("2s", 2000),
            ("1s500ms", 1500),
        ] {
            assert_eq!(parse_duration_ms(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn bad_durations_are_refused() {
        for s in [
            "",
            "m",
            "15x",
            "-5m",
            "1.5h",
            "15 m",
            " 15m",
            "1h30",
            "15M",
            "999999999999999999999",
            "367d",
            "500ms",
            "18446744073709551615s",
            "000000000000000000000000000000001s",
        ] {
            assert!(parse_duration(s).is_err(), "{s:?} should be refused");
        }
        assert_eq!(parse_duration("367d"), Err("a duration of at most 366d"));
        assert_eq!(parse_duration("15x"), Err(EXPECTED));
        assert_eq!(
            parse_duration("500ms"),
            Err("whole seconds (e.g. 90s, 15m, 1h30m, 2d)")
        );
    }

    #[test]
    fn format_secs_is_compact() {
        assert_eq!(format_secs(0), "0s");
        assert_eq!(format_secs(75), "1m15s");
        assert_eq!(format_secs(3600), "1h");
        assert_eq!(format_secs(90_061), "1d1h1m1s");
    }

    #[test]
    fn args_defaults_and_values() {
        let a = Args::parse(["ca_keys=/etc/ssh/ca.pub", "krl=/etc/ssh/rampart.krl"]).unwrap();
        assert_eq!(a.krl_max_age, DEFAULT_KRL_MAX_AGE);
        assert_eq!(a.max_mfa_age, DEFAULT_MAX_MFA_AGE);
        assert_eq!(a.min_factor, FactorStrength::Otp);
        assert_eq!(a.agent_timeout_ms, DEFAULT_AGENT_TIMEOUT_MS);
        assert_eq!(a.log_file, None);
        let a = Args::parse([
            "ca_keys=/c",
            "krl=/k",
            "krl_max_age=2h",
            "max_mfa_age=5m",
            "min_factor=phishing-resistant",
            "agent_timeout=1500ms",
            "log_file=/tmp/x.log",
        ])
        .unwrap();
        assert_eq!(a.krl_max_age, 7200);
        assert_eq!(a.max_mfa_age, 300);
        assert_eq!(a.min_factor, FactorStrength::PhishingResistant);
        assert_eq!(a.agent_timeout_ms, 1500);
        assert_eq!(a.log_file, Some(PathBuf::from("/tmp/x.log")));
    }

    #[test]
    fn args_errors_fail_closed() {
        let cases: &[&[&str]] = &[
            &["krl=/k"],
            &["ca_keys=/c"],
            &["ca_keys=/c", "krl=/k", "debug"],
            &["ca_keys=/c", "krl=/k", "nope=1"],
            &["ca_keys=/c", "krl=/k", "krl=/k2"],
            &["ca_keys=relative", "krl=/k"],
            &["ca_keys=/c", "krl=/k", "min_factor=sms"],
            &["ca_keys=/c", "krl=/k", "max_mfa_age=soon"],
            &["ca_keys=/c", "krl=/k", "agent_timeout=0"],
        ];
        for words in cases {
            assert!(
                Args::parse(words.iter().copied()).is_err(),
                "{words:?} should be refused"
            );
        }
    }
}
