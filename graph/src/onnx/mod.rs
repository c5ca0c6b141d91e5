//! ONNX import and export: protobuf messages (`proto`), tensors and external data
//! (`tensor`), types, the per-op translation table (`ops`), the importer (`import`), the
//! measure of what inlining model-local functions costs (`functions`), names from a model
//! made safe to print (`names`), and the importer's inverse, the exporter (`export`).

pub mod export;
mod functions;
mod import;
mod names;
mod node;
pub mod ops;
pub mod proto;
pub mod tensor;
pub mod types;

pub use export::{
    save, save_with_external_data, to_bytes, to_exact, to_model_proto, ExactModel, Form,
    XNPU_DOMAIN,
};
pub use functions::{MAX_NESTING, MAX_NODES};
pub use import::{import_model, load, load_bytes, load_sent_bytes, PROTOBUF_NESTING_LIMIT};
pub use names::{escaped, quoted};
pub use node::NodeCtx;
pub use tensor::DataDir;
