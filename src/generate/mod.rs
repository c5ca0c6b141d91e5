//! Text generation with decoder language models (Phi-3 / Phi Silica class) as
//! onnxruntime-genai's model builder writes them: a folder with `genai_config.json`, the
//! decoder (`model.onnx` and its external data, using `com.microsoft` GroupQueryAttention,
//! MatMulNBits, SkipSimplifiedLayerNormalization) and `tokenizer.json`.
//!
//! [`LanguageModel`] loads the folder; [`LanguageModel::start`] gives a [`Generator`], an
//! iterator of [`Token`]s; [`LanguageModel::generate`] runs one to the end with a callback.
//!
//! The KV cache is owned here: one buffer per layer for keys and one for values, each
//! `[1, kv_heads, max_length, head_size]`, allocated once. Every step hands the buffers to
//! the session and takes the present buffers back; GroupQueryAttention on the CPU backend
//! writes the new rows into the buffer it was given (it holds the only reference), so a
//! step neither allocates nor copies the cache. The prompt is processed in chunks of a
//! fixed number of tokens when asked (`chunk_size`: what a static-shape device needs; the
//! last chunk holds the rest), then tokens are generated one at a time. Prompt chunks and
//! generated tokens may run on different devices (two sessions on one model) sharing the
//! same cache.
//!
//! ```no_run
//! use xnpu::generate::{GenerateOptions, LanguageModel, ModelOptions};
//! let lm = LanguageModel::load("phi-3.5-mini-int4", ModelOptions::default())?;
//! let out = lm.generate("The quick brown fox", &GenerateOptions::default(), |t| {
//!     print!("{}", t.text);
//!     true
//! })?;
//! println!("\n{:.1} tokens/s", out.stats.generated_tokens_per_s());
//! # Ok::<(), xnpu::Error>(())
//! ```

pub mod bench;
mod config;
mod sampling;

use std::panic::{AssertUnwindSafe, UnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokenizers::Tokenizer;
use xnpu_core::{DType, Error, Result, Tensor, Value, ValueType};

pub use config::{GenaiConfig, SearchConfig, TokenIds};
pub use sampling::Sampling;

use crate::{Session, SessionOptions};
use config::layer_name;
use sampling::Sampler;

/// How a model folder is loaded.
#[derive(Clone, Default)]
pub struct ModelOptions {
    /// The session that generates tokens one by one (and processes the prompt unless
    /// `prefill` is set).
    pub session: SessionOptions,
    /// A second session for the prompt (e.g. an NPU with static shapes for the prompt and
    /// the CPU for single tokens); both share the KV cache.
    pub prefill: Option<SessionOptions>,
}

/// How one generation runs.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    /// Generate at most this many tokens.
    pub max_tokens: usize,
    /// Limit prompt plus generated tokens (the KV cache length) to this; default the
    /// model's max_length (genai_config.json), never more than its context length.
    pub max_length: Option<usize>,
    pub sampling: Sampling,
    /// Process the prompt in chunks of this many tokens (default: all at once).
    pub chunk_size: Option<usize>,
    /// Keep generating after an end-of-sequence token.
    pub ignore_eos: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 128,
            max_length: None,
            sampling: Sampling::greedy(),
            chunk_size: None,
            ignore_eos: false,
        }
    }
}

/// One generated token.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub id: u32,
    /// The text this token completes (empty while a multi-byte character is still
    /// incomplete, and for special tokens).
    pub text: String,
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// `max_tokens` generated, or the cache (`max_length`) is full.
    Length,
    /// An end-of-sequence token was generated.
    Eos,
    /// The callback asked to stop.
    Stopped,
}

/// Timings of one generation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Running the prompt through the model (all chunks).
    pub prefill: Duration,
    /// From the start of the prompt to the first generated token.
    pub time_to_first_token: Duration,
    /// The steps after the first token (one model run per token).
    pub decode: Duration,
    /// Model runs for generated tokens.
    pub decode_steps: usize,
}

impl Stats {
    pub fn prompt_tokens_per_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill.as_secs_f64().max(1e-9)
    }

    /// Tokens per second of the one-token steps.
    pub fn generated_tokens_per_s(&self) -> f64 {
        if self.decode_steps == 0 {
            return 0.0;
        }
        self.decode_steps as f64 / self.decode.as_secs_f64().max(1e-9)
    }
}

