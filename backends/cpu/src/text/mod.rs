//! Reference kernels of the `text` family.

mod regex_full_match;
mod string_split;
mod tfidf_vectorizer;

use xnpu_core::broadcast::{broadcast_shapes, BroadcastIndex};
use xnpu_core::{Error, Result, Tensor};
use xnpu_linalg::buf;
use xnpu_ops::text::*;

use crate::args::tensor;

kernel!(StringNormalizer, |o, inputs, _| Ok(vec![
    string_normalizer(o, tensor(inputs, 0)?)?.into()
]));
kernel!(StringSplit, |o, inputs, _| string_split::run(
    o,
    tensor(inputs, 0)?
));
kernel!(StringConcat, |_, inputs, _| Ok(vec![string_concat(
    tensor(inputs, 0)?,
    tensor(inputs, 1)?
)?
.into()]));
kernel!(RegexFullMatch, |o, inputs, _| Ok(vec![
    regex_full_match::run(o, tensor(inputs, 0)?)?.into()
]));
kernel!(TfIdfVectorizer, |o, inputs, _| Ok(vec![
    tfidf_vectorizer::run(o, tensor(inputs, 0)?)?.into()
]));

fn string_normalizer(op: &StringNormalizer, x: &Tensor) -> Result<Tensor> {
    let strings = x.strings()?;
    let two_d = match x.shape() {
        [_] => false,
        [1, _] => true,
        s => {
            return Err(Error::compute(format!(
                "the input must have shape [C] or [1, C], got {s:?}"
            )))
        }
    };
    let folded_stops: Vec<String> = op.stopwords.iter().map(|w| w.to_lowercase()).collect();
    let is_stop = |s: &String| {
        if op.case_sensitive {
            op.stopwords.contains(s)
        } else {
            folded_stops.contains(&s.to_lowercase())
        }
    };
    let mut kept: Vec<String> = strings
        .iter()
        .filter(|s| !is_stop(s))
        .map(|s| match op.case_change {
            CaseChange::None => s.clone(),
            CaseChange::Lower => s.to_lowercase(),
            CaseChange::Upper => s.to_uppercase(),
        })
        .collect();
    if kept.is_empty() {
        kept.push(String::new());
    }
    let shape = if two_d {
        vec![1, kept.len()]
    } else {
        vec![kept.len()]
    };
    Tensor::from_strings(shape, kept)
}

fn string_concat(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let (a, b) = (x.strings()?, y.strings()?);
    let shape = broadcast_shapes(&[x.shape(), y.shape()])?;
    let ia = BroadcastIndex::new(x.shape(), &shape)?;
    let ib = BroadcastIndex::new(y.shape(), &shape)?;
    // Broadcasting makes far more strings than the inputs hold ([N, 1] with [1, M]).
    let out = buf::collected(
        ia.zip(ib).map(|(i, j)| format!("{}{}", a[i], b[j])),
        "StringConcat's output",
    )?;
    Tensor::from_strings(shape, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(shape: Vec<usize>, v: &[&str]) -> Tensor {
        Tensor::from_strings(shape, v.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    #[test]
    fn normalizer_drops_stopwords_case_insensitively() {
        let op = StringNormalizer {
            case_change: CaseChange::Upper,
            case_sensitive: false,
            stopwords: vec!["monday".into()],
            locale: String::new(),
        };
        let x = strs(vec![1, 3], &["Monday", "tuesday", "é"]);
        let y = string_normalizer(&op, &x).unwrap();
        assert_eq!(y.shape(), &[1, 2]);
        assert_eq!(
            y.strings().unwrap(),
            &["TUESDAY".to_string(), "É".to_string()]
        );
        let all = strs(vec![2], &["MONDAY", "monday"]);
        let y = string_normalizer(&op, &all).unwrap();
        assert_eq!(y.strings().unwrap(), &[String::new()]);
        assert!(string_normalizer(&op, &strs(vec![2, 1], &["a", "b"])).is_err());
    }

    #[test]
    fn concat_broadcasts() {
        let x = strs(vec![2, 1], &["a", "b"]);
        let y = strs(vec![3], &["1", "2", "3"]);
        let z = string_concat(&x, &y).unwrap();
        assert_eq!(z.shape(), &[2, 3]);
        assert_eq!(z.strings().unwrap().join(","), "a1,a2,a3,b1,b2,b3");
        assert!(string_concat(&strs(vec![2], &["a", "b"]), &y).is_err());
    }
}
