//! Choosing the next token from the logits: greedy, or sampling with temperature, top-k,
//! top-p, and a repetition penalty, from a seeded generator.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the next token is chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// Sample (true) or take the most likely token (false: greedy; the default).
    pub do_sample: bool,
    /// Logits are divided by this before sampling (≤ 0 means greedy).
    pub temperature: f32,
    /// Sample among the k most likely tokens only (0: all).
    pub top_k: usize,
    /// Sample among the most likely tokens whose probabilities add up to p (1: all).
    pub top_p: f32,
    /// Above 1, tokens already in the sequence (prompt included) become less likely: a
    /// positive logit is divided by it, a negative one multiplied (as Hugging Face and
    /// onnxruntime-genai do). 1: off.
    pub repetition_penalty: f32,
    /// Seed of the random generator, so that a sampled generation can be repeated.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            do_sample: false,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 0,
        }
    }
}

impl Sampling {
    /// Greedy decoding.
    pub fn greedy() -> Sampling {
        Sampling::default()
    }

    pub(crate) fn check(&self) -> xnpu_core::Result<()> {
        let bad = |what: &str, v: f32| {
            xnpu_core::Error::invalid_input(format!("sampling {what} must be {v}"))
        };
        if !self.temperature.is_finite() {
            return Err(bad("temperature", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(xnpu_core::Error::invalid_input(format!(
                "sampling top_p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(xnpu_core::Error::invalid_input(format!(
                "sampling repetition_penalty must be positive, got {}",
                self.repetition_penalty
            )));
        }
        Ok(())
    }
}

/// A [`Sampling`] with its random generator.
pub(crate) struct Sampler {
    s: Sampling,
    rng: StdRng,
    /// Scratch: candidate (id, logit) pairs.
    cand: Vec<(u32, f32)>,
}

impl Sampler {
    pub fn new(s: Sampling) -> Sampler {
        let rng = StdRng::seed_from_u64(s.seed);
        Sampler {
            s,
            rng,
            cand: Vec::new(),
        }
    }

    /// The next token from `logits` (changed in place by the penalty), given the sequence
    /// so far.
    pub fn next(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let p = self.s.repetition_penalty;
        if p != 1.0 {
            let mut seen = vec![false; logits.len()];
            for &t in history {
                if let Some(s) = seen.get_mut(t as usize) {
                    if !*s {
                        *s = true;
                        let l = &mut logits[t as usize];
                        *l = if *l > 0.0 { *l / p } else { *l * p };
                    }
                }
            }
        }
        if !self.s.do_sample || self.s.temperature <= 0.0 {
            return argmax(logits);
        }
        let t = self.s.temperature;
        self.cand.clear();
        self.cand.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.is_nan())
                .map(|(i, &l)| (i as u32, l / t)),
        );
        if self.cand.is_empty() {
            return argmax(logits);
        }
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let k = self.s.top_k;
        if k > 0 && k < self.cand.len() {
            self.cand.select_nth_unstable_by(k - 1, by_logit);
            self.cand.truncate(k);
        }
        self.cand.sort_unstable_by(by_logit);
        let max = self.cand[0].1 as f64;
        let mut probs: Vec<f64> = self
            .cand
            .iter()
            .map(|&(_, l)| (l as f64 - max).exp())
            .collect();
        let sum: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        // Keep the most likely tokens until their mass reaches top_p (at least one).
        let mut keep = probs.len();
        if self.s.top_p < 1.0 {
            let mut acc = 0.0;
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if acc >= self.s.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
        }
        let mass: f64 = probs[..keep].iter().sum();
        let mut r = self.rng.random::<f64>() * mass;
        for (i, p) in probs[..keep].iter().enumerate() {
            if r < *p {
                return self.cand[i].0;
            }
            r -= p;
        }
        self.cand[keep - 1].0
    }
}

/// The index of the largest logit (the first of equal ones; NaN never wins).
pub(crate) fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_largest() {
        let mut s = Sampler::new(Sampling::greedy());
        assert_eq!(s.next(&mut [0.1, 3.0, 3.0, -1.0], &[]), 1);
        assert_eq!(s.next(&mut [f32::NAN, -5.0], &[]), 1);
    }

    #[test]
    fn repetition_penalty_demotes_seen_tokens() {
        let mut s = Sampler::new(Sampling {
            repetition_penalty: 2.0,
            ..Sampling::greedy()
        });
        // 4.0 / 2 = 2.0 < 3.0: the seen token 0 loses to token 1.
        assert_eq!(s.next(&mut [4.0, 3.0], &[0, 0]), 1);
        // A negative logit is multiplied: -1 * 2 = -2 < -1.5.
        assert_eq!(s.next(&mut [-1.0, -1.5], &[0]), 1);
    }

    #[test]
    fn top_k_1_is_greedy_and_seeds_repeat() {
        let logits = [0.5f32, 2.0, 1.9, -3.0, 1.0];
        let mut s = Sampler::new(Sampling {
            do_sample: true,
            top_k: 1,
            ..Sampling::default()
        });
        for _ in 0..20 {
            assert_eq!(s.next(&mut logits.clone(), &[]), 1);
        }
        let draw = |seed| {
            let mut s = Sampler::new(Sampling {
                do_sample: true,
                temperature: 1.5,
                seed,
                ..Sampling::default()
            });
            (0..50)
                .map(|_| s.next(&mut logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn top_p_keeps_only_the_head_of_the_distribution() {
        // Token 0 holds ~88% of the mass: with top_p 0.5 nothing else can be drawn.
        let logits = [4.0f32, 2.0, 0.0, -1.0];
        let mut s = Sampler::new(Sampling {
            do_sample: true,
            top_p: 0.5,
            seed: 3,
            ..Sampling::default()
        });
        for _ in 0..100 {
            assert_eq!(s.next(&mut logits.clone(), &[]), 0);
        }
        // Without the cut, a few hundred draws reach the other tokens.
        let mut s = Sampler::new(Sampling {
            do_sample: true,
            seed: 3,
            ..Sampling::default()
        });
        let drawn: std::collections::HashSet<u32> =
            (0..400).map(|_| s.next(&mut logits.clone(), &[])).collect();
        assert!(drawn.len() >= 3, "{drawn:?}");
    }
}
