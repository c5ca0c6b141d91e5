//! TensorProto → Tensor: raw data (zero-copy), typed fields, external data (zero-copy slices of
//! a memory-mapped regular file that must lie inside the model's folder), sparse tensors.
//!
//! Raw and external data are slices of the files, so their sizes are the files' own. What
//! import allocates instead (sparse tensors made dense, values written in typed fields,
//! strings) is declared by a few bytes of the file and so is bounded twice: each sparse tensor
//! by [`MAX_SPARSE_DENSE_BYTES`], and all of one model's together by [`MAX_EXPANDED_BYTES`]
//! (counted by its [`DataDir`]).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use xnpu_core::shape::{checked_nbytes, checked_numel};
use xnpu_core::{bf16, f16, DType, Elem, Error, Result, Tensor};

use super::names::quoted;
use super::proto::{tensor_proto::DataLocation, SparseTensorProto, TensorProto};

/// Largest dense tensor a sparse initializer may expand to: its size is declared by dims
/// alone, not backed by bytes in the file, so it is bounded here.
pub const MAX_SPARSE_DENSE_BYTES: usize = 1 << 32;

/// The most bytes of tensor data import allocates for one model, all initializers, sparse
/// initializers and constant attributes together: sparse tensors made dense, values in
/// typed fields, strings. (Three sparse tensors of 4 GiB each are 215 bytes of protobuf.)
pub const MAX_EXPANDED_BYTES: usize = 1 << 32;

/// Where external data files are looked up, the files already mapped, and the bytes of
/// tensor data import has allocated so far for the model, with their limit (by default
/// [`MAX_EXPANDED_BYTES`]).
#[derive(Debug)]
pub struct DataDir {
    /// The model's folder (canonical), or `None` for a model read from memory.
    base: Option<PathBuf>,
    mapped: Mutex<HashMap<PathBuf, Bytes>>,
    expanded: AtomicUsize,
    limit: usize,
}

impl Default for DataDir {
    fn default() -> Self {
        DataDir {
            base: None,
            mapped: Mutex::default(),
            expanded: AtomicUsize::new(0),
            limit: MAX_EXPANDED_BYTES,
        }
    }
}

impl DataDir {
    pub fn new(base: Option<&Path>) -> Result<DataDir> {
        DataDir::with_limit(base, MAX_EXPANDED_BYTES)
    }

    /// [`DataDir::new`] allowing import `limit` bytes of tensor data instead of
    /// [`MAX_EXPANDED_BYTES`] (a host with less memory to spare).
    pub fn with_limit(base: Option<&Path>, limit: usize) -> Result<DataDir> {
        let base = match base {
            Some(b) => Some(b.canonicalize().map_err(|e| Error::io(b, e))?),
            None => None,
        };
        Ok(DataDir {
            base,
            limit,
            ..DataDir::default()
        })
    }

    /// Counts `n` more bytes of tensor data allocated by import (`what` says what for): an
    /// error, before anything is allocated, when the model's total would pass
    /// [`MAX_EXPANDED_BYTES`].
    pub fn charge(&self, n: usize, what: &str) -> Result<()> {
        let limit = self.limit;
        let total = |held: usize| held.checked_add(n).filter(|&t| t <= limit);
        self.expanded
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, total)
            .map(|_| ())
            .map_err(|held| {
                Error::model(format!(
                    "{what} would take {n} bytes in memory, with the {held} bytes already taken \
                     more than the {limit} bytes import allocates for one model's tensor data \
                     (sparse tensors made dense, values in typed fields, strings)"
                ))
            })
    }

    /// The bytes of tensor data import has allocated so far (see [`DataDir::charge`]).
    pub fn expanded(&self) -> usize {
        self.expanded.load(Ordering::Relaxed)
    }

    /// Resolves an external-data location inside the model's folder. Absolute paths, `..`
    /// components and symlinks that lead outside the folder are refused.
    pub fn resolve(&self, location: &str) -> Result<PathBuf> {
        let base = self.base.as_ref().ok_or_else(|| {
            Error::model(format!(
                "external data {} cannot be read: the model was loaded from memory, without a \
                 folder",
                quoted(location)
            ))
        })?;
        let rel = Path::new(location);
        if location.is_empty() {
            return Err(Error::model("external data has an empty location"));
        }
        if rel.is_absolute() || location.starts_with('/') || location.starts_with('\\') {
            return Err(Error::model(format!(
                "external data path {} is absolute; it must be relative to the model's folder",
                quoted(location)
            )));
        }
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(Error::model(format!(
                "external data path {} leaves the model's folder",
                quoted(location)
            )));
        }
        let joined = base.join(rel);
        let real = joined.canonicalize().map_err(|e| Error::io(&joined, e))?;
        if !real.starts_with(base) {
            return Err(Error::model(format!(
                "external data path {} resolves to {}, outside the model's folder {} (symlink)",
                quoted(location),
                real.display(),
                base.display()
            )));
        }
        Ok(real)
    }

    /// The whole file, memory-mapped once and shared.
    fn map(&self, path: &Path) -> Result<Bytes> {
        let mut mapped = self.mapped.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = mapped.get(path) {
            return Ok(b.clone());
        }
        let bytes = map_file(path, "external data file")?;
        mapped.insert(path.to_path_buf(), bytes.clone());
        Ok(bytes)
    }
}

