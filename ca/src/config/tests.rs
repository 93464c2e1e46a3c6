//! The config's parsing and validation, case by case.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

fn minimal() -> String {
    "version = 1\n[keys]\npassphrase_env = \"RAMPART_TEST_PASS\"\n".into()
}

fn with_database(lines: &str) -> Result<Config, CaError> {
    let raw: RawConfig = toml::from_str(&format!("{lines}\n{}", minimal())).unwrap();
    Config::from_raw(
        raw,
        Path::new("/etc/rampart/ca.toml"),
        Path::new("/etc/rampart"),
    )
}

#[test]
fn a_postgres_url_selects_postgres_and_its_password_stays_hidden() {
    let cfg = with_database(
        "database = \"postgres://ca:hunter2@db.internal:5432/rampart\"\n\
         database_password_file = \"secrets/db-password\"",
    )
    .unwrap();
    let Database::Postgres(pg) = &cfg.database else {
        panic!("not postgres: {:?}", cfg.database);
    };
    assert_eq!(
        pg.password_file.as_deref(),
        Some(Path::new("/etc/rampart/secrets/db-password"))
    );
    assert_eq!(cfg.database.sqlite_path(), None);
    let shown = format!("{cfg:?} {}", cfg.database);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("postgres://ca:***@db.internal:5432/rampart"));
}

/// The password comes from the file, and reaches a server that demands it.
/// `database_tls_ca_file`: the CA's state and its audit log both reach a
/// server that takes TLS only, verified against that CA; without the file the
/// same server refuses the CA.
#[test]
fn the_database_tls_ca_file_makes_both_stores_use_verified_tls() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let pg =
        crate::store::postgres::testing::TestPostgres::start_tls(&cert.pem(), &key.serialize_pem());
    let url = pg.create_database("rampart");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pg-ca.pem"), ca.pem()).unwrap();
    let load = |extra: &str| {
        let raw: RawConfig = toml::from_str(&format!(
            "database = \"{url}\"\n{extra}\n{}\n[audit]\ndatabase = \"{url}\"\n",
            minimal()
        ))
        .unwrap();
        Config::from_raw(raw, &dir.path().join("ca.toml"), dir.path()).unwrap()
    };
    let cfg = load("database_tls_ca_file = \"pg-ca.pem\"");
    let Database::Postgres(db) = &cfg.database else {
        panic!("not postgres");
    };
    let store = crate::store::postgres::PostgresStore::open(&db.target().unwrap()).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        crate::store::postgres::SCHEMA_VERSION
    );
    let log = cfg.audit_database.open(None, Default::default()).unwrap();
    log.append(rampart_audit::NewEvent::new(
        rampart_audit::EventKind::CaStarted,
        rampart_audit::Outcome::Success,
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    ))
    .unwrap();
    log.close().unwrap();
    // The same server, without the CA file: plain TCP, refused by the server.
    let plain = load("");
    let Database::Postgres(db) = &plain.database else {
        panic!("not postgres");
    };
    assert!(crate::store::postgres::PostgresStore::open(&db.target().unwrap()).is_err());
    assert!(plain.audit_database.open(None, Default::default()).is_err());
    // TLS settings beside an SQLite database are a mistake, said at load.
    let raw: RawConfig = toml::from_str(&format!(
        "database_tls_ca_file = \"pg-ca.pem\"\n{}",
        minimal()
    ))
    .unwrap();
    let e = Config::from_raw(raw, &dir.path().join("ca.toml"), dir.path()).unwrap_err();
    assert!(e.to_string().contains("database_tls_ca_file"), "{e}");
}

#[test]
fn the_database_password_file_is_used_to_log_in() {
    use std::os::unix::fs::PermissionsExt;
    let pg = crate::store::postgres::testing::TestPostgres::start();
    let url = pg.create_role_with_password("rampart", "s3cret-pw");
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("db-password");
    std::fs::write(&pw, "s3cret-pw\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let raw: RawConfig = toml::from_str(&format!(
        "database = \"{url}\"\ndatabase_password_file = \"db-password\"\n{}",
        minimal()
    ))
    .unwrap();
    let cfg = Config::from_raw(raw, &dir.path().join("ca.toml"), dir.path()).unwrap();
    let Database::Postgres(db) = &cfg.database else {
        panic!("not postgres");
    };
    let store = crate::store::postgres::PostgresStore::open(&db.target().unwrap()).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        crate::store::postgres::SCHEMA_VERSION
    );
    // Without it, or with a wrong one, the server refuses; the error does
    // not carry the password.
    let none = crate::store::postgres::PgTarget::new(&url, None).unwrap();
    assert!(crate::store::postgres::PostgresStore::open(&none).is_err());
    let wrong =
        crate::store::postgres::PgTarget::new(&url, Some("not-it".to_owned().into())).unwrap();
    let e = crate::store::postgres::PostgresStore::open(&wrong).unwrap_err();
    assert!(!e.to_string().contains("not-it"), "{e}");
    // A password file others may read is refused before any connection.
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(db.target().is_err());
}

