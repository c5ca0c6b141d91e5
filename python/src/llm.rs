//! Text generation from Python: `LanguageModel` (a genai model folder, loaded) and
//! `TokenStream` (one generation, an iterator of text pieces).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyStopIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use xnpu::generate::{
    Finish, GenerateOptions, Generator, LanguageModel as Lm, ModelOptions, Sampling,
};

use crate::{guard, session_options, to_py, XnpuError};

/// A language model folder as onnxruntime-genai's model builder writes it
/// (`genai_config.json`, the decoder ONNX file, `tokenizer.json`), loaded and compiled.
///
/// `devices`, `level` and `threads` are those of `InferenceSession`; `prefill_devices`
/// runs the prompt on other devices (e.g. an NPU) than the generated tokens.
#[pyclass(frozen, module = "xnpu")]
pub struct LanguageModel {
    inner: Arc<Lm>,
}

#[pymethods]
impl LanguageModel {
    #[new]
    #[pyo3(signature = (path, devices=None, level=None, threads=None, prefill_devices=None))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        devices: Option<&str>,
        level: Option<&str>,
        threads: Option<usize>,
        prefill_devices: Option<&str>,
    ) -> PyResult<LanguageModel> {
        guard("LanguageModel()", || {
            let session = session_options(devices, level, threads)?;
            let prefill = match prefill_devices {
                Some(d) => Some(session_options(Some(d), level, threads)?),
                None => None,
            };
            let options = ModelOptions { session, prefill };
            let lm = py.detach(|| Lm::load(&path, options)).map_err(to_py)?;
            Ok(LanguageModel {
                inner: Arc::new(lm),
            })
        })
    }

    /// Token ids of `text` (special tokens such as BOS added as the tokenizer does).
    fn encode(&self, py: Python<'_>, text: &str) -> PyResult<Vec<u32>> {
        // Without the GIL, as every call that may do work on other threads: one of them that
        // logs (see `log`) takes the GIL.
        guard("encode()", || {
            py.detach(|| self.inner.encode(text)).map_err(to_py)
        })
    }

    /// The text of token ids (special tokens skipped).
    fn decode(&self, py: Python<'_>, ids: Vec<u32>) -> PyResult<String> {
        guard("decode()", || {
            py.detach(|| self.inner.decode(&ids)).map_err(to_py)
        })
    }

    /// Starts generating after `prompt` (text, or a list of token ids) and returns a
    /// `TokenStream`: iterate it for the text as it is generated. Sampling is greedy unless
    /// `do_sample` (then `temperature`, `top_k`, `top_p` and `seed` apply).
    #[pyo3(signature = (
        prompt, max_tokens=128, *, do_sample=false, temperature=1.0, top_k=0, top_p=1.0,
        repetition_penalty=1.0, seed=0, max_length=None, chunk_size=None, ignore_eos=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        py: Python<'_>,
        prompt: &Bound<'_, PyAny>,
        max_tokens: usize,
        do_sample: bool,
        temperature: f32,
        top_k: usize,
        top_p: f32,
        repetition_penalty: f32,
        seed: u64,
        max_length: Option<usize>,
        chunk_size: Option<usize>,
        ignore_eos: bool,
    ) -> PyResult<TokenStream> {
        guard("generate()", || {
            let ids: Vec<u32> = if let Ok(text) = prompt.extract::<String>() {
                self.inner.encode(&text).map_err(to_py)?
            } else {
                prompt.extract().map_err(|_| {
                    PyTypeError::new_err("prompt must be text (str) or a list of token ids")
                })?
            };
            let options = GenerateOptions {
                max_tokens,
                max_length,
                sampling: Sampling {
                    do_sample,
                    temperature,
                    top_k,
                    top_p,
                    repetition_penalty,
                    seed,
                },
                chunk_size,
                ignore_eos,
            };
            let g = py
                .detach(|| self.inner.start_shared(&ids, &options))
                .map_err(to_py)?;
            Ok(TokenStream {
                state: Mutex::new(g),
                stop: AtomicBool::new(false),
            })
        })
    }

    fn __repr__(&self) -> String {
        format!("LanguageModel({:?})", self.inner.dir())
    }
}

/// One generation in progress: iterating it yields the text of each token as it is
/// generated (a piece is held back while it ends inside a multi-byte character). `ids`,
/// `finish` and `stats` tell what happened so far; `stop()` ends it after the current step.
#[pyclass(frozen, module = "xnpu")]
pub struct TokenStream {
    state: Mutex<Generator<'static>>,
    /// Set by `stop()`, which must not wait for a step in progress.
    stop: AtomicBool,
}

impl TokenStream {
    /// Runs `f` on the generator, waiting (with the GIL released) for a step in progress.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Generator<'static>) -> T + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut g = self
                .state
                .lock()
                .map_err(|_| XnpuError::new_err("a previous step of this generation panicked"))?;
            if self.stop.load(Ordering::Acquire) {
                g.stop();
            }
            Ok(f(&mut g))
        })
    }
}

#[pymethods]
impl TokenStream {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<String> {
        guard("TokenStream.__next__()", || loop {
            // The model runs with the GIL released; another thread asking for the same
            // stream waits on the lock, also without the GIL.
            match self.with(py, |g| g.next_token())?.map_err(to_py)? {
                None => return Err(PyStopIteration::new_err(())),
                Some(t) if t.text.is_empty() => continue,
                Some(t) => return Ok(t.text),
            }
        })
    }

    /// Ends the generation: the iteration stops before the next step (at once when no step
    /// is running).
    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// The generated token ids so far.
    #[getter]
    fn ids(&self, py: Python<'_>) -> PyResult<Vec<u32>> {
        guard("TokenStream.ids", || self.with(py, |g| g.ids().to_vec()))
    }

    /// Why the generation ended: "length", "eos" or "stopped"; None while it goes on.
    #[getter]
    fn finish(&self, py: Python<'_>) -> PyResult<Option<&'static str>> {
        guard("TokenStream.finish", || {
            self.with(py, |g| {
                g.finish_reason().map(|f| match f {
                    Finish::Length => "length",
                    Finish::Eos => "eos",
                    Finish::Stopped => "stopped",
                })
            })
        })
    }

    /// Timings so far: prompt and generated token counts, seconds of prefill, time to first
    /// token and decode, and tokens per second of each.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guard("TokenStream.stats", || {
            let s = self.with(py, |g| g.stats().clone())?;
            let d = PyDict::new(py);
            d.set_item("prompt_tokens", s.prompt_tokens)?;
            d.set_item("generated_tokens", s.generated_tokens)?;
            d.set_item("prefill_s", s.prefill.as_secs_f64())?;
            d.set_item("time_to_first_token_s", s.time_to_first_token.as_secs_f64())?;
            d.set_item("decode_s", s.decode.as_secs_f64())?;
            d.set_item("decode_steps", s.decode_steps)?;
            d.set_item("prompt_tokens_per_s", s.prompt_tokens_per_s())?;
            d.set_item("generated_tokens_per_s", s.generated_tokens_per_s())?;
            Ok(d)
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LanguageModel>()?;
    m.add_class::<TokenStream>()?;
    Ok(())
}