/// Memory-maps a file read-only as `Bytes` (zero-copy; the map lives as long as any slice).
/// Only a regular file is mapped: a FIFO or a device is refused without waiting on it
/// ([`xnpu_core::fs::open_regular`]); `what` names the file in that error ("model").
pub fn map_file(path: &Path, what: &str) -> Result<Bytes> {
    let file = xnpu_core::fs::open_regular(path, what)?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the map is read-only and private to this process. Like every mmap-based loader
    // we rely on the file not being truncated or rewritten while the model is loaded; the
    // bytes are treated as untrusted input (every size is checked before use).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let map = Arc::new(map);
    let mut maps = file_maps();
    maps.retain(|m| m.strong_count() > 0);
    maps.push(Arc::downgrade(&map));
    Ok(Bytes::from_owner(FileMap(map)))
}

/// A file map shared by the `Bytes` slices of it.
struct FileMap(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for FileMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The maps `map_file` made that are still alive.
fn file_maps() -> std::sync::MutexGuard<'static, Vec<Weak<memmap2::Mmap>>> {
    static MAPS: Mutex<Vec<Weak<memmap2::Mmap>>> = Mutex::new(Vec::new());
    MAPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The live map of a file that [`map_file`] mapped holding all of `data`, and where `data`
/// starts in it.
fn containing_map(data: &[u8]) -> Option<(Arc<memmap2::Mmap>, usize)> {
    let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
    file_maps()
        .iter()
        .filter_map(Weak::upgrade)
        .find_map(|map| {
            let base = map.as_ptr() as usize;
            (start >= base && end <= base + map.len()).then_some((map, start - base))
        })
}

/// Whether `data` lies inside a file that [`map_file`] mapped and that is still mapped.
pub fn in_mapped_file(data: &[u8]) -> bool {
    containing_map(data).is_some()
}

/// Where `data` lies in a file that [`map_file`] mapped, takes the whole pages it covers out
/// of this process's resident memory: they stay in the page cache, and reading them again
/// faults the same bytes back in. For data a backend has copied elsewhere and no longer reads
/// in place. Anywhere else (heap memory, a map that is gone) it does nothing. Returns the
/// bytes released.
pub fn release_mapped_pages(data: &[u8]) -> usize {
    // Page-aligned for 4, 16 and 64 KiB pages; the map itself starts on a page.
    const ALIGN: usize = 64 << 10;
    let Some((map, offset)) = containing_map(data) else {
        return 0;
    };
    let lo = offset.next_multiple_of(ALIGN);
    let hi = (offset + data.len()) / ALIGN * ALIGN;
    if hi <= lo {
        return 0;
    }
    #[cfg(unix)]
    {
        // SAFETY: the map is a read-only file mapping that nothing writes (see `map_file`),
        // and [lo, hi) lies inside it: MADV_DONTNEED only drops this process's page-table
        // entries, and the next read of those addresses faults the file's unchanged bytes
        // back in, so every live slice keeps reading the same values.
        let r =
            unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, lo, hi - lo) };
        if r.is_ok() {
            hi - lo
        } else {
            0
        }
    }
    #[cfg(not(unix))]
    {
        let _ = map;
        0
    }
}

