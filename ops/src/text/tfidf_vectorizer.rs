use xnpu_core::{DType, Dim, Error, Result, Shape, TensorType, ValueType};

use crate::infer::input;
use crate::{InferInput, OpDef};

/// What TfIdfVectorizer outputs for an n-gram of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TfIdfMode {
    /// The count of the n-gram.
    Tf,
    /// Its weight when it occurs at least once (1 without weights), else 0.
    Idf,
    /// Its weight times its count (the count without weights).
    TfIdf,
}

/// The n-grams TfIdfVectorizer counts: all 1-grams, then all 2-grams, and so on.
#[derive(Clone, Debug, PartialEq)]
pub enum NgramPool {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl NgramPool {
    pub fn len(&self) -> usize {
        match self {
            NgramPool::Ints(v) => v.len(),
            NgramPool::Strings(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// TfIdfVectorizer (ONNX opset 9): counts, in each row of the input (shape `[C]` or `[B, C]`,
/// int32/int64 for an int pool, string for a string pool), the n-grams of the pool.
///
/// The pool holds the n-grams of length 1 from `ngram_counts[0]`, of length 2 from
/// `ngram_counts[1]`, and so on (each section split into consecutive n-grams); the k-th n-gram
/// of the pool (counted over all sections) is counted in output column `ngram_indexes[k]`.
/// Only n-grams of length `min_gram_length..=max_gram_length` are counted; an n-gram of length
/// n >= 2 may skip up to `max_skip_count` items between its elements (the same gap throughout:
/// items `i, i+s+1, i+2(s+1), ...`), each gap counted separately. When an n-gram occurs twice
/// in the pool, its last occurrence decides the column. The output is f32 of shape
/// `[max(ngram_indexes)+1]` or `[B, max(ngram_indexes)+1]`, weighted by `mode` and `weights`
/// (indexed by output column).
#[derive(Clone, Debug, PartialEq)]
pub struct TfIdfVectorizer {
    pub mode: TfIdfMode,
    pub min_gram_length: usize,
    pub max_gram_length: usize,
    pub max_skip_count: usize,
    pub ngram_counts: Vec<usize>,
    pub ngram_indexes: Vec<usize>,
    pub pool: NgramPool,
    /// Empty when not given.
    pub weights: Vec<f32>,
}

impl TfIdfVectorizer {
    /// The length of an output row (saturating: an index of usize::MAX asks for a row
    /// no allocation can hold, which the kernel reports).
    pub fn output_size(&self) -> usize {
        self.ngram_indexes
            .iter()
            .max()
            .map_or(0, |m| m.saturating_add(1))
    }

    /// The n-grams of the pool with the output column of each, in pool order, for the lengths
    /// that are counted: `(start in the pool, length, column)`.
    pub fn grams(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        let mut id = 0;
        for (i, &start) in self.ngram_counts.iter().enumerate() {
            let n = i + 1;
            // Clamped to the pool: a section cannot hold more n-grams than the pool has
            // items (an attribute of 2^62 is not 2^62 n-grams to walk).
            let end = self
                .ngram_counts
                .get(i + 1)
                .copied()
                .unwrap_or(self.pool.len())
                .min(self.pool.len());
            let count = end.saturating_sub(start) / n;
            for k in 0..count {
                if (self.min_gram_length..=self.max_gram_length).contains(&n) {
                    if let Some(&col) = self.ngram_indexes.get(id) {
                        out.push((start + k * n, n, col));
                    }
                }
                id += 1;
            }
        }
        out
    }
}

impl OpDef for TfIdfVectorizer {
    const NAMES: &'static [&'static str] = &["TfIdfVectorizer"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input 0 is required"))?;
        if let Some(d) = x.dtype() {
            let ok = match self.pool {
                NgramPool::Ints(_) => matches!(d, DType::I32 | DType::I64),
                NgramPool::Strings(_) => d == DType::String,
            };
            if !ok {
                return Err(Error::model(format!(
                    "the input is {d}, which does not match a pool of {}",
                    match self.pool {
                        NgramPool::Ints(_) => "int64s (expected int32 or int64)",
                        NgramPool::Strings(_) => "strings",
                    }
                )));
            }
        }
        let out = Dim::Known(self.output_size());
        let shape = match x.shape() {
            Some(s) if s.rank() <= 1 => Some(Shape(vec![out])),
            Some(s) if s.rank() == 2 => Some(Shape(vec![s.0[0].clone(), out])),
            Some(s) => {
                return Err(Error::model(format!(
                    "the input must have shape [C] or [B, C], got {s}"
                )))
            }
            None => None,
        };
        Ok(vec![ValueType::Tensor(TensorType {
            dtype: DType::F32,
            shape,
        })])
    }
}
