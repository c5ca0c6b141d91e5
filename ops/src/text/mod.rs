//! The `text` op family: ops on string tensors and n-gram counting.

mod regex_full_match;
mod string_concat;
mod string_normalizer;
mod string_split;
mod tfidf_vectorizer;

pub use regex_full_match::RegexFullMatch;
pub use string_concat::StringConcat;
pub use string_normalizer::{CaseChange, StringNormalizer};
pub use string_split::StringSplit;
pub use tfidf_vectorizer::{NgramPool, TfIdfMode, TfIdfVectorizer};

use xnpu_core::{DType, Error, Result, ValueType};

use crate::infer::input;
use crate::InferInput;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    StringNormalizer(StringNormalizer),
    StringSplit(StringSplit),
    StringConcat(StringConcat),
    RegexFullMatch(RegexFullMatch),
    TfIdfVectorizer(TfIdfVectorizer),
}

impl Op {
    /// The op's name as users know it (the ONNX op type where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Op::StringNormalizer(_) => "StringNormalizer",
            Op::StringSplit(_) => "StringSplit",
            Op::StringConcat(_) => "StringConcat",
            Op::RegexFullMatch(_) => "RegexFullMatch",
            Op::TfIdfVectorizer(_) => "TfIdfVectorizer",
        }
    }

    /// Output types from input types (and constant inputs). Dims that cannot be known before
    /// run time are left as symbols or the whole type as `ValueType::Unknown`.
    pub fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        match self {
            Op::StringNormalizer(op) => op.infer(inputs, n_outputs),
            Op::StringSplit(op) => op.infer(inputs, n_outputs),
            Op::StringConcat(op) => op.infer(inputs, n_outputs),
            Op::RegexFullMatch(op) => op.infer(inputs, n_outputs),
            Op::TfIdfVectorizer(op) => op.infer(inputs, n_outputs),
        }
    }
}

/// Input `i`, which must be present and (when its dtype is known) a string tensor.
pub(crate) fn string_input<'a, 'b>(
    inputs: &'b [Option<InferInput<'a>>],
    i: usize,
) -> Result<&'b InferInput<'a>> {
    let x = input(inputs, i).ok_or_else(|| Error::model(format!("input {i} is required")))?;
    match x.dtype() {
        Some(d) if d != DType::String => Err(Error::model(format!(
            "input {i} must be a string tensor, got {d}"
        ))),
        _ => Ok(x),
    }
}
