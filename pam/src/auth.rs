//! One PAM decision, end to end, in safe code: load the CA keys and the KRL, find
//! the user's agent, pick a certificate from a trusted CA, run the checks in
//! [`crate::check`], then prove possession by having the agent sign a fresh
//! nonce. The FFI layer ([`crate::ffi`]) only gathers the request and logs.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use signature::Verifier as _;
use ssh_key::encoding::Decode;
use ssh_key::public::KeyData;
use ssh_key::{Certificate, PublicKey, Signature};

use crate::agent::{put_string, Agent, SSH_AGENT_RSA_SHA2_512};
use crate::args::{format_secs, Args};
use crate::check::{check_certificate, signed_by_trusted_ca, Accepted, Origin, Policy};
use crate::error::{AgentError, CertProblem, Refusal};
use crate::krl::{Krl, MAX_KRL_SIZE};

/// Largest CA keys file read (1 MiB).
pub const MAX_CA_KEYS_SIZE: usize = 1024 * 1024;
/// How far in the future a KRL's `generated_date` may lie (clock skew).
pub const KRL_FUTURE_SKEW: u64 = 5 * 60;
/// Domain separation for the proof-of-possession signature: the signed data
/// starts with this SSH string, so it can never be mistaken for an SSH
/// user-authentication blob (which starts with a 32–64 byte session id) or an
/// SSHSIG (which starts with the raw bytes `SSHSIG`).
pub const PROOF_DOMAIN: &str = "pam-proof-v1@rampart";
/// Security-key signature flag "user verified" (PROTOCOL.u2f, `SSH_SK_USER_VERIFICATION_REQD`).
const SK_FLAG_UV: u8 = 0x04;

/// What the PAM stack told the module.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `PAM_SERVICE` (e.g. `sudo`).
    pub service: String,
    /// The PAM user, if known.
    pub user: Option<String>,
    /// `PAM_RHOST`, if set.
    pub rhost: Option<String>,
    /// `SSH_AUTH_SOCK` from the PAM environment, else from the process environment.
    pub agent_socket: Option<PathBuf>,
}

/// The operating-system facts the decision needs that only FFI can supply.
pub trait Host {
    /// The uid of a local account.
    fn user_uid(&self, user: &str) -> Option<u32>;
    /// The uid of the process serving the other end of a Unix socket (SO_PEERCRED).
    fn peer_uid(&self, stream: &UnixStream) -> Option<u32>;
}

/// A granted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success {
    /// The certificate that was accepted.
    pub accepted: Accepted,
}

/// The whole decision: `Ok` grants, `Err` names the single reason for refusal.
pub fn decide(args: &Args, req: &Request, host: &dyn Host, now: u64) -> Result<Success, Refusal> {
    let user = req
        .user
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or(Refusal::NoUser)?;
    let user_uid = host
        .user_uid(user)
        .ok_or_else(|| Refusal::UnknownUser(user.to_owned()))?;
    let ca_keys = load_ca_keys(&args.ca_keys)?;
    let krl = load_krl(args, now)?;
    let socket = req.agent_socket.as_deref().ok_or(Refusal::NoAgent)?;
    let mut agent = Agent::connect(socket, args.agent_timeout_ms)?;
    let peer_uid = host.peer_uid(agent.stream()).ok_or_else(|| {
        Refusal::Agent(AgentError::Io(
            "cannot read the agent socket's peer credentials".into(),
        ))
    })?;
    check_agent_owner(socket, user_uid, peer_uid)?;
    let identities = agent.identities()?;
    let mut foreign = 0usize;
    let mut first_problem: Option<Refusal> = None;
    let policy = Policy {
        user,
        origin: Origin::from_rhost(req.rhost.as_deref()),
        now,
        max_mfa_age: args.max_mfa_age,
        min_factor: args.min_factor,
        krl: (&krl, &args.krl),
    };
    for id in &identities {
        let Ok(cert) = Certificate::from_bytes(&id.blob) else {
            continue; // a plain key, or something we cannot read: not a candidate
        };
        if !signed_by_trusted_ca(&cert, &ca_keys) {
            foreign += 1;
            continue;
        }
        let refuse = |reason: CertProblem| Refusal::Certificate {
            serial: cert.serial(),
            key_id: cert.key_id().to_owned(),
            reason: Box::new(reason),
        };
        let accepted = match check_certificate(&cert, &policy) {
            Ok(a) => a,
            Err(problem) => {
                first_problem.get_or_insert(refuse(problem));
                continue;
            }
        };
        // The certificate is good; the agent must now prove it holds its key.
        return match prove_possession(&mut agent, &id.blob, &cert, &accepted, user, &req.service) {
            Ok(()) => Ok(Success { accepted }),
            Err(problem) => Err(refuse(problem)),
        };
    }
    Err(first_problem.unwrap_or(Refusal::NoCertificate {
        identities: identities.len(),
        foreign,
    }))
}

