//! Every `rampart …`, `rampart-ca …` and `rampart-bastion …` command line the
//! documentation shows must be one the real binaries accept.
//!
//! The commands are taken from the Markdown files (the README, each crate's
//! README, `packaging/README.md` and everything under `docs/`, runbooks
//! included): every line of a fenced code block and every inline code span.
//! Each line is split into shell words the way a POSIX shell would (quotes,
//! `$(…)`, backslash line continuations, `|`, `;`, `&&`, redirections and
//! comments), prefixes such as `sudo`, `runuser -u USER --` and `VAR=value` are
//! skipped, and a command whose program is one of the three binaries is run as
//! the built binary with `--help` appended (before a `--`, if there is one;
//! right after `ssh` for `rampart ssh`, whose other words are ssh's).
//!
//! clap parses the words before `--help` as it meets them, so an unknown
//! subcommand, an unknown flag, a flag without its value or a value its parser
//! rejects (a duration, an enum) fails the run, while missing required
//! arguments do not: documentation may show a partial command. Synopsis
//! notation is read as what it means, every optional part present:
//! `[--ttl 1h]` as `--ttl 1h`, `[--a|--b]` as both, `G...` as `G`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_e2e::process::run;
use rampart_e2e::{bin, workspace_root};

/// The programs whose command lines are checked.
const PROGRAMS: [&str; 3] = ["rampart", "rampart-ca", "rampart-bastion"];

/// Words that may come before the program without being the program.
const PREFIXES: [&str; 6] = ["sudo", "runuser", "env", "exec", "nice", "time"];

/// Inline code spans that start with a program name but are not command
/// lines (a log line the daemon prints, a line of an `allowed_signers` file).
const NOT_COMMANDS: [&str; 2] = [
    "rampart-ca listening on https://…",
    r#"rampart-ca namespaces="rampart-krl@rampart" <user CA key>"#,
];

/// The Markdown files whose commands are checked.
fn documents() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut out = Vec::new();
    let mut push_md = |dir: &Path| {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    };
    push_md(&root);
    for dir in [
        "ca",
        "cli",
        "bastion",
        "pam",
        "audit",
        "policy",
        "packaging",
    ] {
        let readme = root.join(dir).join("README.md");
        if readme.is_file() {
            out.push(readme);
        }
    }
    let mut dirs = vec![root.join("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The candidate command lines of a Markdown text: each line of each fenced
/// block (continuations joined), and each inline code span of the prose
/// (joined across line breaks).
fn snippets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut prose = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("```") {
            let mut block = String::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                block.push_str(l);
                block.push('\n');
            }
            let block = block.replace("\\\n", " ");
            out.extend(block.lines().map(str::to_owned));
            prose.push('\n');
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let mut rest = prose.as_str();
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        out.push(after[..end].replace('\n', " "));
        rest = &after[end + 1..];
    }
    out
}

/// Synopsis notation read as a command with every optional part present.
fn desynopsise(line: &str) -> String {
    let mut out = String::new();
    let mut depth = 0u32;
    for c in line.chars() {
        match c {
            '[' => {
                depth += 1;
                out.push(' ');
            }
            ']' if depth > 0 => {
                depth -= 1;
                out.push(' ');
            }
            '|' if depth > 0 => out.push(' '),
            _ => out.push(c),
        }
    }
    out.replace("...", " ")
}

/// The simple commands of a shell line, each as its words.
fn simple_commands(line: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = line.chars().collect();
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut subst = 0u32;
    let mut drop_next = false;
    let mut i = 0;
    let end_word = |word: &mut Option<String>, words: &mut Vec<String>, drop: &mut bool| {
        if let Some(w) = word.take() {
            if *drop {
                *drop = false;
            } else {
                words.push(w);
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let w = word.get_or_insert_with(String::new);
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '\\' && q == '"' && i + 1 < chars.len() {
                i += 1;
                w.push(chars[i]);
            } else {
                w.push(c);
            }
        } else if subst > 0 {
            w.push(c);
            match c {
                '(' => subst += 1,
                ')' => subst -= 1,
                _ => {}
            }
        } else if c == '\'' || c == '"' {
            quote = Some(c);
        } else if c == '$' && chars.get(i + 1) == Some(&'(') {
            w.push_str("$(");
            subst = 1;
            i += 1;
        } else if c == '\\' && i + 1 < chars.len() {
            i += 1;
            w.push(chars[i]);
        } else if c.is_whitespace() {
            if w.is_empty() {
                word = None;
            }
            end_word(&mut word, &mut words, &mut drop_next);
        } else if c == '#' && w.is_empty() {
            word = None;
            break;
        } else if matches!(c, '|' | ';' | '&' | '(' | ')') {
            if w.is_empty() {
                word = None;
            }
            end_word(&mut word, &mut words, &mut drop_next);
            commands.push(std::mem::take(&mut words));
        } else if matches!(c, '<' | '>') {
            if w.is_empty() {
                word = None;
            }
            end_word(&mut word, &mut words, &mut drop_next);
            // The redirection's target is not an argument.
            drop_next = true;
            if matches!(chars.get(i + 1), Some('>' | '&')) {
                i += 1;
            }
        } else {
            w.push(c);
        }
        i += 1;
    }
    end_word(&mut word, &mut words, &mut drop_next);
    commands.push(words);
    commands.retain(|c| !c.is_empty());
    commands
}

/// The program (one of [`PROGRAMS`]) a word names, if it names one: the bare
/// name, or a path to a built or installed binary.
fn program(word: &str) -> Option<&'static str> {
    PROGRAMS.into_iter().find(|p| {
        word == *p
            || [
                format!("/bin/{p}"),
                format!("target/debug/{p}"),
                format!("target/release/{p}"),
            ]
            .iter()
            .any(|suffix| word.ends_with(suffix.as_str()))
    })
}