#[test]
fn a_database_password_credential_is_that_file_in_the_credentials_directory() {
    let dir = Path::new("/run/credentials/rampart-ca.service");
    let unit = |name: &str| Some(dir.join(name));
    assert_eq!(
        database_password_credential(Some("db-password"), false, unit).unwrap(),
        Some(dir.join("db-password"))
    );
    assert_eq!(
        database_password_credential(None, true, unit).unwrap(),
        None
    );
    let e = database_password_credential(Some("db-password"), true, unit).unwrap_err();
    assert!(e.to_string().contains("choose one"), "{e}");
    for bad in ["", ".", "..", "../db-password", "a/b"] {
        let e = database_password_credential(Some(bad), false, unit).unwrap_err();
        assert!(
            e.to_string().contains("not a credential name"),
            "{bad:?}: {e}"
        );
    }
    // Outside a unit with credentials: a clear refusal, not an unauthenticated
    // connection attempt.
    let e = database_password_credential(Some("db-password"), false, |_| None).unwrap_err();
    assert!(e.to_string().contains("CREDENTIALS_DIRECTORY"), "{e}");
}

#[test]
fn database_settings_that_cannot_work_are_refused() {
    let e = with_database("database_password_file = \"pw\"").unwrap_err();
    assert!(e.to_string().contains("postgres://"), "{e}");
    let e = with_database("database = \"postgres://ca@db/rampart?sslmode=require\"").unwrap_err();
    assert!(e.to_string().contains("TLS"), "{e}");
    let e = with_database("database = \"postgres://ca:hunter2@db:notaport/rampart\"").unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn durations_parse_and_refuse_garbage() {
    assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
    for bad in ["", "0s", "10", "5x", "h", "-1h", "99999999999999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn defaults_fill_a_minimal_file() {
    let raw: RawConfig = toml::from_str(&minimal()).unwrap();
    let cfg = Config::from_raw(
        raw,
        Path::new("/etc/rampart/ca.toml"),
        Path::new("/etc/rampart"),
    )
    .unwrap();
    assert_eq!(cfg.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(
        cfg.database.sqlite_path(),
        Some(Path::new("/etc/rampart/ca.db"))
    );
    assert_eq!(cfg.authority.limits.attempts.max_failures, 5);
    assert_eq!(cfg.authority.session_ttl, Duration::from_secs(8 * 3600));
    assert_eq!(
        cfg.passphrase,
        PassphraseSource::Env("RAMPART_TEST_PASS".into())
    );
}

#[test]
fn unknown_keys_and_missing_passphrase_are_refused() {
    let err = toml::from_str::<RawConfig>(&format!("{}[totp]\nmax_failure = 3\n", minimal()))
        .unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
    let raw: RawConfig = toml::from_str("version = 1\n[keys]\n").unwrap();
    let err = Config::from_raw(raw, Path::new("c.toml"), Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("passphrase"), "{err}");
    let raw: RawConfig = toml::from_str("version = 2\n[keys]\npassphrase_env = \"X\"\n").unwrap();
    assert!(Config::from_raw(raw, Path::new("c.toml"), Path::new(".")).is_err());
}

#[test]
fn ca_keys_are_files_or_a_token_with_one_pin_source_and_two_labels() {
    let cfg = |keys: &str| {
        let raw: RawConfig = toml::from_str(&format!(
            "version = 1\n[keys]\npassphrase_env = \"X\"\n{keys}"
        ))
        .unwrap();
        Config::from_raw(
            raw,
            Path::new("/etc/rampart/c.toml"),
            Path::new("/etc/rampart"),
        )
    };
    assert_eq!(
        cfg("").unwrap().ca_keys,
        CaKeys::Files {
            user_ca: PathBuf::from("/etc/rampart/keys/user_ca"),
            host_ca: PathBuf::from("/etc/rampart/keys/host_ca"),
        }
    );
    let token = cfg("pkcs11 = { module = \"/usr/lib/softhsm/libsofthsm2.so\", token = \"ca\", pin_file = \"pin\" }\n")
        .unwrap();
    assert_eq!(
        token.ca_keys,
        CaKeys::Pkcs11(Pkcs11Keys {
            module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
            token: "ca".into(),
            pin: PassphraseSource::File(PathBuf::from("/etc/rampart/pin")),
            user_ca: "rampart-user-ca".into(),
            host_ca: "rampart-host-ca".into(),
            audit: "rampart-audit".into(),
        })
    );
    assert!(
        token.key_files().is_empty(),
        "no key file to read or back up"
    );
    for (bad, why) in [
        ("pkcs11 = { module = \"m\", token = \"ca\" }", "exactly one of"),
        (
            "pkcs11 = { module = \"m\", token = \"ca\", pin_file = \"p\", pin_env = \"P\" }",
            "exactly one of",
        ),
        (
            "pkcs11 = { module = \"m\", token = \"ca\", pin_env = \"P\", user_ca = \"k\", host_ca = \"k\" }",
            "three keys",
        ),
        (
            "pkcs11 = { module = \"m\", token = \"ca\", pin_env = \"P\", audit = \"rampart-user-ca\" }",
            "three keys",
        ),
        (
            "pkcs11 = { module = \"m\", token = \"\", pin_env = \"P\" }",
            "must not be empty",
        ),
    ] {
        let err = cfg(&format!("{bad}\n")).unwrap_err();
        assert!(err.to_string().contains(why), "{bad}: {err}");
    }
}

#[test]
fn a_credential_is_one_file_in_the_credentials_directory() {
    use secrecy::ExposeSecret as _;
    use std::os::unix::fs::PermissionsExt;
    let cfg = |keys: &str| {
        let raw: RawConfig = toml::from_str(&format!("version = 1\n[keys]\n{keys}")).unwrap();
        Config::from_raw(raw, Path::new("c.toml"), Path::new("."))
    };
    assert_eq!(
        cfg("passphrase_credential = \"ca-passphrase\"\n")
            .unwrap()
            .passphrase,
        PassphraseSource::Credential("ca-passphrase".into())
    );
    for bad in ["", ".", "..", "../pass", "a/b"] {
        let err = cfg(&format!("passphrase_credential = {bad:?}\n")).unwrap_err();
        assert!(
            err.to_string().contains("not a credential name"),
            "{bad:?}: {err}"
        );
    }
    let err = cfg("passphrase_credential = \"c\"\npassphrase_env = \"X\"\n").unwrap_err();
    assert!(err.to_string().contains("more than one"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ca-passphrase");
    // Without a credentials directory the error says how the CA gets one.
    let err = read_credential_at(None, "ca-passphrase").unwrap_err();
    assert!(err.to_string().contains("CREDENTIALS_DIRECTORY"), "{err}");
    assert!(read_credential_at(Some(p.clone()), "ca-passphrase").is_err());
    std::fs::write(&p, "long enough passphrase\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
    let pass = read_credential_at(Some(p.clone()), "ca-passphrase").unwrap();
    assert_eq!(pass.expose_secret(), "long enough passphrase");
    // Readable by others: refused like any other secret file.
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    assert!(read_credential_at(Some(p.clone()), "ca-passphrase").is_err());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&p, "\n").unwrap();
    let err = read_credential_at(Some(p), "ca-passphrase").unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn loose_secret_files_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pass");
    std::fs::write(&p, "x").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(check_private_file(&p).is_err());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(check_private_file(&p).is_ok());
}

// ---------------------------------------------------------------------------
// The reference in docs/configuration.md against the keys the code accepts.
// ---------------------------------------------------------------------------

use rampart_policy::reference::BOGUS_KEY;

/// The keys a table accepts ([`rampart_policy::reference::accepted_keys`]).
fn accepted_keys(table: &str, probe: &str) -> BTreeSet<String> {
    rampart_policy::reference::accepted_keys::<RawConfig>(probe)
        .unwrap_or_else(|e| panic!("[{table}]: {e}"))
}

/// The text inside each pair of backticks.
fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// The lines from `heading` up to the next heading of its level or above.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let Some(start) = doc.find(heading) else {
        panic!("docs/configuration.md has no heading {heading:?}");
    };
    let body = doc.get(start + heading.len()..).unwrap_or_default();
    let end = body
        .find("\n## ")
        .or_else(|| body.find("\n# "))
        .unwrap_or(body.len());
    body.get(..end).unwrap_or_default()
}

/// The keys each table's reference rows name, by dotted table path (`""` is
/// the top level). A row's first cell lists backticked keys, the first one
/// optionally prefixed by its table: `` `[keys] user_ca`, `host_ca` ``; a
/// cell `` `[[audit.forwarders]] name`, `kind` `` names an array of tables;
/// `` `pkcs11 = { module, token \| pin_file }` `` names an inline table and
/// its keys. A table's path also names it as a key of its parent.
fn documented_keys(rows: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut tables: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in rows.lines().filter(|l| l.starts_with("| `")) {
        // The first cell ends at the first `|` not escaped as `\|`.
        let cell_end = line
            .char_indices()
            .skip(1)
            .find(|&(i, c)| c == '|' && !line.get(..i).unwrap_or_default().ends_with('\\'))
            .map_or(line.len(), |(i, _)| i);
        let cell = line.get(1..cell_end).unwrap_or_default();
        let mut table = String::new();
        for (n, span) in backticked(cell).enumerate() {
            let mut span = span.trim();
            if n == 0 {
                if let Some(open) = span.strip_prefix("[[").or_else(|| span.strip_prefix('[')) {
                    let close = open.find(']').unwrap_or(open.len());
                    table = open.get(..close).unwrap_or_default().to_owned();
                    span = open
                        .get(close..)
                        .unwrap_or_default()
                        .trim_start_matches(']')
                        .trim();
                }
            }
            if span.is_empty() {
                continue;
            }
            match span.split_once(" = {") {
                Some((key, inner)) => {
                    let sub = join_path(&table, key.trim());
                    let inner = inner.trim_end_matches('}');
                    let keys = inner
                        .split([',', '|'])
                        .map(|k| k.trim().trim_end_matches('\\').trim().to_owned())
                        .filter(|k| !k.is_empty());
                    tables.entry(sub).or_default().extend(keys);
                    tables
                        .entry(table.clone())
                        .or_default()
                        .insert(key.trim().to_owned());
                }
                None => {
                    tables
                        .entry(table.clone())
                        .or_default()
                        .insert(span.to_owned());
                }
            }
        }
        // `[a.b]` makes `b` a key of `a` and `a` a key of the top level.
        let mut path = table.as_str();
        while let Some((parent, leaf)) = path.rsplit_once('.') {
            tables
                .entry(parent.to_owned())
                .or_default()
                .insert(leaf.to_owned());
            path = parent;
        }
        if !table.is_empty() {
            tables
                .entry(String::new())
                .or_default()
                .insert(path.to_owned());
            tables.entry(table).or_default();
        }
    }
    tables
}

fn join_path(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    }
}

fn show(table: &str) -> String {
    if table.is_empty() {
        "the top level".to_owned()
    } else {
        format!("[{table}]")
    }
}

/// Every key each `config.toml` table accepts has a row in the reference of
/// docs/configuration.md, and every key a row names is accepted by that
/// table: a key added, renamed or removed in the code without the doc fails.
#[test]
fn the_config_reference_lists_exactly_the_keys_config_toml_accepts() {
    const DOC: &str = "docs/configuration.md";
    let doc = include_str!("../../../docs/configuration.md");
    let rows = section(doc, "## The CA: `config.toml`");
    let documented = documented_keys(rows);

    // Each table the config has, and a file that puts the bogus key in it.
    let probes: [(&str, String); 16] = [
        ("", format!("{BOGUS_KEY} = 1")),
        ("keys", format!("[keys]\n{BOGUS_KEY} = 1")),
        ("keys.pkcs11", format!("[keys.pkcs11]\n{BOGUS_KEY} = 1")),
        ("tls", format!("[tls]\n{BOGUS_KEY} = 1")),
        ("audit", format!("[audit]\n{BOGUS_KEY} = 1")),
        (
            "audit.forwarders",
            format!("[[audit.forwarders]]\n{BOGUS_KEY} = 1"),
        ),
        ("totp", format!("[totp]\n{BOGUS_KEY} = 1")),
        ("sessions", format!("[sessions]\n{BOGUS_KEY} = 1")),
        ("invites", format!("[invites]\n{BOGUS_KEY} = 1")),
        ("admin", format!("[admin]\n{BOGUS_KEY} = 1")),
        ("metrics", format!("[metrics]\n{BOGUS_KEY} = 1")),
        ("oidc", format!("[oidc]\n{BOGUS_KEY} = 1")),
        (
            "oidc.providers",
            format!("[[oidc.providers]]\n{BOGUS_KEY} = 1"),
        ),
        ("webauthn", format!("[webauthn]\n{BOGUS_KEY} = 1")),
        ("http", format!("[http]\n{BOGUS_KEY} = 1")),
        ("piv", format!("[piv]\n{BOGUS_KEY} = 1")),
    ];

    let mut problems = Vec::new();
    for (table, probe) in &probes {
        let accepted = accepted_keys(table, probe);
        let listed = documented.get(*table).cloned().unwrap_or_default();
        for key in accepted.difference(&listed) {
            problems.push(format!(
                "{}: key `{key}` is accepted by the code but has no reference row in {DOC}",
                show(table)
            ));
        }
        for key in listed.difference(&accepted) {
            problems.push(format!(
                "{}: key `{key}` is documented in {DOC} but the code refuses it",
                show(table)
            ));
        }
    }
    for table in documented.keys() {
        if !probes.iter().any(|(t, _)| t == table) {
            problems.push(format!(
                "{}: documented in {DOC} but not a table of config.toml \
                 (or missing from this test's probes)",
                show(table)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
