//! `genai_config.json`, as onnxruntime-genai's model builder writes it (the parts xnpu reads).

use std::path::Path;

use serde::Deserialize;
use xnpu_core::{Error, Result};

/// One token id or several (`eos_token_id` is either in genai configs).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum TokenIds {
    One(i64),
    Many(Vec<i64>),
}

impl TokenIds {
    pub fn to_vec(&self) -> Vec<i64> {
        match self {
            TokenIds::One(t) => vec![*t],
            TokenIds::Many(v) => v.clone(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct GenaiConfig {
    pub model: ModelConfig,
    #[serde(default)]
    pub search: SearchConfig,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ModelConfig {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub bos_token_id: Option<TokenIds>,
    pub eos_token_id: TokenIds,
    #[serde(default)]
    pub pad_token_id: Option<TokenIds>,
    pub context_length: usize,
    pub vocab_size: usize,
    pub decoder: DecoderConfig,
}

#[derive(Clone, Debug, Deserialize)]
pub struct DecoderConfig {
    pub filename: String,
    pub head_size: usize,
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub num_key_value_heads: usize,
    #[serde(default)]
    pub inputs: DecoderInputs,
    #[serde(default)]
    pub outputs: DecoderOutputs,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct DecoderInputs {
    pub input_ids: String,
    pub attention_mask: String,
    pub position_ids: String,
    pub past_key_names: String,
    pub past_value_names: String,
}

impl Default for DecoderInputs {
    fn default() -> Self {
        DecoderInputs {
            input_ids: "input_ids".into(),
            attention_mask: "attention_mask".into(),
            position_ids: "position_ids".into(),
            past_key_names: "past_key_values.%d.key".into(),
            past_value_names: "past_key_values.%d.value".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct DecoderOutputs {
    pub logits: String,
    pub present_key_names: String,
    pub present_value_names: String,
}

impl Default for DecoderOutputs {
    fn default() -> Self {
        DecoderOutputs {
            logits: "logits".into(),
            present_key_names: "present.%d.key".into(),
            present_value_names: "present.%d.value".into(),
        }
    }
}

/// Search defaults of the model (what `GenerateOptions::from_config` starts from).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SearchConfig {
    pub do_sample: bool,
    pub max_length: usize,
    pub min_length: usize,
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub repetition_penalty: f32,
    pub past_present_share_buffer: bool,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            do_sample: false,
            max_length: 0,
            min_length: 0,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            repetition_penalty: 1.0,
            past_present_share_buffer: true,
        }
    }
}

impl GenaiConfig {
    /// Reads `DIR/genai_config.json`.
    pub fn load(dir: &Path) -> Result<GenaiConfig> {
        let path = dir.join("genai_config.json");
        if !path.is_file() {
            return Err(Error::model(format!(
                "{}: no genai_config.json: a language model folder is what onnxruntime-genai's \
                 model builder writes (genai_config.json, the decoder .onnx, tokenizer.json)",
                dir.display()
            )));
        }
        let text = xnpu_core::fs::read_regular_text(&path, "genai config", 16 << 20)?;
        let cfg: GenaiConfig = serde_json::from_str(&text).map_err(|e| {
            Error::model(format!("{}: not a valid genai config: {e}", path.display()))
        })?;
        cfg.check()
            .map_err(|e| e.context(path.display().to_string()))?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        let m = &self.model;
        let d = &m.decoder;
        if d.num_hidden_layers == 0 || d.head_size == 0 || d.num_key_value_heads == 0 {
            return Err(Error::model(
                "decoder num_hidden_layers, head_size and num_key_value_heads must be positive",
            ));
        }
        if m.context_length == 0 || m.vocab_size == 0 {
            return Err(Error::model(
                "model context_length and vocab_size must be positive",
            ));
        }
        for id in m.eos_token_id.to_vec() {
            if id < 0 || id as usize >= m.vocab_size {
                return Err(Error::model(format!(
                    "eos_token_id {id} is outside the vocabulary ({} tokens)",
                    m.vocab_size
                )));
            }
        }
        for (what, pat) in [
            ("past_key_names", &d.inputs.past_key_names),
            ("past_value_names", &d.inputs.past_value_names),
            ("present_key_names", &d.outputs.present_key_names),
            ("present_value_names", &d.outputs.present_value_names),
        ] {
            if !pat.contains("%d") {
                return Err(Error::model(format!(
                    "decoder {what} \"{pat}\" has no %d for the layer number"
                )));
            }
        }
        Ok(())
    }

    /// The longest sequence (prompt and generated tokens) a generation may reach: the
    /// search's max_length when set, else the context length, never more than the context.
    pub fn max_length(&self) -> usize {
        match self.search.max_length {
            0 => self.model.context_length,
            n => n.min(self.model.context_length),
        }
    }
}

/// `pattern` with `%d` replaced by `layer`.
pub fn layer_name(pattern: &str, layer: usize) -> String {
    pattern.replacen("%d", &layer.to_string(), 1)
}
