//! Throughput, latency and session rate through `rampart-bastion` against a
//! Debian `sshd` used as a plain ProxyJump host, measured in ONE run so the
//! ratios compare like with like (issue 3, "Measure").
//!
//! Ignored by default (it moves 4 GB). Run with a release bastion:
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-release cargo build --release -p rampart-bastion
//! cargo build --workspace
//! RAMPART_BASTION_BIN=/work/target-release/release/rampart-bastion \
//!   cargo nextest run -p rampart-e2e --test bastion_bench --run-ignored all --no-capture
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_e2e::bastion::{set_limit, Bastion, TargetSpec};
use rampart_e2e::{bootstrap_admin, onboard, Ca, KeyPair, Sshd, SshdOptions, TEST_ACCOUNT};

fn policy(admin: &str) -> String {
    format!(
        r#"version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.dev]
principals = ["{{user}}"]
logins = ["{{user}}", "{TEST_ACCOUNT}"]
min_factor = "otp"
extensions = ["permit-pty", "permit-port-forwarding"]
targets = {{ allow = ["db-*"] }}

[groups]
engineers = ["dev"]

[users]
"{admin}" = ["dev"]
"#
    )
}

fn certified_sshd(ca: &Ca, admin: &rampart_e2e::Enrolled, tag: &str) -> Sshd {
    let hostdir = ca.root().join(tag);
    std::fs::create_dir_all(&hostdir).unwrap();
    let host_key = KeyPair::ed25519(&hostdir, "ssh_host_ed25519_key");
    let host_cert = hostdir.join("ssh_host_ed25519_key-cert.pub");
    admin
        .cli
        .admin(&[
            "host-cert",
            "--name",
            "127.0.0.1",
            "--pubkey",
            host_key.public.to_str().unwrap(),
            "-o",
            host_cert.to_str().unwrap(),
        ])
        .assert_success("host-cert");
    let sshd = Sshd::start_with(SshdOptions {
        user_ca_keys: vec![ca.user_ca_pub()],
        host_key: Some(host_key),
        host_cert: Some(host_cert),
        host_ca_line: Some(ca.host_ca_pub()),
        extra_config: vec![
            "Subsystem sftp internal-sftp".into(),
            "MaxSessions 100".into(),
        ],
        ..SshdOptions::default()
    });
    // The per-session certificate (login principal) and alice's own (baseline).
    sshd.set_principals(TEST_ACCOUNT, &[TEST_ACCOUNT, "alice"]);
    sshd
}