/// The result of [`LanguageModel::generate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    /// Generated token ids (an end-of-sequence token included).
    pub ids: Vec<u32>,
    /// The generated text (special tokens skipped).
    pub text: String,
    pub finish: Finish,
    pub stats: Stats,
}

/// Where each decoder input and output sits in the session's order.
#[derive(Clone, Debug)]
struct Io {
    n_inputs: usize,
    input_ids: (usize, DType),
    attention_mask: Option<(usize, DType)>,
    position_ids: Option<(usize, DType)>,
    past: Vec<(usize, usize)>,
    kv_dtype: DType,
    logits: usize,
    present: Vec<(usize, usize)>,
}

/// A language model folder, loaded: config, tokenizer, sessions.
pub struct LanguageModel {
    dir: PathBuf,
    config: GenaiConfig,
    tokenizer: Tokenizer,
    decode: Arc<Session>,
    prefill: Arc<Session>,
    io: Io,
    eos: Vec<u32>,
}

impl std::fmt::Debug for LanguageModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanguageModel")
            .field("dir", &self.dir)
            .field("type", &self.config.model.kind)
            .field("layers", &self.config.model.decoder.num_hidden_layers)
            .finish()
    }
}

fn int_dtype(ty: &ValueType, name: &str) -> Result<DType> {
    match ty {
        ValueType::Tensor(t) if matches!(t.dtype, DType::I64 | DType::I32) => Ok(t.dtype),
        other => Err(Error::model(format!(
            "decoder input \"{name}\" must be an int64 or int32 tensor, the model declares {other}"
        ))),
    }
}

impl Io {
    fn new(session: &Session, cfg: &GenaiConfig) -> Result<Io> {
        let d = &cfg.model.decoder;
        let inputs = session.inputs();
        let outputs = session.outputs();
        let find_in = |name: &str| inputs.iter().position(|i| i.name == name);
        let find_out = |name: &str| outputs.iter().position(|i| i.name == name);
        let need_in = |name: &str| {
            find_in(name).ok_or_else(|| {
                Error::model(format!(
                    "the decoder has no input \"{name}\" (genai_config.json names it)"
                ))
            })
        };
        let need_out = |name: &str| {
            find_out(name).ok_or_else(|| {
                Error::model(format!(
                    "the decoder has no output \"{name}\" (genai_config.json names it)"
                ))
            })
        };
        let ids = need_in(&d.inputs.input_ids)?;
        let input_ids = (ids, int_dtype(&inputs[ids].ty, &inputs[ids].name)?);
        let opt = |name: &str| -> Result<Option<(usize, DType)>> {
            match find_in(name) {
                Some(i) => Ok(Some((i, int_dtype(&inputs[i].ty, name)?))),
                None => Ok(None),
            }
        };
        let attention_mask = opt(&d.inputs.attention_mask)?;
        let position_ids = opt(&d.inputs.position_ids)?;
        let mut past = Vec::new();
        let mut present = Vec::new();
        for l in 0..d.num_hidden_layers {
            past.push((
                need_in(&layer_name(&d.inputs.past_key_names, l))?,
                need_in(&layer_name(&d.inputs.past_value_names, l))?,
            ));
            present.push((
                need_out(&layer_name(&d.outputs.present_key_names, l))?,
                need_out(&layer_name(&d.outputs.present_value_names, l))?,
            ));
        }
        let kv_dtype = match &inputs[past[0].0].ty {
            ValueType::Tensor(t) if t.dtype.is_float() => t.dtype,
            other => {
                return Err(Error::model(format!(
                    "the KV cache input \"{}\" must be a float tensor, the model declares {other}",
                    inputs[past[0].0].name
                )))
            }
        };
        // Every other input needs a default: the loop feeds only these.
        let fed: Vec<usize> = [
            Some(ids),
            attention_mask.map(|a| a.0),
            position_ids.map(|p| p.0),
        ]
        .into_iter()
        .flatten()
        .chain(past.iter().flat_map(|&(k, v)| [k, v]))
        .collect();
        for (i, info) in inputs.iter().enumerate() {
            if !fed.contains(&i) && !info.has_default {
                return Err(Error::model(format!(
                    "the decoder input \"{}\" is not one generation feeds (input ids, attention \
                     mask, position ids, past keys and values)",
                    info.name
                )));
            }
        }
        Ok(Io {
            n_inputs: inputs.len(),
            input_ids,
            attention_mask,
            position_ids,
            past,
            kv_dtype,
            logits: need_out(&d.outputs.logits)?,
            present,
        })
    }
}