/// Whether the agent at `path`, served by a process running as `peer_uid`
/// (SO_PEERCRED), may answer for the PAM user `user_uid`.
///
/// The socket path comes from the user's environment and the module runs as
/// root, which can connect to anyone's socket: only an agent served by the user
/// themselves is theirs. A user's forwarded agent is served by their own sshd
/// session process, which runs as them; root's agents (root's own `ssh-agent`,
/// another admin's forwarded agent in a root session) hold someone else's keys,
/// so they count as foreign unless the PAM user is root.
pub fn check_agent_owner(path: &Path, user_uid: u32, peer_uid: u32) -> Result<(), Refusal> {
    if peer_uid == user_uid {
        return Ok(());
    }
    if peer_uid == 0 {
        return Err(Refusal::RootAgent {
            path: path.to_path_buf(),
            user_uid,
        });
    }
    Err(Refusal::ForeignAgent {
        path: path.to_path_buf(),
        peer_uid,
        user_uid,
    })
}

/// Ask the agent to sign `PROOF_DOMAIN ‖ nonce ‖ user ‖ service` (each an SSH
/// string, the nonce 32 fresh random bytes) with the certificate's key, and
/// verify the signature against the certificate's public key.
fn prove_possession(
    agent: &mut Agent,
    blob: &[u8],
    cert: &Certificate,
    accepted: &Accepted,
    user: &str,
    service: &str,
) -> Result<(), CertProblem> {
    let fail = |why: String| CertProblem::Possession(why);
    let mut nonce = [0u8; 32];
    ssh_key::getrandom::fill(&mut nonce).map_err(|e| fail(format!("no randomness: {e}")))?;
    let mut data = Vec::new();
    for part in [
        PROOF_DOMAIN.as_bytes(),
        &nonce,
        user.as_bytes(),
        service.as_bytes(),
    ] {
        put_string(&mut data, part).map_err(|e| fail(e.to_string()))?;
    }
    let flags = if cert.public_key().is_rsa() {
        SSH_AGENT_RSA_SHA2_512
    } else {
        0
    };
    let sig_blob = agent
        .sign(blob, &data, flags)
        .map_err(|e| fail(e.to_string()))?;
    let mut r = sig_blob.as_slice();
    let sig = Signature::decode(&mut r).map_err(|_| fail("unreadable signature".into()))?;
    if !r.is_empty() {
        return Err(fail("trailing bytes after the signature".into()));
    }
    cert.public_key()
        .verify(&data, &sig)
        .map_err(|_| fail("the signature does not verify with the certificate's key".into()))?;
    if accepted.verify_required && is_security_key(cert.public_key()) {
        // Security-key signatures end with `byte flags, uint32 counter`.
        let bytes = sig.as_bytes();
        let flags = bytes
            .len()
            .checked_sub(5)
            .and_then(|i| bytes.get(i))
            .copied()
            .unwrap_or(0);
        if flags & SK_FLAG_UV == 0 {
            return Err(CertProblem::VerifyRequired);
        }
    }
    Ok(())
}

fn is_security_key(key: &KeyData) -> bool {
    key.is_sk_ed25519() || key.is_sk_ecdsa_p256()
}

/// Read the CA keys file: OpenSSH public key lines; blank lines and `#`
/// comments are skipped; any other unreadable line refuses (fail closed).
pub fn load_ca_keys(path: &Path) -> Result<Vec<KeyData>, Refusal> {
    let file_err = |reason: String| Refusal::File {
        what: "CA keys file",
        path: path.to_path_buf(),
        reason,
    };
    let bytes = read_capped(path, MAX_CA_KEYS_SIZE).map_err(file_err)?;
    let text = String::from_utf8(bytes).map_err(|_| file_err("not UTF-8".into()))?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = PublicKey::from_openssh(line)
            .map_err(|e| file_err(format!("line {}: not an OpenSSH public key ({e})", i + 1)))?;
        keys.push(key.key_data().clone());
    }
    if keys.is_empty() {
        return Err(Refusal::NoCaKeys(path.to_path_buf()));
    }
    Ok(keys)
}

