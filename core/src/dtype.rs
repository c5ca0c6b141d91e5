//! Element types: one table row per dtype, and the Rust types that hold their elements.
//!
//! Everything xnpu knows about a dtype is one row of the table below ([`DTypeRow`]): its
//! ONNX code and name, the name xnpu prints and the numpy-ish spellings it parses, its bits
//! per element, its kind (float, signed, unsigned, bool, string), whether several elements
//! share a byte (packed), and whether kernels compute with it yet. Adding a dtype is adding
//! a row; every property (`bits`, `byte_len`, `is_float`, `from_onnx`, `parse`, …) reads
//! the row.
//!
//! A row with `computes: false` besides strings (the packed sub-byte integers and float4,
//! the float8 variants) is a *narrow* dtype: xnpu imports, holds, moves, exports, casts and
//! (de)quantizes it, in ONNX's byte layout (packed types two or four to a byte, the first
//! element in the low bits), but kernels do not compute with it: it has no [`Elem`] type,
//! `with_numeric_type!` and the other dispatch macros do not bind it, and it is none of
//! `is_float`, `is_int`, `is_numeric` (so an op that computes refuses it by name). Its
//! values are read and written by [`crate::narrow`].

use std::fmt;

use half::{bf16, f16};

/// What the values of a dtype are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Float,
    Signed,
    Unsigned,
    Bool,
    String,
}

/// One row of the dtype table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DTypeRow {
    pub dtype: DType,
    /// The ONNX `TensorProto.DataType` code (also the enum's discriminant).
    pub onnx_code: i32,
    /// The ONNX name (`FLOAT`, `INT4`), for messages about ONNX types.
    pub onnx_name: &'static str,
    /// The name xnpu prints (`f32`, `i4`).
    pub name: &'static str,
    /// NumPy's name (`float32`; ml_dtypes' for the narrow types, `int4`, `float8_e4m3fn`).
    pub numpy: &'static str,
    /// Other spellings [`DType::parse`] accepts besides `name` and `numpy` (`float`, `half`).
    pub spellings: &'static [&'static str],
    /// Bits per element: 4 or 2 for the packed types, 8 for float8 and bool, 0 for strings
    /// (stored out of line).
    pub bits: usize,
    pub kind: Kind,
    /// Several elements share a byte (ONNX order: the first element in the low bits).
    pub packed: bool,
    /// Kernels compute with it: it has an [`Elem`] type. The others (strings aside) are the
    /// narrow dtypes of [`crate::narrow`].
    pub computes: bool,
}

/// Writes the dtype enum and its table from one list of rows, so they cannot disagree.
macro_rules! dtype_table {
    ($($v:ident = $code:literal, $onnx:literal, $name:literal, $numpy:literal, [$($sp:literal),*],
       $bits:literal, $kind:ident, $packed:literal, $computes:literal;)*) => {
        /// An element type. The discriminants are ONNX `TensorProto.DataType` codes; the
        /// properties are the dtype's [`DTypeRow`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DType {
            $($v = $code,)*
        }

        impl DType {
            /// Every dtype with a row, computing or not, in table order.
            pub const ALL: [DType; [$($code),*].len()] = [$(DType::$v),*];

            /// The dtype's row of the table.
            pub fn row(self) -> &'static DTypeRow {
                match self {
                    $(DType::$v => &DTypeRow {
                        dtype: DType::$v,
                        onnx_code: $code,
                        onnx_name: $onnx,
                        name: $name,
                        numpy: $numpy,
                        spellings: &[$($sp),*],
                        bits: $bits,
                        kind: Kind::$kind,
                        packed: $packed,
                        computes: $computes,
                    },)*
                }
            }
        }
    };
}

