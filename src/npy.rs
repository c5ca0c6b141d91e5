//! Reading and writing NumPy `.npy` files (format versions 1–3, C order), for every xnpu
//! dtype that NumPy has. Written here rather than taken from a crate because the CLI needs
//! f16 and bool alongside the integer types, and tensors built straight from the file bytes.
//!
//! NumPy has no narrow types (ml_dtypes' arrays are saved as raw `V1` bytes, their type
//! lost): a narrow tensor is written as the NumPy type that holds its values exactly (int8
//! for INT4/INT2, uint8 for UINT4/UINT2, float32 for float8/float4), and [`to_input`] narrows
//! such a file to an input's narrow type, refusing values the type cannot hold.

use std::path::Path;

use xnpu_core::shape::checked_nbytes;
use xnpu_core::{Bytes, DType, Error, Result, Tensor};

const MAGIC: &[u8] = b"\x93NUMPY";

fn descr(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::F16 => "<f2",
        DType::I8 => "|i1",
        DType::U8 => "|u1",
        DType::I16 => "<i2",
        DType::U16 => "<u2",
        DType::I32 => "<i4",
        DType::U32 => "<u4",
        DType::I64 => "<i8",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
        // NumPy itself has none of these (ml_dtypes adds the narrow ones).
        DType::Bf16
        | DType::String
        | DType::F8e4m3fn
        | DType::F8e4m3fnuz
        | DType::F8e5m2
        | DType::F8e5m2fnuz
        | DType::F8e8m0
        | DType::F4e2m1
        | DType::I4
        | DType::U4
        | DType::I2
        | DType::U2 => return None,
    })
}

/// The dtype of a descr, and whether its bytes are big-endian (`>f4`: NumPy on a
/// big-endian machine, or `astype('>f4')`), to be swapped to this machine's order.
fn parse_descr(d: &str) -> Option<(DType, bool)> {
    let swap = d.starts_with('>');
    let d = match d.strip_prefix('>') {
        Some(rest) => format!("<{rest}"),
        None => d.replace('=', "<"),
    };
    let t = DType::ALL.into_iter().find(|&t| {
        descr(t).is_some_and(|x| {
            // `|u1` also matches `<u1` and `>u1`: byte order means nothing for one byte.
            x == d || (x.starts_with('|') && d.get(1..).is_some_and(|rest| x[1..] == *rest))
        })
    })?;
    Some((t, swap && t.elem_bytes().is_some_and(|b| b > 1)))
}

/// Parses the header dict `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn parse_header(h: &str) -> Result<(DType, bool, bool, Vec<usize>)> {
    let bad = |what: &str| Error::invalid_input(format!("npy header: {what} in {h:?}"));
    let field = |key: &str| -> Result<&str> {
        let k = h
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(&format!("no '{key}'")))?;
        let rest = &h[k + key.len() + 2..];
        let colon = rest.find(':').ok_or_else(|| bad("no ':'"))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let d = field("descr")?;
    let d = d
        .strip_prefix('\'')
        .and_then(|s| s.split('\'').next())
        .ok_or_else(|| bad("descr is not a string"))?;
    let (dtype, swap) = parse_descr(d).ok_or_else(|| {
        if d.trim_start_matches(['<', '>', '|', '=']).starts_with('V') {
            Error::unsupported(format!(
                "npy dtype {d:?} is raw bytes (NumPy saves ml_dtypes arrays such as int4 or \
                 float8 so, without their type): save them as int8, uint8 or float32 \
                 (`a.astype(np.float32)`) and xnpu converts them to the input's type"
            ))
        } else {
            Error::unsupported(format!("npy dtype {d:?} is not supported"))
        }
    })?;
    let fortran = field("fortran_order")?.starts_with("True");
    let s = field("shape")?;
    let s = s
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("shape is not a tuple"))?;
    let shape = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| bad("bad dimension"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((dtype, swap, fortran, shape))
}

