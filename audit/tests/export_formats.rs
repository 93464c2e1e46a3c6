//! CEF, OCSF and RFC 5424 output checked field by field for EVERY event kind,
//! with hostile values (pipes, equals signs, backslashes, newlines, quotes,
//! brackets, non-ASCII) in every free-text field. The CEF and syslog lines are
//! parsed back with small independent parsers written from the specs, so the
//! tests prove the escaping round-trips rather than compare strings with the
//! encoder's own idea of them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rampart_audit::export::{
    kind_title, ocsf_class, syslog_severity, to_cef, to_ocsf, to_syslog, OCSF_VERSION,
    PRODUCT_VERSION, SYSLOG_PEN,
};
use rampart_audit::{Event, EventKind, Outcome, Severity};
use serde_json::{json, Value};

const HOSTILE_USER: &str = "mal|lory=1 \\ \"q\" ]x\nnext\r ü€";
const HOSTILE_REASON: &str = "bad | code = 5 \\n\n[x] \"y\" ünï\tend";
const HOSTILE_ACTOR: &str = "adm=in|x\\";
const HOSTILE_TARGET: &str = "serial:5 | ] = \"";
const HOSTILE_SESSION: &str = "s=1|2]";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

/// Two events per kind: one with every field set to something hostile (source a
/// host name), one minimal (source an IPv6 address, no optional fields).
fn events() -> Vec<Event> {
    let mut out = Vec::new();
    for (i, k) in EventKind::all().iter().enumerate() {
        let i = i as u64;
        let details: BTreeMap<String, Value> = [
            ("note".to_owned(), json!("a=b|c\n]\"")),
            ("principals".to_owned(), json!(["root", "ü|="])),
            ("groups".to_owned(), json!(["ops", "db|a"])),
            ("action".to_owned(), json!("revoke=all")),
            ("krl_version".to_owned(), json!(3)),
            ("nested".to_owned(), json!({"z": 1, "a": [true, null, 1.5]})),
        ]
        .into();
        let full = Event {
            seq: 2 * i + 1,
            id: ulid::Ulid::from_parts(1_700_000_000_000 + i, u128::from(i)),
            time: t0() + chrono::Duration::nanoseconds(1_234_567_891 * (i as i64 + 1)),
            kind: *k,
            code: k.code().to_owned(),
            severity: k.severity(),
            outcome: if k.severity() >= Severity::Warning {
                Outcome::Failure
            } else {
                Outcome::Success
            },
            actor: Some(HOSTILE_ACTOR.to_owned()),
            user: Some(HOSTILE_USER.to_owned()),
            source: Some("bastion|1 = x".to_owned()),
            target: Some(HOSTILE_TARGET.to_owned()),
            session: Some(HOSTILE_SESSION.to_owned()),
            serial: Some(u64::MAX - i),
            mfa_method: Some("totp".to_owned()),
            mfa_age_seconds: Some(-5),
            reason: Some(HOSTILE_REASON.to_owned()),
            details,
            hash: [7; 32],
        };
        let minimal = Event {
            seq: 2 * i + 2,
            id: ulid::Ulid::from_parts(1_700_000_000_000 + i, u128::from(i) + 1000),
            time: t0() + chrono::Duration::seconds(i as i64),
            kind: *k,
            code: k.code().to_owned(),
            severity: k.severity(),
            outcome: Outcome::Success,
            actor: None,
            user: None,
            source: Some("2001:db8::1".to_owned()),
            target: None,
            session: None,
            serial: None,
            mfa_method: None,
            mfa_age_seconds: None,
            reason: None,
            details: BTreeMap::new(),
            hash: [8; 32],
        };
        out.push(full);
        out.push(minimal);
    }
    assert_eq!(out.len(), 2 * EventKind::all().len());
    out
}

// ---------------------------------------------------------------- CEF ------

