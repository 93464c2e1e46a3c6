//! Issuance benchmark: a real `rampart-ca` (HTTPS on loopback, SQLite, durable
//! audit chain) under N concurrent clients, against a baseline measured in the same
//! run: OpenSSH's own `ssh-keygen -s` signing certificates one process at a time.
//!
//! ```text
//! cargo run --release -p rampart-ca --example issue_bench -- --clients 16 --seconds 10 --users 100
//! cargo run --release -p rampart-ca --example issue_bench -- --clients 16 --seconds 10 --users 100 --softhsm 1
//! ```
//!
//! `--softhsm 1` makes the user and host CA keys in a fresh SoftHSM2 token
//! (`apt-get install softhsm2`) and signs through PKCS#11; `--database
//! postgres://…` keeps the CA's state in that (empty) PostgreSQL database, and
//! with it `--cas 2` serves from two CAs on that one database (a copy of the
//! first CA's directory, as a second CA host would have; the clients split
//! between them). `scripts/bench-ha` runs these side by side (file keys +
//! SQLite, SoftHSM, PostgreSQL with one and two CAs on a throwaway local cluster).
//!
//! It prints certificates/s with p50/p99 latency for (a) issuance on an existing
//! session (factor already verified), (b) full TOTP logins (login + certificate),
//! and where the time goes (signing alone, in-process).

// A benchmark harness, not a daemon: a panic here is a failed run.
// A benchmark stamps its events and codes with the real time.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_api::{self as api, paths, Client, Fingerprint};
use rampart_ca::init::{InitOptions, PassphraseChoice, Pkcs11Init};

struct Args {
    clients: usize,
    seconds: u64,
    users: usize,
    softhsm: bool,
    /// `postgres://…` of an empty database for the CA's state.
    database: Option<String>,
    /// CAs serving (more than one only with `database`).
    cas: usize,
}