/// Bytes for a large weight made at compile time (a fused op's repacked constants): from
/// [`HUGE_PAGE_MIN`] bytes on, anonymous memory advised for transparent huge pages, where a
/// kernel streaming the weights takes a TLB miss per 2 MiB instead of per 4 KiB (as the CPU
/// backend's copies of weights that lie in a mapped file); smaller, or where memory cannot
/// be mapped, the vector itself.
pub fn weight_bytes(data: Vec<u8>) -> Bytes {
    if data.len() < HUGE_PAGE_MIN {
        return data.into();
    }
    let Ok(mut m) = memmap2::MmapMut::map_anon(data.len()) else {
        return data.into();
    };
    #[cfg(target_os = "linux")]
    {
        // Only advice: where THP is off the copy is ordinary memory.
        let _ = m.advise(memmap2::Advice::HugePage);
    }
    m.copy_from_slice(&data);
    Bytes::from_owner(m)
}

/// The size from which [`weight_bytes`] uses huge pages (one huge page).
pub const HUGE_PAGE_MIN: usize = 2 << 20;

fn dims_of(tp: &TensorProto) -> Result<Vec<usize>> {
    tp.dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| Error::model(format!("dimension {d} is negative")))
        })
        .collect()
}

fn typed_count_error(dtype: DType, dims: &[usize], n: usize, found: usize) -> Error {
    Error::model(format!(
        "declares {dtype}{dims:?} ({n} elements) but holds {found} values"
    ))
}

/// Decodes a tensor; `name` is used in errors.
pub fn tensor_from_proto(tp: &TensorProto, dir: &DataDir) -> Result<Tensor> {
    decode(tp, dir).map_err(|e| {
        let name = if tp.name.is_empty() {
            "<unnamed>".to_string()
        } else {
            quoted(&tp.name)
        };
        e.context(format!("tensor {name}"))
    })
}

fn decode(tp: &TensorProto, dir: &DataDir) -> Result<Tensor> {
    let what = "the tensor";
    let dtype = DType::from_onnx_code(tp.data_type.into())?;
    let dims = dims_of(tp)?;
    let n = checked_numel(&dims)?;
    if tp.segment.is_some() {
        return Err(Error::unsupported("segmented tensors are not supported"));
    }

    if tp.data_location == DataLocation::External as i32 {
        return external(tp, dtype, dims, dir);
    }

    if dtype == DType::String {
        if tp.string_data.len() != n {
            return Err(typed_count_error(dtype, &dims, n, tp.string_data.len()));
        }
        // Each string is copied (and may grow by a third where bytes are not UTF-8).
        let bytes = tp.string_data.iter().fold(0usize, |acc, b| {
            acc.saturating_add(b.len().saturating_mul(3))
                .saturating_add(std::mem::size_of::<String>())
        });
        dir.charge(bytes, what)?;
        let mut strings = Vec::new();
        strings
            .try_reserve_exact(n)
            .map_err(|_| alloc_error(bytes))?;
        strings.extend(
            tp.string_data
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        );
        return Tensor::from_strings(dims, strings);
    }

    let nbytes = checked_nbytes(dtype, &dims)?;
    if !tp.raw_data.is_empty() || n == 0 {
        if tp.raw_data.len() != nbytes {
            return Err(Error::model(format!(
                "declares {dtype}{dims:?} ({nbytes} bytes) but raw_data holds {} bytes",
                tp.raw_data.len()
            )));
        }
        return Tensor::from_bytes(dtype, dims, tp.raw_data.clone());
    }

    // Typed fields. Each count is checked against the declared element count before use, and
    // the copy counted against the model's allowance before it is made.
    let take = |src_len: usize| -> Result<()> {
        if src_len != n {
            return Err(typed_count_error(dtype, &dims, n, src_len));
        }
        dir.charge(nbytes, what)
    };
    fn copy<T: Elem, S: Copy>(dims: Vec<usize>, src: &[S], f: impl Fn(S) -> T) -> Result<Tensor> {
        let mut data = Vec::new();
        data.try_reserve_exact(src.len())
            .map_err(|_| alloc_error(src.len().saturating_mul(std::mem::size_of::<T>())))?;
        data.extend(src.iter().map(|&v| f(v)));
        Tensor::from_vec(dims, data)
    }
    let (i32s, i64s, u64s) = (&tp.int32_data, &tp.int64_data, &tp.uint64_data);
    match dtype {
        DType::F32 => take(tp.float_data.len()).and_then(|_| copy(dims, &tp.float_data, |v| v)),
        DType::F64 => take(tp.double_data.len()).and_then(|_| copy(dims, &tp.double_data, |v| v)),
        DType::I64 => take(i64s.len()).and_then(|_| copy(dims, i64s, |v| v)),
        DType::U64 => take(u64s.len()).and_then(|_| copy(dims, u64s, |v| v)),
        DType::U32 => take(u64s.len()).and_then(|_| copy(dims, u64s, |v| v as u32)),
        DType::I32 => take(i32s.len()).and_then(|_| copy(dims, i32s, |v| v)),
        DType::I16 => take(i32s.len()).and_then(|_| copy(dims, i32s, |v| v as i16)),
        DType::U16 => take(i32s.len()).and_then(|_| copy(dims, i32s, |v| v as u16)),
        DType::I8 => take(i32s.len()).and_then(|_| copy(dims, i32s, |v| v as i8)),
        DType::U8 => take(i32s.len()).and_then(|_| copy(dims, i32s, |v| v as u8)),
        DType::Bool => take(i32s.len()).and_then(|_| copy(dims, i32s, |v| v != 0)),
        DType::F16 => take(i32s.len()).and_then(|_| copy(dims, i32s, |v| f16::from_bits(v as u16))),
        DType::Bf16 => {
            take(i32s.len()).and_then(|_| copy(dims, i32s, |v| bf16::from_bits(v as u16)))
        }
        // The narrow dtypes: one int32 per byte of ONNX's layout (a float8 element, or two
        // or four packed sub-byte elements, as onnx.helper.make_tensor writes them).
        d if d.is_narrow() => {
            if i32s.len() != nbytes {
                return Err(Error::model(format!(
                    "declares {d}{dims:?} ({nbytes} bytes of {} packed) but int32_data holds {} values",
                    d.row().onnx_name,
                    i32s.len()
                )));
            }
            dir.charge(nbytes, what)?;
            let mut data = Vec::new();
            data.try_reserve_exact(nbytes)
                .map_err(|_| alloc_error(nbytes))?;
            data.extend(i32s.iter().map(|&v| v as u8));
            Tensor::from_bytes(d, dims, data.into())
        }
        d => Err(Error::unsupported(format!(
            "data type {} has no typed field xnpu reads",
            d.row().onnx_name
        ))),
    }
}

