//! ArcSight Common Event Format (CEF), one line per event.
//!
//! Layout ("Implementing ArcSight Common Event Format", Micro Focus, rev. 25):
//! `CEF:Version|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|Severity|[Extension]`.
//! The spec's escaping rules, quoted: in the header, "If a pipe (|) is used in the
//! header, it has to be escaped with a backslash (\)" and "If a backslash (\) is
//! used in the header or the extension, it has to be escaped with another
//! backslash"; in the extension, "If an equal sign (=) is used in the extensions,
//! it has to be escaped with a backslash" and "Multi-line fields can be sent by
//! CEF by encoding the newline character as \n or \r"; "pipes in the extension do
//! not need escaping".

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::event::{Event, Severity};

use super::{details_json, epoch_millis, kind_title, PRODUCT, PRODUCT_VERSION, VENDOR};

/// The highest CEF severity (the scale is 0–10).
pub const CEF_SEVERITY_MAX: u8 = 10;

/// CEF severity for a Rampart severity: ArcSight reads 0–3 as Low, 4–6 Medium,
/// 7–8 High, 9–10 Very-High.
pub(crate) fn cef_severity(s: Severity) -> u8 {
    match s {
        Severity::Info => 2,
        Severity::Notice => 3,
        Severity::Warning => 6,
        Severity::High => 8,
    }
}

/// Escape a CEF header field: `\` → `\\`, `|` → `\|`. The spec allows no line
/// breaks in the header, so CR and LF become spaces.
pub fn cef_escape_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escape a CEF extension value: `\` → `\\`, `=` → `\=`, LF → `\n`, CR → `\r`.
pub fn cef_escape_extension(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// Encode one event as a CEF line (no trailing newline). Extension keys, in
/// order (absent fields are left out): `rt` (ms since the epoch), `externalId`
/// (ULID), `cn2`=seq, `act` (kind name), `outcome`, `suser` (actor), `duser`
/// (user), `src` (an IP address) or `shost` (anything else), `msg` (reason),
/// `cs1` session, `cs2` serial, `cs3` MFA method, `cn1` MFA age in seconds,
/// `cs4` target, `cs5` details (JSON); each `csN`/`cnN` with its `…Label`.
pub fn to_cef(ev: &Event) -> String {
    let mut out = format!(
        "CEF:0|{}|{}|{}|{}|{}|{}|",
        cef_escape_header(VENDOR),
        cef_escape_header(PRODUCT),
        cef_escape_header(PRODUCT_VERSION),
        cef_escape_header(ev.kind.code()),
        cef_escape_header(kind_title(ev.kind)),
        cef_severity(ev.kind.severity()),
    );
    let mut ext: Vec<(&str, String)> = vec![
        ("rt", epoch_millis(&ev.time).to_string()),
        ("externalId", ev.id.to_string()),
        ("cn2Label", "seq".to_owned()),
        ("cn2", ev.seq.to_string()),
        ("act", ev.kind.as_str().to_owned()),
        ("outcome", ev.outcome.as_str().to_owned()),
    ];
    if let Some(a) = &ev.actor {
        ext.push(("suser", a.clone()));
    }
    if let Some(u) = &ev.user {
        ext.push(("duser", u.clone()));
    }
    if let Some(s) = &ev.source {
        // `src` is typed "IPv4 or IPv6 address" in the CEF dictionary; anything
        // else goes to `shost` rather than make the whole event unparseable.
        let key = if s.parse::<IpAddr>().is_ok() {
            "src"
        } else {
            "shost"
        };
        ext.push((key, s.clone()));
    }
    if let Some(r) = &ev.reason {
        ext.push(("msg", r.clone()));
    }
    if let Some(s) = &ev.session {
        ext.push(("cs1Label", "session".to_owned()));
        ext.push(("cs1", s.clone()));
    }
    if let Some(s) = ev.serial {
        // A string, not `cnN`: CEF's numbers are signed 64-bit, serials are u64.
        ext.push(("cs2Label", "serial".to_owned()));
        ext.push(("cs2", s.to_string()));
    }
    if let Some(m) = &ev.mfa_method {
        ext.push(("cs3Label", "mfaMethod".to_owned()));
        ext.push(("cs3", m.clone()));
    }
    if let Some(a) = ev.mfa_age_seconds {
        ext.push(("cn1Label", "mfaAgeSeconds".to_owned()));
        ext.push(("cn1", a.to_string()));
    }
    if let Some(t) = &ev.target {
        ext.push(("cs4Label", "target".to_owned()));
        ext.push(("cs4", t.clone()));
    }
    if !ev.details.is_empty() {
        ext.push(("cs5Label", "details".to_owned()));
        ext.push(("cs5", details_json(ev)));
    }
    for (i, (k, v)) in ext.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{k}={}", cef_escape_extension(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_spec() {
        assert_eq!(cef_escape_header(r"a|b\c=d"), r"a\|b\\c=d");
        assert_eq!(cef_escape_header("x\ny"), "x y");
        assert_eq!(
            cef_escape_extension("a|b\\c=d\ne\rf"),
            "a|b\\\\c\\=d\\ne\\rf"
        );
        assert_eq!(cef_escape_extension("ünï"), "ünï");
    }

    #[test]
    fn severities_rise_and_stay_in_range() {
        let s = [
            Severity::Info,
            Severity::Notice,
            Severity::Warning,
            Severity::High,
        ]
        .map(cef_severity);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert!(s.iter().all(|v| *v <= CEF_SEVERITY_MAX));
    }
}