/// Parse a CEF line: seven unescaped header fields, then `key=value` pairs.
fn parse_cef(line: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let mut header = Vec::new();
    let mut cur = String::new();
    let mut chars = line.char_indices();
    let mut rest_at = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, n) = chars.next().expect("dangling backslash in header");
                assert!(n == '\\' || n == '|', "bad header escape \\{n}");
                cur.push(n);
            }
            '|' => {
                header.push(std::mem::take(&mut cur));
                if header.len() == 7 {
                    rest_at = Some(i + 1);
                    break;
                }
            }
            c => cur.push(c),
        }
    }
    let ext = &line[rest_at.expect("seven header fields")..];
    // Unescaped '=' positions mark keys: the key is the word before it.
    let chars: Vec<char> = ext.chars().collect();
    let mut eqs = Vec::new();
    let mut j = 0;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 2,
            '=' => {
                eqs.push(j);
                j += 1;
            }
            _ => j += 1,
        }
    }
    let mut pairs = BTreeMap::new();
    let mut keys: Vec<(usize, usize)> = Vec::new(); // (key start, '=' index)
    for &e in &eqs {
        let mut s = e;
        while s > 0 && chars[s - 1] != ' ' {
            s -= 1;
        }
        keys.push((s, e));
    }
    for (n, &(ks, e)) in keys.iter().enumerate() {
        let key: String = chars[ks..e].iter().collect();
        assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric()),
            "bad key {key:?}"
        );
        let end = keys.get(n + 1).map_or(chars.len(), |&(s, _)| s - 1);
        let raw: String = chars[e + 1..end].iter().collect();
        let mut v = String::new();
        let mut it = raw.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next().expect("dangling backslash") {
                    '\\' => v.push('\\'),
                    '=' => v.push('='),
                    'n' => v.push('\n'),
                    'r' => v.push('\r'),
                    o => panic!("bad extension escape \\{o}"),
                }
            } else {
                v.push(c);
            }
        }
        assert!(pairs.insert(key.clone(), v).is_none(), "key {key} twice");
    }
    (header, pairs)
}

fn cef_severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "2",
        Severity::Notice => "3",
        Severity::Warning => "6",
        Severity::High => "8",
    }
}

