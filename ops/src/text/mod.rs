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

use xnpu_core::{DType, Error, Result};

use crate::infer::input;
use crate::InferInput;

/// The `text` family's ops, declared once: `text_ops!(cb!(args))` calls
/// `cb!(args text: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! text_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* text:
            StringNormalizer StringSplit StringConcat RegexFullMatch TfIdfVectorizer
        );
    };
}

text_ops!(family!());

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
