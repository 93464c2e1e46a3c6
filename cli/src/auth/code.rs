//! Reading a one-time code from the terminal or standard input.

use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};

use zeroize::Zeroizing;

use crate::error::CliError;

/// Longest line read for a code; TOTP codes are 6 digits and recovery codes short.
const MAX_CODE_LEN: usize = 128;

/// Read one code. With `from_stdin` nothing is printed; otherwise `prompt` goes to
/// stderr (so stdout stays clean for scripts) and the answer is read from stdin.
/// Spaces and dashes people type for readability in TOTP codes are kept for
/// recovery codes but stripped from digits-only input.
///
/// At a terminal the answer is not echoed: a recovery code on screen (or in a
/// terminal recording) is a standing credential.
pub fn read_code(prompt: &str, from_stdin: bool) -> Result<Zeroizing<String>, CliError> {
    if !from_stdin {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        if std::io::stdin().is_terminal() {
            let line = Zeroizing::new(
                rpassword::read_password()
                    .map_err(|e| CliError::Usage(format!("cannot read the code: {e}")))?,
            );
            return normalize(&line);
        }
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .take(MAX_CODE_LEN as u64 + 2)
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("cannot read the code: {e}")))?;
    normalize(&line)
}

/// Trim, refuse empty or over-long input, and drop blanks inside an all-digit code.
fn normalize(line: &str) -> Result<Zeroizing<String>, CliError> {
    let code = line.trim();
    if code.is_empty() {
        return Err(CliError::Usage("no code given".to_owned()));
    }
    if code.len() > MAX_CODE_LEN {
        return Err(CliError::Usage("the code is too long".to_owned()));
    }
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.chars().all(|c| c.is_ascii_digit()) {
        Ok(Zeroizing::new(compact))
    } else {
        Ok(Zeroizing::new(code.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_codes() {
        assert_eq!(normalize("123 456\n").unwrap().as_str(), "123456");
        assert_eq!(normalize("  abcd-efgh \n").unwrap().as_str(), "abcd-efgh");
        assert_eq!(normalize("\n").unwrap_err().to_string(), "no code given");
        assert!(normalize(&"9".repeat(200)).is_err());
    }
}
