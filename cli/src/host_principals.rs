//! `rampart host principals`: sshd's `AuthorizedPrincipalsCommand`.
//!
//! sshd (sshd_config(5)) runs the command for a user certificate signed by a
//! `TrustedUserCAKeys` key and accepts the certificate if one of its principals is
//! among the lines the command prints. The sshd_config line is
//!
//! ```text
//! AuthorizedPrincipalsCommand /usr/bin/rampart host principals --policy /etc/rampart/host-policy.toml %u %t %k
//! AuthorizedPrincipalsCommandUser nobody
//! ```
//!
//! with the tokens `%u` (the local account), `%t` (the key/certificate type) and
//! `%k` (the certificate, base64). sshd has already checked the CA signature,
//! validity, `RevokedKeys` and critical options; this command only decides which
//! of the certificate's principals may log in to this account, by the host policy:
//!
//! ```toml
//! version = 1
//! [accounts.root]
//! principals = ["alice", "sre-*"]      # `*` and `?` wildcards
//! [accounts."*"]                       # every account without its own entry
//! principals = ["{account}"]           # {account} = the local account name
//! ```
//!
//! It prints each certificate principal that a pattern of the account's entry
//! (or else of `"*"`) matches, one per line, and exits 0 — with no output when
//! none match (sshd then refuses). It makes no network call.
//!
//! An account with `via_bastion = true` takes only a bastion's per-session
//! certificate (one that carries the CA-signed `bastion-session@rampart`
//! extension): a user's own certificate gets no line for it, so nobody reaches
//! that account without the bastion's recording and per-session MFA.
//!
//! sshd refuses to run a command that is not root-owned or sits under a group- or
//! world-writable directory (e.g. /tmp); this command in turn refuses a policy
//! file that group or others can write, since whoever writes it decides who gets
//! in.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;
use ssh_key::certificate::CertType;
use ssh_key::Certificate;

use crate::cli::PrincipalsArgs;
use crate::error::CliError;
use crate::host::HostError;

/// Largest host policy file read.
const MAX_POLICY_BYTES: u64 = 1024 * 1024;
/// Longest pattern or account name accepted.
const MAX_NAME: usize = 256;
/// Largest base64 certificate accepted (an RSA-16384 certificate with many
/// principals stays well below this).
const MAX_CERT_B64: usize = 64 * 1024;
/// The account key that applies to accounts without their own entry.
const ANY_ACCOUNT: &str = "*";

/// The host policy file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    /// Format version; only 1 exists.
    version: u32,
    /// Local account name (or `"*"`) → its rule.
    #[serde(default)]
    accounts: BTreeMap<String, AccountFile>,
}

/// One `[accounts.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFile {
    /// Principal patterns allowed to log in as this account (default: none).
    #[serde(default)]
    principals: Vec<String>,
    /// Only a bastion's per-session certificate may log in to this account
    /// (default: false).
    #[serde(default)]
    via_bastion: bool,
}

/// A validated host policy.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    accounts: BTreeMap<String, AccountRule>,
}

/// What an account accepts.
#[derive(Debug, Clone)]
struct AccountRule {
    patterns: Vec<Pattern>,
    /// Only certificates that carry [`rampart_policy::EXT_BASTION_SESSION`].
    via_bastion: bool,
}

/// One piece of a principal pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`: one character.
    One,
    /// `*`: any run of characters.
    Any,
    /// `{account}`: the account name, matched literally.
    Account,
}

/// A parsed principal pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern(Vec<Token>);

