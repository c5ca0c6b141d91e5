//! Import of the `text` family.

use xnpu_core::{Error, Result};
use xnpu_ops::text::{
    self as t, CaseChange, NgramPool, RegexFullMatch, StringConcat, StringNormalizer, StringSplit,
    TfIdfMode, TfIdfVectorizer,
};

use super::{NodeCtx, OnnxImport, Registry};
use crate::ir::Op;

impl OnnxImport for xnpu_ops::text::StringNormalizer {
    fn register(r: &mut Registry) {
        r.add("", "StringNormalizer", 10, string_normalizer);
    }
}

impl OnnxImport for xnpu_ops::text::StringSplit {
    fn register(r: &mut Registry) {
        r.add("", "StringSplit", 20, string_split);
    }
}

impl OnnxImport for xnpu_ops::text::StringConcat {
    fn register(r: &mut Registry) {
        r.add("", "StringConcat", 20, string_concat);
    }
}

impl OnnxImport for xnpu_ops::text::RegexFullMatch {
    fn register(r: &mut Registry) {
        r.add("", "RegexFullMatch", 20, regex_full_match);
    }
}

impl OnnxImport for xnpu_ops::text::TfIdfVectorizer {
    fn register(r: &mut Registry) {
        r.add("", "TfIdfVectorizer", 9, tfidf_vectorizer);
    }
}

fn op(o: t::Op) -> Op {
    Op::Text(o)
}

fn string_normalizer(n: &mut NodeCtx<'_>) -> Result<Op> {
    let case_change = match n.string("case_change_action", "NONE")?.as_str() {
        "NONE" => CaseChange::None,
        "LOWER" => CaseChange::Lower,
        "UPPER" => CaseChange::Upper,
        other => {
            return Err(Error::model(format!(
                "attribute \"case_change_action\" must be NONE, LOWER or UPPER, got {other:?}"
            )))
        }
    };
    Ok(op(t::Op::StringNormalizer(StringNormalizer {
        case_change,
        case_sensitive: n.int("is_case_sensitive", 0)? != 0,
        stopwords: n.strings("stopwords")?.unwrap_or_default(),
        locale: n.string("locale", "")?,
    })))
}

fn string_split(n: &mut NodeCtx<'_>) -> Result<Op> {
    let delimiter = n.opt_string("delimiter")?.filter(|d| !d.is_empty());
    let maxsplit = match n.opt_int("maxsplit")? {
        None => None,
        Some(k) if k < 0 => {
            return Err(Error::model(format!(
                "attribute \"maxsplit\" must be >= 0, got {k}"
            )))
        }
        Some(k) => Some(usize::try_from(k).unwrap_or(usize::MAX)),
    };
    Ok(op(t::Op::StringSplit(StringSplit {
        delimiter,
        maxsplit,
    })))
}

fn string_concat(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::StringConcat(StringConcat)))
}

fn regex_full_match(n: &mut NodeCtx<'_>) -> Result<Op> {
    let pattern = n
        .opt_string("pattern")?
        .ok_or_else(|| Error::model("required attribute \"pattern\" is missing"))?;
    Ok(op(t::Op::RegexFullMatch(RegexFullMatch { pattern })))
}

/// A non-negative INT attribute as usize.
fn count(name: &str, v: i64) -> Result<usize> {
    usize::try_from(v)
        .map_err(|_| Error::model(format!("attribute \"{name}\" must be >= 0, got {v}")))
}

fn tfidf_vectorizer(n: &mut NodeCtx<'_>) -> Result<Op> {
    let mode = match n.string("mode", "")?.as_str() {
        "TF" => TfIdfMode::Tf,
        "IDF" => TfIdfMode::Idf,
        "TFIDF" => TfIdfMode::TfIdf,
        "" => return Err(Error::model("required attribute \"mode\" is missing")),
        m => {
            return Err(Error::model(format!(
                "attribute \"mode\" must be TF, IDF or TFIDF, got {m:?}"
            )))
        }
    };
    let min = count("min_gram_length", n.req_int("min_gram_length")?)?;
    let max = count("max_gram_length", n.req_int("max_gram_length")?)?;
    let skip = count("max_skip_count", n.req_int("max_skip_count")?)?;
    if min == 0 || min > max {
        return Err(Error::model(format!(
            "the n-gram lengths must satisfy 1 <= min_gram_length <= max_gram_length, got {min} and {max}"
        )));
    }
    let pool = match (n.ints("pool_int64s")?, n.strings("pool_strings")?) {
        (Some(p), None) => NgramPool::Ints(p),
        (None, Some(p)) => NgramPool::Strings(p),
        (Some(_), Some(_)) => {
            return Err(Error::model(
                "only one of \"pool_int64s\" and \"pool_strings\" may be given",
            ))
        }
        (None, None) => {
            return Err(Error::model(
                "one of \"pool_int64s\" and \"pool_strings\" is required",
            ))
        }
    };
    let to_counts = |name: &str| -> Result<Vec<usize>> {
        n.ints(name)?
            .ok_or_else(|| Error::model(format!("required attribute \"{name}\" is missing")))?
            .into_iter()
            .map(|v| count(name, v))
            .collect()
    };
    let ngram_counts = to_counts("ngram_counts")?;
    let ngram_indexes = to_counts("ngram_indexes")?;
    if ngram_counts.windows(2).any(|w| w[0] > w[1])
        || ngram_counts.last().is_some_and(|&c| c > pool.len())
    {
        return Err(Error::model(format!(
            "attribute \"ngram_counts\" must be non-decreasing starts into a pool of {} items, got {ngram_counts:?}",
            pool.len()
        )));
    }
    let op_ = TfIdfVectorizer {
        mode,
        min_gram_length: min,
        max_gram_length: max,
        max_skip_count: skip,
        ngram_counts,
        ngram_indexes,
        pool,
        weights: n.floats("weights")?.unwrap_or_default(),
    };
    // Every n-gram of the pool needs an output column.
    let total: usize = (0..op_.ngram_counts.len())
        .map(|i| {
            let end = op_
                .ngram_counts
                .get(i + 1)
                .copied()
                .unwrap_or(op_.pool.len());
            (end - op_.ngram_counts[i]) / (i + 1)
        })
        .sum();
    if total > op_.ngram_indexes.len() {
        return Err(Error::model(format!(
            "the pool holds {total} n-grams but \"ngram_indexes\" has {} entries",
            op_.ngram_indexes.len()
        )));
    }
    if !op_.weights.is_empty() && op_.weights.len() < op_.output_size() {
        return Err(Error::model(format!(
            "attribute \"weights\" has {} entries, the output has {} columns",
            op_.weights.len(),
            op_.output_size()
        )));
    }
    Ok(op(t::Op::TfIdfVectorizer(op_)))
}