dtype_table! {
//  variant      code  ONNX name          name          numpy's name       other spellings     bits kind      packed computes
    F32        =  1, "FLOAT",          "f32",        "float32",         ["float"],           32, Float,    false, true;
    U8         =  2, "UINT8",          "u8",         "uint8",           [],                   8, Unsigned, false, true;
    I8         =  3, "INT8",           "i8",         "int8",            [],                   8, Signed,   false, true;
    U16        =  4, "UINT16",         "u16",        "uint16",          [],                  16, Unsigned, false, true;
    I16        =  5, "INT16",          "i16",        "int16",           [],                  16, Signed,   false, true;
    I32        =  6, "INT32",          "i32",        "int32",           [],                  32, Signed,   false, true;
    I64        =  7, "INT64",          "i64",        "int64",           [],                  64, Signed,   false, true;
    String     =  8, "STRING",         "string",     "str",             [],                   0, String,   false, true;
    Bool       =  9, "BOOL",           "bool",       "bool",            [],                   8, Bool,     false, true;
    F16        = 10, "FLOAT16",        "f16",        "float16",         ["half"],            16, Float,    false, true;
    F64        = 11, "DOUBLE",         "f64",        "float64",         ["double"],          64, Float,    false, true;
    U32        = 12, "UINT32",         "u32",        "uint32",          [],                  32, Unsigned, false, true;
    U64        = 13, "UINT64",         "u64",        "uint64",          [],                  64, Unsigned, false, true;
    Bf16       = 16, "BFLOAT16",       "bf16",       "bfloat16",        [],                  16, Float,    false, true;
    F8e4m3fn   = 17, "FLOAT8E4M3FN",   "f8e4m3fn",   "float8_e4m3fn",   [],                   8, Float,    false, false;
    F8e4m3fnuz = 18, "FLOAT8E4M3FNUZ", "f8e4m3fnuz", "float8_e4m3fnuz", [],                   8, Float,    false, false;
    F8e5m2     = 19, "FLOAT8E5M2",     "f8e5m2",     "float8_e5m2",     [],                   8, Float,    false, false;
    F8e5m2fnuz = 20, "FLOAT8E5M2FNUZ", "f8e5m2fnuz", "float8_e5m2fnuz", [],                   8, Float,    false, false;
    U4         = 21, "UINT4",          "u4",         "uint4",           [],                   4, Unsigned, true,  false;
    I4         = 22, "INT4",           "i4",         "int4",            [],                   4, Signed,   true,  false;
    F4e2m1     = 23, "FLOAT4E2M1",     "f4e2m1",     "float4_e2m1fn",   [],                   4, Float,    true,  false;
    F8e8m0     = 24, "FLOAT8E8M0",     "f8e8m0",     "float8_e8m0fnu",  [],                   8, Float,    false, false;
    U2         = 25, "UINT2",          "u2",         "uint2",           [],                   2, Unsigned, true,  false;
    I2         = 26, "INT2",           "i2",         "int2",            [],                   2, Signed,   true,  false;
}

/// What [`DType::from_onnx`] calls a code that no ONNX type has (callers that can, name the
/// code beside it; [`DType::from_onnx_code`] does).
const UNKNOWN_CODE: &str = "an unknown data type code";

/// ONNX codes without a row: named so that an error can say which type a model used.
const ONNX_WITHOUT_ROW: [(i32, &str); 3] =
    [(0, "UNDEFINED"), (14, "COMPLEX64"), (15, "COMPLEX128")];

