//! ONNX import: protobuf messages (`proto`), tensors and external data (`tensor`), types,
//! the per-op translation table (`ops`), and the importer (`import`).

mod import;
mod node;
pub mod ops;
pub mod proto;
pub mod tensor;
pub mod types;

pub use import::{import_model, load, load_bytes};
pub use node::NodeCtx;
pub use tensor::DataDir;
