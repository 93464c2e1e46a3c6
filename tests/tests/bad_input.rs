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

/// Send `method path` with a JSON body of `size` bytes over a fresh TLS
/// connection, all of it, and only then read the answer; returns its head
/// (status line and headers).
fn write_body_then_read(ca: &Ca, method: &str, path: &str, size: usize) -> std::io::Result<String> {
    let body = format!(r#"{{"user":"{}"}}"#, "a".repeat(size));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    exchange(ca, &head, body.as_bytes())
}

/// Announce a `size`-byte body with `Expect: 100-continue`, send none, and
/// read the first answer's head: a client asking before it sends.
fn ask_before_sending(ca: &Ca, method: &str, path: &str, size: usize) -> std::io::Result<String> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {size}\r\nExpect: 100-continue\r\n\r\n"
    );
    exchange(ca, &head, b"")
}

/// Write `head` and `body` over a fresh TLS connection to the CA, then read
/// up to the end of the first answer's head.
fn exchange(ca: &Ca, head: &str, body: &[u8]) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let addr = ca.url().trim_start_matches("https://");
    let mut tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let tls = std::sync::Arc::new(rampart_api::client::pinned_tls_config(ca.pin()).unwrap());
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(tls, name).unwrap();
    let mut stream = rustls::Stream::new(&mut conn, &mut tcp);
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    Ok(text.split("\r\n\r\n").next().unwrap_or_default().to_owned())
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
    // Where the body is wanted, the client is asked for it.
    let head = ask_before_sending(&ca, "POST", paths::LOGIN, 100)
        .unwrap_or_else(|e| panic!("POST /v1/login with Expect: 100-continue: {e}"));
    assert!(head.starts_with("HTTP/1.1 100"), "{head}");
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
