//! JSON Lines in Rampart's own schema, and the offline verifier of such an export.
//!
//! An export is a header line, then one line per event in sequence order, with a
//! checkpoint line right after the event it signs. Each event line carries the
//! event's fields (for the SIEM to index), `prev_hash`, `hash`, and `body`: the
//! exact canonical body the chain hashed, as a JSON string. The verifier needs
//! nothing but the file and the audit public key: `hash = SHA-256(prev_hash ‖
//! body)` links every event to the one before, the header's `prev_hash` anchors
//! the first, and a checkpoint signature by the audit key over the last event's
//! hash binds the whole range, so no event can be altered, dropped, added or
//! moved without the signature check failing. The format is specified in
//! `audit/SCHEMA.md`.

use std::io::BufRead;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::checkpoint::{checkpoint_message, verify_signature, Checkpoint};
use crate::event::{canonical_time, chain_hash, encode_body, Event, NewEvent, Sealed};
use crate::{AuditError, VerifyProblem, BODY_VERSION};

use super::{PRODUCT, PRODUCT_VERSION};

/// Version of the JSON Lines export format (the header's `v`).
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// The time window an export was asked for (canonical RFC 3339 times, or null).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// `--since`, inclusive.
    pub since: Option<String>,
    /// `--until`, exclusive.
    pub until: Option<String>,
}

/// The first line of a JSON Lines export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportHeader {
    /// Always `export`.
    #[serde(rename = "type")]
    pub line_type: String,
    /// The export format version ([`EXPORT_FORMAT_VERSION`]).
    pub v: u32,
    /// The canonical body version of the events ([`BODY_VERSION`]).
    pub body_v: u32,
    /// The product that wrote the log (`rampart-ca`).
    pub product: String,
    /// The version of the software that exported it.
    pub product_version: String,
    /// The sequence number of the first event line.
    pub first_seq: u64,
    /// The chain hash before the first event (64 hex digits; zeros at genesis).
    pub prev_hash: String,
    /// The sequence number of the last event line (`first_seq - 1` if none).
    pub last_seq: u64,
    /// The time window requested.
    pub filters: Filters,
}

impl ExportHeader {
    pub(crate) fn new(first_seq: u64, prev: [u8; 32], last_seq: u64, filters: Filters) -> Self {
        ExportHeader {
            line_type: "export".to_owned(),
            v: EXPORT_FORMAT_VERSION,
            body_v: BODY_VERSION,
            product: PRODUCT.to_owned(),
            product_version: PRODUCT_VERSION.to_owned(),
            first_seq,
            prev_hash: hex::encode(prev),
            last_seq,
            filters,
        }
    }
}

fn json_err(e: serde_json::Error) -> AuditError {
    AuditError::Format(format!("encoding export line: {e}"))
}

/// The header line (no trailing newline).
pub fn jsonl_header(h: &ExportHeader) -> Result<String, AuditError> {
    serde_json::to_string(h).map_err(json_err)
}

/// Re-encode an event's canonical body, byte for byte what the log hashed when
/// it wrote the event (the encoding is deterministic; see `audit/SCHEMA.md`).
pub fn canonical_body(ev: &Event) -> Result<String, AuditError> {
    let new = NewEvent {
        kind: ev.kind,
        outcome: ev.outcome,
        time: ev.time,
        id: Some(ev.id),
        actor: ev.actor.clone(),
        user: ev.user.clone(),
        source: ev.source.clone(),
        target: ev.target.clone(),
        session: ev.session.clone(),
        serial: ev.serial,
        mfa_method: ev.mfa_method.clone(),
        mfa_age_seconds: ev.mfa_age_seconds,
        reason: ev.reason.clone(),
        details: ev.details.clone(),
    };
    let id = ev.id.to_string();
    let time = canonical_time(&ev.time);
    let body = encode_body(&Sealed {
        seq: ev.seq,
        id: &id,
        time: &time,
        ev: &new,
    })?;
    String::from_utf8(body).map_err(|e| AuditError::Format(format!("body is not UTF-8: {e}")))
}

/// An event line for `ev`, whose predecessor in the chain has hash `prev_hash`
/// (no trailing newline).
pub fn jsonl_event(ev: &Event, prev_hash: &[u8; 32]) -> Result<String, AuditError> {
    jsonl_event_line(&canonical_body(ev)?, prev_hash, &ev.hash)
}

