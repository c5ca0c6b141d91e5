//! Element types and their ONNX codes.

use std::fmt;

use half::{bf16, f16};

/// An element type xnpu computes with. The discriminants are ONNX `TensorProto.DataType` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32 = 1,
    U8 = 2,
    I8 = 3,
    U16 = 4,
    I16 = 5,
    I32 = 6,
    I64 = 7,
    String = 8,
    Bool = 9,
    F16 = 10,
    F64 = 11,
    U32 = 12,
    U64 = 13,
    Bf16 = 16,
}

impl DType {
    pub const ALL: [DType; 14] = [
        DType::F32,
        DType::U8,
        DType::I8,
        DType::U16,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::String,
        DType::Bool,
        DType::F16,
        DType::F64,
        DType::U32,
        DType::U64,
        DType::Bf16,
    ];

    /// The dtype for an ONNX `TensorProto.DataType` code, or the ONNX name of a type xnpu
    /// does not compute with (so that an error can name it).
    pub fn from_onnx(code: i32) -> Result<DType, &'static str> {
        Ok(match code {
            1 => DType::F32,
            2 => DType::U8,
            3 => DType::I8,
            4 => DType::U16,
            5 => DType::I16,
            6 => DType::I32,
            7 => DType::I64,
            8 => DType::String,
            9 => DType::Bool,
            10 => DType::F16,
            11 => DType::F64,
            12 => DType::U32,
            13 => DType::U64,
            16 => DType::Bf16,
            0 => return Err("UNDEFINED"),
            14 => return Err("COMPLEX64"),
            15 => return Err("COMPLEX128"),
            17 => return Err("FLOAT8E4M3FN"),
            18 => return Err("FLOAT8E4M3FNUZ"),
            19 => return Err("FLOAT8E5M2"),
            20 => return Err("FLOAT8E5M2FNUZ"),
            21 => return Err("UINT4"),
            22 => return Err("INT4"),
            23 => return Err("FLOAT4E2M1"),
            24 => return Err("FLOAT8E8M0"),
            25 => return Err("UINT2"),
            26 => return Err("INT2"),
            _ => return Err("an unknown data type code"),
        })
    }

    pub fn onnx_code(self) -> i32 {
        self as i32
    }

    /// Bytes per element; strings are stored out of line and report 0.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
            DType::String => 0,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::Bf16)
    }

    pub fn is_int(self) -> bool {
        matches!(
            self,
            DType::U8
                | DType::I8
                | DType::U16
                | DType::I16
                | DType::I32
                | DType::I64
                | DType::U32
                | DType::U64
        )
    }

    pub fn is_signed_int(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32 | DType::I64)
    }

    pub fn is_numeric(self) -> bool {
        self.is_float() || self.is_int()
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::U8 => "u8",
            DType::I8 => "i8",
            DType::U16 => "u16",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::String => "string",
            DType::Bool => "bool",
            DType::F16 => "f16",
            DType::F64 => "f64",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::Bf16 => "bf16",
        }
    }

    /// Parses the names printed by [`DType::name`] and the usual numpy spellings.
    pub fn parse(s: &str) -> Option<DType> {
        Some(match s {
            "f32" | "float32" | "float" => DType::F32,
            "f64" | "float64" | "double" => DType::F64,
            "f16" | "float16" | "half" => DType::F16,
            "bf16" | "bfloat16" => DType::Bf16,
            "i8" | "int8" => DType::I8,
            "u8" | "uint8" => DType::U8,
            "i16" | "int16" => DType::I16,
            "u16" | "uint16" => DType::U16,
            "i32" | "int32" => DType::I32,
            "u32" | "uint32" => DType::U32,
            "i64" | "int64" => DType::I64,
            "u64" | "uint64" => DType::U64,
            "bool" => DType::Bool,
            "string" | "str" => DType::String,
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that is the element of a tensor of dtype `DTYPE`.
///
/// Every numeric element is plain old data, so tensor bytes (including bytes of a
/// memory-mapped model) can be viewed as `&[Self]` without a copy when they are aligned.
/// `bool` is stored as one byte per element and always read with a check.
pub trait Elem: Copy + Send + Sync + fmt::Debug + PartialEq + Default + 'static {
    const DTYPE: DType;
    /// Views bytes as elements, or `None` when the bytes are misaligned (or the type is not
    /// plain old data).
    fn view(bytes: &[u8]) -> Option<&[Self]>;
    /// Copies bytes into elements (any alignment).
    fn read(bytes: &[u8]) -> Vec<Self>;
    /// Elements as bytes.
    fn as_bytes(v: &[Self]) -> &[u8];
}

macro_rules! pod_elem {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            fn view(bytes: &[u8]) -> Option<&[Self]> {
                bytemuck::try_cast_slice(bytes).ok()
            }
            fn read(bytes: &[u8]) -> Vec<Self> {
                bytemuck::pod_collect_to_vec(bytes)
            }
            fn as_bytes(v: &[Self]) -> &[u8] {
                bytemuck::cast_slice(v)
            }
        }
    )*};
}