impl DType {
    /// The dtype for an ONNX `TensorProto.DataType` code, else the ONNX name of the type
    /// xnpu has no row for (so that an error can name it).
    pub fn from_onnx(code: i32) -> Result<DType, &'static str> {
        match DType::ALL.into_iter().find(|d| d.onnx_code() == code) {
            Some(d) => Ok(d),
            None => Err(ONNX_WITHOUT_ROW
                .iter()
                .find(|(c, _)| *c == code)
                .map_or(UNKNOWN_CODE, |(_, name)| name)),
        }
    }

    /// [`DType::from_onnx`] for a code read from a model (an attribute, a type, a tensor),
    /// any integer: a refusal is one sentence naming the type and its numeric code ("data
    /// type COMPLEX64 (code 14) is not supported", "data type code 99 is not one xnpu
    /// knows").
    pub fn from_onnx_code(code: i64) -> crate::Result<DType> {
        let known = i32::try_from(code).map(DType::from_onnx);
        match known {
            Ok(Ok(d)) => Ok(d),
            Ok(Err(name)) if name != UNKNOWN_CODE => Err(crate::Error::unsupported(format!(
                "data type {name} (code {code}) is not supported"
            ))),
            _ => Err(crate::Error::unsupported(format!(
                "data type code {code} is not one xnpu knows (ONNX codes run from 0 to {})",
                DType::ALL.iter().map(|d| d.onnx_code()).max().unwrap_or(0)
            ))),
        }
    }

    pub fn onnx_code(self) -> i32 {
        self as i32
    }

    /// Bits per element (see [`DTypeRow::bits`]).
    pub fn bits(self) -> usize {
        self.row().bits
    }

    /// The bytes `n` elements take, `ceil(n * bits / 8)` (packed elements share bytes;
    /// strings are stored out of line and take 0), or `None` when that overflows `usize`.
    pub fn byte_len(self, n: usize) -> Option<usize> {
        let bits = self.bits();
        // n = 8q + r elements take q * bits bytes plus ceil(r * bits / 8), without forming
        // n * bits (which may overflow when the byte count does not).
        (n / 8)
            .checked_mul(bits)?
            .checked_add((n % 8 * bits).div_ceil(8))
    }

    /// Bytes per element when every element has bytes of its own (the stride of byte-wise
    /// copies); `None` for a packed dtype, whose elements share bytes. Strings report 0.
    pub fn elem_bytes(self) -> Option<usize> {
        let row = self.row();
        (!row.packed).then_some(row.bits / 8)
    }

    pub fn kind(self) -> Kind {
        self.row().kind
    }

    /// Several elements share a byte (see [`DTypeRow::packed`]).
    pub fn is_packed(self) -> bool {
        self.row().packed
    }

    /// Kernels compute with this dtype (see [`DTypeRow::computes`]).
    pub fn computes(self) -> bool {
        self.row().computes
    }

    /// A narrow dtype (float8, float4, the sub-byte integers): held, moved, cast and
    /// (de)quantized, not computed with (see [`crate::narrow`]).
    pub fn is_narrow(self) -> bool {
        !self.computes() && self.kind() != Kind::String
    }

    /// A float dtype kernels compute with.
    pub fn is_float(self) -> bool {
        self.computes() && self.kind() == Kind::Float
    }

    /// An integer dtype kernels compute with.
    pub fn is_int(self) -> bool {
        self.computes() && matches!(self.kind(), Kind::Signed | Kind::Unsigned)
    }

    /// A signed integer dtype kernels compute with.
    pub fn is_signed_int(self) -> bool {
        self.computes() && self.kind() == Kind::Signed
    }

    pub fn is_numeric(self) -> bool {
        self.is_float() || self.is_int()
    }

    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// Parses the names printed by [`DType::name`], NumPy's (and ml_dtypes') names and the
    /// other usual spellings.
    pub fn parse(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| {
            let row = d.row();
            row.name == s || row.numpy == s || row.spellings.contains(&s)
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that is the element of a tensor of dtype `DTYPE`: how it is stored. How a
/// numeric element computes is [`crate::Num`].
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
/// Evaluates `$other` for `Bool`, `String` and the dtypes that do not compute yet.
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
    fn rows_agree_with_their_variant_and_codes_are_unique() {
        for (i, d) in DType::ALL.into_iter().enumerate() {
            assert_eq!(d.row().dtype, d);
            assert_eq!(d.row().onnx_code, d.onnx_code());
            assert!(DType::ALL[..i]
                .iter()
                .all(|e| e.onnx_code() != d.onnx_code()));
        }
    }

    /// The 14 dtypes xnpu computes with, as they were before the table: ONNX code, name,
    /// bytes per element and predicates.
    #[test]
    fn every_computing_dtype_is_unchanged() {
        use DType::*;
        let old: [(DType, i32, &str, usize, bool, bool, bool); 14] = [
            (F32, 1, "f32", 4, true, false, false),
            (U8, 2, "u8", 1, false, true, false),
            (I8, 3, "i8", 1, false, true, true),
            (U16, 4, "u16", 2, false, true, false),
            (I16, 5, "i16", 2, false, true, true),
            (I32, 6, "i32", 4, false, true, true),
            (I64, 7, "i64", 8, false, true, true),
            (String, 8, "string", 0, false, false, false),
            (Bool, 9, "bool", 1, false, false, false),
            (F16, 10, "f16", 2, true, false, false),
            (F64, 11, "f64", 8, true, false, false),
            (U32, 12, "u32", 4, false, true, false),
            (U64, 13, "u64", 8, false, true, false),
            (Bf16, 16, "bf16", 2, true, false, false),
        ];
        let computing: Vec<DType> = DType::ALL.into_iter().filter(|d| d.computes()).collect();
        assert_eq!(computing, old.map(|r| r.0));
        for (d, code, name, size, float, int, signed) in old {
            assert_eq!(
                (d.onnx_code(), d.name(), d.to_string()),
                (code, name, name.into())
            );
            assert_eq!(d.elem_bytes(), Some(size), "{d}");
            assert_eq!(d.bits(), size * 8, "{d}");
            assert_eq!(d.byte_len(3), Some(3 * size), "{d}");
            assert_eq!(
                (d.is_float(), d.is_int(), d.is_signed_int()),
                (float, int, signed)
            );
            assert_eq!(d.is_numeric(), float || int, "{d}");
            assert!(!d.is_packed(), "{d}");
        }
        let spellings = [
            ("float32", F32),
            ("float", F32),
            ("float64", F64),
            ("double", F64),
            ("float16", F16),
            ("half", F16),
            ("bfloat16", Bf16),
            ("int8", I8),
            ("uint8", U8),
            ("int16", I16),
            ("uint16", U16),
            ("int32", I32),
            ("uint32", U32),
            ("int64", I64),
            ("uint64", U64),
            ("str", String),
            ("bool", Bool),
            ("string", String),
        ];
        for (s, d) in spellings {
            assert_eq!(DType::parse(s), Some(d), "{s}");
        }
        assert_eq!(DType::parse("f128"), None);
    }

    #[test]
    fn packed_and_float8_rows_name_and_size_but_do_not_compute() {
        use DType::*;
        use Kind::{Float, Signed, Unsigned};
        // dtype, ONNX code and name, xnpu name, NumPy's (ml_dtypes') name, bits, kind, packed
        let rows = [
            (
                F8e4m3fn,
                17,
                "FLOAT8E4M3FN",
                "f8e4m3fn",
                "float8_e4m3fn",
                8,
                Float,
                false,
            ),
            (
                F8e4m3fnuz,
                18,
                "FLOAT8E4M3FNUZ",
                "f8e4m3fnuz",
                "float8_e4m3fnuz",
                8,
                Float,
                false,
            ),
            (
                F8e5m2,
                19,
                "FLOAT8E5M2",
                "f8e5m2",
                "float8_e5m2",
                8,
                Float,
                false,
            ),
            (
                F8e5m2fnuz,
                20,
                "FLOAT8E5M2FNUZ",
                "f8e5m2fnuz",
                "float8_e5m2fnuz",
                8,
                Float,
                false,
            ),
            (U4, 21, "UINT4", "u4", "uint4", 4, Unsigned, true),
            (I4, 22, "INT4", "i4", "int4", 4, Signed, true),
            (
                F4e2m1,
                23,
                "FLOAT4E2M1",
                "f4e2m1",
                "float4_e2m1fn",
                4,
                Float,
                true,
            ),
            (
                F8e8m0,
                24,
                "FLOAT8E8M0",
                "f8e8m0",
                "float8_e8m0fnu",
                8,
                Float,
                false,
            ),
            (U2, 25, "UINT2", "u2", "uint2", 2, Unsigned, true),
            (I2, 26, "INT2", "i2", "int2", 2, Signed, true),
        ];
        for (d, code, onnx, name, numpy, bits, kind, packed) in rows {
            let row = d.row();
            assert_eq!((d.onnx_code(), row.onnx_name, d.name()), (code, onnx, name));
            assert_eq!(row.numpy, numpy);
            assert_eq!(DType::parse(numpy), Some(d));
            assert_eq!((d.bits(), d.kind(), d.is_packed()), (bits, kind, packed));
            assert!(!d.computes() && !d.is_numeric() && !d.is_float() && !d.is_int());
            assert!(d.is_narrow());
            assert_eq!(DType::from_onnx(code), Ok(d));
            assert_eq!(DType::parse(name), Some(d));
            assert_eq!(d.elem_bytes(), (!packed).then_some(1));
        }
        // ceil(n * bits / 8)
        assert_eq!(I4.byte_len(0), Some(0));
        assert_eq!(I4.byte_len(1), Some(1));
        assert_eq!(U4.byte_len(3), Some(2));
        assert_eq!(F4e2m1.byte_len(8), Some(4));
        assert_eq!(I2.byte_len(1), Some(1));
        assert_eq!(U2.byte_len(5), Some(2));
        assert_eq!(I2.byte_len(9), Some(3));
        assert_eq!(F8e5m2.byte_len(7), Some(7));
        // Checked: no overflow where the byte count fits, None where it does not.
        assert_eq!(I4.byte_len(usize::MAX), Some(usize::MAX / 2 + 1));
        assert_eq!(I2.byte_len(usize::MAX), Some(usize::MAX / 4 + 1));
        assert_eq!(F8e8m0.byte_len(usize::MAX), Some(usize::MAX));
        assert_eq!(F32.byte_len(usize::MAX / 4 + 1), None);
        assert_eq!(String.byte_len(usize::MAX), Some(0));
    }

    #[test]
    fn exotic_onnx_types_are_named() {
        assert_eq!(DType::from_onnx(17), Ok(DType::F8e4m3fn));
        assert_eq!(DType::from_onnx(22), Ok(DType::I4));
        assert_eq!(DType::from_onnx(0), Err("UNDEFINED"));
        assert_eq!(DType::from_onnx(14), Err("COMPLEX64"));
        assert_eq!(DType::from_onnx(15), Err("COMPLEX128"));
        assert_eq!(DType::from_onnx(27), Err("an unknown data type code"));
        assert_eq!(DType::from_onnx(-1), Err("an unknown data type code"));
    }

    #[test]
    fn refused_codes_are_named_with_their_number() {
        assert_eq!(DType::from_onnx_code(1).unwrap(), DType::F32);
        let msg = |code: i64| DType::from_onnx_code(code).unwrap_err().to_string();
        assert_eq!(msg(14), "data type COMPLEX64 (code 14) is not supported");
        assert_eq!(msg(0), "data type UNDEFINED (code 0) is not supported");
        for code in [27, -1, 1 << 40] {
            assert_eq!(
                msg(code),
                format!(
                    "data type code {code} is not one xnpu knows (ONNX codes run from 0 to 26)"
                )
            );
        }
    }

    #[test]
    fn misaligned_bytes_are_not_viewed() {
        let buf = [0u8; 9];
        assert!(f32::view(&buf[1..5]).is_none() || (buf[1..].as_ptr() as usize).is_multiple_of(4));
        assert_eq!(f32::read(&buf[1..5]), vec![0.0]);
    }
}