/// Decodes `.npy` bytes into a tensor (zero-copy over `bytes`).
pub fn decode(bytes: Bytes) -> Result<Tensor> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(Error::invalid_input("not a .npy file (bad magic)"));
    }
    let major = bytes[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(Error::invalid_input("truncated .npy header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => {
            return Err(Error::unsupported(format!(
                ".npy format version {v} is not supported"
            )))
        }
    };
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| Error::invalid_input("truncated .npy header"))?;
    let header = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| Error::invalid_input(".npy header is not text"))?;
    let (dtype, swap, fortran, shape) = parse_header(header)?;
    let need = checked_nbytes(dtype, &shape)?;
    let data = bytes.slice(end..);
    if data.len() != need {
        return Err(Error::invalid_input(format!(
            ".npy declares {dtype}{shape:?} ({need} bytes) but holds {} bytes",
            data.len()
        )));
    }
    if fortran && shape.len() > 1 {
        return Err(Error::unsupported(
            "Fortran-order .npy files are not supported; save with np.ascontiguousarray",
        ));
    }
    if swap {
        // A copy in this machine's byte order (fallibly allocated: its size is the file's).
        let mut v = Vec::new();
        v.try_reserve_exact(data.len())
            .map_err(|_| Error::compute(format!("cannot allocate {} bytes", data.len())))?;
        v.extend_from_slice(&data);
        for e in v.chunks_exact_mut(dtype.elem_bytes().unwrap_or(1)) {
            e.reverse();
        }
        return Tensor::from_bytes(dtype, shape, Bytes::from(v));
    }
    Tensor::from_bytes(dtype, shape, data)
}

pub fn read(path: &Path) -> Result<Tensor> {
    // Only a regular file (a FIFO or /dev/zero would block or never end); its size is the
    // limit, and the buffer is allocated fallibly.
    let bytes = xnpu_core::fs::read_regular(path, ".npy input", u64::MAX)?;
    decode(Bytes::from(bytes)).map_err(|e| e.context(path.display().to_string()))
}

/// A tensor read from a `.npy` file for an input of dtype `want`: as it is, unless `want` is
/// a narrow type and the file holds another, whose values are then narrowed with Cast's
/// rules, every value checked to be one `want` holds exactly (an integer in the type's range
/// for INT4/UINT4/INT2/UINT2; a value the float8/float4 type represents, NaN included).
pub fn to_input(t: Tensor, want: DType) -> Result<Tensor> {
    use xnpu_core::narrow;
    if !want.is_narrow() || t.dtype() == want {
        return Ok(t);
    }
    let from = t.dtype();
    if !(from.is_numeric() || from == DType::Bool) {
        return Err(Error::invalid_input(format!(
            "the file holds {from} values, which do not convert to {want}"
        )));
    }
    let n = narrow::narrow(&t, want, true, narrow::RoundMode::Up)?;
    let (given, back) = (t.to_f64_vec()?, n.to_f64_vec()?);
    if let Some(i) =
        (0..given.len()).find(|&i| !(given[i] == back[i] || given[i].is_nan() && back[i].is_nan()))
    {
        return Err(Error::invalid_input(format!(
            "value {} (element {i}) of the {from} file is not a {want} value (it would be {}): \
             pass values the input's type holds",
            given[i], back[i]
        )));
    }
    Ok(n)
}

