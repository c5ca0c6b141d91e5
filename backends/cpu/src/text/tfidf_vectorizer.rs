//! TfIdfVectorizer: n-gram counting with a hash map from n-gram to output column.

use std::collections::HashMap;
use std::hash::Hash;

use xnpu_core::{DType, Error, Result, Tensor};
use xnpu_linalg::buf;
use xnpu_ops::text::{NgramPool, TfIdfMode, TfIdfVectorizer};

/// Counts, for each row of `rows` (`n_rows` rows of `c` items), the pool's n-grams, into a
/// `[n_rows, output_size]` table. The output size is an attribute and an empty input may
/// have any number of rows: the table is allocated fallibly, and no row is walked when it
/// is empty.
fn count<K: Eq + Hash + Clone>(
    op: &TfIdfVectorizer,
    pool: &[K],
    items: &[K],
    n_rows: usize,
    c: usize,
) -> Result<Vec<u64>> {
    let width = op.output_size();
    // Later occurrences of an n-gram in the pool replace earlier ones.
    let grams: HashMap<&[K], usize> = op
        .grams()
        .into_iter()
        .filter_map(|(start, n, col)| pool.get(start..start + n).map(|g| (g, col)))
        .collect();
    const WHAT: &str = "TfIdfVectorizer's output";
    let mut freq = buf::zeroed(buf::count(&[n_rows, width], WHAT)?, WHAT)?;
    if freq.is_empty() {
        return Ok(freq);
    }
    let longest = op.max_gram_length.min(c);
    let mut gram = buf::reserved(longest, "an n-gram")?;
    for r in 0..n_rows {
        let row = &items[r * c..(r + 1) * c];
        // Lengths from 1: an n-gram of length 0 has no items to match.
        for n in op.min_gram_length.max(1)..=longest {
            let max_skip = if n == 1 { 0 } else { op.max_skip_count };
            for skip in 0..=max_skip {
                let step = skip + 1;
                let span = (n - 1) * step;
                if span >= c {
                    break;
                }
                for start in 0..c - span {
                    gram.clear();
                    gram.extend((0..n).map(|k| row[start + k * step].clone()));
                    if let Some(&col) = grams.get(gram.as_slice()) {
                        freq[r * width + col] += 1;
                    }
                }
            }
        }
    }
    Ok(freq)
}

pub(super) fn run(op: &TfIdfVectorizer, x: &Tensor) -> Result<Tensor> {
    let (n_rows, c, batched) = match x.shape() {
        [] => (1, 1, false),
        [c] => (1, *c, false),
        [b, c] => (*b, *c, true),
        s => {
            return Err(Error::compute(format!(
                "the input must have shape [C] or [B, C], got {s:?}"
            )))
        }
    };
    let freq = match (&op.pool, x.dtype()) {
        (NgramPool::Ints(pool), DType::I32 | DType::I64) => {
            count(op, pool, &x.to_i64_vec()?, n_rows, c)?
        }
        (NgramPool::Strings(pool), DType::String) => count(op, pool, x.strings()?, n_rows, c)?,
        (_, d) => {
            return Err(Error::compute(format!(
                "the input is {d}, which does not match the pool ({})",
                match op.pool {
                    NgramPool::Ints(_) => "int32 or int64 expected",
                    NgramPool::Strings(_) => "string expected",
                }
            )))
        }
    };
    let width = op.output_size();
    let weight = |i: usize| op.weights.get(i % width.max(1)).copied();
    let y = buf::collected(
        freq.iter().enumerate().map(|(i, &f)| match op.mode {
            TfIdfMode::Tf => f as f32,
            TfIdfMode::Idf if f == 0 => 0.0,
            TfIdfMode::Idf => weight(i).unwrap_or(1.0),
            TfIdfMode::TfIdf => weight(i).unwrap_or(1.0) * f as f32,
        }),
        "TfIdfVectorizer's output",
    )?;
    let shape = if batched {
        vec![n_rows, width]
    } else {
        vec![width]
    };
    Tensor::from_vec(shape, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(min: usize, max: usize, skip: usize) -> TfIdfVectorizer {
        TfIdfVectorizer {
            mode: TfIdfMode::Tf,
            min_gram_length: min,
            max_gram_length: max,
            max_skip_count: skip,
            ngram_counts: vec![0, 4],
            ngram_indexes: (0..7).collect(),
            pool: NgramPool::Ints(vec![2, 3, 5, 4, 5, 6, 7, 8, 6, 7]),
            weights: vec![],
        }
    }

    fn counts(op: &TfIdfVectorizer) -> Vec<f32> {
        let x = Tensor::from_vec(vec![12], vec![1i32, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8]).unwrap();
        run(op, &x).unwrap().to_vec::<f32>().unwrap()
    }

    #[test]
    fn counts_skip_grams_once_per_gap() {
        assert_eq!(counts(&op(2, 2, 0)), vec![0., 0., 0., 0., 1., 1., 1.]);
        assert_eq!(counts(&op(2, 2, 5)), vec![0., 0., 0., 0., 1., 3., 1.]);
        assert_eq!(counts(&op(1, 2, 5)), vec![0., 3., 1., 0., 1., 3., 1.]);
    }

    #[test]
    fn a_string_input_for_an_int_pool_is_an_error() {
        let x = Tensor::from_strings(vec![1], vec!["a".into()]).unwrap();
        assert!(run(&op(1, 1, 0), &x).is_err());
    }

    /// Hostile sizes (issue 21): the output size and the pool sections are attributes, and
    /// an empty input may have any number of rows.
    #[test]
    fn huge_attributes_and_empty_rows_are_refused_or_answered() {
        let x = Tensor::from_vec(vec![1], vec![2i64]).unwrap();
        let wide = TfIdfVectorizer {
            ngram_indexes: vec![0, 1 << 62],
            ..op(1, 1, 0)
        };
        let e = run(&wide, &x).unwrap_err().to_string();
        assert!(
            e.contains("cannot allocate 4611686018427387905 values for TfIdfVectorizer's output"),
            "{e}"
        );
        // A section of 2^62 1-grams in a pool of 10.
        let long = TfIdfVectorizer {
            ngram_counts: vec![0, 1 << 62],
            ..op(1, 2, 0)
        };
        assert_eq!(run(&long, &x).unwrap().shape(), &[7]);
        // 2^62 rows of nothing, and an n-gram length of 0 (no items to match).
        let rows = Tensor::from_vec(vec![1 << 62, 0], Vec::<i64>::new()).unwrap();
        let none = TfIdfVectorizer {
            ngram_indexes: vec![],
            ..op(0, 1 << 62, 0)
        };
        assert_eq!(run(&none, &rows).unwrap().shape(), &[1 << 62, 0]);
        let one_row = Tensor::from_vec(vec![1, 2], vec![2i64, 3]).unwrap();
        assert_eq!(
            run(&op(0, 1 << 62, 0), &one_row)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![1., 1., 0., 0., 0., 0., 0.]
        );
    }
}
