//! The shell completion files the Debian packages install, and bash driving them.
//!
//! The files are committed under `packaging/completions/` (cargo-deb packages files
//! that exist, and `cargo-deb --no-build` runs no code of ours), so two tests need
//! the same table: `tests/tests/completions.rs` checks the committed files are what
//! the binaries print now, `tests/tests/packages.rs` that dpkg puts them where each
//! shell looks.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::run;
use crate::{require_peer, workspace_root};

/// Every binary a package ships with a `completions` subcommand.
pub const BINARIES: [&str; 3] = ["rampart", "rampart-ca", "rampart-bastion"];

/// The shells whose completions the packages install (the binaries also print
/// elvish and powershell, which Debian has no standard place for).
pub const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

/// `packaging/completions/BIN.SHELL`: the committed script cargo-deb packages.
pub fn committed(bin: &str, shell: &str) -> PathBuf {
    workspace_root()
        .join("packaging/completions")
        .join(format!("{bin}.{shell}"))
}

/// Where Debian's shells look for a command's completions (bash-completion's
/// on-demand loader, zsh's vendor `fpath`, fish's vendor directory).
pub fn installed(bin: &str, shell: &str) -> String {
    match shell {
        "bash" => format!("/usr/share/bash-completion/completions/{bin}"),
        "zsh" => format!("/usr/share/zsh/vendor-completions/_{bin}"),
        "fish" => format!("/usr/share/fish/vendor_completions.d/{bin}.fish"),
        other => panic!("no packaged completions for {other}"),
    }
}

/// What bash offers for the last of `words` (the command line so far, the
/// command first), with the completion `script` loaded.
///
/// Readline's part is played by hand: source the script, look up the function it
/// registered for the command with `complete -p` (so a script that registers
/// under another name fails here), set `COMP_WORDS`/`COMP_CWORD`/`COMP_LINE`/
/// `COMP_POINT` and call that function with the command, the current and the
/// previous word, as bash does on TAB. Returns `COMPREPLY`, one entry per item.
pub fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    assert!(words.len() >= 2, "a command and the word to complete");
    let bash = require_peer("bash");
    let program = r#"
source "$1" || exit 3
shift
spec=$(complete -p "$1") || { echo "no completion registered for $1" >&2; exit 4; }
func=${spec##* -F }
func=${func%% *}
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
"$func" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
[ "${#COMPREPLY[@]}" -eq 0 ] || printf '%s\n' "${COMPREPLY[@]}"
"#;
    let mut c = Command::new(bash);
    c.args(["--norc", "--noprofile", "-c", program, "bash"])
        .arg(script)
        .args(words)
        .env_remove("BASH_ENV");
    let out = run(c);
    out.assert_success(&format!("bash completion of {words:?}"));
    out.stdout.lines().map(str::to_owned).collect()
}
