//! A throwaway PostgreSQL for the CA's PostgreSQL store: `initdb` into a
//! temporary directory, the server on a free loopback port (socket in that
//! directory, trust authentication), stopped and deleted on drop. As root the
//! cluster is made and run by the `postgres` user, which PostgreSQL insists
//! on. Binaries from Debian's `postgresql` (`/usr/lib/postgresql/<major>/bin`,
//! newest major); without them the test fails saying what to install.
//!
//! (The CA crate's unit tests have their own copy of this in
//! `ca/src/store/postgres/testing.rs`: this crate drives binaries and does
//! not link the CA.)

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::{free_port, tempdir};

/// A running cluster; [`Postgres::url`] names a database on it.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn find_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("psql").is_file()).then_some((major, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): install \
             the Debian package `postgresql` (scripts/test does)"
        ),
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Postgres {
    /// Make and start a cluster.
    pub fn start() -> Postgres {
        let bin = find_bin();
        let as_postgres = euid_is_root();
        let pg = Postgres {
            dir: tempdir("postgres"),
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
            assert!(out.status.success(), "chown postgres: {}", text(&out));
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
        let mut pg = pg;
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port();
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                pg.port,
                pg.dir.path().display()
            );
            let log = pg.dir.path().join("server.log").display().to_string();
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

    /// `postgres://postgres@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Create database `name`; its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    /// Run `sql` on database `db` with psql; its unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url(db),
            ])
            .args(["-c", sql])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql {sql:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

fn euid_is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
    }
}