/// Read and parse the KRL, and refuse it when stale or dated in the future.
pub fn load_krl(args: &Args, now: u64) -> Result<Krl, Refusal> {
    let path = &args.krl;
    let bytes = read_capped(path, MAX_KRL_SIZE).map_err(|reason| Refusal::File {
        what: "KRL",
        path: path.clone(),
        reason,
    })?;
    let krl = Krl::parse(&bytes).map_err(|error| Refusal::Krl {
        path: path.clone(),
        error,
    })?;
    if krl.generated_date > now.saturating_add(KRL_FUTURE_SKEW) {
        return Err(Refusal::FutureKrl {
            path: path.clone(),
            ahead: format_secs(krl.generated_date - now),
        });
    }
    let age = now.saturating_sub(krl.generated_date);
    if age > args.krl_max_age {
        return Err(Refusal::StaleKrl {
            path: path.clone(),
            age: format_secs(age),
            max: format_secs(args.krl_max_age),
        });
    }
    Ok(krl)
}

fn read_capped(path: &Path, max: usize) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.take(max as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(buf)
}

/// The one log line for a decision: `pam_rampart(SERVICE): refused USER: REASON`
/// or `pam_rampart(SERVICE): accepted USER: …`.
pub fn log_line(req: &Request, outcome: &Result<Success, Refusal>) -> String {
    let user = req.user.as_deref().unwrap_or("(unknown user)");
    format!("pam_rampart({}): {}", req.service, message(user, outcome))
}

/// The log line without the `pam_rampart(SERVICE): ` prefix (which `pam_syslog`
/// adds itself).
pub fn message(user: &str, outcome: &Result<Success, Refusal>) -> String {
    match outcome {
        Ok(s) => format!(
            "accepted {user}: certificate serial {} (key ID {:?}) from CA {}, MFA {} {} ago, agent proved possession",
            s.accepted.serial,
            s.accepted.key_id,
            s.accepted.ca_fingerprint,
            s.accepted.mfa_method,
            format_secs(s.accepted.mfa_age)
        ),
        Err(r) => format!("refused {user}: {r}"),
    }
    .replace(['\n', '\r'], " ")
}

