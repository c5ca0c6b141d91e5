//! QNN's C interface (QnnInterface.h, QnnTypes.h of QAIRT 2.4x; core API 2.x), declared by
//! hand: the wheel ships no headers. Layouts are those measured against libQnnHtp.so of
//! QNN 2.51 (`../shared/reference/qnn.md` §4) and asserted below. Every enum is a `u32`.

use std::ffi::{c_char, c_void};

pub type Handle = *mut c_void;
/// `Qnn_ErrorHandle_t`: 0 is success; the code is the low 16 bits.
pub type QnnError = u64;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiVersion {
    pub core: Version,
    pub backend: Version,
}

/// `QnnInterface_t`: a provider, its versions, then its function table inline.
#[repr(C)]
pub struct Interface {
    pub backend_id: u32,
    pub provider_name: *const c_char,
    pub api_version: ApiVersion,
    pub table: Table,
}

/// An entry of the table this code never calls.
pub type Unused = Option<unsafe extern "C" fn()>;

/// `QNN_INTERFACE_VER_TYPE`, slots 0–49 (the table is append-only across versions, so a
/// prefix is safe). Every slot may be NULL and is checked before a call.
#[repr(C)]
pub struct Table {
    pub property_has_capability: Unused,
    pub backend_create:
        Option<unsafe extern "C" fn(Handle, *const *const c_void, *mut Handle) -> QnnError>,
    pub backend_set_config: Unused,
    pub backend_get_api_version: Option<unsafe extern "C" fn(*mut ApiVersion) -> QnnError>,
    pub backend_get_build_id: Option<unsafe extern "C" fn(*mut *const c_char) -> QnnError>,
    pub backend_register_op_package: Unused,
    pub backend_get_supported_operations:
        Option<unsafe extern "C" fn(Handle, *mut u32, *mut *const OperationName) -> QnnError>,
    pub backend_validate_op_config: Option<unsafe extern "C" fn(Handle, OpConfig) -> QnnError>,
    pub backend_free: Option<unsafe extern "C" fn(Handle) -> QnnError>,
    pub context_create:
        Option<unsafe extern "C" fn(Handle, Handle, *const *const c_void, *mut Handle) -> QnnError>,
    pub context_set_config: Unused,
    pub context_get_binary_size: Option<unsafe extern "C" fn(Handle, *mut u64) -> QnnError>,
    pub context_get_binary:
        Option<unsafe extern "C" fn(Handle, *mut c_void, u64, *mut u64) -> QnnError>,
    pub context_create_from_binary: Option<
        unsafe extern "C" fn(
            Handle,
            Handle,
            *const *const c_void,
            *const c_void,
            u64,
            *mut Handle,
            Handle,
        ) -> QnnError,
    >,
    pub context_free: Option<unsafe extern "C" fn(Handle, Handle) -> QnnError>,
    pub graph_create: Option<
        unsafe extern "C" fn(Handle, *const c_char, *const *const c_void, *mut Handle) -> QnnError,
    >,
    pub graph_create_subgraph: Unused,
    pub graph_set_config: Unused,
    pub graph_add_node: Option<unsafe extern "C" fn(Handle, OpConfig) -> QnnError>,
    pub graph_finalize: Option<unsafe extern "C" fn(Handle, Handle, Handle) -> QnnError>,
    pub graph_retrieve:
        Option<unsafe extern "C" fn(Handle, *const c_char, *mut Handle) -> QnnError>,
    pub graph_execute: Option<
        unsafe extern "C" fn(
            Handle,
            *const Tensor,
            u32,
            *mut Tensor,
            u32,
            Handle,
            Handle,
        ) -> QnnError,
    >,
    pub graph_execute_async: Unused,
    pub tensor_create_context_tensor: Unused,
    pub tensor_create_graph_tensor: Option<unsafe extern "C" fn(Handle, *mut Tensor) -> QnnError>,
    pub log_create: Option<unsafe extern "C" fn(Option<LogCallback>, u32, *mut Handle) -> QnnError>,
    pub log_set_log_level: Unused,
    pub log_free: Option<unsafe extern "C" fn(Handle) -> QnnError>,
    pub profile: [Unused; 7],
    pub mem_register: Unused,
    pub mem_de_register: Unused,
    pub device_get_platform_info: Unused,
    pub device_free_platform_info: Unused,
    pub device_get_infrastructure: Unused,
    pub device_create:
        Option<unsafe extern "C" fn(Handle, *const *const DeviceConfig, *mut Handle) -> QnnError>,
    pub device_set_config: Unused,
    pub device_get_info: Unused,
    pub device_free: Option<unsafe extern "C" fn(Handle) -> QnnError>,
    pub signal: [Unused; 4],
    pub error_get_message: Option<unsafe extern "C" fn(QnnError, *mut *const c_char) -> QnnError>,
    pub error_get_verbose_message: Unused,
}