impl HostPolicy {
    /// Parse and validate a host policy.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.version != 1 {
            return Err(format!(
                "unsupported host policy version {} (this rampart reads version 1)",
                file.version
            ));
        }
        let mut accounts = BTreeMap::new();
        for (name, rule) in file.accounts {
            if name != ANY_ACCOUNT && !valid_account(&name) {
                return Err(format!("[accounts.{name:?}]: not a valid account name"));
            }
            let mut patterns = Vec::with_capacity(rule.principals.len());
            for p in &rule.principals {
                patterns.push(
                    Pattern::parse(p)
                        .map_err(|e| format!("[accounts.{name:?}] principal {p:?}: {e}"))?,
                );
            }
            accounts.insert(
                name,
                AccountRule {
                    patterns,
                    via_bastion: rule.via_bastion,
                },
            );
        }
        Ok(HostPolicy { accounts })
    }

    /// The principals of `cert` accepted for `account`: none for an account
    /// that takes only per-session certificates when `cert` is not one.
    pub fn allowed_for<'a>(&self, account: &str, cert: &'a Certificate) -> Vec<&'a str> {
        let per_session = cert
            .extensions()
            .contains_key(rampart_policy::EXT_BASTION_SESSION);
        if self.rule(account).is_some_and(|r| r.via_bastion) && !per_session {
            return Vec::new();
        }
        self.allowed(account, cert.valid_principals())
    }

    fn rule(&self, account: &str) -> Option<&AccountRule> {
        self.accounts
            .get(account)
            .or_else(|| self.accounts.get(ANY_ACCOUNT))
    }

    /// The certificate principals accepted for `account`, in certificate order,
    /// without duplicates.
    pub fn allowed<'a>(&self, account: &str, principals: &'a [String]) -> Vec<&'a str> {
        let Some(patterns) = self.rule(account).map(|r| &r.patterns) else {
            return Vec::new();
        };
        let mut out: Vec<&str> = Vec::new();
        for p in principals {
            // A principal with whitespace or control characters would split into
            // several lines of our output; such a principal is never printed.
            if !printable_name(p) || out.contains(&p.as_str()) {
                continue;
            }
            if patterns.iter().any(|pat| pat.matches(p, account)) {
                out.push(p);
            }
        }
        out
    }
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty pattern".to_owned());
        }
        if text.len() > MAX_NAME {
            return Err(format!("longer than {MAX_NAME} bytes"));
        }
        let mut tokens = Vec::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("{account}") {
                tokens.push(Token::Account);
                rest = after;
                continue;
            }
            tokens.push(match c {
                '*' => Token::Any,
                '?' => Token::One,
                '{' | '}' => {
                    return Err("only {account} may appear in braces".to_owned());
                }
                c if c.is_whitespace() || c.is_control() || c == ',' => {
                    return Err(
                        "whitespace, control characters and commas are not allowed".to_owned()
                    );
                }
                c => Token::Char(c),
            });
            rest = rest.get(c.len_utf8()..).unwrap_or("");
        }
        Ok(Pattern(tokens))
    }

    /// Glob match with `{account}` expanded to literal characters (an account
    /// name never acts as a wildcard).
    fn matches(&self, text: &str, account: &str) -> bool {
        let mut pat: Vec<Token> = Vec::with_capacity(self.0.len() + account.len());
        for t in &self.0 {
            match t {
                Token::Account => pat.extend(account.chars().map(Token::Char)),
                other => pat.push(other.clone()),
            }
        }
        glob(&pat, &text.chars().collect::<Vec<_>>())
    }
}

