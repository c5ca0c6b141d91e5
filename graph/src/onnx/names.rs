//! Names from a model written into messages. A model's names (of nodes, values, ops,
//! domains, functions, files) are any bytes its author chose: a newline or an escape sequence
//! (`\x1b[2J`) printed as it is would forge lines or repaint the terminal of whoever reads the
//! error. Names go into messages through [`quoted`] (or [`escaped`] where a message does not
//! quote them), and everything import returns passes [`escape_error`] as a last guard.

use std::borrow::Cow;
use std::fmt::Write;
use std::path::PathBuf;

use xnpu_core::Error;

/// Whether `c` must not reach a terminal as it is: control characters (C0, DEL, C1) and the
/// bidirectional overrides, which reorder the text around them.
fn hazardous(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` with its control characters written as escapes (`\n`, `\x1b`, `\u{202e}`); borrowed
/// when there are none.
pub fn escaped(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hazardous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hazardous(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` in double quotes, with quotes, backslashes and control characters escaped: the form
/// messages give a name (`node "conv_7"`).
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if hazardous(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn escaped_owned(s: String) -> String {
    match escaped(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(e) => e,
    }
}

/// The error with every control character in its messages (and paths) escaped.
pub fn escape_error(e: Error) -> Error {
    match e {
        Error::Model(m) => Error::Model(escaped_owned(m)),
        Error::Unsupported(m) => Error::Unsupported(escaped_owned(m)),
        Error::InvalidInput(m) => Error::InvalidInput(escaped_owned(m)),
        Error::Compute(m) => Error::Compute(escaped_owned(m)),
        Error::Io { path, source } => {
            let shown = path.to_string_lossy();
            let path = match escaped(&shown) {
                Cow::Borrowed(_) => path,
                Cow::Owned(e) => PathBuf::from(e),
            };
            Error::Io { path, source }
        }
        Error::Context { context, source } => Error::Context {
            context: escaped_owned(context),
            source: Box::new(escape_error(*source)),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_names_unchanged() {
        assert_eq!(quoted("conv_7"), "\"conv_7\"");
        assert_eq!(
            quoted("a\nb\x1b[2J\u{202e}c"),
            "\"a\\nb\\x1b[2J\\u{202e}c\""
        );
        assert_eq!(quoted("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(escaped("résumé"), "résumé");
        assert!(matches!(escaped("plain"), Cow::Borrowed(_)));
        assert_eq!(escaped("x\ty\u{7f}\u{85}"), "x\\ty\\x7f\\x85");
    }

    #[test]
    fn an_error_chain_is_escaped_throughout() {
        let e = Error::model("value \"a\nb\" is defined twice")
            .context("node \"\x1b]0;pwned\x07\" (Relu)")
            .context("m\r.onnx");
        let shown = escape_error(e).to_string();
        assert_eq!(
            shown,
            "m\\r.onnx: node \"\\x1b]0;pwned\\x07\" (Relu): value \"a\\nb\" is defined twice"
        );
        assert!(!shown.chars().any(|c| c.is_control()));
    }
}