/// An event line from a stored canonical body: the body's own fields, in the
/// body's order, then `prev_hash`, `hash` and the body itself as a string.
pub fn jsonl_event_line(
    body: &str,
    prev_hash: &[u8; 32],
    hash: &[u8; 32],
) -> Result<String, AuditError> {
    let inner = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| AuditError::Format("a canonical body is a non-empty JSON object".into()))?;
    let body_str = serde_json::to_string(body).map_err(json_err)?;
    Ok(format!(
        "{{\"type\":\"event\",{inner},\"prev_hash\":\"{}\",\"hash\":\"{}\",\"body\":{body_str}}}",
        hex::encode(prev_hash),
        hex::encode(hash)
    ))
}

#[derive(Serialize)]
struct CheckpointLine<'a> {
    #[serde(rename = "type")]
    line_type: &'static str,
    seq: u64,
    hash: String,
    time: String,
    signature: &'a str,
}

/// A checkpoint line (no trailing newline).
pub fn jsonl_checkpoint(cp: &Checkpoint) -> Result<String, AuditError> {
    serde_json::to_string(&CheckpointLine {
        line_type: "checkpoint",
        seq: cp.seq,
        hash: hex::encode(cp.hash),
        time: canonical_time(&cp.time),
        signature: &cp.signature,
    })
    .map_err(json_err)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointIn {
    #[serde(rename = "type")]
    _line_type: String,
    seq: u64,
    hash: String,
    time: String,
    signature: String,
}

/// Result of [`verify_export`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportVerifyReport {
    /// The header's first sequence number.
    pub first_seq: u64,
    /// Event lines checked and found good (before the first problem, if any).
    pub events: u64,
    /// Checkpoint lines checked and found good.
    pub checkpoints: u64,
    /// The last good event's sequence number.
    pub last_seq: u64,
    /// The last good checkpoint's sequence number (0 if none).
    pub last_checkpoint_seq: u64,
    /// The first problem, or `None` when the export is proven complete and
    /// unaltered from `first_seq` to `last_seq`.
    pub problem: Option<VerifyProblem>,
}

impl ExportVerifyReport {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

fn problem(seq: u64, reason: impl Into<String>) -> VerifyProblem {
    VerifyProblem {
        seq,
        reason: reason.into(),
    }
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let v = hex::decode(s).ok()?;
    <[u8; 32]>::try_from(v.as_slice()).ok()
}

/// Keys an event line has besides its body's fields.
const LINE_KEYS: [&str; 4] = ["type", "prev_hash", "hash", "body"];

struct Walker<'k> {
    key: &'k ssh_key::PublicKey,
    header: Option<ExportHeader>,
    /// Sequence number the next event line must have.
    expected: u64,
    /// Chain hash of the last event (or the header's `prev_hash`).
    prev: [u8; 32],
    /// Canonical time of the last event.
    last_time: Option<String>,
    report: ExportVerifyReport,
}

