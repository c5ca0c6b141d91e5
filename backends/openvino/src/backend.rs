//! The backend xnpu's session sees: one OpenVINO device, the capability table it claims ops
//! from, the properties a compile sends, and how a partition reaches OpenVINO (ONNX from
//! memory, or past the inline limit a file with external data in a temporary folder).

use std::path::PathBuf;
use std::sync::Arc;

use xnpu_core::{Error, Result};
use xnpu_graph::backend::{
    Backend, CapabilityTable, CompileOptions, DeviceKind, Executable, NodeContext, PerformanceHint,
    Precision, ReasonCode, Support,
};
use xnpu_graph::{Graph, Model};

use crate::cache::ModelDigest;
use crate::table::{self, capability_table};
use crate::{OpenVino, OvExecutable, Source};

/// Weights up to this many bytes go to OpenVINO in memory; more go through a file.
pub const DEFAULT_INLINE_LIMIT: usize = 256 << 20;

/// A backend on one OpenVINO device (`NPU` on Core Ultra machines; `CPU` here).
pub struct OpenVinoBackend {
    ov: Arc<OpenVino>,
    device: String,
    name: String,
    table: CapabilityTable,
    /// The device's `SUPPORTED_PROPERTIES`: hints it does not take are not sent.
    supported: Vec<String>,
    /// Properties given by the user, sent after (and over) the backend's own.
    config: Vec<(String, String)>,
    inline_limit: usize,
}

impl OpenVinoBackend {
    /// A backend on `device` (as OpenVINO names it: `CPU`, `GPU`, `NPU`), which must be one
    /// it lists. Its id is `openvino:<device in lower case>`.
    pub fn new(ov: Arc<OpenVino>, device: &str) -> Result<OpenVinoBackend> {
        let names = ov.device_names()?;
        if !names.iter().any(|d| d == device) {
            return Err(Error::unsupported(format!(
                "OpenVINO {} at {} has no device {device} (it lists: {})",
                ov.version(),
                ov.library().display(),
                names.join(", ")
            )));
        }
        OpenVinoBackend::listed(ov, device)
    }

    /// A backend on a device OpenVINO has just listed (from [`OpenVino::devices`] or
    /// [`OpenVino::device_names`]), without listing the devices again.
    pub fn listed(ov: Arc<OpenVino>, device: &str) -> Result<OpenVinoBackend> {
        let kind = match device.split('.').next().unwrap_or(device) {
            "NPU" => DeviceKind::Npu,
            "GPU" => DeviceKind::Gpu,
            _ => DeviceKind::Cpu,
        };
        let name = format!("openvino:{}", device.to_ascii_lowercase());
        let table = capability_table(&name, kind)?;
        let supported = ov
            .property(device, "SUPPORTED_PROPERTIES")
            .map(|s| {
                s.split([' ', ','])
                    .map(|k| k.split(':').next().unwrap_or(k).trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(OpenVinoBackend {
            ov,
            device: device.to_string(),
            name,
            table,
            supported,
            config: Vec::new(),
            inline_limit: DEFAULT_INLINE_LIMIT,
        })
    }

    /// The preferred device: `NPU` when OpenVINO lists one, then `GPU`, then `CPU`.
    pub fn preferred(ov: Arc<OpenVino>) -> Result<OpenVinoBackend> {
        let names = ov.device_names()?;
        match ["NPU", "GPU", "CPU"]
            .iter()
            .find(|p| names.iter().any(|d| d == *p))
        {
            Some(pick) => OpenVinoBackend::listed(ov, pick),
            // None of them: `new` says what OpenVINO lists instead.
            None => OpenVinoBackend::new(ov, "CPU"),
        }
    }

    /// OpenVINO properties sent with every compile, after the backend's own (e.g.
    /// `NPU_COMPILER_TYPE=DRIVER`). A key the device does not know fails the compile.
    pub fn with_config(mut self, config: Vec<(String, String)>) -> OpenVinoBackend {
        self.config = config;
        self
    }

    /// Parses `KEY=VALUE` pairs separated by commas or spaces (`XNPU_OPENVINO_CONFIG`).
    pub fn parse_config(text: &str) -> Result<Vec<(String, String)>> {
        text.split([',', ' '])
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| {
                        Error::invalid_input(format!("OpenVINO config: \"{p}\" is not KEY=VALUE"))
                    })
            })
            .collect()
    }

    /// Replaces the capability table (tests, and users who know their device better).
    pub fn with_table(mut self, mut table: CapabilityTable) -> OpenVinoBackend {
        table.name = self.name.clone();
        self.table = table;
        self
    }

    /// Partitions with more bytes of weights than this go to OpenVINO as an ONNX file with
    /// external data in a temporary folder instead of from memory.
    pub fn inline_limit(mut self, bytes: usize) -> OpenVinoBackend {
        self.inline_limit = bytes;
        self
    }

    /// OpenVINO's name for the device.
    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn openvino(&self) -> &Arc<OpenVino> {
        &self.ov
    }