/// The error for an allocation the system refused.
fn alloc_error(bytes: usize) -> Error {
    Error::model(format!(
        "cannot allocate {bytes} bytes for the tensor's data"
    ))
}

fn external(tp: &TensorProto, dtype: DType, dims: Vec<usize>, dir: &DataDir) -> Result<Tensor> {
    if dtype == DType::String {
        return Err(Error::unsupported(
            "string tensors cannot use external data",
        ));
    }
    let mut location = None;
    let mut offset = 0usize;
    let mut length = None;
    for kv in &tp.external_data {
        let num = |v: &str| {
            v.parse::<usize>().map_err(|_| {
                Error::model(format!(
                    "external data {} {} is not a number",
                    quoted(&kv.key),
                    quoted(v)
                ))
            })
        };
        match kv.key.as_str() {
            "location" => location = Some(kv.value.as_str()),
            "offset" => offset = num(&kv.value)?,
            "length" => length = Some(num(&kv.value)?),
            _ => {}
        }
    }
    let location = location.ok_or_else(|| Error::model("external data has no location"))?;
    let nbytes = checked_nbytes(dtype, &dims)?;
    if let Some(len) = length {
        if len != nbytes {
            return Err(Error::model(format!(
                "declares {dtype}{dims:?} ({nbytes} bytes) but external data length is {len}"
            )));
        }
    }
    let path = dir.resolve(location)?;
    let file = dir.map(&path)?;
    let end = offset
        .checked_add(nbytes)
        .ok_or_else(|| Error::model("external data offset + length overflows"))?;
    if end > file.len() {
        return Err(Error::model(format!(
            "declares {dtype}{dims:?} ({nbytes} bytes at offset {offset}) but {} holds {} bytes",
            path.display(),
            file.len()
        )));
    }
    Tensor::from_bytes(dtype, dims, file.slice(offset..end))
}