fn sh(cmd: &str) -> Duration {
    let t = Instant::now();
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn sessions_per_second(config: &Path, host: &str, workers: usize, secs: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (done, failed) = (done.clone(), failed.clone());
            let config = config.to_path_buf();
            let host = host.to_owned();
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    let ok = Command::new("ssh")
                        .env_remove("SSH_AUTH_SOCK")
                        .arg("-F")
                        .arg(&config)
                        .arg(&host)
                        .arg("true")
                        .output()
                        .map(|o| o.status.success())
                        .unwrap_or(false);
                    if ok {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let f = failed.load(Ordering::Relaxed);
    assert_eq!(f, 0, "{f} sessions failed during the rate run");
    done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64()
}

#[test]
#[ignore = "benchmark: moves 4 GB; run explicitly (see the module doc)"]
fn bastion_against_an_openssh_jump_host() {
    let mut ca = Ca::init_with(None, "");
    ca.write_policy(&policy(&ca.info().admin_user.clone()));
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &["engineers"]);
    alice.login();
    let target = certified_sshd(&ca, &admin, "target");
    let jump = certified_sshd(&ca, &admin, "jump");
    let mut bastion = Bastion::join(
        &ca,
        &admin,
        "bastion-1",
        &[TargetSpec {
            name: "db-1".into(),
            address: "127.0.0.1".into(),
            port: target.port(),
            host_key: "host-ca".into(),
        }],
    );
    set_limit(&bastion.config_path(), "connections_per_second", 100_000);
    set_limit(&bastion.config_path(), "connection_burst", 100_000);
    set_limit(&bastion.config_path(), "max_sessions_per_user", 1000);
    bastion.start();
    let dir = rampart_e2e::bastion::scratch("bench");
    let cfg = bastion.ssh_config(&alice, dir.path(), &["db-1"]);
    // Baseline: the same target through sshd as a plain ProxyJump host, with
    // alice's own certificate end to end.
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "Host jump\n  HostName 127.0.0.1\n  Port {}\n  User {TEST_ACCOUNT}\n\
         Host base\n  HostName 127.0.0.1\n  Port {}\n  ProxyJump jump\n",
        jump.port(),
        target.port()
    ));
    std::fs::write(&cfg, text).unwrap();
    let c = cfg.display();
    let (r, b) = (
        format!("{TEST_ACCOUNT}@db-1"),
        format!("{TEST_ACCOUNT}@base"),
    );
    // Warm-up and sanity.
    sh(&format!("ssh -F {c} {r} true"));
    sh(&format!("ssh -F {c} {b} true"));

    let gib = 1u64 << 30;
    let up = |h: &str| {
        sh(&format!(
            "head -c {gib} /dev/zero | ssh -F {c} {h} 'cat > /dev/null'"
        ))
    };
    let down = |h: &str| {
        sh(&format!(
            "ssh -F {c} {h} 'head -c {gib} /dev/zero' > /dev/null"
        ))
    };
    let mbps = |d: Duration| gib as f64 / d.as_secs_f64() / 1e6;
    let (ru, bu) = (up(&r), up(&b));
    let (rd, bd) = (down(&r), down(&b));
    println!(
        "upload 1 GiB:   rampart {:.0} MB/s, openssh jump {:.0} MB/s, ratio {:.2}",
        mbps(ru),
        mbps(bu),
        bu.as_secs_f64() / ru.as_secs_f64()
    );
    println!(
        "download 1 GiB: rampart {:.0} MB/s, openssh jump {:.0} MB/s, ratio {:.2}",
        mbps(rd),
        mbps(bd),
        bd.as_secs_f64() / rd.as_secs_f64()
    );

    // Through a pty, which rampart records (asciicast, zstd, upload, seal):
    // 256 MiB of zeros as base64 text (~341 MB of terminal output).
    let q = 256u64 << 20;
    let pty = |h: &str| {
        sh(&format!(
            "ssh -tt -F {c} {h} 'head -c {q} /dev/zero | base64 -w 76' > /dev/null"
        ))
    };
    let (rp, bp) = (pty(&r), pty(&b));
    let text_mb = (q as f64 * 4.0 / 3.0 * 77.0 / 76.0) / 1e6;
    println!(
        "pty output {text_mb:.0} MB (recorded by rampart): rampart {:.0} MB/s, openssh jump {:.0} MB/s, ratio {:.2}",
        text_mb / rp.as_secs_f64(),
        text_mb / bp.as_secs_f64(),
        bp.as_secs_f64() / rp.as_secs_f64()
    );

    let n = 15;
    let lat = |h: &str| {
        median(
            (0..n)
                .map(|_| sh(&format!("ssh -F {c} {h} true")))
                .collect(),
        )
    };
    let (rl, bl) = (lat(&r), lat(&b));
    println!(
        "ssh -J … true median of {n}: rampart {:.0} ms, openssh jump {:.0} ms, ratio {:.2}",
        rl.as_secs_f64() * 1e3,
        bl.as_secs_f64() * 1e3,
        rl.as_secs_f64() / bl.as_secs_f64()
    );
    let rs = sessions_per_second(&cfg, &r, 8, 15);
    let bs = sessions_per_second(&cfg, &b, 8, 15);
    println!("sessions/s (8 parallel ssh clients, 15 s): rampart {rs:.1}, openssh jump {bs:.1}");
    bastion.stop();
}