/// Iterative glob with single-star backtracking: linear in practice, never
/// exponential (the classic "remember the last `*`" algorithm).
fn glob(pat: &[Token], text: &[char]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match (pat.get(p), text.get(t)) {
            (Some(Token::Any), _) => {
                star = Some((p, t));
                p += 1;
            }
            (Some(Token::One), Some(_)) => {
                p += 1;
                t += 1;
            }
            (Some(Token::Char(a)), Some(b)) if a == b => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat.get(p..)
        .is_some_and(|rest| rest.iter().all(|t| *t == Token::Any))
}

/// A POSIX-ish account name: no wildcard or separator characters.
fn valid_account(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@' | '$'))
}

fn printable_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Read the policy file, refusing one that group or others can write.
pub fn load_policy(path: &Path) -> Result<HostPolicy, CliError> {
    use std::os::unix::fs::PermissionsExt as _;
    let file = File::open(path).map_err(|e| CliError::no_input(path, &e))?;
    let meta = file.metadata().map_err(|e| CliError::no_input(path, &e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(CliError::PolicyInvalid(format!(
            "{}: mode {mode:04o} lets group or others write the host policy; chmod go-w it",
            path.display()
        )));
    }
    let mut text = String::new();
    file.take(MAX_POLICY_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| CliError::no_input(path, &e))?;
    HostPolicy::parse(&text)
        .map_err(|e| CliError::PolicyInvalid(format!("{}: {e}", path.display())))
}

/// Decode sshd's `%k` for a user certificate and check it is of type `%t`.
pub fn decode_cert(key_type: &str, b64: &str) -> Result<Certificate, CliError> {
    let usage = |m: &str| CliError::Usage(m.to_owned());
    if !key_type.ends_with("-cert-v01@openssh.com") {
        return Err(usage(
            "not a certificate (key type is not *-cert-v01@openssh.com); pass sshd's %u %t %k",
        ));
    }
    if b64.len() > MAX_CERT_B64 {
        return Err(usage("certificate argument too large"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| usage("the certificate argument is not base64 (sshd's %k)"))?;
    let cert = Certificate::from_bytes(&bytes)
        .map_err(|e| CliError::Usage(format!("the certificate argument does not parse: {e}")))?;
    if cert.algorithm().to_certificate_type() != key_type {
        return Err(CliError::Usage(format!(
            "the certificate is a {}, not the {key_type} sshd named",
            cert.algorithm().to_certificate_type()
        )));
    }
    if cert.cert_type() != CertType::User {
        return Err(usage("a host certificate cannot log in to an account"));
    }
    Ok(cert)
}

/// `rampart host principals`.
pub fn run(a: &PrincipalsArgs) -> Result<(), HostError> {
    let policy = load_policy(&a.policy)?;
    let cert = decode_cert(&a.key_type, &a.cert)?;
    let mut out = String::new();
    for p in policy.allowed_for(&a.account, &cert) {
        out.push_str(p);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    const POLICY: &str = r#"
version = 1
[accounts.root]
principals = ["alice", "sre-*"]
[accounts.deploy]
principals = ["ci-?", "{account}"]
[accounts.nobody-gets-in]
[accounts."*"]
principals = ["{account}"]
"#;

    #[test]
    fn maps_accounts_by_the_policy() {
        let p = HostPolicy::parse(POLICY).unwrap();
        struct Case {
            account: &'static str,
            cert: &'static [&'static str],
            want: &'static [&'static str],
        }
        let cases = [
            Case {
                account: "root",
                cert: &["alice"],
                want: &["alice"],
            },
            Case {
                account: "root",
                cert: &["bob", "sre-oncall", "sre-"],
                want: &["sre-oncall", "sre-"],
            },
            Case {
                account: "root",
                cert: &["root"],
                want: &[],
            },
            Case {
                account: "root",
                cert: &["xsre-1"],
                want: &[],
            },
            Case {
                account: "deploy",
                cert: &["ci-1", "ci-12", "deploy"],
                want: &["ci-1", "deploy"],
            },
            // Fallback: only the principal named like the account.
            Case {
                account: "carol",
                cert: &["alice", "carol"],
                want: &["carol"],
            },
            Case {
                account: "dave",
                cert: &["alice"],
                want: &[],
            },
            // An explicit entry with no principals beats the fallback.
            Case {
                account: "nobody-gets-in",
                cert: &["nobody-gets-in"],
                want: &[],
            },
            // Duplicates once; principals with whitespace never.
            Case {
                account: "root",
                cert: &["alice", "alice", "sre-a\nroot", "sre- x"],
                want: &["alice"],
            },
        ];
        for c in cases {
            assert_eq!(
                p.allowed(c.account, &names(c.cert)),
                c.want,
                "account {} cert {:?}",
                c.account,
                c.cert
            );
        }
    }

    #[test]
    fn no_fallback_means_nothing() {
        let p =
            HostPolicy::parse("version = 1\n[accounts.root]\nprincipals = [\"alice\"]\n").unwrap();
        assert!(p.allowed("alice", &names(&["alice"])).is_empty());
        let p = HostPolicy::parse("version = 1\n").unwrap();
        assert!(p.allowed("root", &names(&["root"])).is_empty());
    }

    #[test]
    fn account_is_literal_in_patterns() {
        let pat = Pattern::parse("{account}").unwrap();
        assert!(pat.matches("a.b", "a.b"));
        assert!(!pat.matches("axb", "a.b"));
        // Even a wildcard-looking account name matches only itself.
        assert!(!pat.matches("anything", "*"));
        assert!(pat.matches("*", "*"));
    }

    #[test]
    fn glob_edge_cases() {
        let m = |p: &str, t: &str| Pattern::parse(p).unwrap().matches(t, "acct");
        assert!(m("*", ""));
        assert!(m("*", "abc"));
        assert!(m("a*c", "abbbc"));
        assert!(m("a*c", "ac"));
        assert!(!m("a*c", "acb"));
        assert!(m("*a*b", "xxaxxb"));
        assert!(!m("a?", "a"));
        assert!(m("??", "ab"));
        assert!(m("x-{account}-*", "x-acct-1"));
        assert!(!m("x-{account}", "x-other"));
        let long = "a".repeat(200);
        assert!(!m("*a*a*a*a*a*a*b", &long)); // no exponential blow-up
    }

    #[test]
    fn refuses_bad_policies() {
        for (text, want) in [
            ("version = 2\n", "version 2"),
            ("[accounts.root]\nprincipals=[]\n", "version"),
            ("version = 1\nfoo = 1\n", "unknown field"),
            (
                "version = 1\n[accounts.root]\nprincipal = [\"a\"]\n",
                "unknown field",
            ),
            (
                "version = 1\n[accounts.root]\nprincipals = [\"\"]\n",
                "empty",
            ),
            (
                "version = 1\n[accounts.root]\nprincipals = [\"a b\"]\n",
                "whitespace",
            ),
            (
                "version = 1\n[accounts.root]\nprincipals = [\"{user}\"]\n",
                "braces",
            ),
            (
                "version = 1\n[accounts.\"r*\"]\nprincipals = [\"a\"]\n",
                "account name",
            ),
        ] {
            let e = HostPolicy::parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_packaged_example_parses() {
        let text = include_str!("../../packaging/examples/host-policy.toml");
        let p = HostPolicy::parse(text).unwrap();
        assert_eq!(p.allowed("carol", &names(&["carol"])), ["carol"]);
    }

    #[test]
    fn world_writable_policy_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host-policy.toml");
        std::fs::write(&path, "version = 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        load_policy(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = load_policy(&path).unwrap_err();
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        assert_eq!(e.exit_code(), crate::error::EXIT_POLICY_INVALID);
    }

    fn cert(principal: &str, extensions: &[(&str, &str)]) -> Certificate {
        use ssh_key::private::{Ed25519Keypair, PrivateKey};
        let ca = PrivateKey::from(Ed25519Keypair::from_seed(&[1u8; 32]));
        let user = PrivateKey::from(Ed25519Keypair::from_seed(&[2u8; 32]));
        let mut b = ssh_key::certificate::Builder::new(
            [3u8; 32].to_vec(),
            user.public_key().key_data().clone(),
            1,
            u64::MAX - 1,
        )
        .unwrap();
        b.cert_type(CertType::User).unwrap();
        b.valid_principal(principal).unwrap();
        for (name, value) in extensions {
            b.extension(*name, *value).unwrap();
        }
        b.sign(&ca).unwrap()
    }

    #[test]
    fn a_via_bastion_account_takes_only_per_session_certificates() {
        let p = HostPolicy::parse(
            r#"
version = 1
[accounts.postgres]
principals = ["postgres"]
via_bastion = true
[accounts."*"]
principals = ["{account}"]
"#,
        )
        .unwrap();
        let own = cert("postgres", &[]);
        let session = cert(
            "postgres",
            &[(
                rampart_policy::EXT_BASTION_SESSION,
                "bastion-1 01J0000000000000000000ABCD",
            )],
        );
        assert!(
            p.allowed_for("postgres", &own).is_empty(),
            "a user's own certificate"
        );
        assert_eq!(p.allowed_for("postgres", &session), ["postgres"]);
        // Other accounts are not affected.
        let alice = cert("alice", &[]);
        assert_eq!(p.allowed_for("alice", &alice), ["alice"]);
    }

    #[test]
    fn decodes_only_user_certificates_of_the_named_type() {
        let e = decode_cert("ssh-ed25519", "AAAA").unwrap_err();
        assert!(e.to_string().contains("not a certificate"), "{e}");
        let e = decode_cert("ssh-ed25519-cert-v01@openssh.com", "!!!").unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        let e = decode_cert("ssh-ed25519-cert-v01@openssh.com", "AAAA").unwrap_err();
        assert!(e.to_string().contains("does not parse"), "{e}");
    }
}