/// Append `line` to the `log_file=` file (created 0600). Failures are ignored:
/// this file is a debugging aid, syslog is the record.
pub fn append_log_file(path: &Path, line: &str) {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path);
    if let Ok(mut f) = f {
        let _ = writeln!(f, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    struct FakeHost {
        user: Option<u32>,
        peer: Option<u32>,
    }

    impl Host for FakeHost {
        fn user_uid(&self, _user: &str) -> Option<u32> {
            self.user
        }
        fn peer_uid(&self, _stream: &UnixStream) -> Option<u32> {
            self.peer
        }
    }

    const NOW: u64 = 1_800_000_000;

    fn krl_bytes(generated: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(0x5353_484b_524c_0a00u64.to_be_bytes());
        v.extend(1u32.to_be_bytes());
        v.extend(1u64.to_be_bytes());
        v.extend(generated.to_be_bytes());
        v.extend(0u64.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        v
    }

    struct Setup {
        dir: tempfile::TempDir,
        args: Args,
        _listener: UnixListener,
        req: Request,
    }

    fn setup(krl_generated: u64) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let ca_keys = dir.path().join("ca.pub");
        std::fs::write(
            &ca_keys,
            "# the CA\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFBwwSQ/NE5cGrIH9xa0m4qrT0cSSO4MVDBhOhJR4Ns9 ca\n",
        )
        .unwrap();
        let krl = dir.path().join("krl");
        std::fs::write(&krl, krl_bytes(krl_generated)).unwrap();
        let sock = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let args = Args::parse([
            format!("ca_keys={}", ca_keys.display()).as_str(),
            format!("krl={}", krl.display()).as_str(),
            "krl_max_age=1h",
            "agent_timeout=300ms",
        ])
        .unwrap();
        let req = Request {
            service: "sudo".into(),
            user: Some("alice".into()),
            rhost: None,
            agent_socket: Some(sock),
        };
        Setup {
            dir,
            args,
            _listener: listener,
            req,
        }
    }

    #[test]
    fn only_the_users_own_agent_is_theirs() {
        let path = Path::new("/tmp/ssh-x/agent.1");
        assert_eq!(check_agent_owner(path, 1000, 1000), Ok(()));
        // Root is the user only when the PAM user is root.
        assert_eq!(check_agent_owner(path, 0, 0), Ok(()));
        let err = check_agent_owner(path, 1000, 0).unwrap_err();
        assert_eq!(
            err,
            Refusal::RootAgent {
                path: path.to_path_buf(),
                user_uid: 1000
            }
        );
        assert!(
            err.to_string().contains(
                "/tmp/ssh-x/agent.1 is served by root (uid 0), not by the user (uid 1000)"
            ),
            "{err}"
        );
        for (user, peer) in [(1000, 2000), (0, 1000)] {
            assert_eq!(
                check_agent_owner(path, user, peer),
                Err(Refusal::ForeignAgent {
                    path: path.to_path_buf(),
                    peer_uid: peer,
                    user_uid: user
                })
            );
        }
    }

    #[test]
    fn refuses_root_and_other_users_agents() {
        let s = setup(NOW - 60);
        let host = FakeHost {
            user: Some(1000),
            peer: Some(2000),
        };
        let err = decide(&s.args, &s.req, &host, NOW).unwrap_err();
        assert!(
            matches!(
                err,
                Refusal::ForeignAgent {
                    peer_uid: 2000,
                    user_uid: 1000,
                    ..
                }
            ),
            "{err}"
        );
        // An agent served by root is not a non-root user's agent, and the refusal
        // comes before anything is asked of it.
        let host = FakeHost {
            user: Some(1000),
            peer: Some(0),
        };
        let err = decide(&s.args, &s.req, &host, NOW).unwrap_err();
        assert!(
            matches!(err, Refusal::RootAgent { user_uid: 1000, .. }),
            "{err}"
        );
        // The user's own agent passes the ownership check (this listener never
        // answers, so the exchange then times out).
        let host = FakeHost {
            user: Some(1000),
            peer: Some(1000),
        };
        let err = decide(&s.args, &s.req, &host, NOW).unwrap_err();
        assert_eq!(err, Refusal::Agent(AgentError::Timeout(300)));
    }

    #[test]
    fn refuses_unknown_users_and_bad_files() {
        let s = setup(NOW - 60);
        let host = FakeHost {
            user: None,
            peer: Some(0),
        };
        assert_eq!(
            decide(&s.args, &s.req, &host, NOW).unwrap_err(),
            Refusal::UnknownUser("alice".into())
        );
        let host = FakeHost {
            user: Some(1000),
            peer: Some(1000),
        };
        let mut req = s.req.clone();
        req.user = None;
        assert_eq!(
            decide(&s.args, &req, &host, NOW).unwrap_err(),
            Refusal::NoUser
        );
        let mut req = s.req.clone();
        req.agent_socket = None;
        assert_eq!(
            decide(&s.args, &req, &host, NOW).unwrap_err(),
            Refusal::NoAgent
        );

        std::fs::write(&s.args.ca_keys, "# nothing\n").unwrap();
        assert!(matches!(
            decide(&s.args, &s.req, &host, NOW).unwrap_err(),
            Refusal::NoCaKeys(_)
        ));
        std::fs::write(&s.args.ca_keys, "not a key\n").unwrap();
        let err = decide(&s.args, &s.req, &host, NOW).unwrap_err();
        assert!(
            err.to_string()
                .contains("line 1: not an OpenSSH public key"),
            "{err}"
        );
        drop(s.dir);
    }

    #[test]
    fn krl_age_limits() {
        let host = FakeHost {
            user: Some(1000),
            peer: Some(1000),
        };
        let s = setup(NOW - 7200);
        let err = decide(&s.args, &s.req, &host, NOW).unwrap_err();
        assert!(
            err.to_string()
                .contains("is stale: generated 2h ago, krl_max_age is 1h"),
            "{err}"
        );
        let s = setup(NOW + 3600);
        let err = decide(&s.args, &s.req, &host, NOW).unwrap_err();
        assert!(matches!(err, Refusal::FutureKrl { .. }), "{err}");
        let s = setup(NOW);
        std::fs::write(&s.args.krl, b"garbage").unwrap();
        let err = decide(&s.args, &s.req, &host, NOW).unwrap_err();
        assert!(matches!(err, Refusal::Krl { .. }), "{err}");
        std::fs::remove_file(&s.args.krl).unwrap();
        let err = decide(&s.args, &s.req, &host, NOW).unwrap_err();
        assert!(matches!(err, Refusal::File { what: "KRL", .. }), "{err}");
    }

    #[test]
    fn log_lines_are_single_lines() {
        let req = Request {
            service: "sudo".into(),
            user: Some("alice".into()),
            ..Request::default()
        };
        let line = log_line(&req, &Err(Refusal::NoAgent));
        assert!(
            line.starts_with("pam_rampart(sudo): refused alice: no SSH agent"),
            "{line}"
        );
        let evil = Err(Refusal::UnknownUser("a\nb".into()));
        assert!(!message("x", &evil).contains('\n'));
    }
}
