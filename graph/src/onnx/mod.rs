//! ONNX import and export: protobuf messages (`proto`), tensors and external data
//! (`tensor`), types, the per-op translation table (`ops`), the importer (`import`) and its
//! inverse, the exporter (`export`).

pub mod export;
mod import;
mod node;
pub mod ops;
pub mod proto;
pub mod tensor;
pub mod types;

pub use export::{
    save, save_with_external_data, to_bytes, to_exact, to_model_proto, ExactModel, Form,
    XNPU_DOMAIN,
};
pub use import::{import_model, load, load_bytes, load_sent_bytes};
pub use node::NodeCtx;
pub use tensor::DataDir;