/// `void (*)(const char* fmt, QnnLog_Level_t, uint64_t timestamp, va_list)`; on x86_64 and
/// aarch64 Linux a `va_list` argument arrives as a pointer.
pub type LogCallback = unsafe extern "C" fn(*const c_char, u32, u64, *mut c_void);

/// `QnnBackend_OperationName_t`.
#[repr(C)]
pub struct OperationName {
    pub package: *const c_char,
    pub name: *const c_char,
    pub target: *const c_char,
}

/// `QnnDevice_Config_t` / `QnnGraph_Config_t`: option CUSTOM (0) and a pointer to the
/// backend's custom config.
#[repr(C)]
pub struct DeviceConfig {
    pub option: u32,
    pub custom: *mut c_void,
}

/// `QnnHtpDevice_CustomConfig_t` (2.4x: the union at offset 8), with room to spare.
#[repr(C)]
pub struct HtpDeviceCustomConfig {
    pub option: u32,
    pub _pad: u32,
    /// `socModel` for option SOC (0); `{deviceId, arch}` for option ARCH (1).
    pub value: [u32; 2],
    pub _rest: [u64; 4],
}

pub const HTP_DEVICE_CONFIG_SOC: u32 = 0;

/// `Qnn_QuantizeParams_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QuantizeParams {
    pub encoding_definition: u32,
    pub quantization_encoding: u32,
    /// For SCALE_OFFSET: `{scale: f32, offset: i32}` in the first 8 bytes.
    pub encoding: [u64; 4],
}

pub const QUANT_UNDEFINED: u32 = 0x7FFF_FFFF;
pub const QUANT_DEFINED: u32 = 1;
pub const QUANT_SCALE_OFFSET: u32 = 0;

impl QuantizeParams {
    pub fn undefined() -> QuantizeParams {
        QuantizeParams {
            encoding_definition: QUANT_UNDEFINED,
            quantization_encoding: QUANT_UNDEFINED,
            encoding: [0; 4],
        }
    }

    /// Real value = (q + offset) * scale, so `offset = -zero_point`.
    pub fn scale_offset(scale: f32, zero_point: i32) -> QuantizeParams {
        let lo = u64::from(scale.to_bits()) | (u64::from((-zero_point) as u32) << 32);
        QuantizeParams {
            encoding_definition: QUANT_DEFINED,
            quantization_encoding: QUANT_SCALE_OFFSET,
            encoding: [lo, 0, 0, 0],
        }
    }
}

/// `Qnn_ClientBuffer_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ClientBuffer {
    pub data: *mut c_void,
    pub size: u32,
}

/// `Qnn_TensorV1_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TensorV1 {
    pub id: u32,
    pub name: *const c_char,
    pub tensor_type: u32,
    pub data_format: u32,
    pub data_type: u32,
    pub quantize: QuantizeParams,
    pub rank: u32,
    pub dimensions: *mut u32,
    pub mem_type: u32,
    pub client_buf: ClientBuffer,
}