/// The program and its arguments, when `words` runs one of [`PROGRAMS`].
fn rampart_command(words: &[String]) -> Option<(&'static str, Vec<String>)> {
    let mut i = 0;
    while let Some(w) = words.get(i) {
        if let Some(p) = program(w) {
            return Some((p, words[i + 1..].to_vec()));
        }
        let assignment = w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        // Before the program: only prefix commands, their options and
        // environment assignments (`cargo build -p rampart-ca` runs cargo).
        if !(PREFIXES.contains(&w.as_str()) || assignment || (i > 0 && w.starts_with('-'))) {
            return None;
        }
        // `runuser -u USER`, `sudo -u USER`, `nice -n 10`: the option's value.
        if matches!(w.as_str(), "-u" | "-n" | "-g") {
            i += 1;
        }
        i += 1;
    }
    None
}

/// Every documented command line: (file, the line as written, program, args).
fn documented_commands() -> Vec<(String, String, &'static str, Vec<String>)> {
    let root = workspace_root();
    let mut out = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc
            .strip_prefix(&root)
            .unwrap_or(&doc)
            .display()
            .to_string();
        for snippet in snippets(&text) {
            if NOT_COMMANDS.contains(&snippet.trim()) {
                continue;
            }
            for words in simple_commands(&desynopsise(&snippet)) {
                if let Some((prog, args)) = rampart_command(&words) {
                    out.push((name.clone(), snippet.clone(), prog, args));
                }
            }
        }
    }
    out
}

#[test]
fn the_shell_splitter_reads_what_the_docs_write() {
    let split = |s: &str| simple_commands(&desynopsise(s));
    assert_eq!(
        split(
            r#"runuser -u rampart-ca -- rampart audit export --since "$(date -d '1 hour ago' +%F)" | less"#
        ),
        vec![
            vec![
                "runuser",
                "-u",
                "rampart-ca",
                "--",
                "rampart",
                "audit",
                "export",
                "--since",
                "$(date -d '1 hour ago' +%F)"
            ],
            vec!["less"]
        ]
    );
    assert_eq!(
        split("rampart admin invite USER [--ttl 24h]   # comment > x"),
        vec![vec!["rampart", "admin", "invite", "USER", "--ttl", "24h"]]
    );
    assert_eq!(
        split("rampart keys add NAME [--fido2|--webauthn] > out.txt && sshd -t"),
        vec![
            vec!["rampart", "keys", "add", "NAME", "--fido2", "--webauthn"],
            vec!["sshd", "-t"]
        ]
    );
    let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        rampart_command(&words("runuser -u rampart-ca -- rampart-ca init --dir D")),
        Some((
            "rampart-ca",
            vec!["init".into(), "--dir".into(), "D".into()]
        ))
    );
    assert_eq!(
        rampart_command(&words("RAMPART_HOME=/x ./target/debug/rampart status")),
        Some(("rampart", vec!["status".into()]))
    );
    assert_eq!(rampart_command(&words("journalctl -u rampart-ca")), None);
    assert_eq!(
        rampart_command(&words("X=1 cargo build -p rampart-ca -p rampart-bastion")),
        None
    );
    assert_eq!(rampart_command(&words("ls /var/lib/rampart-ca")), None);
}

#[test]
fn every_documented_command_parses_with_the_real_binaries() {
    let commands = documented_commands();
    // The docs show dozens of commands; finding few means the extraction broke.
    assert!(
        commands.len() > 50,
        "only {} documented commands found",
        commands.len()
    );
    for prog in PROGRAMS {
        assert!(
            commands.iter().any(|(_, _, p, _)| *p == prog),
            "no documented {prog} command found"
        );
    }
    let mut failures = Vec::new();
    for (file, line, prog, args) in &commands {
        let mut args = args.clone();
        // `rampart ssh` hands every word after it to ssh, so only a `--help`
        // right after `ssh` is its own.
        let at = if *prog == "rampart" && args.first().is_some_and(|a| a == "ssh") {
            1
        } else {
            args.iter().position(|a| a == "--").unwrap_or(args.len())
        };
        args.insert(at, "--help".to_owned());
        let mut c = Command::new(bin(prog));
        c.args(&args)
            .env_remove("RAMPART_CA")
            .env_remove("RAMPART_BASTION_TOKEN");
        let out = run(c);
        if !out.status.success() {
            failures.push(format!(
                "{file}: `{line}`\n    {prog} {}\n    {}",
                args.join(" "),
                out.stderr.trim().replace('\n', "\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} documented commands do not parse:\n{}",
        failures.len(),
        commands.len(),
        failures.join("\n")
    );
}
