//! The bodies of Rampart's fuzz targets: one function per parser of outside
//! input, taking the raw fuzz input.
//!
//! **Owns:** how a fuzz input reaches each parser (the input layout of each
//! target), the fixed keys and expectations the parsers are checked against
//! (`data/`), and the properties checked on what a parser accepts. The
//! cargo-fuzz binaries in `fuzz/fuzz_targets/` are one-line wrappers around
//! these functions, and the stable test `tests/replay.rs` feeds them every
//! committed corpus and regression file, so a crash once found stays fixed on
//! any toolchain.
//!
//! A body must not panic on any input: a panic is a bug in the parser (or a
//! property of its output that does not hold), which is what the fuzzer looks
//! for. Bodies do no I/O beyond a local socket pair and never read the clock:
//! every `now` is fixed, so a crash replays.
//!
//! The fixed data: `oidc_jwks.json` is the public half of the CA's OIDC unit-test
//! key (`ca/src/oidc/testdata/rsa_a.pem`, kid `k1`); `piv_root.der` and
//! `piv_key.pub` are a YubiKey-shaped attestation root and slot key made with the
//! CA's PIV unit-test helpers; `webauthn_credential.json` is a software-token key
//! registered against [`rampart_ca::fuzzing`]'s fixed relying party.

// Assertions on parser output are the point of a fuzz body.
#![allow(clippy::panic, clippy::expect_used)]

use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use openidconnect::core::CoreJsonWebKeySet;
use ssh_key::certificate::{Builder, CertType};
use ssh_key::private::{Ed25519Keypair, PrivateKey};
use ssh_key::{Certificate, PublicKey, Signature};

/// A fuzz target: its name (the `fuzz_targets/<name>.rs` binary and the
/// `corpus/<name>`, `regressions/<name>` directories) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target (`scripts/fuzz` runs them in the order of their file names).
pub const TARGETS: &[Target] = &[
    ("sftp", sftp),
    ("krl_header", krl_header),
    ("pam_krl", pam_krl),
    ("pam_agent", pam_agent),
    ("policy_toml", policy_toml),
    ("host_policy", host_policy),
    ("api_json", api_json),
    ("webauthn_register", webauthn_register),
    ("webauthn_login", webauthn_login),
    ("oidc_id_token", oidc_id_token),
    ("piv_attestation", piv_attestation),
];

/// The bastion's SFTP audit parser, fed both directions of a channel in pieces.
///
/// Layout: a sequence of `byte ctl, ctl >> 1 bytes of data`; bit 0 of `ctl`
/// says the direction (0: client to server, 1: server to client). Pieces are
/// short, so packets also arrive split across reads, as they do on a channel.
pub fn sftp(data: &[u8]) {
    let mut ops = rampart_bastion::sftp::FileOps::new();
    let mut rest = data;
    while let Some((&ctl, tail)) = rest.split_first() {
        let (piece, after) = tail.split_at(usize::from(ctl >> 1).min(tail.len()));
        if ctl & 1 == 0 {
            let _ = ops.client_data(piece);
        } else {
            for op in ops.server_data(piece) {
                // Paths are capped; byte counts come only from tracked handles.
                assert!(op.path.chars().count() <= 4096, "SFTP path not capped");
                assert!(
                    op.to.as_ref().is_none_or(|t| t.chars().count() <= 4096),
                    "SFTP rename target not capped"
                );
            }
        }
        rest = after;
    }
}

/// The KRL header check `rampart host krl-sync` runs on the CA's KRL.
pub fn krl_header(data: &[u8]) {
    let _ = rampart_signer::read_krl_header(data);
}

/// A certificate the KRL bodies ask about: serial 42, key ID `fuzz`, under a
/// fixed Ed25519 CA.
fn krl_probe_cert() -> Option<&'static Certificate> {
    static CERT: OnceLock<Option<Certificate>> = OnceLock::new();
    CERT.get_or_init(|| {
        let ca = PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]));
        let subject = PrivateKey::from(Ed25519Keypair::from_seed(&[9; 32]));
        let mut b = Builder::new(
            [0u8; 16],
            subject.public_key().key_data().clone(),
            0,
            1 << 40,
        )
        .ok()?;
        b.serial(42).ok()?;
        b.key_id("fuzz").ok()?;
        b.cert_type(CertType::User).ok()?;
        b.valid_principal("alice").ok()?;
        b.sign(&ca).ok()
    })
    .as_ref()
}

/// The PAM module's KRL reader and revocation check. What it accepts, the
/// CLI's header check (a looser reader of the same format) must accept with
/// the same version and date.
pub fn pam_krl(data: &[u8]) {
    let Ok(krl) = pam_rampart::Krl::parse(data) else {
        return;
    };
    let header = rampart_signer::read_krl_header(data)
        .expect("a KRL the PAM module reads is refused by krl-sync's reader");
    assert_eq!(header.version, krl.version, "the two KRL readers disagree");
    assert_eq!(header.generated_at, krl.generated_date);
    if let Some(cert) = krl_probe_cert() {
        let _ = krl.revocation(cert);
    }
}