/// Expands a sparse tensor to a dense one (zeros where no value is given). The dense form is
/// bounded by [`MAX_SPARSE_DENSE_BYTES`] and counted against the model's allowance
/// ([`DataDir::charge`]) before it is allocated, fallibly.
pub fn sparse_to_dense(sp: &SparseTensorProto, dir: &DataDir) -> Result<(String, Tensor)> {
    let values = sp
        .values
        .as_ref()
        .ok_or_else(|| Error::model("sparse tensor has no values"))?;
    let name = values.name.clone();
    let ctx = |e: Error| e.context(format!("sparse tensor {}", quoted(&name)));
    let vals = tensor_from_proto(values, dir).map_err(ctx)?;
    let dims = sp
        .dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| Error::model(format!("dimension {d} is negative")))
        })
        .collect::<Result<Vec<_>>>()
        .map_err(ctx)?;
    let dtype = vals.dtype();
    if dtype == DType::String {
        return Err(ctx(Error::unsupported(
            "sparse string tensors are not supported",
        )));
    }
    let nbytes = checked_nbytes(dtype, &dims).map_err(ctx)?;
    if nbytes > MAX_SPARSE_DENSE_BYTES {
        return Err(ctx(Error::model(format!(
            "dense form {dtype}{dims:?} would take {nbytes} bytes, over the limit of {MAX_SPARSE_DENSE_BYTES}"
        ))));
    }
    // Packed elements share bytes and cannot be placed byte-wise.
    let size = dtype.elem_bytes().ok_or_else(|| {
        ctx(Error::unsupported(format!(
            "sparse {dtype} tensors are not supported"
        )))
    })?;
    let nnz = vals.len();
    let idx = match &sp.indices {
        Some(i) => tensor_from_proto(i, dir)
            .map_err(ctx)?
            .to_i64_vec()
            .map_err(ctx)?,
        None => vec![],
    };
    let linear = linear_indices(&idx, nnz, &dims).map_err(ctx)?;
    dir.charge(nbytes, "the dense form of the sparse tensor")
        .map_err(ctx)?;
    let mut dense = Vec::new();
    dense
        .try_reserve_exact(nbytes)
        .map_err(|_| ctx(alloc_error(nbytes)))?;
    dense.resize(nbytes, 0u8);
    let src = vals.raw_bytes();
    for (k, &li) in linear.iter().enumerate() {
        dense[li * size..(li + 1) * size].copy_from_slice(&src[k * size..(k + 1) * size]);
    }
    Ok((name, Tensor::from_bytes(dtype, dims, Bytes::from(dense))?))
}

/// The position in the dense tensor of each of `nnz` values, from indices that are either
/// linear (`[nnz]`) or coordinates (`[nnz, rank]`); each checked to lie inside `dims`.
fn linear_indices(idx: &[i64], nnz: usize, dims: &[usize]) -> Result<Vec<usize>> {
    let numel = checked_numel(dims)?;
    let rank = dims.len();
    let outside = |at: &[i64]| Error::model(format!("index {at:?} is outside {dims:?}"));
    if idx.len() == nnz {
        return idx
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .filter(|&u| u < numel)
                    .ok_or_else(|| outside(&[i]))
            })
            .collect();
    }
    if rank == 0 || nnz.checked_mul(rank) != Some(idx.len()) {
        return Err(Error::model(format!(
            "{} indices for {nnz} values of a rank-{rank} tensor",
            idx.len()
        )));
    }
    idx.chunks(rank)
        .map(|c| {
            c.iter().zip(dims).try_fold(0usize, |acc, (&i, &d)| {
                let i = usize::try_from(i)
                    .ok()
                    .filter(|&u| u < d)
                    .ok_or_else(|| outside(c))?;
                // acc < numel / (d * ...) here, so this stays below numel.
                Ok(acc * d + i)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_pages_of_a_mapped_file_read_back_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        let data: Vec<u8> = (0..(1usize << 20))
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let mapped = map_file(&path, "weights").unwrap();
        assert_eq!(&mapped[..], &data[..]);
        // A slice that starts and ends inside pages: the whole 64 KiB pages between go.
        let part = mapped.slice(1000..(900 << 10));
        let released = release_mapped_pages(&part);
        if cfg!(unix) {
            assert_eq!(released, (896 << 10) - (64 << 10));
        }
        assert_eq!(&part[..], &data[1000..(900 << 10)]);
        assert_eq!(&mapped[..], &data[..]);
        assert!(in_mapped_file(&part));
        // Heap memory is left alone.
        assert!(!in_mapped_file(&data));
        assert_eq!(release_mapped_pages(&data), 0);
    }
}
