//! Export of the `text` family: string ops and TfIdfVectorizer.

use xnpu_ops::text::{self as tx, CaseChange, NgramPool, TfIdfMode};

use super::{a_bool, a_floats, a_int, a_ints, a_str, a_strs, a_usizes, Emit, OnnxExport, R};

impl OnnxExport for tx::StringNormalizer {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![
            a_str(
                "case_change_action",
                match self.case_change {
                    CaseChange::None => "NONE",
                    CaseChange::Lower => "LOWER",
                    CaseChange::Upper => "UPPER",
                },
            ),
            a_bool("is_case_sensitive", self.case_sensitive),
        ];
        if !self.stopwords.is_empty() {
            attrs.push(a_strs("stopwords", &self.stopwords));
        }
        if !self.locale.is_empty() {
            attrs.push(a_str("locale", &self.locale));
        }
        e.simple("StringNormalizer", attrs)
    }
}

impl OnnxExport for tx::StringSplit {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![];
        if let Some(d) = &self.delimiter {
            attrs.push(a_str("delimiter", d));
        }
        if let Some(k) = self.maxsplit {
            attrs.push(a_int("maxsplit", k.min(i64::MAX as usize) as i64));
        }
        e.simple("StringSplit", attrs)
    }
}

impl OnnxExport for tx::StringConcat {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("StringConcat", vec![])
    }
}

impl OnnxExport for tx::RegexFullMatch {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("RegexFullMatch", vec![a_str("pattern", &self.pattern)])
    }
}

impl OnnxExport for tx::TfIdfVectorizer {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![
            a_str(
                "mode",
                match self.mode {
                    TfIdfMode::Tf => "TF",
                    TfIdfMode::Idf => "IDF",
                    TfIdfMode::TfIdf => "TFIDF",
                },
            ),
            a_int("min_gram_length", self.min_gram_length as i64),
            a_int("max_gram_length", self.max_gram_length as i64),
            a_int("max_skip_count", self.max_skip_count as i64),
            a_usizes("ngram_counts", &self.ngram_counts),
            a_usizes("ngram_indexes", &self.ngram_indexes),
            match &self.pool {
                NgramPool::Ints(p) => a_ints("pool_int64s", p),
                NgramPool::Strings(p) => a_strs("pool_strings", p),
            },
        ];
        if !self.weights.is_empty() {
            attrs.push(a_floats("weights", &self.weights));
        }
        e.simple("TfIdfVectorizer", attrs)
    }
}
