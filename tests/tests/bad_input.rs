//! Hostile and sloppy requests to the CA's login and certificate endpoints: each
//! gets a 4xx with the API's JSON error body and a clear message, and the CA keeps
//! serving (health, a good certificate request, an intact audit chain).

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rampart_api::{paths, CertRequest, CertResponse};
use rampart_e2e::http::RawResponse;
use rampart_e2e::{api_admin, Ca, KeyPair};
use serde_json::json;

/// Assert a clean client error: 4xx, JSON `{code, message}`, short readable message.
fn assert_client_error(what: &str, r: &RawResponse, status: Option<u16>) -> String {
    assert!(
        (400..500).contains(&r.status),
        "{what}: expected a 4xx, got {} {}",
        r.status,
        r.body
    );
    if let Some(s) = status {
        assert_eq!(r.status, s, "{what}: status; body {}", r.body);
    }
    assert!(
        r.content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: error must be JSON, content-type {:?}, body {}",
        r.content_type,
        r.body
    );
    let e = r
        .error_body()
        .unwrap_or_else(|| panic!("{what}: body is not {{code, message}}: {}", r.body));
    assert!(!e.code.is_empty(), "{what}: empty code");
    assert!(
        !e.message.trim().is_empty() && e.message.len() < 400,
        "{what}: message must be one short sentence: {:?}",
        e.message
    );
    let lower = e.message.to_ascii_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("backtrace"),
        "{what}: internals leaked: {:?}",
        e.message
    );
    lower
}

/// A raw HTTP/1.1 exchange with the CA over TLS: what a client that does its
/// own writing and reading sees, byte for byte.
struct RawTls {
    conn: rustls::ClientConnection,
    tcp: std::net::TcpStream,
    /// Read past the last head returned.
    unread: Vec<u8>,
}

impl RawTls {
    fn connect(ca: &Ca) -> std::io::Result<RawTls> {
        let tcp = std::net::TcpStream::connect(ca.url().trim_start_matches("https://"))?;
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
        let tls = std::sync::Arc::new(rampart_api::client::pinned_tls_config(ca.pin()).unwrap());
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(tls, name).unwrap();
        Ok(RawTls {
            conn,
            tcp,
            unread: Vec::new(),
        })
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let mut stream = rustls::Stream::new(&mut self.conn, &mut self.tcp);
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// The next answer's head (status line and headers).
    fn read_head(&mut self) -> std::io::Result<String> {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = self.unread.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.unread.drain(..end + 4).collect();
                return Ok(String::from_utf8_lossy(&head[..end]).into_owned());
            }
            let n = rustls::Stream::new(&mut self.conn, &mut self.tcp).read(&mut buf)?;
            if n == 0 {
                return Ok(String::from_utf8_lossy(&std::mem::take(&mut self.unread)).into_owned());
            }
            self.unread.extend_from_slice(&buf[..n]);
        }
    }
}

/// A request head for a JSON body of `len` bytes, with extra header lines.
fn request_head(method: &str, path: &str, len: usize, extra: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\n{extra}\r\n"
    )
}

