//! How Rampart's programs word a failure for a person: one line (journald,
//! a terminal, a CI log each show one entry), every cause once.

use std::ops::Range;

/// An error and its causes as one line, `outer: cause: root`. A cause whose
/// text the line already holds is left out (many errors print their source in
/// their own message, and walking the chain would say it twice), and line
/// breaks from lower layers are folded into spaces.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A parse error in a text file as `line N: message`: the span's first line
/// in `src` and the parser's message without its drawing of the source (toml's
/// `Display` draws a multi-line snippet). Pass `toml::de::Error::span()` and
/// `message()`.
pub fn at_line(src: &str, span: Option<Range<usize>>, message: &str) -> String {
    let message = message.trim();
    match span {
        Some(span) => {
            let line = src
                .get(..span.start)
                .map_or(0, |s| s.bytes().filter(|b| *b == b'\n').count())
                .saturating_add(1);
            format!("line {line}: {message}")
        }
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Read {
        path: &'static str,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("listen on {addr}")]
    struct Listen {
        addr: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn each_cause_once_on_one_line() {
        let read = Read {
            path: "/etc/rampart/ca.toml",
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file"),
        };
        assert_eq!(one_line(&read), "/etc/rampart/ca.toml: No such file");
        let listen = Listen {
            addr: "127.0.0.1:22",
            source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "in\nuse"),
        };
        assert_eq!(one_line(&listen), "listen on 127.0.0.1:22: in use");
    }

    #[test]
    fn parse_errors_name_their_line() {
        let src = "a = 1\nb = [\n";
        assert_eq!(
            at_line(src, Some(8..9), " unclosed array\n"),
            "line 2: unclosed array"
        );
        assert_eq!(at_line(src, None, "bad"), "bad");
        // A span past the end (a parser's bug) still gives a line, not a panic.
        assert_eq!(at_line(src, Some(99..100), "x"), "line 1: x");
    }
}
