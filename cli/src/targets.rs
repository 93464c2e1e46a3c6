//! `rampart ls`: what the logged-in user may reach through the bastions, as
//! the CA answers it (`GET /v1/targets`, with the session token), and the
//! lookup `rampart ssh` does in the same answer.

use std::process::ExitCode;

use rampart_api::{paths, ClientError, TargetAccess, Targets};

use crate::ca::CaTarget;
use crate::error::CliError;
use crate::home::Home;

/// Ask the CA for the session user's own targets.
pub fn fetch(home: &Home) -> Result<Targets, CliError> {
    let session = home.live_session(crate::clock::now())?;
    let config = home.load_config()?;
    let target = CaTarget::for_session(&config)?;
    let client = target.client()?.with_token(session.token.clone());
    fetch_with(&client)
}

/// [`fetch`] with a client that already holds the session token.
pub fn fetch_with(client: &rampart_api::Client) -> Result<Targets, CliError> {
    match client.get_json::<Targets>(paths::TARGETS) {
        Ok(t) => Ok(t),
        Err(ClientError::Api { status: 404, .. }) => Err(CliError::Refused(
            "this CA does not list targets (it predates `rampart ls`); upgrade it".to_owned(),
        )),
        Err(e) => Err(CliError::from_session_call(e)),
    }
}

/// Run `rampart ls`.
pub fn ls(home: &Home, json: bool) -> Result<ExitCode, CliError> {
    let targets = fetch(home)?;
    if json {
        println!("{}", crate::output::json(&targets)?);
    } else {
        print!("{}", table(&targets));
    }
    Ok(ExitCode::SUCCESS)
}

/// The text listing: one aligned row per target.
pub fn table(t: &Targets) -> String {
    if t.targets.is_empty() {
        return match &t.denied {
            Some(why) => format!("No targets for {}: {why}\n", t.user),
            None => format!(
                "No targets for {}: no role of yours reaches a target a joined bastion serves.\n",
                t.user
            ),
        };
    }
    let head = ["TARGET", "LOGINS", "SESSION CHECK", "BASTION"];
    let rows: Vec<[String; 4]> = t
        .targets
        .iter()
        .map(|r| {
            let mut target = r.target.clone();
            if r.pattern {
                target.push_str(" (pattern)");
            }
            let mut bastion = r.bastion.clone();
            if !r.labels.is_empty() {
                let labels: Vec<String> =
                    r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                bastion.push_str(&format!(" (needs labels {})", labels.join(",")));
            }
            [
                printable(&target),
                printable(&r.logins.join(",")),
                r.session_check.clone(),
                printable(&bastion),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 4]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            l.push_str(cell);
            if i + 1 < cells.len() {
                l.push_str(&" ".repeat(w.saturating_sub(cell.chars().count()) + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(head);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3]]);
    }
    out
}

/// Control characters from the CA shown escaped, so a name cannot move the
/// terminal's cursor or fake a row.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// The row that serves `target`: an exact name first, else a registered
/// pattern matching it.
pub fn find<'a>(t: &'a Targets, target: &str) -> Option<&'a TargetAccess> {
    t.targets
        .iter()
        .find(|r| !r.pattern && r.target.eq_ignore_ascii_case(target))
        .or_else(|| {
            t.targets
                .iter()
                .find(|r| r.pattern && rampart_policy::target_matches(&r.target, target))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn row(target: &str, pattern: bool, logins: &[&str], check: &str) -> TargetAccess {
        TargetAccess {
            target: target.into(),
            pattern,
            bastion: "bastion-1".into(),
            logins: logins.iter().map(|s| s.to_string()).collect(),
            roles: vec!["dev".into()],
            session_check: check.into(),
            labels: BTreeMap::new(),
        }
    }

    fn targets(rows: Vec<TargetAccess>) -> Targets {
        Targets {
            user: "alice".into(),
            targets: rows,
            bastions: vec![],
            denied: None,
        }
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let t = targets(vec![
            row("db-1", false, &["alice", "postgres"], "code"),
            row("db-*", true, &["alice"], "none"),
        ]);
        assert_eq!(
            table(&t),
            "TARGET          LOGINS          SESSION CHECK  BASTION\n\
             db-1            alice,postgres  code           bastion-1\n\
             db-* (pattern)  alice           none           bastion-1\n"
        );
        let mut bad = row("db-1\u{1b}[2J", false, &["a"], "none");
        bad.labels.insert("env".into(), "prod".into());
        let out = table(&targets(vec![bad]));
        assert!(!out.contains('\u{1b}'), "{out:?}");
        assert!(out.contains("(needs labels env=prod)"), "{out}");
        let empty = targets(vec![]);
        assert!(table(&empty).starts_with("No targets for alice"));
    }

    #[test]
    fn names_match_exactly_before_patterns() {
        let t = targets(vec![
            row("db-*", true, &["alice"], "none"),
            row("db-1", false, &["postgres"], "code"),
        ]);
        assert_eq!(find(&t, "DB-1").unwrap().logins, ["postgres"]);
        assert_eq!(find(&t, "db-7").unwrap().logins, ["alice"]);
        assert!(find(&t, "web-1").is_none());
        assert!(find(&t, "xdb-1").is_none());
    }
}