/// The PAM module's agent client, with the input as everything the agent
/// answers: the identities answer, then the answer to a sign request for the
/// first identity. Each identity is read as a certificate, and the signature as
/// an SSH signature, as the module does.
pub fn pam_agent(data: &[u8]) {
    // The whole answer is written before the client reads; stay far below the
    // socket buffer so that the write cannot block.
    if data.len() > 64 * 1024 {
        return;
    }
    let Ok((ours, mut theirs)) = UnixStream::pair() else {
        return;
    };
    if theirs.write_all(data).is_err() || theirs.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let mut agent = pam_rampart::agent::Agent::from_stream(ours, 2000);
    let Ok(ids) = agent.identities() else {
        return;
    };
    assert!(ids.len() <= pam_rampart::agent::MAX_IDENTITIES as usize);
    for id in &ids {
        let _ = Certificate::from_bytes(&id.blob);
    }
    if let Some(first) = ids.first() {
        if let Ok(sig) = agent.sign(&first.blob, b"fuzz", 0) {
            let mut r = sig.as_slice();
            let _ = <Signature as ssh_key::encoding::Decode>::decode(&mut r);
        }
    }
}

/// The CA's policy TOML: parse, lint, and the role lookup every request makes.
pub fn policy_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = rampart_policy::Policy::from_toml(text) else {
        return;
    };
    let _ = policy.lint();
    let _ = policy.roles_for("alice", &["engineers".to_owned(), "sre".to_owned()]);
    let _ = policy.oidc_requirements("alice", &["engineers".to_owned()]);
}

/// The host policy TOML (`rampart host principals`), then matching principals
/// against it. A principal with whitespace or control characters never comes
/// out: sshd reads the output line by line.
pub fn host_policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = rampart_policy::host::HostPolicy::parse(text) else {
        return;
    };
    let principals: Vec<String> = ["root", "alice", "sre-oncall", "a b", "x\ny", "", "ci-1"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(text.lines().take(4).map(str::to_owned))
        .collect();
    for account in ["root", "alice", "deploy", "nobody", "*"] {
        for p in policy.allowed(account, &principals) {
            assert!(
                !p.is_empty() && !p.chars().any(|c| c.is_whitespace() || c.is_control()),
                "host policy let through the principal {p:?}"
            );
        }
        let _ = policy.bastion_only(account);
    }
}

/// Read `data` as `T`; what is read must be written and read back the same way
/// (the CLI writes these types, the CA reads them). Compared as written JSON:
/// request types carrying secrets have no `PartialEq` on purpose.
fn json_round_trip<T>(data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let Ok(v) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let text = serde_json::to_vec(&v).expect("an API request that was read cannot be written");
    let again: T = serde_json::from_slice(&text).expect("an API request does not read back");
    let text_again = serde_json::to_vec(&again).expect("a read-back request cannot be written");
    assert_eq!(
        String::from_utf8_lossy(&text),
        String::from_utf8_lossy(&text_again),
        "an API request changes through a round trip"
    );
}

/// The CA's JSON request bodies: the first byte picks the type, the rest is the
/// body, read as the CA's `ApiJson` extractor reads it.
pub fn api_json(data: &[u8]) {
    use rampart_api as api;
    use rampart_api::oidc as o;
    use rampart_api::webauthn as w;
    let readers: &[fn(&[u8])] = &[
        json_round_trip::<api::EnrollStartRequest>,
        json_round_trip::<api::EnrollFinishRequest>,
        json_round_trip::<api::LoginRequest>,
        json_round_trip::<api::CertRequest>,
        json_round_trip::<api::AttestedCertRequest>,
        json_round_trip::<api::CreateUserRequest>,
        json_round_trip::<api::SetUserStateRequest>,
        json_round_trip::<api::SetGroupsRequest>,
        json_round_trip::<api::IdpLinkRequest>,
        json_round_trip::<api::InviteRequest>,
        json_round_trip::<api::RevokeRequest>,
        json_round_trip::<api::HostCertRequest>,
        json_round_trip::<api::BastionTokenRequest>,
        json_round_trip::<api::BastionRevokeRequest>,
        json_round_trip::<api::BastionJoinRequest>,
        json_round_trip::<api::BastionHostCertRequest>,
        json_round_trip::<api::SessionCertRequest>,
        json_round_trip::<api::BastionEventBatch>,
        json_round_trip::<o::OidcStartRequest>,
        json_round_trip::<o::OidcFinishRequest>,
        json_round_trip::<o::OidcPendingRequest>,
        json_round_trip::<o::OidcDeviceStartRequest>,
        json_round_trip::<o::OidcDevicePollRequest>,
        json_round_trip::<w::RegisterStartRequest>,
        json_round_trip::<w::LoginStartRequest>,
        json_round_trip::<w::BastionApprovalStartRequest>,
        json_round_trip::<w::WaitRequest>,
        json_round_trip::<w::FinishRequest>,
        json_round_trip::<w::KeyRemoveRequest>,
    ];
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    if let Some(read) = readers.get(usize::from(which) % readers.len()) {
        read(body);
    }
}

