//! The host policy: which certificate principals may log in as which local
//! account on a host (`rampart host principals`, sshd's
//! `AuthorizedPrincipalsCommand`).
//!
//! **Owns:** parsing and validating the host policy TOML and matching principals
//! against its patterns. The file is root-owned on the host, but its contents are
//! still checked strictly (unknown keys, bad account names, bad patterns refuse
//! the whole file), and matching is linear in the pattern and principal lengths.
//! Certificates and the file's permissions are the CLI's business.
//!
//! ```toml
//! version = 1
//! [accounts.root]
//! principals = ["alice", "sre-*"]      # `*` and `?` wildcards
//! [accounts."*"]                       # every account without its own entry
//! principals = ["{account}"]           # {account} = the local account name
//! [accounts.postgres]
//! principals = ["postgres"]
//! via_bastion = true                   # only a bastion's per-session certificates
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// Longest pattern or account name accepted.
const MAX_NAME: usize = 256;
/// The account key that applies to accounts without their own entry.
const ANY_ACCOUNT: &str = "*";

/// Why a host policy file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostPolicyError(String);

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
    /// Only certificates that carry [`crate::EXT_BASTION_SESSION`].
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
    ///
    /// # Errors
    /// [`HostPolicyError`] naming the TOML error, the unsupported version, or
    /// the account name or principal pattern that is not valid.
    pub fn parse(text: &str) -> Result<Self, HostPolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| HostPolicyError(e.to_string()))?;
        if file.version != 1 {
            return Err(HostPolicyError(format!(
                "unsupported host policy version {} (this rampart reads version 1)",
                file.version
            )));
        }
        let mut accounts = BTreeMap::new();
        for (name, rule) in file.accounts {
            if name != ANY_ACCOUNT && !valid_account(&name) {
                return Err(HostPolicyError(format!(
                    "[accounts.{name:?}]: not a valid account name"
                )));
            }
            let mut patterns = Vec::with_capacity(rule.principals.len());
            for p in &rule.principals {
                patterns.push(Pattern::parse(p).map_err(|e| {
                    HostPolicyError(format!("[accounts.{name:?}] principal {p:?}: {e}"))
                })?);
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

    /// Whether `account` takes only a bastion's per-session certificates (one
    /// that carries [`crate::EXT_BASTION_SESSION`]).
    pub fn bastion_only(&self, account: &str) -> bool {
        self.rule(account).is_some_and(|r| r.via_bastion)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeSet;

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
            let e = HostPolicy::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_packaged_example_parses() {
        let text = include_str!("../../packaging/examples/host-policy.toml");
        let p = HostPolicy::parse(text).unwrap();
        assert_eq!(p.allowed("carol", &names(&["carol"])), ["carol"]);
    }

    /// The keys a host policy table accepts ([`crate::reference::accepted_keys`]).
    fn accepted_keys(table: &str, probe: &str) -> BTreeSet<String> {
        crate::reference::accepted_keys::<PolicyFile>(probe)
            .unwrap_or_else(|e| panic!("{table}: {e}"))
    }

    /// The keys the reference rows of docs/hosts.md name for a table: rows
    /// whose first cell is `` `key` `` (top level) or `` `[accounts.NAME] key` ``.
    fn documented_keys(doc: &str, table: &str) -> BTreeSet<String> {
        let heading = "## The host policy: `host-policy.toml`";
        let Some((_, section)) = doc.split_once(heading) else {
            panic!("docs/hosts.md has no heading {heading:?}");
        };
        let section = section.split("\n## ").next().unwrap_or_default();
        let mut keys = BTreeSet::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cell = line.split('|').nth(1).unwrap_or_default();
            for (n, span) in cell.split('`').skip(1).step_by(2).enumerate() {
                let (row_table, key) = match span.strip_prefix('[') {
                    Some(rest) if n == 0 => {
                        let (t, k) = rest.split_once(']').unwrap_or((rest, ""));
                        (t.to_owned(), k.trim())
                    }
                    _ => (String::new(), span.trim()),
                };
                if row_table == table && !key.is_empty() {
                    keys.insert(key.to_owned());
                }
            }
            if table.is_empty() && line.starts_with("| `[accounts.") {
                keys.insert("accounts".to_owned());
            }
        }
        keys
    }

    /// A table header or a `key = value` line, not prose.
    fn is_toml_line(line: &str) -> bool {
        let header = line.starts_with('[') && line.ends_with(']');
        let key = line.split_once(" = ").is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        });
        header || key
    }

    /// The reference table in docs/hosts.md lists exactly the keys the host
    /// policy accepts, and the example in packaging/examples uses them all once
    /// its commented-out tables are put back.
    #[test]
    fn the_host_policy_reference_and_example_list_exactly_the_accepted_keys() {
        let doc = include_str!("../../docs/hosts.md");
        let example = include_str!("../../packaging/examples/host-policy.toml");
        // The example's commented tables ("# [accounts.root]", "# principals = …").
        let uncommented: String = example
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if is_toml_line(rest) => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        if let Err(e) = HostPolicy::parse(&uncommented) {
            panic!("packaging/examples/host-policy.toml (uncommented) is refused: {e}");
        }
        let value: toml::Value = toml::from_str(&uncommented).unwrap();
        let example_account_keys: BTreeSet<String> = value
            .get("accounts")
            .and_then(toml::Value::as_table)
            .map(|accounts| {
                accounts
                    .values()
                    .filter_map(toml::Value::as_table)
                    .flat_map(|t| t.keys().cloned())
                    .collect()
            })
            .unwrap_or_default();
        let example_top_keys: BTreeSet<String> = value
            .as_table()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();

        let tables = [
            ("the top level", "", "zz_unknown_key = 1", example_top_keys),
            (
                "[accounts.NAME]",
                "accounts.NAME",
                "[accounts.x]\nzz_unknown_key = 1",
                example_account_keys,
            ),
        ];
        let mut problems = Vec::new();
        for (shown, table, probe, in_example) in &tables {
            let accepted = accepted_keys(shown, probe);
            let documented = documented_keys(doc, table);
            for key in accepted.difference(&documented) {
                problems.push(format!(
                    "{shown}: key `{key}` is accepted by the code but has no reference row in docs/hosts.md"
                ));
            }
            for key in documented.difference(&accepted) {
                problems.push(format!(
                    "{shown}: key `{key}` is documented in docs/hosts.md but the code refuses it"
                ));
            }
            for key in accepted.difference(in_example) {
                problems.push(format!(
                    "{shown}: key `{key}` is accepted by the code but not shown in packaging/examples/host-policy.toml"
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