/// A JSON body of about `size` bytes.
fn json_body(size: usize) -> Vec<u8> {
    format!(r#"{{"user":"{}"}}"#, "a".repeat(size)).into_bytes()
}

/// Send `method path` with a JSON body of `size` bytes over a fresh TLS
/// connection, all of it, and only then read the answer; returns its head.
fn write_body_then_read(ca: &Ca, method: &str, path: &str, size: usize) -> std::io::Result<String> {
    let body = json_body(size);
    let mut raw = RawTls::connect(ca)?;
    raw.send(request_head(method, path, body.len(), "").as_bytes())?;
    raw.send(&body)?;
    raw.read_head()
}

/// Announce a `size`-byte body with `Expect: 100-continue`, send none, and
/// read the first answer's head: a client asking before it sends.
fn ask_before_sending(ca: &Ca, method: &str, path: &str, size: usize) -> std::io::Result<String> {
    let mut raw = RawTls::connect(ca)?;
    raw.send(request_head(method, path, size, "Expect: 100-continue\r\n").as_bytes())?;
    raw.read_head()
}

fn contains_any(s: &str, words: &[&str]) -> bool {
    words.iter().any(|w| s.contains(w))
}

#[test]
fn malformed_requests_get_clear_4xx_and_the_ca_survives() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let (_admin, session) = api_admin(&ca);
    let token = session.token().to_owned();
    let raw = ca.raw_http();

    // ---- /v1/login ----
    let r = raw.post(
        paths::LOGIN,
        br#"{"user": "admin", "factor": "#.to_vec(),
        None,
    );
    assert_client_error("login: truncated JSON", &r, Some(400));

    let r = raw.post(paths::LOGIN, b"".to_vec(), None);
    assert_client_error("login: empty body", &r, None);

    // Far over the limit, a client that writes its whole body before it reads
    // (as Python's requests does) still reads the 413: the CA drops the rest
    // of the body instead of closing the connection under it.
    for n in 0..5 {
        let head = write_body_then_read(&ca, "POST", paths::LOGIN, 2 * 1024 * 1024)
            .unwrap_or_else(|e| panic!("login: a 2 MiB body (try {n}) broke the connection: {e}"));
        assert!(
            head.starts_with("HTTP/1.1 413"),
            "login: 2 MiB body: {head}"
        );
    }
    // So do the answers that need no body: a wrong method, a wrong path.
    let head = write_body_then_read(&ca, "OPTIONS", paths::LOGIN, 1024 * 1024)
        .unwrap_or_else(|e| panic!("OPTIONS /v1/login with a body broke the connection: {e}"));
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nallow: post"),
        "{head}"
    );
    let head = write_body_then_read(&ca, "POST", "/v1/no-such-thing", 1024 * 1024)
        .unwrap_or_else(|e| panic!("POST to no endpoint with a body broke the connection: {e}"));
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    // And a recording upload refused before its body is read (no bastion
    // credential): the recording route reads its body itself.
    let recording = paths::for_session(paths::BASTION_RECORDING, "01J00000000000000000000000");
    for n in 0..5 {
        let head =
            write_body_then_read(&ca, "PUT", &recording, 2 * 1024 * 1024).unwrap_or_else(|e| {
                panic!("a refused recording upload (try {n}) broke the connection: {e}")
            });
        assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    }
    // Refused before the handler runs at all: a session ID that is not UTF-8
    // fails the path extractor, so no handler ever sees the body.
    let not_utf8 = paths::BASTION_RECORDING.replace("{session_id}", "%FF%FE");
    for n in 0..3 {
        let head =
            write_body_then_read(&ca, "PUT", &not_utf8, 2 * 1024 * 1024).unwrap_or_else(|e| {
                panic!("a recording upload to a non-UTF-8 path (try {n}) broke the connection: {e}")
            });
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
        // In the API's error shape, like every other refusal.
        assert!(
            head.to_ascii_lowercase()
                .contains("\r\ncontent-type: application/json"),
            "{head}"
        );
    }
    let r = raw.get(&paths::ADMIN_SESSION_RECORDING.replace("{session_id}", "%C3%28"));
    let msg = assert_client_error("a session ID that is not UTF-8", &r, Some(400));
    assert!(msg.contains("path"), "{msg}");
    // A client that asks before it sends (`Expect: 100-continue`) and is
    // refused gets the refusal, not a `100 Continue` inviting a body the CA
    // would only throw away.
    for (method, path) in [("PUT", recording.as_str()), ("GET", paths::ADMIN_USERS)] {
        let head = ask_before_sending(&ca, method, path, 2 * 1024 * 1024)
            .unwrap_or_else(|e| panic!("{method} {path} with Expect: 100-continue: {e}"));
        assert!(head.starts_with("HTTP/1.1 401"), "{method} {path}: {head}");
    }
    // Where the body is wanted, the client is asked for it; sent and found
    // too large, it is read all the same, so the 413 arrives.
    let body = json_body(2 * 1024 * 1024);
    for n in 0..3 {
        let mut asking = RawTls::connect(&ca).unwrap();
        let head = request_head("POST", paths::LOGIN, body.len(), "Expect: 100-continue\r\n");
        asking.send(head.as_bytes()).unwrap();
        let interim = asking.read_head().unwrap();
        assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
        let head = asking.send(&body).and_then(|()| asking.read_head());
        let head = head.unwrap_or_else(|e| {
            panic!("a 2 MiB body sent after 100 Continue (try {n}) broke the connection: {e}")
        });
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }
    // Routes that take no body at all, answering with and without a credential.
    for (path, status) in [(paths::ADMIN_USERS, "401"), (paths::HEALTH, "200")] {
        for n in 0..3 {
            let head =
                write_body_then_read(&ca, "GET", path, 2 * 1024 * 1024).unwrap_or_else(|e| {
                    panic!("GET {path} with a 2 MiB body (try {n}) broke the connection: {e}")
                });
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}")),
                "GET {path}: {head}"
            );
        }
    }

    // serde would read a struct from an array, field by field.
    let r = raw.post(
        paths::LOGIN,
        br#" ["admin", {"type": "totp", "code": "123456"}]"#.to_vec(),
        None,
    );
    let msg = assert_client_error("login: an array for the object", &r, Some(400));
    assert!(msg.contains("object"), "{msg}");

    let big = format!(
        r#"{{"user":"{}","factor":{{"type":"totp","code":"1"}}}}"#,
        "a".repeat(100 * 1024)
    );
    match raw.try_post(paths::LOGIN, big.into_bytes(), None) {
        Ok(r) => {
            assert_client_error("login: 100 KiB body", &r, Some(413));
        }
        Err(e) => panic!("login: oversized body should get a 413, not a dropped connection: {e}"),
    }

    let r = raw.post(
        paths::LOGIN,
        serde_json::to_vec(&json!({
            "user": "admin",
            "factor": {"type": "totp", "code": "123456"},
            "as_admin": true
        }))
        .unwrap(),
        None,
    );
    let m = assert_client_error("login: unknown field", &r, Some(400));
    assert!(
        contains_any(&m, &["as_admin", "unknown"]),
        "should name the field: {m}"
    );

    let r = raw.post(
        paths::LOGIN,
        serde_json::to_vec(&json!({"user": "admin", "factor": {"type": "sms", "code": "1"}}))
            .unwrap(),
        None,
    );
    assert_client_error("login: unknown factor type", &r, None);

    let r = raw.post(
        paths::LOGIN,
        serde_json::to_vec(&json!({"user": 5, "factor": {"type": "totp", "code": "1"}})).unwrap(),
        None,
    );
    assert_client_error("login: user is a number", &r, None);

    // ---- /v1/certs ----
    let d = tempfile::tempdir().unwrap();
    let good = KeyPair::ed25519(d.path(), "good");
    let cert_body = |key: &str| serde_json::to_vec(&json!({ "public_key": key })).unwrap();

    let r = raw.post(paths::CERTS, cert_body(&good.public_line()), None);
    assert_client_error("certs: no bearer token", &r, Some(401));

    let r = raw.post(
        paths::CERTS,
        br#"{"public_key": "ssh-ed25519 AAAA"#.to_vec(),
        Some(&token),
    );
    assert_client_error("certs: truncated JSON", &r, Some(400));

    let big = cert_body(&format!("ssh-ed25519 AAAA{}", "A".repeat(100 * 1024)));
    match raw.try_post(paths::CERTS, big, Some(&token)) {
        Ok(r) => {
            assert_client_error("certs: 100 KiB body", &r, Some(413));
        }
        Err(e) => panic!("certs: oversized body should get a 413, not a dropped connection: {e}"),
    }

    let r = raw.post(
        paths::CERTS,
        serde_json::to_vec(&json!({
            "public_key": good.public_line(),
            "principals": ["root"]
        }))
        .unwrap(),
        Some(&token),
    );
    let m = assert_client_error("certs: unknown field principals", &r, Some(400));
    assert!(
        contains_any(&m, &["principals", "unknown"]),
        "should name the field: {m}"
    );

    for (what, key) in [
        ("not base64", "ssh-ed25519 AAAA!!!notbase64!!!"),
        ("garbage", "hello world"),
        ("truncated blob", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
        ("empty", ""),
    ] {
        let r = raw.post(paths::CERTS, cert_body(key), Some(&token));
        let m = assert_client_error(&format!("certs: invalid public key ({what})"), &r, None);
        assert!(
            contains_any(&m, &["key"]),
            "message should say the key is bad: {m}"
        );
    }

    // Weak key types, made by the real ssh-keygen when it still can, else fixtures
    // that ssh-keygen made earlier.
    let dsa = KeyPair::try_generate(d.path(), "dsa", "dsa", None)
        .map(|k| k.public_line())
        .unwrap_or_else(|_| DSA_FIXTURE.to_owned());
    let r = raw.post(paths::CERTS, cert_body(&dsa), Some(&token));
    let m = assert_client_error("certs: DSA key", &r, None);
    assert!(
        contains_any(
            &m,
            &[
                "dsa",
                "dss",
                "type",
                "algorithm",
                "unsupported",
                "not allowed"
            ]
        ),
        "message should say DSA is not accepted: {m}"
    );

    let rsa1024 = KeyPair::try_generate(d.path(), "rsa1024", "rsa", Some(1024))
        .map(|k| k.public_line())
        .unwrap_or_else(|_| RSA1024_FIXTURE.to_owned());
    let r = raw.post(paths::CERTS, cert_body(&rsa1024), Some(&token));
    let m = assert_client_error("certs: RSA-1024 key", &r, None);
    assert!(
        contains_any(&m, &["1024", "bits", "rsa", "small", "weak", "short"]),
        "message should say the RSA key is too small: {m}"
    );

    let ed_cert = session
        .client
        .post_json::<_, CertResponse>(
            paths::CERTS,
            &CertRequest {
                public_key: good.public_line(),
                ttl_seconds: Some(600),
            },
        )
        .expect("a good request still works after all that");
    assert!(ed_cert
        .certificate
        .starts_with("ssh-ed25519-cert-v01@openssh.com "));

    // Still healthy, still the same process, and the audit chain is intact.
    let h = ca.api().health().expect("health after bad input");
    assert_eq!(h.status, "ok");
    assert!(ca.is_running(), "the CA process must not have died");
    ca.stop();
    ca.verify_audit()
        .assert_success("audit chain after bad input");
}

