//! StringSplit: Python `str.split` semantics, padded to a dense tensor.

use xnpu_core::shape::checked_numel;
use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::text::StringSplit;

/// Whitespace as Python's `str.split()` sees it.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// `s.split(None, maxsplit)` in Python: runs of whitespace separate pieces, leading whitespace
/// is ignored, and the unsplit rest keeps its trailing whitespace.
fn split_whitespace(s: &str, maxsplit: Option<usize>) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s.trim_start_matches(is_space);
    while !rest.is_empty() {
        if maxsplit == Some(out.len()) {
            out.push(rest);
            break;
        }
        match rest.find(is_space) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = rest[i..].trim_start_matches(is_space);
            }
            None => {
                out.push(rest);
                break;
            }
        }
    }
    out
}

/// `s.split(sep, maxsplit)` in Python.
fn split_on<'a>(s: &'a str, sep: &str, maxsplit: Option<usize>) -> Vec<&'a str> {
    match maxsplit {
        Some(m) => s.splitn(m.saturating_add(1), sep).collect(),
        None => s.split(sep).collect(),
    }
}

pub(super) fn run(op: &StringSplit, x: &Tensor) -> Result<Vec<Value>> {
    let pieces: Vec<Vec<&str>> = x
        .strings()?
        .iter()
        .map(|s| match &op.delimiter {
            Some(d) => split_on(s, d, op.maxsplit),
            None => split_whitespace(s, op.maxsplit),
        })
        .collect();
    let width = pieces.iter().map(Vec::len).max().unwrap_or(0);
    let mut shape = x.shape().to_vec();
    shape.push(width);
    // Every string padded to the most pieces of any: far more than the input holds when one
    // string has many pieces and the others few.
    let n = checked_numel(&shape)?;
    let mut out = buf::reserved(n, "StringSplit's output")?;
    for p in &pieces {
        out.extend(p.iter().map(|s| s.to_string()));
        out.resize(out.len() + (width - p.len()), String::new());
    }
    let counts = buf::collected(
        pieces.iter().map(|p| p.len() as i64),
        "StringSplit's counts",
    )?;
    if out.len() != n {
        return Err(Error::compute(
            "StringSplit produced an inconsistent number of pieces",
        ));
    }
    Ok(vec![
        Tensor::from_strings(shape, out)?.into(),
        Tensor::from_vec(x.shape().to_vec(), counts)?.into(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_split_follows_python() {
        assert_eq!(split_whitespace("  a  b c ", None), vec!["a", "b", "c"]);
        assert_eq!(split_whitespace("  a  b c ", Some(1)), vec!["a", "b c "]);
        assert_eq!(split_whitespace("   ", None), Vec::<&str>::new());
        assert_eq!(split_on("a--b", "-", None), vec!["a", "", "b"]);
        assert_eq!(split_on("a-b-c", "-", Some(1)), vec!["a", "b-c"]);
        assert_eq!(split_on("", "-", None), vec![""]);
    }

    #[test]
    fn rows_are_padded_to_the_longest() {
        let x = Tensor::from_strings(vec![2], vec!["a b c".into(), "d".into()]).unwrap();
        let op = StringSplit {
            delimiter: None,
            maxsplit: None,
        };
        let out = run(&op, &x).unwrap();
        let y = out[0].as_tensor().unwrap();
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(y.strings().unwrap().join(","), "a,b,c,d,,");
        assert_eq!(
            out[1].as_tensor().unwrap().to_i64_vec().unwrap(),
            vec![3, 1]
        );
    }
}