/// A WebAuthn registration answer, through the CA's fixed relying party.
pub fn webauthn_register(data: &[u8]) {
    let _ = rampart_ca::fuzzing::webauthn_register(data);
}

/// A WebAuthn assertion for the committed key, through the CA's fixed relying
/// party.
pub fn webauthn_login(data: &[u8]) {
    type Fixed = Option<(
        webauthn_rs_core::proto::Credential,
        webauthn_rs_core::proto::AuthenticationState,
    )>;
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    let fixed = FIXED.get_or_init(|| {
        let cred = serde_json::from_str(include_str!("../data/webauthn_credential.json")).ok()?;
        let (_, state) = rampart_ca::fuzzing::webauthn_login_state(&cred)?;
        Some((cred, state))
    });
    let (cred, state) = fixed
        .as_ref()
        .expect("the committed WebAuthn key does not load");
    let _ = rampart_ca::fuzzing::webauthn_login(data, cred, state);
}

/// The instant the time-bound bodies run at.
fn fixed_now(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// An ID token (the input, as text) against the committed JWKS, with the
/// expectations of the CA's OIDC unit tests, at 2026-03-01T12:00:00Z.
pub fn oidc_id_token(data: &[u8]) {
    if let Some(Ok(claims)) = oidc_id_token_verdict(data) {
        assert!(!claims.username.is_empty());
        assert!(
            claims.groups.is_sorted() && !claims.groups.windows(2).any(|w| w.first() == w.last()),
            "groups unsorted"
        );
    }
}

/// The CA's verdict on the ID token in `data` ([`oidc_id_token`]); `None` if
/// the input is not text.
pub fn oidc_id_token_verdict(
    data: &[u8],
) -> Option<Result<rampart_ca::oidc::IdpClaims, rampart_ca::oidc::OidcFailure>> {
    static JWKS: OnceLock<Option<CoreJsonWebKeySet>> = OnceLock::new();
    let jwks = JWKS
        .get_or_init(|| serde_json::from_str(include_str!("../data/oidc_jwks.json")).ok())
        .as_ref()
        .expect("the committed JWKS does not load");
    let raw = std::str::from_utf8(data).ok()?;
    let expect = rampart_ca::oidc::Expectations {
        issuer: "https://idp.example.test",
        client_id: "rampart-ca",
        nonce: Some("n-0S6_WzA2Mj"),
        skew: Duration::from_secs(60),
        username_claim: "preferred_username",
        groups_claim: "groups",
    };
    Some(rampart_ca::oidc::validate_id_token(
        raw,
        &expect,
        jwks,
        fixed_now(2026, 3, 1),
    ))
}

/// A PIV slot attestation (slot certificate and intermediates) against the
/// committed root and slot key, at 2026-06-01T12:00:00Z.
///
/// Layout: byte 0 even: the rest is text, the slot certificate PEM and the
/// intermediates PEM separated by the first NUL byte. Byte 0 odd: the rest is
/// DER, `u16 length, slot certificate`, then any number of `u16 length,
/// intermediate`, each wrapped in PEM here, so that mutations hit the DER.
pub fn piv_attestation(data: &[u8]) {
    let _ = piv_attestation_verdict(data);
}

/// The CA's verdict on the attestation in `data` ([`piv_attestation`]); `None`
/// for an empty input or text that is not UTF-8.
pub fn piv_attestation_verdict(
    data: &[u8],
) -> Option<Result<rampart_ca::piv::Attested, rampart_ca::piv::PivError>> {
    static FIXED: OnceLock<Option<(rampart_ca::piv::PivVerifier, PublicKey)>> = OnceLock::new();
    let (verifier, key) = FIXED
        .get_or_init(|| {
            let v = rampart_ca::piv::PivVerifier::new(
                vec![include_bytes!("../data/piv_root.der").to_vec()],
                rampart_ca::piv::DEFAULT_TOUCH.to_vec(),
                rampart_ca::piv::DEFAULT_PIN.to_vec(),
            )
            .ok()?;
            let k = PublicKey::from_openssh(include_str!("../data/piv_key.pub")).ok()?;
            Some((v, k))
        })
        .as_ref()
        .expect("the committed PIV root or key does not load");
    let (&mode, rest) = data.split_first()?;
    let (slot, inter) = if mode & 1 == 0 {
        let text = std::str::from_utf8(rest).ok()?;
        let (a, b) = text.split_once('\0').unwrap_or((text, ""));
        (a.to_owned(), b.to_owned())
    } else {
        let mut ders = Vec::new();
        let mut r = rest;
        while let Some((len, tail)) = r.split_first_chunk::<2>() {
            let (der, after) = tail.split_at(usize::from(u16::from_be_bytes(*len)).min(tail.len()));
            ders.push(pem(der));
            r = after;
        }
        let mut it = ders.into_iter();
        let slot = it.next().unwrap_or_default();
        (slot, it.collect::<String>())
    };
    Some(verifier.verify(&slot, &inter, key, fixed_now(2026, 6, 1)))
}

/// DER as a PEM `CERTIFICATE` block.
fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
