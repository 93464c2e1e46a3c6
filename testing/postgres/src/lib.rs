//! A throwaway PostgreSQL for tests: `initdb` into a temporary directory, the
//! server on a free loopback port with its socket in that directory (trust
//! authentication), stopped and deleted on drop. Used by the CA store's and the
//! audit log's unit tests and by the end-to-end tests, so there is one copy.
//!
//! The binaries come from Debian's `postgresql` package
//! (`/usr/lib/postgresql/<major>/bin`; the newest major found wins). PostgreSQL
//! refuses to run as root, so as root the cluster is made and run by the
//! `postgres` user, and the directory is given to that user. A machine without
//! PostgreSQL fails the test with a message saying what to install: a test
//! that needs it never passes without it.
//!
//! The server runs with `fsync=off`: the tests stop it cleanly or throw the
//! data away, and durability against power loss is not what they measure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running PostgreSQL cluster with trust authentication on 127.0.0.1.
#[derive(Debug)]
pub struct TestPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The directory holding `initdb` and `pg_ctl`, newest major version first.
fn find_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((major, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             install the Debian package `postgresql` (scripts/test does)"
        ),
    }
}

fn euid_is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl TestPostgres {
    /// Make and start a cluster; panics with the server's log when it cannot.
    pub fn start() -> TestPostgres {
        Self::start_with(None)
    }

    /// [`TestPostgres::start`] with TLS on (`ssl = on`, this certificate and
    /// key, PEM) and plain TCP connections refused (`hostnossl … reject`
    /// first in `pg_hba.conf`), so that a client that connects at all used TLS.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> TestPostgres {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> TestPostgres {
        let bin = find_bin();
        let as_postgres = euid_is_root();
        let dir = tempfile::Builder::new()
            .prefix("rampart-pg")
            .tempdir()
            .expect("temporary directory");
        let pg = TestPostgres {
            dir,
            bin,
            port: 0,
            as_postgres,
        };
        if as_postgres {
            let out = Command::new("chown")
                .arg("postgres:")
                .arg(pg.dir.path())
                .output()
                .expect("run chown");
            assert!(
                out.status.success(),
                "chown postgres {}: {}",
                pg.dir.path().display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let data = pg.data();
        let out = pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "--auth=trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        if let Some((cert, key)) = tls {
            pg.enable_tls(cert, key);
        }
        // Another process may take the port between the probe and the bind:
        // try a few.
        let mut pg = pg;
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port();
            let opts = pg.options();
            let log = pg.log();
            let out = pg.run(
                "pg_ctl",
                &[
                    "start", "-w", "-t", "60", "-D", &data, "-l", &log, "-o", &opts,
                ],
            );
            if out.status.success() {
                return pg;
            }
            last = format!(
                "{}\n{}",
                text(&out),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("pg_ctl start failed: {last}");
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let path = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", path.display()))
    }

    fn enable_tls(&self, cert: &str, key: &str) {
        let data = self.dir.path().join("data");
        for (name, pem) in [("server.crt", cert), ("server.key", key)] {
            let path = data.join(name);
            std::fs::write(&path, pem).expect("write the server's TLS files");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod 600");
            if self.as_postgres {
                let out = Command::new("chown")
                    .arg("postgres:")
                    .arg(&path)
                    .output()
                    .expect("run chown");
                assert!(
                    out.status.success(),
                    "chown {}: {}",
                    path.display(),
                    text(&out)
                );
            }
        }
        let conf = data.join("postgresql.conf");
        let mut c = std::fs::read_to_string(&conf).expect("read postgresql.conf");
        c.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, c).expect("write postgresql.conf");
        let hba = data.join("pg_hba.conf");
        let rest = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        std::fs::write(
            &hba,
            format!(
                "hostnossl all all 127.0.0.1/32 reject\nhostnossl all all ::1/128 reject\n{rest}"
            ),
        )
        .expect("write pg_hba.conf");
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `db` as the superuser `postgres`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A URL for database `db` over the Unix socket in the cluster's
    /// directory, which works whatever TCP demands (TLS), for setting up.
    fn socket_url(&self, db: &str) -> String {
        // The socket directory as the host, percent-encoded (libpq and the
        // postgres crate both read it so).
        let dir = self.dir.path().display().to_string().replace('/', "%2F");
        format!("postgres://postgres@{dir}:{}/{db}", self.port)
    }

    /// Create database `name`; its URL.
    pub fn create_database(&self, name: &str) -> String {
        let mut c = postgres::Client::connect(&self.socket_url("postgres"), postgres::NoTls)
            .expect("connect to the test cluster");
        c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("create database");
        self.url(name)
    }

    /// A login role that must give `password` (SCRAM) over TCP, owning a new
    /// database of its name; that database's URL, without the password.
    pub fn create_role_with_password(&self, role: &str, password: &str) -> String {
        let mut c = postgres::Client::connect(&self.socket_url("postgres"), postgres::NoTls)
            .expect("connect to the test cluster");
        c.batch_execute(&format!(
            "SET password_encryption = 'scram-sha-256';
             CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}';"
        ))
        .expect("create role");
        c.batch_execute(&format!("CREATE DATABASE \"{role}\" OWNER \"{role}\""))
            .expect("create database");
        // Rules are read top down: this one comes before initdb's trust lines.
        let hba = self.dir.path().join("data/pg_hba.conf");
        let rest = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        std::fs::write(
            &hba,
            format!("host all \"{role}\" 127.0.0.1/32 scram-sha-256\n{rest}"),
        )
        .expect("write pg_hba.conf");
        let out = self.run("pg_ctl", &["reload", "-D", &self.data()]);
        assert!(out.status.success(), "pg_ctl reload: {}", text(&out));
        format!("postgres://{role}@127.0.0.1:{}/{role}", self.port)
    }

    /// The directory the cluster lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run `sql` on database `db` with `psql`; its unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.socket_url(db),
            ])
            .args(["-c", sql])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql {sql:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Stop the server (fast shutdown: clients are disconnected), keeping its
    /// data, as an outage would.
    pub fn stop(&self) {
        let out = self.run("pg_ctl", &["stop", "-D", &self.data(), "-m", "fast", "-w"]);
        assert!(out.status.success(), "pg_ctl stop: {}", text(&out));
    }

    /// Start a stopped server again on the same port.
    pub fn restart(&self) {
        let out = self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                &self.data(),
                "-l",
                &self.log(),
                "-o",
                &self.options(),
            ],
        );
        assert!(out.status.success(), "pg_ctl start: {}", text(&out));
    }

    fn log(&self) -> String {
        self.dir.path().join("server.log").display().to_string()
    }

    fn options(&self) -> String {
        format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        )
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.data();
        // Immediate: the data is thrown away anyway.
        let _ = self.run("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
    }
}

#[cfg(test)]
mod tests {
    use super::TestPostgres;

    #[test]
    fn a_throwaway_cluster_answers_and_is_gone_after_drop() {
        let pg = TestPostgres::start();
        let url = pg.create_database("probe");
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1);
        let dir = pg.dir().to_path_buf();
        let port = pg.port();
        drop(c);
        drop(pg);
        assert!(!dir.exists(), "the cluster's directory is deleted");
        assert!(
            postgres::Client::connect(
                &format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                postgres::NoTls
            )
            .is_err(),
            "the server is stopped"
        );
    }
}
