//! RegexFullMatch with the `regex` crate, its Perl classes made ASCII-only as in RE2.

use regex::Regex;
use xnpu_core::{Error, Result, Tensor};
use xnpu_ops::text::RegexFullMatch;

/// The ASCII meaning RE2 gives a Perl class escape (`\d \D \s \S \w \W`), as a bracket class.
fn ascii_class(escape: char) -> Option<&'static str> {
    Some(match escape {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => r"[\t\n\f\r ]",
        'S' => r"[^\t\n\f\r ]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        _ => return None,
    })
}

/// Rewrites an RE2 pattern for the `regex` crate, whose `\d \s \w \b` are Unicode-aware by
/// default: each Perl class becomes its ASCII bracket class (nested classes are allowed inside
/// `[...]`), and `\b \B` become ASCII word boundaries. Everything else is copied.
fn re2_to_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) => match ascii_class(e) {
                    Some(class) => out.push_str(class),
                    None if in_class == 0 && (e == 'b' || e == 'B') => {
                        out.push_str("(?-u:\\");
                        out.push(e);
                        out.push(')');
                    }
                    None => {
                        out.push('\\');
                        out.push(e);
                    }
                },
                None => out.push('\\'),
            },
            '[' => {
                out.push('[');
                if in_class > 0 && chars.peek() == Some(&':') {
                    // An ASCII class such as `[:alpha:]`: copy it up to its `:]`.
                    let mut prev = '[';
                    for d in chars.by_ref() {
                        out.push(d);
                        if prev == ':' && d == ']' {
                            break;
                        }
                        prev = d;
                    }
                    continue;
                }
                in_class += 1;
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                // A `]` first in a class is a literal.
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            ']' if in_class > 0 => {
                in_class -= 1;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

pub(super) fn run(op: &RegexFullMatch, x: &Tensor) -> Result<Tensor> {
    let full = format!(r"\A(?:{})\z", re2_to_regex(&op.pattern));
    let re = Regex::new(&full).map_err(|e| {
        Error::compute(format!(
            "the pattern {:?} is not a valid regex: {e}",
            op.pattern
        ))
    })?;
    let matches = xnpu_linalg::buf::collected(
        x.strings()?.iter().map(|s| re.is_match(s)),
        "RegexFullMatch's output",
    )?;
    Tensor::from_vec(x.shape().to_vec(), matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_match(pattern: &str, s: &str) -> bool {
        let op = RegexFullMatch {
            pattern: pattern.into(),
        };
        let x = Tensor::from_strings(vec![1], vec![s.into()]).unwrap();
        run(&op, &x).unwrap().to_vec::<bool>().unwrap()[0]
    }

    #[test]
    fn matches_whole_strings_only() {
        assert!(full_match(r"www\.[\w.-]+\.\bcom\b", "www.google.com"));
        assert!(!full_match(r"www\.[\w.-]+\.\bcom\b", "www.bbc.co.uk"));
        assert!(!full_match("ab", "abc"));
        assert!(full_match("a|ab", "ab"));
    }

    #[test]
    fn perl_classes_are_ascii_as_in_re2() {
        assert!(!full_match(r"\w+", "héllo"));
        assert!(full_match(r"[\w\s]+", "a b_1"));
        assert!(full_match(r"[^\W]+", "abc"));
        assert!(full_match(r"[[:alpha:]\d]+", "ab12"));
        assert!(full_match(r"[]a]+", "]a"));
        assert!(full_match(r"\D\S", "é!"));
    }

    #[test]
    fn an_invalid_pattern_is_an_error() {
        let op = RegexFullMatch {
            pattern: "(".into(),
        };
        let x = Tensor::from_strings(vec![0], vec![]).unwrap();
        let err = run(&op, &x).unwrap_err().to_string();
        assert!(err.contains("not a valid regex"), "{err}");
    }
}
