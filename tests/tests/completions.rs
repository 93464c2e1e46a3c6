//! Shell completions of `rampart`, `rampart-ca` and `rampart-bastion`, from the
//! real binaries: the committed scripts the packages install are what each binary
//! prints now, and bash, given a binary's script, completes that binary's
//! subcommands and flags. (That dpkg puts the scripts where the shells look is
//! `packages.rs`'s part.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::process::Command;

use rampart_e2e::completions::{bash_complete, committed, BINARIES, SHELLS};
use rampart_e2e::process::run;
use rampart_e2e::{bin, tempdir, CmdOutput};

fn run_bin(name: &str, args: &[&str]) -> CmdOutput {
    let mut c = Command::new(bin(name));
    c.args(args);
    run(c)
}

/// The subcommands `BIN --help` lists (its "Commands:" section), without `help`.
fn subcommands(name: &str) -> Vec<String> {
    let help = run_bin(name, &["--help"]);
    help.assert_success(&format!("{name} --help"));
    help.stdout
        .lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// cargo-deb packages `packaging/completions/` as committed; a CLI change that
/// is not regenerated there would ship completions for flags that no longer
/// exist (or none for new ones).
#[test]
fn committed_completion_scripts_are_what_the_binaries_print_now() {
    let mut stale = Vec::new();
    for name in BINARIES {
        for shell in SHELLS {
            let printed = run_bin(name, &["completions", shell]);
            printed.assert_success(&format!("{name} completions {shell}"));
            let path = committed(name, shell);
            let file =
                fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if file != printed.stdout {
                let line = file
                    .lines()
                    .zip(printed.stdout.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| file.lines().count().min(printed.stdout.lines().count()))
                    + 1;
                stale.push(format!(
                    "packaging/completions/{name}.{shell} differs from `{name} completions \
                     {shell}` from line {line}"
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nregenerate them all with scripts/completions",
        stale.join("\n")
    );
}

#[test]
fn each_binary_prints_a_bash_script_that_completes_its_subcommands() {
    let dir = tempdir("completions");
    for name in BINARIES {
        let subs = subcommands(name);
        assert!(
            subs.len() >= 3 && subs.iter().any(|s| s == "completions"),
            "{name} --help lists {subs:?}"
        );
        let out = run_bin(name, &["completions", "bash"]);
        out.assert_success(&format!("{name} completions bash"));
        // Registered for the binary's own name: bash-completion loads
        // /usr/share/bash-completion/completions/NAME when NAME is typed.
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with("complete -F ")
                    && l.ends_with(&format!(" {name}"))),
            "{name}: no `complete -F … {name}` line"
        );
        for sub in &subs {
            assert!(
                out.stdout
                    .contains(&format!("{},{sub})", name.replace('-', "__"))),
                "{name} completions bash does not name the subcommand {sub}"
            );
        }
        let script = dir.path().join(format!("{name}.bash"));
        fs::write(&script, &out.stdout).unwrap();

        // TAB after the command: every subcommand (and help and the flags).
        let offered = bash_complete(&script, &[name, ""]);
        for sub in &subs {
            assert!(
                offered.contains(sub),
                "{name} <TAB>: {offered:?} lacks {sub}"
            );
        }
        // TAB after a prefix: only the matching subcommands.
        for sub in &subs {
            let prefix = &sub[..3.min(sub.len())];
            let offered = bash_complete(&script, &[name, prefix]);
            let want: Vec<&String> = subs.iter().filter(|s| s.starts_with(prefix)).collect();
            assert!(
                !offered.is_empty()
                    && offered.iter().all(|o| o.starts_with(prefix))
                    && want.iter().all(|w| offered.contains(w)),
                "{name} {prefix}<TAB>: {offered:?}, want {want:?}"
            );
        }
        // A word no subcommand starts with: nothing.
        assert_eq!(
            bash_complete(&script, &[name, "zz"]),
            Vec::<String>::new(),
            "{name} zz<TAB>"
        );
        // A subcommand's own arguments: the shells after `completions` (bash
        // offers the flags there too).
        let mut shells: Vec<String> = bash_complete(&script, &[name, "completions", ""])
            .into_iter()
            .filter(|w| !w.starts_with('-'))
            .collect();
        shells.sort();
        assert_eq!(
            shells,
            ["bash", "elvish", "fish", "powershell", "zsh"],
            "{name} completions <TAB>"
        );
    }
}

/// Flags of a subcommand complete from that subcommand's definition, not from
/// another's.
#[test]
fn bash_completes_the_flags_of_each_subcommand() {
    let dir = tempdir("completion-flags");
    for (name, words, want) in [
        (
            "rampart-ca",
            &["rampart-ca", "init", "--pass"][..],
            &["--passphrase-env", "--passphrase-file"][..],
        ),
        ("rampart-ca", &["rampart-ca", "backup", "--o"], &["--out"]),
        ("rampart-ca", &["rampart-ca", "serve", "--o"], &[]),
        (
            "rampart-bastion",
            &["rampart-bastion", "join", "--ca-"],
            &["--ca-fingerprint"],
        ),
        (
            "rampart-bastion",
            &["rampart-bastion", "check", "--ca"],
            &[],
        ),
        ("rampart", &["rampart", "admin", "bas"], &["bastion-token"]),
    ] {
        let script = dir.path().join(format!("{name}.bash"));
        if !script.exists() {
            let out = run_bin(name, &["completions", "bash"]);
            out.assert_success(&format!("{name} completions bash"));
            fs::write(&script, &out.stdout).unwrap();
        }
        let mut offered = bash_complete(&script, words);
        offered.sort();
        assert_eq!(offered, want, "{words:?}<TAB>");
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error_and_every_known_one_prints() {
    for name in ["rampart-ca", "rampart-bastion"] {
        let out = run_bin(name, &["completions", "tcsh"]);
        assert_eq!(out.status.code(), Some(2), "{out}");
        assert!(
            out.stderr.contains("invalid value 'tcsh'") && out.stdout.is_empty(),
            "{out}"
        );
        let out = run_bin(name, &["completions"]);
        assert_eq!(out.status.code(), Some(2), "{out}");
        for (shell, marker) in [
            ("bash", format!("complete -F _{} ", name.replace('-', "__"))),
            ("zsh", format!("#compdef {name}")),
            ("fish", format!("complete -c {name} ")),
            ("elvish", format!("edit:completion:arg-completer[{name}]")),
            ("powershell", format!("-CommandName '{name}'")),
        ] {
            let out = run_bin(name, &["completions", shell]);
            out.assert_success(&format!("{name} completions {shell}"));
            assert!(
                out.stdout.contains(&marker),
                "{name} {shell}: no {marker:?}"
            );
            assert!(out.stderr.is_empty(), "{out}");
        }
    }
}