#[test]
fn cef_every_kind_field_by_field() {
    for ev in events() {
        let line = to_cef(&ev);
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "{}: {line}",
            ev.kind
        );
        let (h, x) = parse_cef(&line);
        assert_eq!(
            h,
            [
                "CEF:0",
                "Rampart",
                "rampart-ca",
                PRODUCT_VERSION,
                ev.kind.code(),
                kind_title(ev.kind),
                cef_severity(ev.kind.severity()),
            ],
            "{line}"
        );
        let get = |k: &str| x.get(k).map(String::as_str);
        assert_eq!(
            get("rt"),
            Some(ev.time.timestamp_millis().to_string().as_str())
        );
        assert_eq!(get("externalId"), Some(ev.id.to_string().as_str()));
        assert_eq!(get("cn2Label"), Some("seq"));
        assert_eq!(get("cn2"), Some(ev.seq.to_string().as_str()));
        assert_eq!(get("act"), Some(ev.kind.as_str()));
        assert_eq!(get("outcome"), Some(ev.outcome.as_str()));
        assert_eq!(get("suser"), ev.actor.as_deref());
        assert_eq!(get("duser"), ev.user.as_deref());
        assert_eq!(get("msg"), ev.reason.as_deref());
        let src = ev.source.as_deref().unwrap();
        if src.parse::<std::net::IpAddr>().is_ok() {
            assert_eq!((get("src"), get("shost")), (Some(src), None));
        } else {
            assert_eq!((get("src"), get("shost")), (None, Some(src)));
        }
        let labelled = |n: &str, label: &str, v: Option<String>| {
            assert_eq!(
                get(&format!("{n}Label")),
                v.as_ref().map(|_| label),
                "{n}Label in {line}"
            );
            assert_eq!(get(n).map(str::to_owned), v, "{n} in {line}");
        };
        labelled("cs1", "session", ev.session.clone());
        labelled("cs2", "serial", ev.serial.map(|s| s.to_string()));
        labelled("cs3", "mfaMethod", ev.mfa_method.clone());
        labelled(
            "cn1",
            "mfaAgeSeconds",
            ev.mfa_age_seconds.map(|a| a.to_string()),
        );
        labelled("cs4", "target", ev.target.clone());
        match get("cs5") {
            None => assert!(ev.details.is_empty()),
            Some(d) => {
                assert_eq!(get("cs5Label"), Some("details"));
                let parsed: BTreeMap<String, Value> = serde_json::from_str(d).unwrap();
                assert_eq!(parsed, ev.details);
            }
        }
        let expected_keys = 6
            + [
                ev.actor.is_some(),
                ev.user.is_some(),
                ev.source.is_some(),
                ev.reason.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count()
            + 2 * [
                ev.session.is_some(),
                ev.serial.is_some(),
                ev.mfa_method.is_some(),
                ev.mfa_age_seconds.is_some(),
                ev.target.is_some(),
                !ev.details.is_empty(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
        assert_eq!(x.len(), expected_keys, "unexpected keys in {line}");
    }
}

#[test]
fn cef_escapes_are_exactly_the_specs() {
    let ev = &events()[0];
    let line = to_cef(ev);
    // Pipes stay raw in the extension; `=` and `\` and newlines are escaped.
    assert!(
        line.contains(r#"duser=mal|lory\=1 \\ "q" ]x\nnext\r ü€"#),
        "{line}"
    );
    assert!(line.contains(r"suser=adm\=in|x\\ "), "{line}");
}

// ---------------------------------------------------------------- OCSF -----

#[test]
fn ocsf_every_kind_field_by_field() {
    for ev in events() {
        let v = to_ocsf(&ev);
        // Through text and back, as a SIEM would read it.
        let text = serde_json::to_string(&v).unwrap();
        assert!(!text.contains('\n'));
        let o: Value = serde_json::from_str(&text).unwrap();
        let c = ocsf_class(ev.kind);
        let ctx = format!("{}: {text}", ev.kind);

        // Base event: required attributes.
        assert_eq!(o["class_uid"], c.class_uid, "{ctx}");
        assert_eq!(o["category_uid"], c.class_uid / 1000, "{ctx}");
        assert_eq!(o["activity_id"], c.activity_id, "{ctx}");
        assert_eq!(
            o["type_uid"],
            u64::from(c.class_uid) * 100 + u64::from(c.activity_id),
            "{ctx}"
        );
        assert_eq!(o["time"], ev.time.timestamp_millis(), "{ctx}");
        let sev = match ev.kind.severity() {
            Severity::Info => 1,
            Severity::Notice => 2,
            Severity::Warning => 3,
            Severity::High => 4,
        };
        assert_eq!(o["severity_id"], sev, "{ctx}");
        let status = if ev.outcome == Outcome::Success { 1 } else { 2 };
        assert_eq!(o["status_id"], status, "{ctx}");
        assert_eq!(o["class_name"], c.class_name);
        assert_eq!(o["activity_name"], c.activity_name);
        assert_eq!(
            o["type_name"],
            format!("{}: {}", c.class_name, c.activity_name)
        );
        let md = &o["metadata"];
        assert_eq!(md["version"], OCSF_VERSION, "{ctx}");
        assert_eq!(md["product"]["name"], "rampart-ca");
        assert_eq!(md["product"]["vendor_name"], "Rampart");
        assert_eq!(md["product"]["version"], PRODUCT_VERSION);
        assert_eq!(md["uid"], ev.id.to_string());
        assert_eq!(md["event_code"], ev.kind.code());
        assert_eq!(md["sequence"], ev.seq);

        // Context.
        match &ev.reason {
            Some(r) => {
                assert_eq!(o["status_detail"], r.as_str());
                assert_eq!(
                    o["message"],
                    format!("{}: {r}", kind_title(ev.kind)).as_str()
                );
            }
            None => {
                assert!(o.get("status_detail").is_none());
                assert_eq!(o["message"], kind_title(ev.kind));
            }
        }
        match &ev.actor {
            Some(a) => assert_eq!(o["actor"]["user"]["name"], a.as_str(), "{ctx}"),
            None => assert!(o.get("actor").is_none(), "{ctx}"),
        }
        let src = ev.source.as_deref().unwrap();
        if src.parse::<std::net::IpAddr>().is_ok() {
            assert_eq!(o["src_endpoint"]["ip"], src);
        } else {
            assert_eq!(o["src_endpoint"]["hostname"], src);
        }
        let un = &o["unmapped"]["rampart"];
        assert_eq!(un["kind"], ev.kind.as_str());
        assert_eq!(un["code"], ev.kind.code());
        assert_eq!(un["serial"], json!(ev.serial.map(|s| s.to_string())));
        if !ev.details.is_empty() {
            assert_eq!(un["details"], json!(ev.details));
        }

        // Each class's required attributes.
        let user_name = ev
            .user
            .as_deref()
            .or(ev.actor.as_deref())
            .unwrap_or("unknown");
        match c.class_uid {
            3001 | 3005 => assert_eq!(o["user"]["name"], user_name, "{ctx}"),
            3002 => {
                assert_eq!(o["user"]["name"], user_name, "{ctx}");
                assert_eq!(o["service"]["name"], "rampart-ca", "{ctx}");
                assert_eq!(o["is_mfa"], true);
                assert_eq!(o["session"]["uid"], json!(ev.session), "{ctx}");
                assert_eq!(o["auth_protocol"], json!(ev.mfa_method));
            }
            3003 => {
                assert_eq!(o["user"]["name"], user_name, "{ctx}");
                let p = o["privileges"].as_array().expect("privileges");
                let want = if ev.details.is_empty() {
                    json!([])
                } else {
                    json!(["root", "ü|="])
                };
                assert_eq!(json!(p), want);
            }
            3004 => {
                let e = &o["entity"];
                assert!(e["name"].is_string() && e["type"].is_string(), "{ctx}");
                assert_eq!(o["comment"], json!(ev.reason), "{ctx}");
            }
            6002 if ev.kind == EventKind::BastionConfigReloaded => {
                // The app is the bastion the actor names, not the CA.
                assert_eq!(o["app"]["name"], "rampart-bastion", "{ctx}");
                assert_eq!(o["app"]["vendor_name"], "Rampart", "{ctx}");
                let uid = ev
                    .actor
                    .as_deref()
                    .and_then(|a| a.strip_prefix("bastion:"))
                    .unwrap_or("unknown");
                assert_eq!(o["app"]["uid"], uid, "{ctx}");
            }
            6002 => {
                assert_eq!(o["app"]["name"], "rampart-ca", "{ctx}");
                assert_eq!(o["app"]["version"], PRODUCT_VERSION);
            }
            other => panic!("unexpected class {other}"),
        }
        if c.class_uid == 3005 {
            let p = o["privileges"].as_array().expect("privileges");
            assert_eq!(p.len(), if ev.details.is_empty() { 0 } else { 2 });
        }
    }
}

#[test]
fn ocsf_classes_are_the_documented_ones() {
    let expect = [
        (EventKind::MfaSucceeded, 3002, 1),
        (EventKind::MfaFailed, 3002, 1),
        (EventKind::SessionCreated, 3002, 1),
        (EventKind::SessionEnded, 3002, 2),
        (EventKind::UserCreated, 3001, 1),
        (EventKind::UserDisabled, 3001, 5),
        (EventKind::UserEnabled, 3001, 2),
        (EventKind::TotpEnrolled, 3001, 10),
        (EventKind::MfaLockedOut, 3001, 9),
        (EventKind::UserGroupsChanged, 3005, 1),
        (EventKind::InviteCreated, 3004, 1),
        (EventKind::CertIssued, 3003, 1),
        (EventKind::HostCertIssued, 3004, 1),
        (EventKind::Revoked, 3004, 3),
        (EventKind::CaStarted, 6002, 3),
        (EventKind::PolicyReloaded, 6002, 8),
        (EventKind::BastionConfigReloaded, 6002, 8),
    ];
    for (k, class, activity) in expect {
        let c = ocsf_class(k);
        assert_eq!((c.class_uid, c.activity_id), (class, activity), "{k}");
    }
}

// ---------------------------------------------------------------- syslog ---

struct Syslog {
    pri: u32,
    version: String,
    timestamp: String,
    hostname: String,
    app: String,
    procid: String,
    msgid: String,
    sd_id: String,
    params: Vec<(String, String)>,
    msg: String,
    bom: bool,
}

/// Parse an RFC 5424 line with one SD-ELEMENT, undoing the RFC's escapes (and
/// our documented control-character escapes).
fn parse_syslog(line: &str) -> Syslog {
    let rest = line.strip_prefix('<').expect("PRI");
    let (pri, rest) = rest.split_once('>').expect("PRI end");
    let mut parts = rest.splitn(7, ' ');
    let mut next = || parts.next().expect("header field").to_owned();
    let (version, timestamp, hostname, app, procid, msgid) =
        (next(), next(), next(), next(), next(), next());
    let sd = next();
    let sd = sd.strip_prefix('[').expect("SD-ELEMENT");
    let chars: Vec<char> = sd.chars().collect();
    let mut i = 0;
    let mut sd_id = String::new();
    while chars[i] != ' ' && chars[i] != ']' {
        sd_id.push(chars[i]);
        i += 1;
    }
    let mut params = Vec::new();
    while chars[i] == ' ' {
        i += 1;
        let mut name = String::new();
        while chars[i] != '=' {
            name.push(chars[i]);
            i += 1;
        }
        assert_eq!(chars[i + 1], '"');
        i += 2;
        let mut v = String::new();
        loop {
            match chars[i] {
                '\\' => {
                    i += 1;
                    match chars[i] {
                        '"' | '\\' | ']' => v.push(chars[i]),
                        'n' => v.push('\n'),
                        'r' => v.push('\r'),
                        't' => v.push('\t'),
                        'u' => {
                            let hex: String = chars[i + 1..i + 5].iter().collect();
                            v.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                            i += 4;
                        }
                        o => panic!("unexpected escape \\{o}"),
                    }
                }
                '"' => break,
                ']' => panic!("unescaped ] inside PARAM-VALUE: {line}"),
                c => v.push(c),
            }
            i += 1;
        }
        i += 1;
        params.push((name, v));
    }
    assert_eq!(chars[i], ']');
    let after: String = chars[i + 1..].iter().collect();
    let msg = after.strip_prefix(' ').unwrap_or(&after);
    let (bom, msg) = match msg.strip_prefix('\u{feff}') {
        Some(m) => (true, m),
        None => (false, msg),
    };
    Syslog {
        pri: pri.parse().unwrap(),
        version,
        timestamp,
        hostname,
        app,
        procid,
        msgid,
        sd_id,
        params,
        msg: unescape_msg(msg),
        bom,
    }
}

fn unescape_msg(m: &str) -> String {
    let mut out = String::new();
    let mut it = m.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next().expect("dangling backslash in MSG") {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            o => panic!("unexpected MSG escape \\{o}"),
        }
    }
    out
}

#[test]
fn syslog_every_kind_field_by_field() {
    for ev in events() {
        let line = to_syslog(&ev, "ca-1.example.net");
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        let s = parse_syslog(&line);
        let sev = u32::from(syslog_severity(ev.kind.severity()));
        assert_eq!(s.pri, 10 * 8 + sev, "{line}");
        assert_eq!(s.version, "1");
        assert_eq!(
            s.timestamp,
            ev.time.to_rfc3339_opts(SecondsFormat::Micros, true)
        );
        assert_eq!(
            DateTime::parse_from_rfc3339(&s.timestamp).unwrap(),
            ev.time.with_nanosecond_floor()
        );
        assert_eq!(s.hostname, "ca-1.example.net");
        assert_eq!(s.app, "rampart-ca");
        assert_eq!(s.procid, "-");
        assert_eq!(s.msgid, ev.kind.code());
        assert_eq!(s.sd_id, format!("rampart@{SYSLOG_PEN}"));
        let mut want: Vec<(String, String)> = vec![
            ("id".into(), ev.id.to_string()),
            ("seq".into(), ev.seq.to_string()),
            ("kind".into(), ev.kind.as_str().into()),
            ("severity".into(), ev.kind.severity().as_str().into()),
            ("outcome".into(), ev.outcome.as_str().into()),
        ];
        let mut opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                want.push((k.into(), v));
            }
        };
        opt("actor", ev.actor.clone());
        opt("user", ev.user.clone());
        opt("src", ev.source.clone());
        opt("target", ev.target.clone());
        opt("session", ev.session.clone());
        opt("mfa_method", ev.mfa_method.clone());
        opt("serial", ev.serial.map(|s| s.to_string()));
        opt("mfa_age_seconds", ev.mfa_age_seconds.map(|a| a.to_string()));
        opt("reason", ev.reason.clone());
        let details = (!ev.details.is_empty()).then(|| {
            let (_, d) = s.params.iter().find(|(k, _)| k == "details").unwrap();
            let parsed: BTreeMap<String, Value> = serde_json::from_str(d).unwrap();
            assert_eq!(parsed, ev.details);
            d.clone()
        });
        opt("details", details);
        assert_eq!(s.params, want, "{line}");
        let msg = match &ev.reason {
            Some(r) => format!("{}: {r}", kind_title(ev.kind)),
            None => kind_title(ev.kind).to_owned(),
        };
        assert_eq!(s.msg, msg);
        assert_eq!(s.bom, !msg.is_ascii(), "BOM iff the MSG is not ASCII");
    }
}

#[test]
fn syslog_pri_uses_authpriv() {
    let evs = events();
    let issued = evs
        .iter()
        .find(|e| e.kind == EventKind::CertIssued)
        .unwrap();
    assert!(to_syslog(issued, "h").starts_with("<86>1 "));
    let locked = evs
        .iter()
        .find(|e| e.kind == EventKind::MfaLockedOut)
        .unwrap();
    assert!(to_syslog(locked, "h").starts_with("<82>1 "));
    // A host name that is not PRINTUSASCII becomes the NILVALUE.
    assert!(to_syslog(issued, "hôte").contains(" - rampart-ca - RA-CERT-001 ["));
}

trait Floor {
    fn with_nanosecond_floor(&self) -> DateTime<Utc>;
}

impl Floor for DateTime<Utc> {
    /// The time cut to microseconds, as RFC 5424's six fractional digits carry.
    fn with_nanosecond_floor(&self) -> DateTime<Utc> {
        use chrono::Timelike;
        self.with_nanosecond(self.nanosecond() / 1000 * 1000)
            .unwrap()
    }
}