fn int_tensor(dtype: DType, shape: Vec<usize>, v: impl Iterator<Item = i64>) -> Result<Tensor> {
    match dtype {
        DType::I32 => Tensor::from_vec(shape, v.map(|x| x as i32).collect::<Vec<_>>()),
        _ => Tensor::from_vec(shape, v.collect::<Vec<_>>()),
    }
}

/// A call into the tokenizers library, which panics on some malformed files (a "decoder" it
/// cannot read: `expect` in its deserializer): the panic becomes the call's error, about
/// that file, not the end of the process.
fn guarded<T>(f: impl FnOnce() -> tokenizers::Result<T> + UnwindSafe) -> tokenizers::Result<T> {
    xnpu_core::panic::quiet(f)
        .unwrap_or_else(|panic| Err(format!("the tokenizers library failed: {panic}").into()))
}

impl LanguageModel {
    /// Loads a model folder (`genai_config.json`, the decoder, `tokenizer.json`).
    pub fn load(dir: impl AsRef<Path>, options: ModelOptions) -> Result<LanguageModel> {
        let dir = dir.as_ref();
        let name = dir.display().to_string();
        match std::fs::metadata(dir) {
            Err(e) => return Err(Error::io(dir, e)),
            Ok(m) if m.is_file() => {
                return Err(Error::invalid_input(format!(
                    "{name}: a file, not a model folder: generate takes the folder \
                     onnxruntime-genai's builder writes (genai_config.json, model.onnx, \
                     tokenizer.json); `xnpu run` runs a single .onnx file"
                )))
            }
            Ok(m) if !m.is_dir() => {
                return Err(Error::invalid_input(format!("{name}: not a model folder")))
            }
            Ok(_) => {}
        }
        let config = GenaiConfig::load(dir)?;
        let tok_path = dir.join("tokenizer.json");
        if !tok_path.is_file() {
            return Err(Error::model(format!(
                "{name}: no tokenizer.json (the Hugging Face tokenizer the model was built with)"
            )));
        }
        let tok_bytes = xnpu_core::fs::read_regular(&tok_path, "tokenizer", 1 << 30)?;
        let tokenizer = guarded(|| Tokenizer::from_bytes(&tok_bytes)).map_err(|e| {
            Error::model(format!(
                "{}: cannot read the tokenizer: {e}",
                tok_path.display()
            ))
        })?;
        let vocab = config.model.vocab_size;
        let tok_vocab = tokenizer.get_vocab_size(true);
        let max_id = tokenizer
            .get_vocab(true)
            .values()
            .copied()
            .max()
            .unwrap_or(0) as usize;
        if tok_vocab > vocab || max_id >= vocab {
            return Err(Error::model(format!(
                "{name}: tokenizer.json does not match the model: it has {tok_vocab} tokens \
                 (ids up to {max_id}), the model's vocabulary has {vocab} (genai_config.json \
                 vocab_size)"
            )));
        }
        let model_path = dir.join(&config.model.decoder.filename);
        let decode = Arc::new(
            Session::load_with(&model_path, options.session.clone())
                .map_err(|e| e.context(&name))?,
        );
        let prefill = match options.prefill {
            Some(o) => Arc::new(Session::load_with(&model_path, o).map_err(|e| e.context(&name))?),
            None => decode.clone(),
        };
        let io = Io::new(&decode, &config).map_err(|e| e.context(&name))?;
        let eos = config
            .model
            .eos_token_id
            .to_vec()
            .into_iter()
            .map(|t| t as u32)
            .collect();
        Ok(LanguageModel {
            dir: dir.to_path_buf(),
            config,
            tokenizer,
            decode,
            prefill,
            io,
            eos,
        })
    }