impl Walker<'_> {
    fn line(&mut self, n: u64, text: &str) -> Result<(), VerifyProblem> {
        let Some(header) = &self.header else {
            return self.header_line(text);
        };
        let at = self.expected;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| problem(at, format!("line {n} is not valid JSON ({e})")))?;
        let Value::Object(map) = value else {
            return Err(problem(at, format!("line {n} is not a JSON object")));
        };
        match map.get("type").and_then(Value::as_str) {
            Some("event") => self.event(n, text, map, header.last_seq),
            Some("checkpoint") => self.checkpoint(n, Value::Object(map)),
            Some("export") => Err(problem(at, format!("line {n} is a second export header"))),
            _ => Err(problem(at, format!("line {n} has no known \"type\""))),
        }
    }

    fn header_line(&mut self, text: &str) -> Result<(), VerifyProblem> {
        let h: ExportHeader = serde_json::from_str(text)
            .map_err(|e| problem(0, format!("line 1 is not an export header ({e})")))?;
        if h.line_type != "export" {
            return Err(problem(0, "line 1 is not an export header"));
        }
        if h.v != EXPORT_FORMAT_VERSION || h.body_v != BODY_VERSION {
            return Err(problem(
                0,
                format!(
                    "unsupported export format v{} / body v{} (this build reads v{EXPORT_FORMAT_VERSION} / body v{BODY_VERSION})",
                    h.v, h.body_v
                ),
            ));
        }
        let prev = parse_hash(&h.prev_hash)
            .ok_or_else(|| problem(h.first_seq, "header prev_hash is not 64 hex digits"))?;
        if h.first_seq == 0 {
            return Err(problem(0, "header first_seq is 0 (sequences start at 1)"));
        }
        if h.first_seq == 1 && prev != [0; 32] {
            return Err(problem(
                1,
                "header prev_hash before sequence 1 must be all zeros",
            ));
        }
        if h.last_seq.saturating_add(1) < h.first_seq {
            return Err(problem(h.first_seq, "header last_seq is before first_seq"));
        }
        self.expected = h.first_seq;
        self.prev = prev;
        self.report.first_seq = h.first_seq;
        self.report.last_seq = h.first_seq - 1;
        self.header = Some(h);
        Ok(())
    }

    fn event(
        &mut self,
        n: u64,
        text: &str,
        map: Map<String, Value>,
        last_seq: u64,
    ) -> Result<(), VerifyProblem> {
        let expected = self.expected;
        let seq = map.get("seq").and_then(Value::as_u64).ok_or_else(|| {
            problem(
                expected,
                format!("line {n}: event without a sequence number"),
            )
        })?;
        if seq > expected {
            return Err(problem(
                expected,
                format!("event {expected} is missing (line {n} holds {seq}): removed or reordered"),
            ));
        }
        if seq < expected {
            return Err(problem(
                seq,
                format!("event {seq} appears again at line {n}: duplicated or reordered"),
            ));
        }
        if seq > last_seq {
            return Err(problem(
                seq,
                format!("event {seq} is past the header's last_seq {last_seq}"),
            ));
        }
        let body = map
            .get("body")
            .and_then(Value::as_str)
            .ok_or_else(|| problem(seq, "event line has no \"body\" string"))?;
        let parsed: Value = serde_json::from_str(body)
            .map_err(|e| problem(seq, format!("body is not JSON ({e})")))?;
        let Value::Object(body_map) = parsed else {
            return Err(problem(seq, "body is not a JSON object"));
        };
        if body_map.get("v").and_then(Value::as_u64) != Some(u64::from(BODY_VERSION)) {
            return Err(problem(seq, format!("body is not version {BODY_VERSION}")));
        }
        // The indexed copy must say exactly what the hashed body says: a SIEM
        // reads the line's fields, so an edit there is an edit of the event.
        for (k, v) in &body_map {
            if map.get(k) != Some(v) {
                return Err(problem(
                    seq,
                    format!("field {k:?} differs from the hashed body (event altered)"),
                ));
            }
        }
        if let Some(extra) = map
            .keys()
            .find(|k| !body_map.contains_key(*k) && !LINE_KEYS.contains(&k.as_str()))
        {
            return Err(problem(
                seq,
                format!("field {extra:?} is not part of the event (event altered)"),
            ));
        }
        let prev_hash = map
            .get("prev_hash")
            .and_then(Value::as_str)
            .and_then(parse_hash)
            .ok_or_else(|| problem(seq, "prev_hash is not 64 hex digits"))?;
        if prev_hash != self.prev {
            return Err(problem(
                seq,
                format!(
                    "prev_hash does not match event {}'s hash (chain broken)",
                    seq - 1
                ),
            ));
        }
        let hash = map
            .get("hash")
            .and_then(Value::as_str)
            .and_then(parse_hash)
            .ok_or_else(|| problem(seq, "hash is not 64 hex digits"))?;
        if chain_hash(&self.prev, body.as_bytes()) != hash {
            return Err(problem(
                seq,
                "hash mismatch: SHA-256(prev_hash ‖ body) differs (event altered)",
            ));
        }
        // Byte for byte what the exporter writes for this body: catches what a
        // JSON parser hides, such as a duplicated key whose first copy a SIEM
        // might index while the last copy (which serde_json keeps) is genuine.
        let exact = jsonl_event_line(body, &prev_hash, &hash)
            .map_err(|e| problem(seq, format!("body cannot be rendered ({e})")))?;
        if exact != text {
            return Err(problem(
                seq,
                "line is not exactly as exported (a duplicated key, or reformatted)",
            ));
        }
        self.last_time = body_map
            .get("time")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.prev = hash;
        self.expected = seq + 1;
        self.report.events += 1;
        self.report.last_seq = seq;
        Ok(())
    }

    fn checkpoint(&mut self, n: u64, value: Value) -> Result<(), VerifyProblem> {
        let at = self.expected.saturating_sub(1);
        let cp: CheckpointIn = serde_json::from_value(value)
            .map_err(|e| problem(at, format!("line {n}: malformed checkpoint ({e})")))?;
        if self.report.events == 0 || cp.seq != at {
            return Err(problem(
                cp.seq,
                format!(
                    "line {n}: checkpoint for {} is out of place (it must follow event {})",
                    cp.seq, cp.seq
                ),
            ));
        }
        let hash = parse_hash(&cp.hash)
            .ok_or_else(|| problem(cp.seq, "checkpoint hash is not 64 hex digits"))?;
        if hash != self.prev {
            return Err(problem(
                cp.seq,
                "checkpoint hash does not match the chain (events up to here were altered)",
            ));
        }
        if self.last_time.as_deref() != Some(cp.time.as_str()) {
            return Err(problem(cp.seq, "checkpoint time is not its event's time"));
        }
        let msg = checkpoint_message(cp.seq, &hash, &cp.time);
        verify_signature(self.key, msg.as_bytes(), &cp.signature).map_err(|e| {
            problem(
                cp.seq,
                format!("checkpoint signature does not verify with the audit key (forged?): {e}"),
            )
        })?;
        self.report.checkpoints += 1;
        self.report.last_checkpoint_seq = cp.seq;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), VerifyProblem> {
        let Some(h) = &self.header else {
            return Err(problem(0, "the export is empty (no header line)"));
        };
        let last = self.report.last_seq;
        if last < h.last_seq {
            return Err(problem(
                last + 1,
                format!(
                    "the export stops after event {last} but its header says it runs to {} (tail cut)",
                    h.last_seq
                ),
            ));
        }
        if self.report.events > 0 && self.report.last_checkpoint_seq != last {
            let from = self.report.last_checkpoint_seq.max(h.first_seq - 1) + 1;
            return Err(problem(
                from,
                format!(
                    "events {from}..={last} are not covered by a signed checkpoint, so a cut or an edit there would not show; export again after the CA's next checkpoint"
                ),
            ));
        }
        Ok(())
    }
}