/// `Qnn_Tensor_t` (version 1; the union is sized for v2).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Tensor {
    pub version: u32,
    pub v1: TensorV1,
    pub _v2_tail: [u64; 3],
}

pub const TENSOR_APP_WRITE: u32 = 0;
pub const TENSOR_APP_READ: u32 = 1;
pub const TENSOR_NATIVE: u32 = 3;
pub const TENSOR_STATIC: u32 = 4;

/// `Qnn_Scalar_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Scalar {
    pub data_type: u32,
    /// The value's bytes, little-endian, in the union's first bytes.
    pub value: u64,
}

/// `Qnn_Param_t`'s union.
#[repr(C)]
#[derive(Clone, Copy)]
pub union ParamValue {
    pub scalar: Scalar,
    pub tensor: Tensor,
}

/// `Qnn_Param_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Param {
    pub param_type: u32,
    pub name: *const c_char,
    pub value: ParamValue,
}

pub const PARAM_SCALAR: u32 = 0;
pub const PARAM_TENSOR: u32 = 1;

/// `Qnn_OpConfigV1_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OpConfigV1 {
    pub name: *const c_char,
    pub package: *const c_char,
    pub type_name: *const c_char,
    pub num_params: u32,
    pub params: *mut Param,
    pub num_inputs: u32,
    pub inputs: *mut Tensor,
    pub num_outputs: u32,
    pub outputs: *mut Tensor,
}

/// `Qnn_OpConfig_t`, passed by value.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OpConfig {
    pub version: u32,
    pub v1: OpConfigV1,
}

/// `Qnn_DataType_t` values.
pub mod dtype {
    pub const INT_8: u32 = 0x0008;
    pub const INT_16: u32 = 0x0016;
    pub const INT_32: u32 = 0x0032;
    pub const INT_64: u32 = 0x0064;
    pub const UINT_8: u32 = 0x0108;
    pub const UINT_16: u32 = 0x0116;
    pub const UINT_32: u32 = 0x0132;
    pub const UINT_64: u32 = 0x0164;
    pub const FLOAT_16: u32 = 0x0216;
    pub const FLOAT_32: u32 = 0x0232;
    pub const SFIXED_POINT_8: u32 = 0x0308;
    pub const SFIXED_POINT_32: u32 = 0x0332;
    pub const UFIXED_POINT_8: u32 = 0x0408;
    pub const UFIXED_POINT_16: u32 = 0x0416;
    pub const BOOL_8: u32 = 0x0508;
}

// The layouts QNN 2.51 was measured with (reference §4).
const _: () = {
    assert!(std::mem::size_of::<Version>() == 12);
    assert!(std::mem::size_of::<ApiVersion>() == 24);
    assert!(std::mem::offset_of!(Interface, table) == 40);
    assert!(std::mem::size_of::<Table>() == 50 * 8);
    assert!(std::mem::size_of::<QuantizeParams>() == 40);
    assert!(std::mem::size_of::<ClientBuffer>() == 16);
    assert!(std::mem::size_of::<TensorV1>() == 112);
    assert!(std::mem::offset_of!(TensorV1, quantize) == 32);
    assert!(std::mem::offset_of!(TensorV1, rank) == 72);
    assert!(std::mem::offset_of!(TensorV1, dimensions) == 80);
    assert!(std::mem::offset_of!(TensorV1, mem_type) == 88);
    assert!(std::mem::offset_of!(TensorV1, client_buf) == 96);
    assert!(std::mem::size_of::<Tensor>() == 144);
    assert!(std::mem::offset_of!(Tensor, v1) == 8);
    assert!(std::mem::size_of::<Scalar>() == 16);
    assert!(std::mem::size_of::<Param>() == 160);
    assert!(std::mem::offset_of!(Param, value) == 16);
    assert!(std::mem::size_of::<OpConfigV1>() == 72);
    assert!(std::mem::size_of::<OpConfig>() == 80);
    assert!(std::mem::size_of::<DeviceConfig>() == 16);
    assert!(std::mem::size_of::<OperationName>() == 24);
};
