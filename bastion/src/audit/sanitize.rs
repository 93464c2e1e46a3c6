//! Events cut to the bounds the CA enforces, before they leave the bastion.
//!
//! **Owns:** [`sanitize`]. Users choose much of what goes into events (their
//! SSH user name, commands, paths), and a field the CA refuses would cost the
//! event its place in the chain (the CA writes `audit_event_rejected` instead).
//! So every field is cut on a character boundary to its byte bound, control
//! characters in names are replaced, and the cut fields are listed in a
//! `truncated` detail.

use std::collections::BTreeMap;

use rampart_api::BastionEvent;
use serde_json::Value;

/// Longest user, login, target, source or detail key the CA accepts (bytes).
pub const MAX_NAME_BYTES: usize = 256;
/// Longest reason, and longest JSON encoding of a detail value, the CA accepts.
pub const MAX_TEXT_BYTES: usize = 4 * 1024;
/// Most details on one event the CA accepts (one is kept for `truncated`).
pub const MAX_DETAILS: usize = 32;
/// Detail keys the CA sets itself.
const RESERVED_DETAILS: [&str; 2] = ["at", "login"];

/// `s` cut to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// A name as the CA accepts it: control characters replaced by `?`, at most
/// [`MAX_NAME_BYTES`], never empty. `true` when it had to change.
fn clean_name(s: &str) -> (String, bool) {
    let replaced: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let cleaned = match cut(&replaced, MAX_NAME_BYTES) {
        "" => "?".to_owned(),
        kept => kept.to_owned(),
    };
    let changed = cleaned != s;
    (cleaned, changed)
}

/// Bytes `c` takes inside a JSON string (serde_json's escapes).
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// `s` cut so that its JSON encoding (quotes included) is at most `max` bytes.
fn cut_json(s: &str, max: usize) -> &str {
    let mut used = 2;
    for (i, c) in s.char_indices() {
        used += json_len(c);
        if used > max {
            return s.get(..i).unwrap_or_default();
        }
    }
    s
}

/// Bring `e` within the CA's bounds (see the module docs). Fields that had to
/// be cut or cleaned are named in the `truncated` detail.
pub fn sanitize(mut e: BastionEvent) -> BastionEvent {
    let mut changed: Vec<&'static str> = Vec::new();
    for (field, value) in [
        ("user", &mut e.user),
        ("login", &mut e.login),
        ("target", &mut e.target),
        ("source", &mut e.source),
    ] {
        if let Some(v) = value {
            let (cleaned, was_changed) = clean_name(v);
            if was_changed {
                *v = cleaned;
                changed.push(field);
            }
        }
    }
    if let Some(r) = &mut e.reason {
        if r.len() > MAX_TEXT_BYTES {
            *r = cut(r, MAX_TEXT_BYTES).to_owned();
            changed.push("reason");
        }
    }
    let mut details = BTreeMap::new();
    for (key, value) in std::mem::take(&mut e.details) {
        if details.len() >= MAX_DETAILS - 1 {
            changed.push("details");
            break;
        }
        let (mut key, key_changed) = clean_name(&key);
        if RESERVED_DETAILS.contains(&key.as_str()) || key == "truncated" {
            key = format!("bastion_{key}");
        }
        if key_changed {
            changed.push("detail key");
        }
        let value = match value {
            Value::String(text) => {
                let kept = cut_json(&text, MAX_TEXT_BYTES);
                if kept.len() < text.len() {
                    changed.push("detail value");
                    Value::String(kept.to_owned())
                } else {
                    Value::String(text)
                }
            }
            other => {
                let fits = serde_json::to_vec(&other)
                    .map(|b| b.len() <= MAX_TEXT_BYTES)
                    .unwrap_or(false);
                if fits {
                    other
                } else {
                    changed.push("detail value");
                    Value::String("(too large)".into())
                }
            }
        };
        details.insert(key, value);
    }
    e.details = details;
    if !changed.is_empty() {
        changed.dedup();
        e.details.insert(
            "truncated".into(),
            Value::from(changed.into_iter().map(Value::from).collect::<Vec<_>>()),
        );
    }
    e
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::audit::{detail, event};
    use rampart_api::BastionEventKind;

    fn fits(e: &BastionEvent) {
        for v in [&e.user, &e.login, &e.target, &e.source]
            .into_iter()
            .flatten()
        {
            assert!(!v.is_empty() && v.len() <= MAX_NAME_BYTES, "{v:?}");
            assert!(!v.chars().any(char::is_control), "{v:?}");
        }
        assert!(e.reason.as_ref().is_none_or(|r| r.len() <= MAX_TEXT_BYTES));
        assert!(e.details.len() <= MAX_DETAILS);
        for (k, v) in &e.details {
            assert!(k.len() <= MAX_NAME_BYTES && !RESERVED_DETAILS.contains(&k.as_str()));
            assert!(
                serde_json::to_vec(v).unwrap().len() <= MAX_TEXT_BYTES,
                "{k}"
            );
        }
    }

    #[test]
    fn multibyte_names_are_cut_by_bytes_on_a_character_boundary() {
        // 200 × "é" is 200 characters but 400 bytes: a cut by characters let it through.
        let mut e = event(
            BastionEventKind::ConnectionRefused,
            false,
            chrono::Utc::now(),
        );
        e.login = Some("é".repeat(200));
        e.user = Some("al\u{1b}[2Jice".into());
        let e = sanitize(e);
        fits(&e);
        assert_eq!(e.login.as_deref(), Some("é".repeat(128).as_str()));
        assert_eq!(e.user.as_deref(), Some("al?[2Jice"));
        assert_eq!(e.details["truncated"], serde_json::json!(["user", "login"]));
    }

    #[test]
    fn a_long_multibyte_command_is_kept_within_the_detail_bound_and_marked() {
        let mut e = event(BastionEventKind::Exec, true, chrono::Utc::now());
        let command = "ü".repeat(2100) + "\n\u{1}";
        e = detail(e, "command", command.clone());
        let e = sanitize(e);
        fits(&e);
        let kept = e.details["command"].as_str().unwrap();
        assert!(
            command.starts_with(kept) && kept.len() > 4000,
            "{}",
            kept.len()
        );
        assert_eq!(e.details["truncated"], serde_json::json!(["detail value"]));
        // Escapes count: a command of control characters cut by its JSON size.
        let e = sanitize(detail(
            event(BastionEventKind::Exec, true, chrono::Utc::now()),
            "command",
            "\u{1}".repeat(5000),
        ));
        fits(&e);
    }

    #[test]
    fn reserved_and_excess_details_and_empty_names_are_made_acceptable() {
        let mut e = event(BastionEventKind::Exec, true, chrono::Utc::now());
        e.target = Some(String::new());
        e = detail(e, "at", "yesterday");
        for i in 0..40 {
            e = detail(e, &format!("k{i:02}"), i);
        }
        let e = sanitize(e);
        fits(&e);
        assert_eq!(e.target.as_deref(), Some("?"));
        assert_eq!(e.details["bastion_at"], serde_json::json!("yesterday"));
        assert_eq!(e.details.len(), MAX_DETAILS);
    }

    #[test]
    fn an_event_within_bounds_is_untouched() {
        let mut e = event(BastionEventKind::Exec, true, chrono::Utc::now());
        e.user = Some("alice".into());
        e.reason = Some("fine".into());
        let e2 = detail(e, "command", "ls -l\n");
        assert_eq!(sanitize(e2.clone()), e2);
    }
}
