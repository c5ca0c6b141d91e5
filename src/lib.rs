//! xnpu: one API and one operator set for NPUs, GPUs and CPUs.
//!
//! The facade crate at the end of the path of a model (`core` ← `ops` ← `graph` ← backends ←
//! `xnpu`): [`Session`] imports an ONNX model and runs it; [`devices`] lists what this machine
//! can run on. The `xnpu` command-line tool is built from this crate.
//!
//! ```no_run
//! use xnpu::{Session, Tensor};
//! let session = Session::load("model.onnx")?;
//! let x = Tensor::from_vec(vec![1, 3], vec![1.0f32, 2.0, 3.0])?;
//! let outputs = session.run(vec![("x", x.into())])?;
//! # Ok::<(), xnpu::Error>(())
//! ```

pub mod bench;
pub mod chart;
pub mod devices;
pub mod generate;
pub mod limits;
pub mod log;
pub mod npy;
pub mod plugins;
pub mod policy;
pub mod quantize;
pub mod registry;
pub mod runtime;

pub use policy::Policy;
pub use runtime::{optimize, IoInfo, RunOptions, Session, SessionOptions};
pub use xnpu_core::{DType, Dim, Error, Result, Shape, Tensor, TensorType, Value, ValueType};
pub use xnpu_graph as graph;
pub use {xnpu_core as core, xnpu_ops as ops};

pub use devices::{devices, Device, DeviceStatus, Discovery, Library};

/// The OpenVINO backend (Intel NPUs; OpenVINO's CPU and GPU devices), built in with the
/// `openvino` feature (on by default). Sessions reach it through the device policy
/// (`openvino:npu`, `openvino:cpu`); this is for code that builds backends itself.
#[cfg(feature = "openvino")]
pub use xnpu_backend_openvino as openvino;

/// The QNN backend (Qualcomm Hexagon NPUs; on x86_64 Qualcomm's HTP simulator, which runs on
/// the CPU), built in with the `qnn` feature (on by default). Sessions reach it through the
/// device policy (`qnn:htp-sim`, `qnn:htp`), which opens QNN's library only then.
#[cfg(feature = "qnn")]
pub use xnpu_backend_qnn as qnn;
