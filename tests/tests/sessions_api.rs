//! Bastion sessions on the CA side, over HTTPS against a real `rampart-ca`
//! (issue 3): a joined bastion's credential posts session events and uploads a
//! recording made by `rampart_audit::recording::RecordingWriter`; `rampart
//! sessions list/play` and `rampart audit verify --recordings` read them back;
//! one byte edited in the stored recording makes verify fail (naming the
//! session) and play refuse. `asciinema cat` (PyPI) renders what `play --raw`
//! hands out.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
// The binaries under test read the real clock, so the test reads it too.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_api::{
    paths, BastionEvent, BastionEventAck, BastionEventBatch, BastionEventKind, BastionJoinRequest,
    BastionJoinResponse, RecordingSealed, MAX_BODY_BYTES, RECORDING_SHA256_HEADER,
};
use rampart_audit::recording::{finish_recording, RecordingHeader, RecordingWriter};
use rampart_e2e::{bootstrap_admin, tempdir, AuditDb, Ca, CmdOutput, Enrolled, KeyPair};
use serde_json::{json, Value};

const BASTION: &str = "bastion-1";

fn start_ca() -> (Ca, Enrolled) {
    let mut ca = Ca::init_with(None, "");
    ca.start();
    let admin = bootstrap_admin(&ca);
    (ca, admin)
}

/// Join a bastion through the API with a token from `rampart admin bastion-token`.
fn join(ca: &Ca, admin: &Enrolled, dir: &Path) -> BastionJoinResponse {
    let out = admin.cli.admin(&["bastion-token", "--name", BASTION]);
    out.assert_success("rampart admin bastion-token");
    let token = out
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("join token: "))
        .unwrap_or_else(|| panic!("no `join token:` line\n{out}"))
        .to_owned();
    let host_key = KeyPair::ed25519(dir, "bastion_host");
    ca.api()
        .post_json(
            paths::BASTION_JOIN,
            &BastionJoinRequest {
                token: token.into(),
                name: BASTION.into(),
                host_public_key: host_key.public_line(),
            },
        )
        .expect("join")
}

/// A fresh, canonical ULID (time prefix, random tail) without the ulid crate.
fn ulid() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let millis = chrono::Utc::now().timestamp_millis() as u128;
    let mut bits: u128 =
        (millis << 80) | u128::from(rand_u64()) << 16 | u128::from(rand_u64() as u16);
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(bits & 31) as usize];
        bits >>= 5;
    }
    String::from_utf8(out.to_vec()).unwrap()
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    u64::from_le_bytes(b)
}

