//! RFC 5424 syslog lines with structured data.
//!
//! `SYSLOG-MSG = HEADER SP STRUCTURED-DATA [SP MSG]`, `HEADER = PRI VERSION SP
//! TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID` (RFC 5424 §6). We write
//! `<PRI>1 TIMESTAMP HOSTNAME rampart-ca - CODE [rampart@32473 key="value" …] MSG`.
//!
//! 32473 is the example Private Enterprise Number that RFC 5612 reserves for
//! documentation; an SD-ID of the form `name@<PEN>` needs a PEN (RFC 5424 §7.2.2),
//! and Rampart has not registered one. Replace it here (one constant) once it has.

use std::fmt::Write as _;

use chrono::SecondsFormat;

use crate::event::{Event, Severity};

use super::{details_json, message, PRODUCT};

/// The Private Enterprise Number in our SD-ID (`rampart@32473`): RFC 5612's
/// documentation PEN, a placeholder until Rampart registers its own.
pub const SYSLOG_PEN: u32 = 32473;

/// Facility 10, "security/authorization messages" (authpriv), RFC 5424 Table 1.
pub const FACILITY_AUTHPRIV: u8 = 10;

/// RFC 5424 severity (Table 2): info → 6 Informational, notice → 5 Notice,
/// warning → 4 Warning, high → 2 Critical.
pub fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Info => 6,
        Severity::Notice => 5,
        Severity::Warning => 4,
        Severity::High => 2,
    }
}

/// Escape an SD-PARAM value. RFC 5424 §6.3.3: "Inside PARAM-VALUE, the
/// characters '"' (ABNF %d34), '\' (ABNF %d92), and ']' (ABNF %d93) MUST be
/// escaped … by prefixing it with a backslash". So that an export stays one
/// line per record, control characters are written as `\n`, `\r`, `\t` or
/// `\u00XX` (unambiguous, since a real backslash is always doubled).
pub fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ']' => out.push_str("\\]"),
            c => push_control_escaped(&mut out, c),
        }
    }
    out
}

fn push_control_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// HOSTNAME is `NILVALUE / 1*255PRINTUSASCII` (RFC 5424 §6.2.4); anything else
/// becomes `-`.
fn hostname_field(h: &str) -> &str {
    if !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| (33..=126).contains(&b)) {
        h
    } else {
        "-"
    }
}

/// Encode one event as an RFC 5424 line (no trailing newline, no framing: the
/// forwarders add RFC 6587 octet counts). `hostname` is the HOSTNAME field.
pub fn to_syslog(ev: &Event, hostname: &str) -> String {
    let pri = u16::from(FACILITY_AUTHPRIV) * 8 + u16::from(syslog_severity(ev.kind.severity()));
    // TIME-SECFRAC allows at most six digits (RFC 5424 §6.2.3).
    let ts = ev.time.to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut out = format!(
        "<{pri}>1 {ts} {} {PRODUCT} - {} [rampart@{SYSLOG_PEN}",
        hostname_field(hostname),
        ev.kind.code()
    );
    let mut param = |k: &str, v: &str| {
        let _ = write!(out, " {k}=\"{}\"", sd_escape(v));
    };
    param("id", &ev.id.to_string());
    param("seq", &ev.seq.to_string());
    param("kind", ev.kind.as_str());
    param("severity", ev.kind.severity().as_str());
    param("outcome", ev.outcome.as_str());
    let fields: [(&str, &Option<String>); 6] = [
        ("actor", &ev.actor),
        ("user", &ev.user),
        ("src", &ev.source),
        ("target", &ev.target),
        ("session", &ev.session),
        ("mfa_method", &ev.mfa_method),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            param(k, v);
        }
    }
    if let Some(s) = ev.serial {
        param("serial", &s.to_string());
    }
    if let Some(a) = ev.mfa_age_seconds {
        param("mfa_age_seconds", &a.to_string());
    }
    if let Some(r) = &ev.reason {
        param("reason", r);
    }
    if !ev.details.is_empty() {
        param("details", &details_json(ev));
    }
    out.push(']');
    let msg = message(ev);
    out.push(' ');
    // RFC 5424 §6.4: a UTF-8 MSG "MUST start with the Unicode byte order mark";
    // plain ASCII is also valid MSG-ANY and goes without one.
    if !msg.is_ascii() {
        out.push('\u{feff}');
    }
    // Backslashes are doubled here too, so that `\n` always means a newline.
    for c in msg.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else {
            push_control_escaped(&mut out, c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_escape_follows_rfc5424() {
        assert_eq!(sd_escape(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(sd_escape("x\ny\u{1}"), "x\\ny\\u0001");
        assert_eq!(sd_escape("ü=|["), "ü=|[");
    }

    #[test]
    fn hostname_is_printusascii_or_nil() {
        assert_eq!(hostname_field("ca-1.example"), "ca-1.example");
        assert_eq!(hostname_field(""), "-");
        assert_eq!(hostname_field("a b"), "-");
        assert_eq!(hostname_field("hôte"), "-");
    }
}