    pub fn config(&self) -> &GenaiConfig {
        &self.config
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The session that generates tokens (and processes prompts unless a prefill session
    /// was asked for).
    pub fn session(&self) -> &Session {
        &self.decode
    }

    pub fn prefill_session(&self) -> &Session {
        &self.prefill
    }

    /// The token ids of `text` (with the special tokens the tokenizer adds).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let tokenizer = AssertUnwindSafe(&self.tokenizer);
        let enc = guarded(|| tokenizer.encode(text, true)).map_err(|e| {
            Error::invalid_input(format!(
                "{}: cannot tokenise the prompt: {e}",
                self.dir.display()
            ))
        })?;
        Ok(enc.get_ids().to_vec())
    }

    /// The text of `ids` (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let tokenizer = AssertUnwindSafe(&self.tokenizer);
        guarded(|| tokenizer.decode(ids, true)).map_err(|e| {
            Error::compute(format!("{}: cannot decode tokens: {e}", self.dir.display()))
        })
    }

    /// Starts generating after `prompt_ids`: the prompt runs on the first call of
    /// [`Generator::next`].
    pub fn start(&self, prompt_ids: &[u32], options: &GenerateOptions) -> Result<Generator<'_>> {
        Generator::new(Lm::Borrowed(self), prompt_ids, options)
    }

    /// [`LanguageModel::start`] on a shared model: the generator owns a reference, so it can
    /// outlive the caller's borrow (a Python iterator, a generation on another thread).
    pub fn start_shared(
        self: &Arc<Self>,
        prompt_ids: &[u32],
        options: &GenerateOptions,
    ) -> Result<Generator<'static>> {
        Generator::new(Lm::Shared(self.clone()), prompt_ids, options)
    }

    /// Generates after the text `prompt`, calling `on_token` with each token as it comes;
    /// `on_token` returning false stops the generation.
    pub fn generate(
        &self,
        prompt: &str,
        options: &GenerateOptions,
        on_token: impl FnMut(&Token) -> bool,
    ) -> Result<Generation> {
        let ids = self.encode(prompt)?;
        self.generate_ids(&ids, options, on_token)
    }

    /// [`LanguageModel::generate`] from token ids.
    pub fn generate_ids(
        &self,
        prompt_ids: &[u32],
        options: &GenerateOptions,
        mut on_token: impl FnMut(&Token) -> bool,
    ) -> Result<Generation> {
        let mut g = self.start(prompt_ids, options)?;
        while let Some(t) = g.next_token()? {
            if !on_token(&t) {
                g.stop();
            }
        }
        g.finish()
    }
}

/// The model a generator runs: borrowed, or shared.
enum Lm<'m> {
    Borrowed(&'m LanguageModel),
    Shared(Arc<LanguageModel>),
}

impl std::ops::Deref for Lm<'_> {
    type Target = LanguageModel;
    fn deref(&self) -> &LanguageModel {
        match self {
            Lm::Borrowed(lm) => lm,
            Lm::Shared(lm) => lm,
        }
    }
}

/// One generation in progress: an iterator of tokens.
pub struct Generator<'m> {
    lm: Lm<'m>,
    opts: GenerateOptions,
    max_length: usize,
    sampler: Sampler,
    /// Per layer: key and value cache buffers (taken while a step runs).
    kv: Vec<(Option<Tensor>, Option<Tensor>)>,
    /// Tokens whose keys and values are in the cache.
    cached: usize,
    /// Prompt and generated tokens.
    seq: Vec<u32>,
    prompt_len: usize,
    /// The logits of the last position run, when the next token is still to be chosen.
    logits: Option<Vec<f32>>,
    finish: Option<Finish>,
    emitted: usize,
    stats: Stats,
    started: Option<Instant>,
}