/// A pinned raw HTTPS client for the requests the typed client does not make.
fn http(ca: &Ca) -> reqwest::blocking::Client {
    let tls = rampart_api::client::pinned_tls_config(ca.pin()).unwrap();
    reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// (status, body as JSON or Null)
fn send(rb: reqwest::blocking::RequestBuilder) -> (u16, Value) {
    let resp = rb.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post_events(ca: &Ca, bearer: &str, body: Vec<u8>) -> (u16, Value) {
    send(
        http(ca)
            .post(format!("{}{}", ca.url(), paths::BASTION_EVENTS))
            .header("content-type", "application/json")
            .bearer_auth(bearer)
            .body(body),
    )
}

fn put_recording(ca: &Ca, bearer: &str, session: &str, sha: &str, body: Vec<u8>) -> (u16, Value) {
    send(
        http(ca)
            .put(format!(
                "{}{}",
                ca.url(),
                paths::for_session(paths::BASTION_RECORDING, session)
            ))
            .bearer_auth(bearer)
            .header(RECORDING_SHA256_HEADER, sha)
            .body(body),
    )
}

fn started(session: &str, user: &str) -> BastionEvent {
    BastionEvent {
        id: None,
        kind: BastionEventKind::SessionStarted,
        success: true,
        at: chrono::Utc::now(),
        session_id: Some(session.into()),
        user: Some(user.into()),
        login: Some("root".into()),
        target: Some("db-1".into()),
        source: Some("127.0.0.1".into()),
        serial: None,
        reason: None,
        details: Default::default(),
    }
}

/// A recording as the bastion makes one: typed command, its output, a resize.
fn record(dir: &Path, session: &str, user: &str) -> (PathBuf, Vec<u8>, String) {
    let cast = dir.join(format!("{session}.cast"));
    let mut w = RecordingWriter::create(
        &cast,
        &RecordingHeader {
            session_id: session.into(),
            user: user.into(),
            login: "root".into(),
            target: "db-1".into(),
            width: 80,
            height: 24,
            started: chrono::Utc::now(),
            record_input: true,
            term: Some("xterm-256color".into()),
        },
    )
    .unwrap();
    let ms = Duration::from_millis;
    w.output(ms(50), b"root@db-1:~# ");
    w.input(ms(900), b"echo r\xc3\xa9sum\xc3");
    w.input(ms(950), b"\xa9-ok\r");
    w.output(ms(1000), b"echo r\xc3\xa9sum\xc3");
    w.output(ms(1010), b"\xa9-ok\r\nr\xc3\xa9sum\xc3\xa9-ok\r\n");
    w.resize(ms(1500), 120, 40);
    w.output(ms(1600), b"root@db-1:~# exit\r\n");
    let fin = finish_recording(&w.close().unwrap()).unwrap();
    let bytes = std::fs::read(&fin.path).unwrap();
    (fin.path, bytes, fin.sha256)
}

/// The admin CLI's bearer token (from its `session.json`).
fn admin_token(admin: &Enrolled) -> String {
    let text = std::fs::read_to_string(admin.cli.home().join("session.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

fn sessions(admin: &Enrolled, args: &[&str]) -> CmdOutput {
    let mut a = vec!["sessions"];
    a.extend_from_slice(args);
    admin.cli.run(&a, None)
}

#[test]
fn bastion_events_and_recordings_over_https_and_the_cli_reads_them_back() {
    let (ca, admin) = start_ca();
    let dir = tempdir("sessions-api");
    let d = dir.path();
    let joined = join(&ca, &admin, d);
    let cred = joined.credential.expose();
    let user = ca.info().admin_user.clone();
    let s1 = ulid();

    // --- events: who may post, and what --------------------------------------
    let batch =
        |events: Vec<BastionEvent>| serde_json::to_vec(&BastionEventBatch { events }).unwrap();
    let (status, body) = post_events(
        &ca,
        "rpb_not-a-credential",
        batch(vec![started(&s1, &user)]),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("bastion_credential_invalid"))
    );
    let admin_token = admin_token(&admin);
    let (status, body) = post_events(&ca, &admin_token, batch(vec![started(&s1, &user)]));
    assert_eq!(
        status, 401,
        "a user session is not a bastion credential: {body}"
    );
    let mut unknown = serde_json::to_value(BastionEventBatch {
        events: vec![started(&s1, &user)],
    })
    .unwrap();
    unknown["events"][0]["extra"] = json!(1);
    let (status, body) = post_events(&ca, cred, serde_json::to_vec(&unknown).unwrap());
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = post_events(&ca, cred, b"{\"events\": [".to_vec());
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let mut huge = started(&s1, &user);
    huge.reason = Some("x".repeat(MAX_BODY_BYTES));
    let (status, body) = post_events(&ca, cred, batch(vec![huge]));
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let mut long = started(&s1, &user);
    long.reason = Some("x".repeat(5000));
    let (status, body) = post_events(&ca, cred, batch(vec![long]));
    assert_eq!(status, 200, "{body}");
    let ack: BastionEventAck = serde_json::from_value(body).unwrap();
    assert_eq!(ack.rejected.len(), 1, "the CA says which event it refused");
    assert_eq!(ack.rejected[0].index, 0);
    assert!(
        AuditDb::new(ca.audit_db())
            .events_of_kind("bastion_session_started")
            .is_empty(),
        "a refused event is not written as sent"
    );
    let stand_ins = AuditDb::new(ca.audit_db()).events_of_kind("audit_event_rejected");
    assert_eq!(stand_ins.len(), 1, "it is replaced in the chain");
    let ev: Value = serde_json::from_str(stand_ins[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(ev["code"], "RA-BAS-015");
    assert_eq!(ev["session"], s1.as_str());
    assert_eq!(ev["details"]["rejected_kind"], "session_started");

    let (status, body) = post_events(&ca, cred, batch(vec![started(&s1, &user)]));
    assert_eq!(status, 200, "{body}");
    let ack: BastionEventAck = serde_json::from_value(body).unwrap();
    assert_eq!(ack.ids.len(), 1);
    let rows = AuditDb::new(ca.audit_db()).events_of_kind("bastion_session_started");
    assert_eq!(rows.len(), 1);
    let ev: Value = serde_json::from_str(rows[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(ev["code"], "RA-BAS-006");
    assert_eq!(ev["actor"], format!("bastion:{BASTION}"));
    assert_eq!(ev["session"], s1.as_str());
    assert_eq!(ev["id"], ack.ids[0].as_str());

    // --- the recording ----------------------------------------------------------
    let (_, bytes, sha) = record(d, &s1, &user);
    let mut damaged = bytes.clone();
    let n = damaged.len();
    damaged[n - 1] ^= 1;
    let (status, body) = put_recording(&ca, cred, &s1, &sha, damaged);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("recording_digest_mismatch"))
    );
    let (status, body) = put_recording(&ca, &admin_token, &s1, &sha, bytes.clone());
    assert_eq!(status, 401, "{body}");
    let (status, body) = put_recording(&ca, cred, "not-a-ulid", &sha, bytes.clone());
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_session_id"))
    );
    let (status, body) = put_recording(&ca, cred, &ulid(), &sha, bytes.clone());
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("session_unknown"))
    );
    let (status, body) = put_recording(&ca, cred, &s1, &sha, bytes.clone());
    assert_eq!(status, 200, "{body}");
    let sealed: RecordingSealed = serde_json::from_value(body).unwrap();
    assert_eq!(sealed.sha256, sha);
    let (status, again) = put_recording(&ca, cred, &s1, &sha, bytes.clone());
    assert_eq!(status, 200, "a retried upload is answered the same");
    assert_eq!(again["event_id"], sealed.event_id.as_str());

    // --- the CLI: list, play, verify ----------------------------------------------
    let list = sessions(&admin, &["list"]);
    list.assert_success("rampart sessions list");
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&s1))
        .unwrap_or_else(|| panic!("the session is listed\n{list}"));
    assert!(line.contains("root@db-1"), "{line}");
    assert!(line.contains(&format!("sha256:{}", &sha[..16])), "{line}");
    let json_list = sessions(&admin, &["list", "--json", "--target", "db-1"]);
    json_list.assert_success("rampart sessions list --json");
    let v: Value = serde_json::from_str(&json_list.stdout).unwrap();
    assert_eq!(v["sessions"][0]["recording_sha256"], sha.as_str());
    let none = sessions(&admin, &["list", "--user", "nobody"]);
    assert_eq!(none.stdout, "no sessions\n");

    let play = sessions(&admin, &["play", &s1, "--speed", "0"]);
    play.assert_success("rampart sessions play");
    assert_eq!(
        play.stdout, "root@db-1:~# echo résumé-ok\r\nrésumé-ok\r\nroot@db-1:~# exit\r\n",
        "output only, UTF-8 split across chunks intact"
    );
    let viewed = || {
        AuditDb::new(ca.audit_db())
            .events_of_kind("recording_viewed")
            .len()
    };
    assert_eq!(viewed(), 1, "who watched the recording is audited");

    let recordings = ca.audit_db().parent().unwrap().join("recordings");
    let verify = |ca: &Ca| {
        admin.cli.run(
            &[
                "audit",
                "verify",
                "--db",
                ca.audit_db().to_str().unwrap(),
                "--audit-pubkey",
                ca.audit_pubkey().to_str().unwrap(),
                "--recordings",
                recordings.to_str().unwrap(),
            ],
            None,
        )
    };
    let ok = verify(&ca);
    ok.assert_success("audit verify --recordings");
    assert!(ok.stdout.contains("OK: 1 sealed recordings match"), "{ok}");

    // --- one byte edited on the CA's disk -------------------------------------------
    let stored = recordings.join(format!("{s1}.cast.zst"));
    let mut edited = std::fs::read(&stored).unwrap();
    let mid = edited.len() / 2;
    edited[mid] ^= 0x01;
    std::fs::write(&stored, &edited).unwrap();
    let bad = verify(&ca);
    assert_eq!(bad.status.code(), Some(6), "{bad}");
    assert!(
        bad.stdout
            .contains(&format!("FAILED recording of session {s1}")),
        "{bad}"
    );
    let refused = sessions(&admin, &["play", &s1, "--speed", "0"]);
    assert_eq!(refused.status.code(), Some(5), "{refused}");
    assert!(refused.stderr.contains("recording_tampered"), "{refused}");
    assert!(refused.stdout.is_empty(), "nothing is played: {refused}");
    assert_eq!(viewed(), 1, "a refused download is not a view");
}

#[test]
fn asciinema_cat_renders_a_rampart_recording() {
    let asciinema = rampart_e2e::require_peer("asciinema");
    let dir = tempdir("asciinema-cat");
    let session = ulid();
    let (zst, _, _) = record(dir.path(), &session, "alice");
    let cast = dir.path().join("plain.cast");
    std::fs::write(
        &cast,
        rampart_audit::recording::decompress(&std::fs::read(zst).unwrap()).unwrap(),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(asciinema);
    cmd.arg("cat").arg(&cast);
    let out = rampart_e2e::process::run_timeout(cmd, None, Duration::from_secs(60));
    out.assert_success("asciinema cat");
    assert!(out.stdout.contains("echo résumé-ok"), "{out}");
    assert!(out.stdout.contains("root@db-1:~# exit"), "{out}");
}

/// Peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in\n{status}"));
    kb * 1024
}

/// `len` bytes that start like a zstd frame and do not compress, made as they
/// are read, so the test does not hold them either.
struct Filler {
    left: u64,
    sent: u64,
    state: u64,
}

impl Filler {
    fn new(len: u64) -> Filler {
        Filler {
            left: len,
            sent: 0,
            state: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl std::io::Read for Filler {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for b in &mut buf[..n] {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *b = self.state as u8;
        }
        // The zstd magic number, which the CA checks, in the first four bytes.
        for (i, m) in [0x28u8, 0xb5, 0x2f, 0xfd].into_iter().enumerate() {
            let at = i as u64;
            if at >= self.sent && at < self.sent + n as u64 {
                buf[(at - self.sent) as usize] = m;
            }
        }
        self.left -= n as u64;
        self.sent += n as u64;
        Ok(n)
    }
}

#[test]
fn a_large_recording_streams_through_the_ca_without_filling_its_memory() {
    use sha2::Digest;
    use std::io::Read;
    let (ca, admin) = start_ca();
    let dir = tempdir("sessions-large");
    let joined = join(&ca, &admin, dir.path());
    let cred = joined.credential.expose();
    let user = ca.info().admin_user.clone();
    let s = ulid();
    let batch = serde_json::to_vec(&BastionEventBatch {
        events: vec![started(&s, &user)],
    })
    .unwrap();
    assert_eq!(post_events(&ca, cred, batch).0, 200);

    const LEN: u64 = 192 * 1024 * 1024;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut Filler::new(LEN), &mut hasher).unwrap();
    let sha = format!("{:x}", hasher.finalize());
    let put = |len: u64, sha: &str| {
        send(
            http(&ca)
                .put(format!(
                    "{}{}",
                    ca.url(),
                    paths::for_session(paths::BASTION_RECORDING, &s)
                ))
                .bearer_auth(cred)
                .header(RECORDING_SHA256_HEADER, sha)
                .body(reqwest::blocking::Body::sized(Filler::new(len), len)),
        )
    };

    let before = peak_rss(ca.pid());
    // One byte over the limit: refused, and nothing of it is kept.
    let over = rampart_api::MAX_RECORDING_BYTES as u64 + 1;
    let (status, body) = put(over, &sha);
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("recording_too_large")),
        "{body}"
    );
    let (status, body) = put(LEN, &sha);
    assert_eq!(status, 200, "{body}");
    let sealed: RecordingSealed = serde_json::from_value(body).unwrap();
    assert_eq!((sealed.sha256.as_str(), sealed.bytes), (sha.as_str(), LEN));
    let recordings = ca.audit_db().parent().unwrap().join("recordings");
    let names: Vec<String> = std::fs::read_dir(&recordings)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![format!("{s}.cast.zst")],
        "no spool file is left"
    );

    // The admin downloads it: the same bytes, the sealed digest in the header.
    let resp = http(&ca)
        .get(format!(
            "{}{}",
            ca.url(),
            paths::for_session(paths::ADMIN_SESSION_RECORDING, &s)
        ))
        .bearer_auth(admin_token(&admin))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()[RECORDING_SHA256_HEADER].to_str().unwrap(),
        sha
    );
    let mut got = sha2::Sha256::new();
    let mut reader = resp;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.update(&buf[..n]);
        total += n as u64;
    }
    assert_eq!((format!("{:x}", got.finalize()), total), (sha.clone(), LEN));

    let grew = peak_rss(ca.pid()).saturating_sub(before);
    eprintln!(
        "CA peak memory grew by {} MiB over a {} MiB upload, a {} MiB refusal and a download",
        grew >> 20,
        LEN >> 20,
        over >> 20
    );
    assert!(
        grew < 64 * 1024 * 1024,
        "the CA's peak memory grew by {} MiB: it held the recording whole",
        grew >> 20
    );
}