fn args() -> Args {
    let mut a = Args {
        clients: 16,
        seconds: 10,
        users: 100,
        softhsm: false,
        database: None,
        cas: 1,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i + 1 < argv.len() {
        if argv[i] == "--database" {
            a.database = Some(argv[i + 1].clone());
            i += 2;
            continue;
        }
        let v: u64 = argv[i + 1].parse().expect("numeric argument");
        match argv[i].as_str() {
            "--clients" => a.clients = v as usize,
            "--seconds" => a.seconds = v,
            "--users" => a.users = v as usize,
            "--softhsm" => a.softhsm = v != 0,
            "--cas" => a.cas = (v as usize).max(1),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    assert!(
        a.cas == 1 || a.database.is_some(),
        "--cas above 1 needs --database postgres://…: CAs share state only there"
    );
    a
}

/// Serve the CA configured at `config` on its own runtime (own threads, as
/// its own process would have); its address once it listens.
fn serve(config: &Path) -> std::net::SocketAddr {
    let config = rampart_ca::Config::load(config).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(rampart_ca::server::serve(config, move |addr| {
            let _ = tx.send(addr);
        }))
        .unwrap();
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("CA started")
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

fn report(name: &str, mut lat: Vec<Duration>, wall: Duration) -> f64 {
    lat.sort();
    let rate = lat.len() as f64 / wall.as_secs_f64();
    println!(
        "{name:<44} {:>8} ops in {:>5.1} s  {rate:>9.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        lat.len(),
        wall.as_secs_f64(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99)
    );
    rate
}

fn totp_code(uri: &str, steps_ahead: i64) -> String {
    let totp = totp_rs::TOTP::from_url(uri).expect("otpauth uri");
    let now = chrono::Utc::now().timestamp() + steps_ahead * 30;
    totp.generate(now as u64)
}

fn enrol_and_login(client: &Client, invite: &str, user: &str) -> api::LoginResponse {
    let started: api::EnrollStartResponse = client
        .post_json(
            paths::ENROLL_START,
            &api::EnrollStartRequest {
                invite: invite.into(),
            },
        )
        .expect("enroll start");
    let _: api::EnrollFinishResponse = client
        .post_json(
            paths::ENROLL_FINISH,
            &api::EnrollFinishRequest {
                enrollment_token: started.enrollment_token,
                totp_code: totp_code(started.totp_uri.expose(), 0).into(),
            },
        )
        .expect("enroll finish");
    // The confirming step is spent; the next one logs in.
    client
        .post_json(
            paths::LOGIN,
            &api::LoginRequest {
                user: user.into(),
                factor: api::FactorProof::Totp {
                    code: totp_code(started.totp_uri.expose(), 1).into(),
                },
            },
        )
        .expect("login")
}

fn user_key(i: usize) -> String {
    let key = rampart_signer::FileCaKey::generate(&format!("bench-{i}")).unwrap();
    key.private_key().public_key().to_openssh().unwrap()
}

fn baseline_ssh_keygen(dir: &Path, count: usize) -> f64 {
    let ca = dir.join("baseline_ca");
    let user = dir.join("baseline_user");
    for (path, comment) in [(&ca, "ca"), (&user, "user")] {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path)
            .status()
            .expect("ssh-keygen (openssh-client) is required for the baseline")
            .success();
        assert!(ok);
    }
    let mut lat = Vec::with_capacity(count);
    let start = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(&ca)
            .args([
                "-I",
                "bench",
                "-n",
                "alice",
                "-V",
                "-5m:+1h",
                "-z",
                &i.to_string(),
            ])
            .arg(user.with_extension("pub"))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok);
        lat.push(t.elapsed());
    }
    report(
        "baseline: ssh-keygen -s (one process each)",
        lat,
        start.elapsed(),
    )
}

/// A fresh SoftHSM2 token in `dir` (its config set for this process), and the
/// init options that put the CA keys in it.
fn softhsm_token(dir: &Path) -> Pkcs11Init {
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .unwrap();
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, "bench-pin").unwrap();
    std::fs::set_permissions(
        &pin_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let ok = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "bench"])
        .args(["--pin", "bench-pin", "--so-pin", "bench-so-pin"])
        .status()
        .expect("softhsm2-util (apt-get install softhsm2)")
        .success();
    assert!(ok, "softhsm2-util --init-token");
    Pkcs11Init {
        module: "/usr/lib/softhsm/libsofthsm2.so".into(),
        token: "bench".into(),
        pin_file,
    }
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let pkcs11 = a.softhsm.then(|| softhsm_token(dir.path()));
    let out = rampart_ca::init::init(&InitOptions {
        dir: dir.path().join("ca"),
        listen: "127.0.0.1:0".into(),
        admin: "admin".into(),
        passphrase: PassphraseChoice::InsecureBesideKeys,
        extra_names: vec![],
        pkcs11,
        database: a
            .database
            .clone()
            .map(|url| rampart_ca::init::InitPostgres {
                url,
                password_file: None,
                tls_ca_file: None,
            }),
    })
    .expect("init");
    if a.softhsm {
        println!("CA keys in a SoftHSM2 token (PKCS#11)");
    }
    if a.database.is_some() {
        println!("CA state in PostgreSQL");
    }
    // Further CAs: copies of the directory (same keys and database, each its
    // own audit witness), made before the first one starts.
    let ca_dir = dir.path().join("ca");
    let configs: Vec<std::path::PathBuf> = (1..=a.cas)
        .map(|n| {
            if n == 1 {
                return out.config.clone();
            }
            let copy = dir.path().join(format!("ca-{n}"));
            let ok = Command::new("cp")
                .arg("-a")
                .arg(&ca_dir)
                .arg(&copy)
                .status()
                .unwrap()
                .success();
            assert!(ok, "cp -a the CA directory");
            copy.join(out.config.strip_prefix(&ca_dir).unwrap())
        })
        .collect();
    let urls: Vec<String> = configs
        .iter()
        .map(|c| format!("https://{}", serve(c)))
        .collect();
    let url = urls[0].clone();
    if a.cas > 1 {
        println!("{} CAs on the one database: {}", a.cas, urls.join(", "));
    }
    let pin = Fingerprint::parse(&out.tls_fingerprint).unwrap();
    let anon = Client::new(&url, pin).unwrap();
    let admin_login = enrol_and_login(&anon, out.admin_invite.expose(), "admin");
    let admin = anon.clone().with_token(admin_login.session_token.clone());
    println!(
        "rampart-ca on {url}; {} clients, {} s; machine: {} cores",
        a.clients,
        a.seconds,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // Baseline first, on an idle machine.
    let base = baseline_ssh_keygen(dir.path(), 200);

    // (a) issuance on an existing session.
    let keys: Arc<Vec<String>> = Arc::new((0..64).map(user_key).collect());
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let start = Instant::now();
    let handles: Vec<_> = (0..a.clients)
        .map(|c| {
            let client = Client::new(&urls[c % urls.len()], pin)
                .unwrap()
                .with_token(admin_login.session_token.clone());
            let keys = Arc::clone(&keys);
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut i = c;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let _: api::CertResponse = client
                        .post_json(
                            paths::CERTS,
                            &api::CertRequest {
                                public_key: keys[i % keys.len()].clone(),
                                ttl_seconds: Some(3600),
                            },
                        )
                        .expect("issue");
                    lat.push(t.elapsed());
                    i += a.clients;
                }
                lat
            })
        })
        .collect();
    let lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let issued = report(
        "rampart: certificate on a session (HTTPS)",
        lat,
        start.elapsed(),
    );

    // (b) full TOTP logins: users enrolled first (not timed), then each logs in once.
    let names: Vec<String> = (0..a.users).map(|i| format!("bench{i}")).collect();
    let mut enrolled = Vec::new();
    for n in &names {
        let _: api::User = admin
            .post_json(
                paths::ADMIN_USERS,
                &api::CreateUserRequest {
                    name: n.clone(),
                    groups: vec!["engineers".into()],
                    admin: false,
                },
            )
            .unwrap();
        let inv: api::InviteResponse = admin
            .post_json(
                paths::ADMIN_INVITES,
                &api::InviteRequest {
                    user: n.clone(),
                    ttl_seconds: None,
                },
            )
            .unwrap();
        let started: api::EnrollStartResponse = anon
            .post_json(
                paths::ENROLL_START,
                &api::EnrollStartRequest { invite: inv.code },
            )
            .unwrap();
        let _: api::EnrollFinishResponse = anon
            .post_json(
                paths::ENROLL_FINISH,
                &api::EnrollFinishRequest {
                    enrollment_token: started.enrollment_token,
                    totp_code: totp_code(started.totp_uri.expose(), 0).into(),
                },
            )
            .unwrap();
        enrolled.push((n.clone(), started.totp_uri));
    }
    let work = Arc::new(std::sync::Mutex::new(enrolled));
    let start = Instant::now();
    let handles: Vec<_> = (0..a.clients)
        .map(|c| {
            let client = Client::new(&urls[c % urls.len()], pin).unwrap();
            let work = Arc::clone(&work);
            let keys = Arc::clone(&keys);
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                loop {
                    let Some((user, uri)) = work.lock().unwrap().pop() else {
                        break;
                    };
                    let t = Instant::now();
                    let login: api::LoginResponse = client
                        .post_json(
                            paths::LOGIN,
                            &api::LoginRequest {
                                user,
                                factor: api::FactorProof::Totp {
                                    code: totp_code(uri.expose(), 1).into(),
                                },
                            },
                        )
                        .expect("login");
                    let _: api::CertResponse = client
                        .clone()
                        .with_token(login.session_token)
                        .post_json(
                            paths::CERTS,
                            &api::CertRequest {
                                public_key: keys[lat.len() % keys.len()].clone(),
                                ttl_seconds: None,
                            },
                        )
                        .expect("issue after login");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    report(
        "rampart: full TOTP login + certificate",
        lat,
        start.elapsed(),
    );

    // Where the time goes: signing alone, in-process, one core.
    let ca = rampart_signer::FileCaKey::generate("bench").unwrap();
    let policy = rampart_policy::Policy::from_toml(rampart_ca::init::DEFAULT_POLICY).unwrap();
    let groups = vec!["engineers".to_string()];
    let now = chrono::Utc::now();
    let subject = ssh_key::PublicKey::from_openssh(&keys[0]).unwrap();
    let n = 5000;
    let start = Instant::now();
    for serial in 0..n {
        let req = rampart_policy::CertRequest {
            user: "alice",
            groups: &groups,
            factor: rampart_policy::Factor::Totp,
            mfa_time: now,
            requested_ttl: None,
            login: None,
        };
        let rampart_policy::Decision::Allow(grant) = rampart_policy::evaluate(&req, &policy, now)
        else {
            panic!("default policy denies engineers")
        };
        let spec = rampart_signer::UserCertSpec::from_grant(
            &grant,
            subject.clone(),
            serial,
            rampart_signer::MfaEvidence {
                method: "totp".into(),
                time: now,
                event_id: "01J".into(),
            },
            now,
        )
        .unwrap();
        rampart_signer::sign_user_cert(&ca, &spec).unwrap();
    }
    let per = start.elapsed() / n as u32;
    println!(
        "in-process policy + sign only: {:.1} µs per certificate ({:.0}/s on one core)",
        per.as_secs_f64() * 1e6,
        1.0 / per.as_secs_f64()
    );
    println!(
        "ratio: rampart HTTPS issuance / ssh-keygen -s = {:.1}x",
        issued / base
    );
}