    /// The properties a compile sends: precision (f32 unless asked otherwise, on the devices
    /// that take a hint: OpenVINO's CPU device computes in bf16 by default on CPUs with
    /// AVX-512 BF16), performance hint, threads, then the user's config. The cache folder is
    /// not among them: compiled models are cached by xnpu (see [`OpenVino::compile_cached`]).
    pub fn properties(&self, options: &CompileOptions) -> Vec<(String, String)> {
        let mut props: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: String| {
            if self.supported.iter().any(|s| s == k) {
                props.push((k.to_string(), v));
            }
        };
        let precision = match (options.precision, self.table.kind) {
            (Some(p), _) => Some(p),
            (None, DeviceKind::Cpu | DeviceKind::Gpu) => Some(Precision::F32),
            (None, DeviceKind::Npu) => None,
        };
        if let Some(p) = precision {
            put("INFERENCE_PRECISION_HINT", p.to_string());
        }
        put(
            "PERFORMANCE_HINT",
            match options.performance.unwrap_or(PerformanceHint::Latency) {
                PerformanceHint::Latency => "LATENCY",
                PerformanceHint::Throughput => "THROUGHPUT",
            }
            .into(),
        );
        if let Some(n) = options.threads {
            put("INFERENCE_NUM_THREADS", n.to_string());
        }
        for (k, v) in &self.config {
            props.retain(|(pk, _)| pk != k);
            props.push((k.clone(), v.clone()));
        }
        props
    }

    /// Where compiled models are cached for `options`: the backend's folder of the compile
    /// cache, unless the user's config names OpenVINO's own `CACHE_DIR` (then OpenVINO
    /// caches, and xnpu does not as well).
    pub fn cache_dir(&self, options: &CompileOptions) -> Option<PathBuf> {
        if self.config.iter().any(|(k, _)| k == "CACHE_DIR") {
            return None;
        }
        options.cache.dir_for(&self.name)
    }

    /// Compiles a partition, returning OpenVINO's executable (what [`Backend::compile_with`]
    /// boxes), through xnpu's cache of compiled models when `options` has one.
    pub fn compile_partition(
        &self,
        partition: &Graph,
        options: &CompileOptions,
    ) -> Result<OvExecutable> {
        let model = Model {
            name: partition.name.clone(),
            graph: partition.clone(),
            ..Default::default()
        };
        let weights: usize = partition
            .values
            .iter()
            .filter_map(|v| v.constant.as_ref())
            .map(|t| t.raw_bytes().len())
            .sum();
        let props = self.properties(options);
        let proto = xnpu_graph::onnx::to_model_proto(&model)?;
        // OpenVINO may drop inputs it folds away (an empty `axes`, an unused LSTM input):
        // inputs are matched to the partition's by name.
        let names: Vec<String> = proto
            .graph
            .as_ref()
            .map(|g| g.input.iter().map(|i| i.name.clone()).collect())
            .unwrap_or_default();
        let cache = self.cache_dir(options);
        let ((compiled, cache_use), folder) = if weights <= self.inline_limit {
            let onnx = prost::Message::encode_to_vec(&proto);
            drop(proto);
            let cache = cache.map(|d| (d, ModelDigest::of_bytes(&onnx)));
            let c = self
                .ov
                .compile_cached(Source::Onnx(&onnx), &self.device, &props, cache)?;
            (c, None)
        } else {
            let dir = tempfile::Builder::new()
                .prefix("xnpu-openvino-")
                .tempdir()
                .map_err(|e| Error::compute(format!("a temporary folder for weights: {e}")))?;
            let path = dir.path().join("partition.onnx");
            xnpu_graph::onnx::save_with_external_data(&model, &path, 1024)?;
            // The folder holds the partition and its weights only.
            let cache = cache.and_then(|d| match ModelDigest::of_folder(dir.path()) {
                Ok(m) => Some((d, m)),
                Err(e) => {
                    tracing::warn!("{}: {e}; compiling without the cache", dir.path().display());
                    None
                }
            });
            let c = self
                .ov
                .compile_cached(Source::File(&path), &self.device, &props, cache)?;
            (c, Some(dir))
        };
        OvExecutable::new(compiled, cache_use, folder, names)
    }
}

impl Backend for OpenVinoBackend {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> DeviceKind {
        self.table.kind
    }
    fn supports(&self, cx: &NodeContext<'_>) -> Support {
        if let Some(why) = table::refused_configuration(cx) {
            return Support::refuse(
                ReasonCode::Attribute,
                format!("{} refuses {}: {why}", self.name, cx.node.op.name()),
            );
        }
        self.table.check(cx)
    }
    fn needs_static_shapes(&self) -> bool {
        self.table.static_shapes
    }
    fn capabilities(&self) -> Option<&CapabilityTable> {
        Some(&self.table)
    }
    fn compile(&self, partition: &Graph) -> Result<Box<dyn Executable>> {
        self.compile_with(partition, &CompileOptions::default())
    }
    fn compile_with(
        &self,
        partition: &Graph,
        options: &CompileOptions,
    ) -> Result<Box<dyn Executable>> {
        Ok(Box::new(self.compile_partition(partition, options)?))
    }
}