impl<'m> Generator<'m> {
    fn new(lm: Lm<'m>, prompt: &[u32], opts: &GenerateOptions) -> Result<Self> {
        let name = lm.dir.display().to_string();
        opts.sampling.check().map_err(|e| e.context(&name))?;
        let context = lm.config.model.context_length;
        let max_length = match opts.max_length {
            Some(n) if n == 0 || n > context => {
                return Err(Error::invalid_input(format!(
                    "max_length {n} must be between 1 and the model's context length {context}"
                ))
                .context(&name))
            }
            Some(n) => n,
            None => lm.config.max_length(),
        };
        if prompt.is_empty() {
            return Err(Error::invalid_input("the prompt is empty").context(&name));
        }
        if prompt.len() >= max_length {
            return Err(Error::invalid_input(format!(
                "the prompt has {} tokens and leaves no room to generate: the model's context \
                 holds {max_length} (genai_config.json{})",
                prompt.len(),
                if opts.max_length.is_some() {
                    ", limited by max_length"
                } else {
                    ""
                }
            ))
            .context(&name));
        }
        let vocab = lm.config.model.vocab_size;
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= vocab) {
            return Err(Error::invalid_input(format!(
                "prompt token id {bad} is outside the model's vocabulary ({vocab} tokens)"
            ))
            .context(&name));
        }
        if opts.chunk_size == Some(0) {
            return Err(Error::invalid_input("chunk_size must be at least 1").context(&name));
        }
        let d = &lm.config.model.decoder;
        let shape = vec![1, d.num_key_value_heads, max_length, d.head_size];
        let mut kv = Vec::with_capacity(d.num_hidden_layers);
        for _ in 0..d.num_hidden_layers {
            kv.push((
                Some(Tensor::zeros(lm.io.kv_dtype, shape.clone())?),
                Some(Tensor::zeros(lm.io.kv_dtype, shape.clone())?),
            ));
        }
        Ok(Generator {
            lm,
            opts: opts.clone(),
            max_length,
            sampler: Sampler::new(opts.sampling.clone()),
            kv,
            cached: 0,
            seq: prompt.to_vec(),
            prompt_len: prompt.len(),
            logits: None,
            finish: None,
            emitted: 0,
            stats: Stats {
                prompt_tokens: prompt.len(),
                ..Stats::default()
            },
            started: None,
        })
    }

    /// Runs `tokens` (at positions `cached..`) through `session`; keeps the last logits.
    fn step(&mut self, session: &Session, tokens: &[u32]) -> Result<()> {
        let io = &self.lm.io;
        let s = tokens.len();
        let total = self.cached + s;
        let mut slots: Vec<Option<Value>> = vec![None; io.n_inputs];
        slots[io.input_ids.0] =
            Some(int_tensor(io.input_ids.1, vec![1, s], tokens.iter().map(|&t| t as i64))?.into());
        if let Some((i, dt)) = io.attention_mask {
            slots[i] = Some(int_tensor(dt, vec![1, total], std::iter::repeat_n(1, total))?.into());
        }
        if let Some((i, dt)) = io.position_ids {
            slots[i] = Some(int_tensor(dt, vec![1, s], self.cached as i64..total as i64)?.into());
        }
        for (l, &(k, v)) in io.past.iter().enumerate() {
            let (pk, pv) = &mut self.kv[l];
            // Handed over, so that the backend can write the new rows in place.
            slots[k] = pk.take().map(Value::Tensor);
            slots[v] = pv.take().map(Value::Tensor);
            if slots[k].is_none() || slots[v].is_none() {
                return Err(Error::compute(format!(
                    "the KV cache of layer {l} was lost by a failed step; start a new generation"
                )));
            }
        }
        let outs = session.run_positional(slots)?;
        let mut outs: Vec<Option<Value>> = outs.into_iter().map(Some).collect();
        let mut take = |i: usize, what: &str| -> Result<Tensor> {
            outs.get_mut(i)
                .and_then(Option::take)
                .ok_or_else(|| Error::compute(format!("the decoder returned no {what}")))?
                .into_tensor()
        };
        let d = &self.lm.config.model.decoder;
        for (l, &(k, v)) in io.present.iter().enumerate() {
            let pk = take(k, "present key")?;
            let pv = take(v, "present value")?;
            let ok = |t: &Tensor| {
                let sh = t.shape();
                sh.len() == 4
                    && sh[0] == 1
                    && sh[1] == d.num_key_value_heads
                    && sh[2] >= total
                    && sh[3] == d.head_size
            };
            if !ok(&pk) || !ok(&pv) {
                return Err(Error::compute(format!(
                    "layer {l}: the present keys {:?} / values {:?} do not hold {total} positions \
                     of [1, {}, _, {}]",
                    pk.shape(),
                    pv.shape(),
                    d.num_key_value_heads,
                    d.head_size
                )));
            }
            self.kv[l] = (Some(pk), Some(pv));
        }
        let logits = take(io.logits, "logits")?;
        let vocab = self.lm.config.model.vocab_size;
        if logits.shape().last() != Some(&vocab) {
            return Err(Error::compute(format!(
                "the logits are {:?}, the model's vocabulary has {vocab} tokens",
                logits.shape()
            )));
        }
        let n = logits.len();
        let last = match logits.dtype() {
            DType::F32 => logits.as_slice::<f32>()?[n - vocab..].to_vec(),
            _ => logits.to_f64_vec()?[n - vocab..]
                .iter()
                .map(|&v| v as f32)
                .collect(),
        };
        self.cached = total;
        self.logits = Some(last);
        Ok(())
    }

    fn prefill(&mut self) -> Result<()> {
        let t0 = Instant::now();
        self.started = Some(t0);
        let prompt = self.seq.clone();
        let chunk = self.opts.chunk_size.unwrap_or(prompt.len()).max(1);
        let session = self.lm.prefill.clone();
        for part in prompt.chunks(chunk) {
            self.step(&session, part)?;
        }
        self.stats.prefill = t0.elapsed();
        Ok(())
    }

    /// Asks the generation to end before the next token.
    pub fn stop(&mut self) {
        if self.finish.is_none() {
            self.finish = Some(Finish::Stopped);
        }
    }

    /// The model's folder, for error messages.
    fn name(&self) -> String {
        self.lm.dir.display().to_string()
    }

    /// The next token, or None when the generation has ended.
    pub fn next_token(&mut self) -> Result<Option<Token>> {
        if self.finish.is_some() {
            return Ok(None);
        }
        if self.started.is_none() {
            self.prefill()
                .map_err(|e| e.context("prompt").context(self.name()))?;
        }
        let Some(mut logits) = self.logits.take() else {
            // A failed step left no logits: the generation cannot go on.
            return Ok(None);
        };
        let id = self.sampler.next(&mut logits, &self.seq);
        self.seq.push(id);
        let generated = self.seq.len() - self.prompt_len;
        self.stats.generated_tokens = generated;
        if generated == 1 {
            if let Some(t0) = self.started {
                self.stats.time_to_first_token = t0.elapsed();
            }
        }
        let text = self.new_text()?;
        if !self.opts.ignore_eos && self.lm.eos.contains(&id) {
            self.finish = Some(Finish::Eos);
        } else if generated >= self.opts.max_tokens || self.seq.len() >= self.max_length {
            self.finish = Some(Finish::Length);
        } else {
            let t = Instant::now();
            let session = self.lm.decode.clone();
            self.step(&session, &[id])
                .map_err(|e| e.context(format!("token {generated}")).context(self.name()))?;
            self.stats.decode += t.elapsed();
            self.stats.decode_steps += 1;
        }
        Ok(Some(Token { id, text }))
    }

    /// The text the generated tokens add since the last call (held back while it ends in an
    /// incomplete character).
    fn new_text(&mut self) -> Result<String> {
        let all = self.lm.decode(&self.seq[self.prompt_len..])?;
        if all.ends_with('\u{FFFD}') || !all.is_char_boundary(self.emitted.min(all.len())) {
            return Ok(String::new());
        }
        let piece = all.get(self.emitted..).unwrap_or("").to_string();
        self.emitted = all.len();
        Ok(piece)
    }

    /// Tokens generated so far.
    pub fn ids(&self) -> &[u32] {
        &self.seq[self.prompt_len..]
    }

    /// Why the generation ended; None while it goes on.
    pub fn finish_reason(&self) -> Option<Finish> {
        self.finish
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Where each cache buffer (per layer: keys, values) lives now: the same addresses from
    /// step to step mean the cache is updated in place (tests check this).
    #[doc(hidden)]
    pub fn cache_addresses(&self) -> Vec<usize> {
        self.kv
            .iter()
            .flat_map(|(k, v)| [k, v])
            .map(|t| t.as_ref().map_or(0, |t| t.raw_bytes().as_ptr() as usize))
            .collect()
    }

    /// Ends the generation (if still going) and returns its result.
    pub fn finish(self) -> Result<Generation> {
        let finish = self.finish.unwrap_or(Finish::Stopped);
        Ok(Generation {
            prompt_ids: self.seq[..self.prompt_len].to_vec(),
            ids: self.seq[self.prompt_len..].to_vec(),
            text: self.lm.decode(&self.seq[self.prompt_len..])?,
            finish,
            stats: self.stats,
        })
    }
}

impl Iterator for Generator<'_> {
    type Item = Result<Token>;

    fn next(&mut self) -> Option<Result<Token>> {
        match self.next_token() {
            Ok(Some(t)) => Some(Ok(t)),
            Ok(None) => None,
            Err(e) => {
                self.finish = Some(Finish::Stopped);
                Some(Err(e))
            }
        }
    }
}