/// Encodes a tensor as `.npy` (version 1.0); a narrow tensor as the NumPy type that holds
/// its values exactly (see the module).
pub fn encode(t: &Tensor) -> Result<Vec<u8>> {
    if t.dtype().is_narrow() {
        return encode(&xnpu_core::narrow::widen(t)?);
    }
    let d = descr(t.dtype()).ok_or_else(|| {
        Error::unsupported(format!("{} tensors cannot be written as .npy", t.dtype()))
    })?;
    let shape = match t.shape() {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{d}', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad so that the data starts at a multiple of 64 bytes, ending the header with '\n'.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + t.raw_bytes().len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(t.raw_bytes());
    Ok(out)
}

pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    std::fs::write(path, encode(t)?).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::f16;

    #[test]
    fn an_empty_or_multibyte_descr_is_refused_not_a_panic() {
        assert_eq!(parse_descr(""), None);
        assert_eq!(parse_descr("\u{e9}1"), None);
        assert_eq!(parse_descr("<u1"), Some((DType::U8, false)));
        assert_eq!(parse_descr(">u1"), Some((DType::U8, false)));
        assert_eq!(parse_descr(">f4"), Some((DType::F32, true)));
    }

    #[test]
    fn round_trips_every_numpy_dtype() {
        let tensors = [
            Tensor::from_vec(vec![2, 3], (0..6).map(|i| i as f32).collect()).unwrap(),
            Tensor::from_vec(vec![2], vec![f16::from_f32(1.5), f16::from_f32(-2.0)]).unwrap(),
            Tensor::from_vec(vec![3], vec![true, false, true]).unwrap(),
            Tensor::from_vec(vec![], vec![7i64]).unwrap(),
            Tensor::from_vec(vec![1, 1, 2], vec![1u8, 2]).unwrap(),
        ];
        for t in tensors {
            let bytes = encode(&t).unwrap();
            assert_eq!((bytes.len() - t.raw_bytes().len()) % 64, 0);
            assert_eq!(decode(Bytes::from(bytes)).unwrap(), t);
        }
    }

    #[test]
    fn narrow_tensors_are_written_wide_and_read_back_narrowed() {
        use xnpu_core::narrow::{narrow, RoundMode};
        let x = Tensor::from_vec(vec![5], vec![-8.0f32, -1.0, 0.0, 3.0, 7.0]).unwrap();
        let i4 = narrow(&x, DType::I4, true, RoundMode::Up).unwrap();
        let back = decode(Bytes::from(encode(&i4).unwrap())).unwrap();
        assert_eq!(back.dtype(), DType::I8);
        assert_eq!(to_input(back, DType::I4).unwrap(), i4);
        let f8 = narrow(&x, DType::F8e4m3fn, true, RoundMode::Up).unwrap();
        let back = decode(Bytes::from(encode(&f8).unwrap())).unwrap();
        assert_eq!(back.dtype(), DType::F32);
        assert_eq!(to_input(back, DType::F8e4m3fn).unwrap(), f8);
        // 9 is no INT4; 0.1 is no float8 value.
        let err = to_input(Tensor::from_vec(vec![2], vec![1i8, 9]).unwrap(), DType::I4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("value 9 (element 1)"), "{err}");
        assert!(to_input(
            Tensor::from_vec(vec![1], vec![0.1f32]).unwrap(),
            DType::F8e5m2
        )
        .is_err());
        // ml_dtypes' arrays as NumPy saves them.
        let h = "{'descr': '<V1', 'fortran_order': False, 'shape': (3,), }\n";
        let mut raw = MAGIC.to_vec();
        raw.extend([1, 0]);
        raw.extend((h.len() as u16).to_le_bytes());
        raw.extend(h.as_bytes());
        raw.extend([0, 0, 0]);
        let err = decode(Bytes::from(raw)).unwrap_err().to_string();
        assert!(err.contains("ml_dtypes"), "{err}");
    }

    #[test]
    fn big_endian_files_are_read_in_this_machines_order() {
        let t = Tensor::from_vec(vec![2], vec![1.5f32, -2.25]).unwrap();
        let mut bytes = encode(&t).unwrap();
        let header_end = bytes.len() - 8;
        let at = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        bytes[at] = b'>';
        for e in bytes[header_end..].chunks_exact_mut(4) {
            e.reverse();
        }
        assert_eq!(decode(Bytes::from(bytes)).unwrap(), t);
    }

    #[test]
    fn short_data_is_an_error() {
        let t = Tensor::from_vec(vec![4], vec![1.0f32; 4]).unwrap();
        let mut bytes = encode(&t).unwrap();
        bytes.truncate(bytes.len() - 4);
        let err = decode(Bytes::from(bytes)).unwrap_err().to_string();
        assert!(err.contains("holds 12 bytes"), "{err}");
        assert!(decode(Bytes::from_static(b"garbage")).is_err());
    }
}