/// Prove a JSON Lines export complete and unaltered, with nothing but the file
/// and the audit public key: recompute every hash from its canonical body, check
/// every `prev_hash` link and that sequence numbers run gap-free from the
/// header's `first_seq` to its `last_seq`, that each line's fields equal its
/// hashed body, that every checkpoint matches the chain and carries a valid
/// signature by `audit_key`, and that the export ends at a signed checkpoint.
///
/// Returns `Err` only when the file cannot be read; a bad export is `Ok` with
/// `problem` naming the first bad sequence number (0 for a bad header).
///
/// What this cannot see: a copy cut back exactly to an earlier checkpoint *and*
/// given a header edited to match is a valid, shorter export.
pub fn verify_export(
    reader: impl BufRead,
    audit_key: &ssh_key::PublicKey,
) -> Result<ExportVerifyReport, AuditError> {
    let mut w = Walker {
        key: audit_key,
        header: None,
        expected: 1,
        prev: [0; 32],
        last_time: None,
        report: ExportVerifyReport::default(),
    };
    let mut n = 0u64;
    for line in reader.lines() {
        let line = line?;
        n += 1;
        if let Err(p) = w.line(n, &line) {
            w.report.problem = Some(p);
            return Ok(w.report);
        }
    }
    if let Err(p) = w.finish() {
        w.report.problem = Some(p);
    }
    Ok(w.report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Outcome, Severity};
    use chrono::TimeZone;
    use ssh_key::private::Ed25519Keypair;
    use std::collections::BTreeMap;

    fn key() -> ssh_key::PrivateKey {
        ssh_key::PrivateKey::from(Ed25519Keypair::from_seed(&[3; 32]))
    }

    fn event(seq: u64, prev: &[u8; 32]) -> Event {
        let mut e = Event {
            seq,
            id: ulid::Ulid::from_parts(seq, 9),
            time: chrono::Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
                + chrono::Duration::seconds(seq as i64),
            kind: EventKind::CertIssued,
            code: "RA-CERT-001".into(),
            severity: Severity::Info,
            outcome: Outcome::Success,
            actor: None,
            user: Some("al|ice=\"]\n".into()),
            source: Some("192.0.2.1".into()),
            target: None,
            session: Some("s1".into()),
            serial: Some(seq),
            mfa_method: Some("totp".into()),
            mfa_age_seconds: Some(3),
            reason: None,
            details: BTreeMap::from([("k".to_owned(), serde_json::json!({"z": 1, "a": [1.5]}))]),
            hash: [0; 32],
        };
        let body = canonical_body(&e).unwrap();
        e.hash = chain_hash(prev, body.as_bytes());
        e
    }

    fn export(n: u64) -> Vec<String> {
        let mut lines =
            vec![jsonl_header(&ExportHeader::new(1, [0; 32], n, Filters::default())).unwrap()];
        let mut prev = [0; 32];
        for seq in 1..=n {
            let e = event(seq, &prev);
            lines.push(jsonl_event(&e, &prev).unwrap());
            prev = e.hash;
            if seq % 2 == 0 || seq == n {
                let cp = Checkpoint::sign(&key(), seq, e.hash, e.time).unwrap();
                lines.push(jsonl_checkpoint(&cp).unwrap());
            }
        }
        lines
    }

    fn check(lines: &[String]) -> ExportVerifyReport {
        let text = lines.join("\n");
        verify_export(text.as_bytes(), key().public_key()).unwrap()
    }

    #[test]
    fn event_line_carries_fields_and_exact_body() {
        let e = event(1, &[0; 32]);
        let line = jsonl_event(&e, &[0; 32]).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["seq"], 1);
        assert_eq!(v["user"], "al|ice=\"]\n");
        assert_eq!(v["code"], "RA-CERT-001");
        assert_eq!(v["prev_hash"], "00".repeat(32));
        assert_eq!(v["hash"], hex::encode(e.hash));
        let body = v["body"].as_str().unwrap();
        assert_eq!(body, canonical_body(&e).unwrap());
        assert_eq!(chain_hash(&[0; 32], body.as_bytes()), e.hash);
        assert!(line.starts_with("{\"type\":\"event\",\"v\":1,\"seq\":1,"));
    }

    #[test]
    fn good_export_verifies() {
        let r = check(&export(5));
        assert_eq!(r.problem, None);
        assert_eq!(
            (r.events, r.checkpoints, r.last_seq, r.last_checkpoint_seq),
            (5, 3, 5, 5)
        );
    }

    #[test]
    fn every_tamper_is_named() {
        let good = export(5);
        // line index: 0 header, 1 e1, 2 e2, 3 cp2, 4 e3, 5 e4, 6 cp4, 7 e5, 8 cp5
        let mut altered = good.clone();
        altered[4] = altered[4].replace("\"serial\":3", "\"serial\":4");
        assert_eq!(check(&altered).problem.unwrap().seq, 3);

        let mut dropped = good.clone();
        dropped.remove(4);
        let p = check(&dropped).problem.unwrap();
        assert_eq!(p.seq, 3, "{p}");

        let mut swapped = good.clone();
        swapped.swap(4, 5);
        assert_eq!(check(&swapped).problem.unwrap().seq, 3);

        let cut: Vec<String> = good[..8].to_vec(); // drop the final checkpoint
        let p = check(&cut).problem.unwrap();
        assert_eq!(p.seq, 5, "{p}");

        let cut: Vec<String> = good[..7].to_vec(); // drop event 5 and its checkpoint
        let p = check(&cut).problem.unwrap();
        assert_eq!(p.seq, 5, "{p}");
        assert!(p.reason.contains("tail cut"), "{p}");

        let mut forged = good.clone();
        let e = event(4, &[0; 32]);
        let other = ssh_key::PrivateKey::from(Ed25519Keypair::from_seed(&[4; 32]));
        let v: Value = serde_json::from_str(&good[5]).unwrap();
        let h = parse_hash(v["hash"].as_str().unwrap()).unwrap();
        forged[6] = jsonl_checkpoint(&Checkpoint::sign(&other, 4, h, e.time).unwrap()).unwrap();
        let p = check(&forged).problem.unwrap();
        assert_eq!(p.seq, 4);
        assert!(p.reason.contains("signature"), "{p}");

        let mut extra = good.clone();
        extra[1] = extra[1].replacen("{\"type\":\"event\",", "{\"type\":\"event\",\"note\":1,", 1);
        assert_eq!(check(&extra).problem.unwrap().seq, 1);

        let mut dup = good.clone();
        dup[4] = dup[4].replacen(
            "{\"type\":\"event\",",
            "{\"type\":\"event\",\"user\":\"mallory\",",
            1,
        );
        let p = check(&dup).problem.unwrap();
        assert_eq!(p.seq, 3, "{p}");
        assert!(p.reason.contains("duplicated key"), "{p}");

        let mut header = good.clone();
        header[0] = header[0].replace("\"first_seq\":1", "\"first_seq\":2");
        assert_eq!(check(&header).problem.unwrap().seq, 1);

        assert_eq!(check(&[]).problem.unwrap().seq, 0);
        let mut junk = good;
        junk[2] = "not json".into();
        assert_eq!(check(&junk).problem.unwrap().seq, 2);
    }
}