pod_elem!(
    f32 => F32, f64 => F64, f16 => F16, bf16 => Bf16,
    i8 => I8, u8 => U8, i16 => I16, u16 => U16,
    i32 => I32, u32 => U32, i64 => I64, u64 => U64,
);

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    fn view(_bytes: &[u8]) -> Option<&[Self]> {
        None
    }
    fn read(bytes: &[u8]) -> Vec<Self> {
        bytes.iter().map(|&b| b != 0).collect()
    }
    fn as_bytes(v: &[Self]) -> &[u8] {
        // bool has the size and alignment of u8 and is always 0 or 1.
        let ptr = v.as_ptr() as *const u8;
        // SAFETY: `bool` is one byte with alignment 1 and every `bool` is a valid `u8`, so a
        // `&[bool]` of length n is a valid `&[u8]` of length n for the same lifetime.
        unsafe { std::slice::from_raw_parts(ptr, v.len()) }
    }
}

/// Calls `$body` with the type alias `$T` bound to the Rust element type of a numeric dtype.
/// Evaluates `$other` for `Bool` and `String`.
#[macro_export]
macro_rules! with_numeric_type {
    ($dtype:expr, $T:ident => $body:expr, _ => $other:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::DType::F16 => {
                type $T = $crate::f16;
                $body
            }
            $crate::DType::Bf16 => {
                type $T = $crate::bf16;
                $body
            }
            $crate::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::DType::U16 => {
                type $T = u16;
                $body
            }
            $crate::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::DType::U32 => {
                type $T = u32;
                $body
            }
            $crate::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::DType::U64 => {
                type $T = u64;
                $body
            }
            _ => $other,
        }
    };
}

/// Like [`with_numeric_type!`] but also binds `bool`.
#[macro_export]
macro_rules! with_pod_type {
    ($dtype:expr, $T:ident => $body:expr, _ => $other:expr) => {
        match $dtype {
            $crate::DType::Bool => { type $T = bool; $body }
            d => $crate::with_numeric_type!(d, $T => $body, _ => $other),
        }
    };
}

/// Like [`with_numeric_type!`] for the floating-point dtypes only.
#[macro_export]
macro_rules! with_float_type {
    ($dtype:expr, $T:ident => $body:expr, _ => $other:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::DType::F16 => {
                type $T = $crate::f16;
                $body
            }
            $crate::DType::Bf16 => {
                type $T = $crate::bf16;
                $body
            }
            _ => $other,
        }
    };
}

/// Like [`with_numeric_type!`] for the integer dtypes only.
#[macro_export]
macro_rules! with_int_type {
    ($dtype:expr, $T:ident => $body:expr, _ => $other:expr) => {
        match $dtype {
            $crate::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::DType::U16 => {
                type $T = u16;
                $body
            }
            $crate::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::DType::U32 => {
                type $T = u32;
                $body
            }
            $crate::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::DType::U64 => {
                type $T = u64;
                $body
            }
            _ => $other,
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_codes_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_onnx(d.onnx_code()), Ok(d));
            assert_eq!(DType::parse(d.name()), Some(d));
        }
    }

    #[test]
    fn exotic_onnx_types_are_named() {
        assert_eq!(DType::from_onnx(17), Err("FLOAT8E4M3FN"));
        assert_eq!(DType::from_onnx(22), Err("INT4"));
    }

    #[test]
    fn misaligned_bytes_are_not_viewed() {
        let buf = [0u8; 9];
        assert!(f32::view(&buf[1..5]).is_none() || (buf[1..].as_ptr() as usize) % 4 == 0);
        assert_eq!(f32::read(&buf[1..5]), vec![0.0]);
    }
}