/// `ssh-keygen -t dsa` output (OpenSSH 9.2), for when DSA keys can no longer be made.
const DSA_FIXTURE: &str = "ssh-dss AAAAB3NzaC1kc3MAAACBAMtv/dpHHgvbHSBM27qu3L7TglngiGkzwaRfuct3NkRUK3oObunPoSo1luTmfvjozTuB5ICp2SsymCvdhA5dV6Z9rtM6JuE2pdqJSrmzNWFRueLFQtM1utB5YfnynEqIbXw0ZQ2UcBkHLMgFSmLGVgCVqwJtqoVYeaZe4X8d506tAAAAFQCmajK6xzjzRcomPt46nfeoSK/OYQAAAIEApuvcHxhawccmmVUzhBHzIYxMBLkyQFnIdxfcCvEIqoBU/efOevbOcMp6rH/XX5Yl1InIMu2qs/LR+hJOom+3Z2kb2wKK3aWkYdWxEXDoBzDCzK3cd8XsYJveNOCiqySMtU32Zv5T0mmSn+8KiUbsdwPqe2LsGPaxqJKJwuEOvE0AAACAAJmtczYxHz5BKdQ9gKjHjxSHeMwfJRcnV0qDekYLadEZCr8mBU2Trx6qxxUb6NR79XvG9TceT0dKupQLIr13jB2TuVken6XeVAUF65NBwRZFzTJ7GrUOs8HMDSnFgfrNVV280NIEPHfieObtd7ifQv+a7uGpUD45uEAO5csJtTs= fixture";

/// `ssh-keygen -t rsa -b 1024` output (OpenSSH 9.2), for when 1024-bit RSA keys can no
/// longer be made.
const RSA1024_FIXTURE: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC4jYGopzfPRPuI0hcVEzVrd9xIG0Oa7KaTY31BQJGKRt6ikq2o3CCBuGBBy9ocqrhhScSYpNEBnBbAf5JqKg3Wuax4/AePsgceRX9JV1s4sClTf1BI5ItFQB8IcPg3nkMbxolkQY0ns4UZSMVH0A1ysDFgfCFQAITKYoOK2DYt1w== fixture";
