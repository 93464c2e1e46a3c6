//! Target-name globs for bastion access: `*` matches any run of characters
//! (including none), `?` exactly one. Matching is ASCII case-insensitive because
//! host names are (RFC 4343).

/// Whether `text` matches `pattern`.
///
/// The classic greedy algorithm with one backtrack point: linear in practice and
/// never recursive, so a hostile pattern like `*a*a*a*a*b` cannot blow the stack.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let t: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position of the last `*` seen, and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some('*'), _) => {
                star = Some((pi, ti));
                pi += 1;
            }
            (Some(pc), Some(tc)) if *pc == '?' || pc == tc => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

/// Whether some name matches both `a` and `b` (either may hold wildcards).
///
/// Dynamic programming over (position in `a`, position in `b`): a `*` on one
/// side either ends or absorbs the other side's next symbol, two plain symbols
/// must agree (`?` agrees with any). Quadratic in the pattern lengths, which
/// the policy bounds at 253.
pub(crate) fn globs_intersect(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (n, m) = (a.len(), b.len());
    // ok[i * (m + 1) + j]: a[i..] and b[j..] have a common match. Filled from
    // the ends; a cell past either end reads as false.
    let width = m + 1;
    let mut ok = vec![false; (n + 1) * width];
    for i in (0..=n).rev() {
        for j in (0..=m).rev() {
            let at = |i: usize, j: usize| ok.get(i * width + j).copied().unwrap_or(false);
            let here = match (a.get(i), b.get(j)) {
                (None, None) => true,
                (Some('*'), _) => at(i + 1, j) || (j < m && at(i, j + 1)),
                (_, Some('*')) => at(i, j + 1) || (i < n && at(i + 1, j)),
                (Some(x), Some(y)) => (*x == '?' || *y == '?' || x == y) && at(i + 1, j + 1),
                _ => false,
            };
            if let Some(cell) = ok.get_mut(i * width + j) {
                *cell = here;
            }
        }
    }
    ok.first().copied().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::{glob_match, globs_intersect};

    #[test]
    fn intersections() {
        let cases = [
            ("db-*", "db-1", true),
            ("db-*", "*-1", true),
            ("db-*", "web-*", false),
            ("db-?", "db-12", false),
            ("db-?", "db-*", true),
            ("*", "anything", true),
            ("a*b", "*c", false),
            ("a*b", "*b", true),
            ("DB-*", "db-1", true),
            ("db-1", "db-1", true),
            ("db-1", "db-2", false),
            ("", "", true),
            ("", "*", true),
            ("", "?", false),
            ("*a*a*a*a*a*b", "*a*a*a*a*a*c", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(globs_intersect(a, b), want, "{a:?} & {b:?}");
            assert_eq!(globs_intersect(b, a), want, "{b:?} & {a:?}");
        }
    }

    #[test]
    fn table() {
        let cases = [
            ("*", "anything", true),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("prod-*", "prod-db-1", true),
            ("prod-*", "prod-", true),
            ("prod-*", "staging-db", false),
            ("db-?", "db-1", true),
            ("db-?", "db-12", false),
            ("*.example.com", "a.b.example.com", true),
            ("*.example.com", "example.com", false),
            ("PROD-*", "prod-x", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob_match(p, t), want, "{p:?} vs {t:?}");
        }
    }
}
