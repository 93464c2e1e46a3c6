//! `rampart ssh [ssh-flags…] LOGIN@TARGET [command…]`: the stock `ssh`, told
//! which bastion to jump through and which config to read, after checking the
//! target against the CA's answer for `rampart ls`.
//!
//! The arguments go to ssh unchanged; this module only finds the destination
//! among them (ssh's own rules: options, with the ones that take a value,
//! until the first other argument) so that it can check it.

use std::path::Path;
use std::process::{Command, ExitCode};

use crate::error::{io_detail, CliError};
use crate::home::Home;
use crate::targets;

/// ssh(1) options that take a value (`-p 22` or `-p22`), as of OpenSSH 9.
const WITH_VALUE: &str = "BbcDEeFIiJLlmOoPpQRSWw";

/// The destination found among ssh's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Position of the destination argument.
    pub index: usize,
    /// `LOGIN` from `LOGIN@TARGET`, else the last `-l`.
    pub login: Option<String>,
    /// The target name.
    pub target: String,
}

/// Find the destination in `args` (what follows `rampart ssh`), and refuse the
/// options that would fight the ones `rampart ssh` adds.
pub fn split_args(args: &[String]) -> Result<Destination, CliError> {
    let mut login_flag = None;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if arg == "--" {
            i += 1;
            break;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            break;
        };
        for (pos, flag) in flags.char_indices() {
            if !WITH_VALUE.contains(flag) {
                continue;
            }
            let attached = &flags[pos + flag.len_utf8()..];
            let value = if attached.is_empty() {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| CliError::Usage(format!("ssh option -{flag} needs a value")))?
            } else {
                attached.to_owned()
            };
            match flag {
                'J' => return Err(CliError::Usage(
                    "rampart ssh picks the bastion itself (-J); use plain ssh to jump elsewhere"
                        .to_owned(),
                )),
                'F' => {
                    return Err(CliError::Usage(
                        "rampart ssh reads Rampart's ssh config (-F); use plain ssh with your own"
                            .to_owned(),
                    ))
                }
                'l' => login_flag = Some(value),
                _ => {}
            }
            break;
        }
        i += 1;
    }
    let dest = args.get(i).ok_or_else(|| {
        CliError::Usage("no destination: rampart ssh [ssh-flags…] LOGIN@TARGET [command…]".into())
    })?;
    let (login, target) = match dest.rsplit_once('@') {
        Some((l, t)) => (Some(l.to_owned()), t.to_owned()),
        None => (login_flag, dest.clone()),
    };
    if target.is_empty() || target.contains(':') || target.starts_with('-') {
        return Err(CliError::Usage(format!(
            "{dest:?} is not LOGIN@TARGET (a target name as `rampart ls` shows it)"
        )));
    }
    Ok(Destination {
        index: i,
        login,
        target,
    })
}

/// The ssh command line: Rampart's config, the bastion, then the user's
/// arguments exactly as given.
pub fn ssh_command(config: &Path, bastion: &str, args: &[String]) -> Vec<String> {
    let mut out = vec![
        "-F".to_owned(),
        config.display().to_string(),
        "-J".to_owned(),
        bastion.to_owned(),
    ];
    out.extend(args.iter().cloned());
    out
}

/// Run `rampart ssh`: check, then replace this process with ssh.
pub fn run(home: &Home, args: &[String]) -> Result<ExitCode, CliError> {
    let dest = split_args(args)?;
    let listing = targets::fetch(home)?;
    let row = targets::find(&listing, &dest.target).ok_or_else(|| {
        CliError::Refused(format!(
            "{} is not a target you may reach (see `rampart ls`)",
            dest.target
        ))
    })?;
    if let Some(login) = &dest.login {
        if !row.logins.iter().any(|l| l == login) {
            return Err(CliError::Refused(format!(
                "login {login} is not granted on {} (yours there: {})",
                dest.target,
                row.logins.join(", ")
            )));
        }
    }
    let config = home.ssh_config_path();
    let text = match std::fs::read_to_string(&config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CliError::log_in_first()),
        Err(e) => return Err(CliError::no_input(&config, &e)),
    };
    // A bastion the policy gained since the last login has no Host block yet:
    // ssh would dial its bare name without the certificate. Say so instead.
    if !crate::ssh::has_host_block(&text, &row.bastion) {
        return Err(CliError::NotLoggedIn(format!(
            "{} is served by the bastion {}, which {} does not know yet: run `rampart login` again",
            dest.target,
            row.bastion,
            config.display()
        )));
    }
    let argv = ssh_command(&config, &row.bastion, args);
    let program = std::env::var_os("RAMPART_SSH").unwrap_or_else(|| "ssh".into());
    use std::os::unix::process::CommandExt as _;
    let err = Command::new(&program).args(&argv).exec();
    Err(CliError::Other(anyhow::anyhow!(
        "cannot run {}: {}",
        Path::new(&program).display(),
        io_detail(&err)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_destination_is_the_first_argument_that_is_no_option() {
        let d = split_args(&v(&["postgres@db-1", "psql", "-c", "select 1"])).unwrap();
        assert_eq!(
            d,
            Destination {
                index: 0,
                login: Some("postgres".into()),
                target: "db-1".into()
            }
        );
        // Options with values, attached or not, clustered flags.
        let d = split_args(&v(&[
            "-vt",
            "-p",
            "22",
            "-oBatchMode=yes",
            "-L8080:x:80",
            "-i",
            "k",
            "a@db-2",
            "ls",
            "-l",
        ]))
        .unwrap();
        assert_eq!((d.index, d.target.as_str()), (7, "db-2"));
        // -l names the login when the destination does not.
        let d = split_args(&v(&["-l", "root", "db-3"])).unwrap();
        assert_eq!(
            (d.login.as_deref(), d.target.as_str()),
            (Some("root"), "db-3")
        );
        let d = split_args(&v(&["-tl", "root", "db-3"])).unwrap();
        assert_eq!(d.login.as_deref(), Some("root"));
        // `--` ends the options.
        let d = split_args(&v(&["-v", "--", "a@db-4"])).unwrap();
        assert_eq!((d.index, d.target.as_str()), (2, "db-4"));
        // A login with an @ in it: the last @ separates the target.
        let d = split_args(&v(&["a@corp@db-5"])).unwrap();
        assert_eq!(
            (d.login.as_deref(), d.target.as_str()),
            (Some("a@corp"), "db-5")
        );
        let d = split_args(&v(&["db-6"])).unwrap();
        assert_eq!((d.login, d.target.as_str()), (None, "db-6"));
    }

    #[test]
    fn bad_or_conflicting_arguments_are_usage_errors() {
        for bad in [
            &[][..],
            &["-v"][..],
            &["-p"][..],
            &["-J", "elsewhere", "a@db-1"][..],
            &["-Jelsewhere", "a@db-1"][..],
            &["-F", "cfg", "a@db-1"][..],
            &["a@"][..],
            &["ssh://a@db-1:22"][..],
            &["a@db-1:22"][..],
        ] {
            assert!(
                matches!(split_args(&v(bad)), Err(CliError::Usage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_users_arguments_pass_through_unchanged_after_ours() {
        let args = v(&["-t", "a@db-1", "echo", "$HOME; rm -rf x", ""]);
        let cmd = ssh_command(Path::new("/h/ssh_config"), "bastion-1", &args);
        assert_eq!(cmd[..4], v(&["-F", "/h/ssh_config", "-J", "bastion-1"]));
        assert_eq!(cmd[4..], args);
    }
}
