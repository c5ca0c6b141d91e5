//! Reading what a C caller passes: pointers checked for NULL, strings for UTF-8, structs
//! read and written at the size the caller declared (`struct_size`), arrays of structs at
//! the stride their first element declares. Every failure names the function and the
//! argument (`xnpu_session_run: inputs[1].shape is NULL`).

use std::ffi::{c_char, CStr};
use std::ptr;

use crate::status::{Call, Failure};

/// A struct of the C ABI that begins with `size_t struct_size` and may grow: fields are only
/// appended, a caller sets `struct_size` to the `sizeof` it was compiled with, and the library
/// reads (and writes) only the fields that size covers.
///
/// # Safety
/// The implementor is `#[repr(C)]`, begins with `struct_size: usize`, and all-zero bytes are
/// a valid value of it (pointers NULL, numbers 0).
pub(crate) unsafe trait Growable: Copy {
    /// The C name, for messages.
    const NAME: &'static str;
    /// Its size in the first version of the ABI: a smaller `struct_size` is refused.
    const MIN_SIZE: usize;
}

/// An array of sized structs the caller passed: each read, with its address.
pub(crate) struct Array<T> {
    pub items: Vec<(T, *mut T)>,
    /// The caller's `struct_size` of every element.
    pub stride: usize,
}

impl Call {
    /// `p` as a reference, or an error naming `arg` when it is NULL.
    ///
    /// # Safety
    /// `p` is NULL or valid for reads of `T` for `'a`.
    pub unsafe fn get<'a, T>(self, p: *const T, arg: &str) -> Result<&'a T, Failure> {
        // SAFETY: NULL or valid (this function's contract).
        unsafe { p.as_ref() }.ok_or_else(|| self.invalid(format!("{arg} is NULL")))
    }

    /// Where to write a result: `p` as a mutable reference, or an error naming `arg`.
    ///
    /// # Safety
    /// `p` is NULL or valid for writes of `T` for `'a`.
    pub unsafe fn out<'a, T>(self, p: *mut T, arg: &str) -> Result<&'a mut T, Failure> {
        // SAFETY: NULL or valid (this function's contract).
        unsafe { p.as_mut() }.ok_or_else(|| self.invalid(format!("{arg} is NULL")))
    }

    /// A NUL-terminated UTF-8 string, required.
    ///
    /// # Safety
    /// `p` is NULL or a NUL-terminated string that lives for `'a`.
    pub unsafe fn str<'a>(self, p: *const c_char, arg: &str) -> Result<&'a str, Failure> {
        // SAFETY: this function's contract.
        unsafe { self.opt_str(p, arg) }?.ok_or_else(|| self.invalid(format!("{arg} is NULL")))
    }

    /// A NUL-terminated UTF-8 string, or `None` for NULL.
    ///
    /// # Safety
    /// `p` is NULL or a NUL-terminated string that lives for `'a`.
    pub unsafe fn opt_str<'a>(
        self,
        p: *const c_char,
        arg: &str,
    ) -> Result<Option<&'a str>, Failure> {
        if p.is_null() {
            return Ok(None);
        }
        // SAFETY: a NUL-terminated string that lives for `'a` (this function's contract).
        let s = unsafe { CStr::from_ptr(p) };
        s.to_str()
            .map(Some)
            .map_err(|e| self.invalid(format!("{arg} is not UTF-8 ({e})")))
    }

    /// `len` bytes at `p`; NULL only when `len` is 0.
    ///
    /// # Safety
    /// `p` is NULL or valid for reads of `len` bytes for `'a`.
    pub unsafe fn bytes<'a>(
        self,
        p: *const u8,
        len: usize,
        arg: &str,
    ) -> Result<&'a [u8], Failure> {
        if len == 0 {
            return Ok(&[]);
        }
        if p.is_null() {
            return Err(self.invalid(format!("{arg} is NULL but its length is {len}")));
        }
        if isize::try_from(len).is_err() {
            return Err(self.invalid(format!("{arg}'s length {len} is larger than memory")));
        }
        // SAFETY: `len` readable bytes at `p` that live for `'a` (this function's contract),
        // `len` at most `isize::MAX`.
        Ok(unsafe { std::slice::from_raw_parts(p, len) })
    }

    /// A sized struct, read at the caller's `struct_size` (the rest zero), which must be at
    /// least `T::MIN_SIZE`. Returns the struct and the caller's size.
    ///
    /// # Safety
    /// `p` is NULL or points to a struct beginning with `size_t struct_size` whose
    /// `struct_size` bytes are readable.
    pub unsafe fn read_sized<T: Growable>(
        self,
        p: *const T,
        arg: &str,
    ) -> Result<(T, usize), Failure> {
        if p.is_null() {
            return Err(self.invalid(format!("{arg} is NULL")));
        }
        // SAFETY: every sized struct begins with its size (this function's contract).
        let size = unsafe { ptr::read_unaligned(p.cast::<usize>()) };
        self.check_size::<T>(size, arg)?;
        let n = size.min(std::mem::size_of::<T>());
        let mut out = std::mem::MaybeUninit::<T>::zeroed();
        // SAFETY: `n` bytes are readable at `p` (the caller declared `size` ≥ `n`) and fit
        // `out`; all-zero bytes are a valid `T` (`Growable`), and so is the caller's prefix.
        unsafe {
            ptr::copy_nonoverlapping(p.cast::<u8>(), out.as_mut_ptr().cast::<u8>(), n);
            Ok((out.assume_init(), size))
        }
    }

    /// The caller's `struct_size` of a struct the library fills (none of whose other fields
    /// is read), which must be at least `T::MIN_SIZE`.
    ///
    /// # Safety
    /// `p` is NULL or points to a struct beginning with a readable `size_t struct_size`.
    pub unsafe fn out_size<T: Growable>(self, p: *mut T, arg: &str) -> Result<usize, Failure> {
        if p.is_null() {
            return Err(self.invalid(format!("{arg} is NULL")));
        }
        // SAFETY: every sized struct begins with its size (this function's contract).
        let size = unsafe { ptr::read_unaligned(p.cast::<usize>()) };
        self.check_size::<T>(size, arg)?;
        Ok(size)
    }

    fn check_size<T: Growable>(self, size: usize, arg: &str) -> Result<(), Failure> {
        if size < T::MIN_SIZE {
            return Err(self.invalid(format!(
                "{} is {size}, but {} is at least {} bytes (set it to sizeof({}))",
                member(arg, "struct_size"),
                T::NAME,
                T::MIN_SIZE,
                T::NAME
            )));
        }
        Ok(())
    }

    /// `n` sized structs at `p`, each `stride` bytes apart, where `stride` is the first
    /// one's `struct_size` (which every element must repeat). NULL only when `n` is 0.
    /// Returns each struct with its address (to write back with [`write_sized`]).
    ///
    /// # Safety
    /// `p` is NULL or points to `n` structs of the caller's declared size, laid out one after
    /// the other, readable (and writable, where written back) for the call.
    pub unsafe fn read_array<T: Growable>(
        self,
        p: *const T,
        n: usize,
        arg: &str,
    ) -> Result<Array<T>, Failure> {
        if n == 0 {
            return Ok(Array {
                items: Vec::new(),
                stride: 0,
            });
        }
        if p.is_null() {
            return Err(self.invalid(format!("{arg} is NULL but its count is {n}")));
        }
        // SAFETY: the first element is a sized struct (this function's contract).
        let stride = unsafe { self.read_sized(p, &format!("{arg}[0]")) }?.1;
        if stride
            .checked_mul(n)
            .is_none_or(|total| isize::try_from(total).is_err())
        {
            return Err(self.invalid(format!(
                "{n} elements of {stride} bytes in {arg} are larger than memory"
            )));
        }
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            // SAFETY: within the caller's array: `k * stride` bytes past its start, the total
            // checked above.
            let at = unsafe { p.cast::<u8>().add(k * stride) }.cast::<T>();
            let name = format!("{arg}[{k}]");
            // SAFETY: element `k` of the caller's array.
            let (value, size) = unsafe { self.read_sized(at, &name) }?;
            if size != stride {
                return Err(self.invalid(format!(
                    "{name}.struct_size is {size}, but {arg}[0]'s is {stride} (the elements \
                     of an array have one size)"
                )));
            }
            out.push((value, at.cast_mut()));
        }
        Ok(Array { items: out, stride })
    }
}

/// How C names field `field` of argument `arg`: `options->level`, `inputs[1].shape`.
pub(crate) fn member(arg: &str, field: &str) -> String {
    if arg.ends_with(']') {
        format!("{arg}.{field}")
    } else {
        format!("{arg}->{field}")
    }
}

/// Writes `value` to `p` as far as the caller's `size` covers, with `struct_size` set to the
/// bytes written (the smaller of the caller's size and this library's).
///
/// # Safety
/// `p` is valid for writes of `size` bytes.
pub(crate) unsafe fn write_sized<T: Growable>(p: *mut T, mut value: T, size: usize) {
    let n = size.min(std::mem::size_of::<T>());
    // SAFETY: `T` begins with `struct_size: usize` (`Growable`).
    unsafe { ptr::write_unaligned(ptr::addr_of_mut!(value).cast::<usize>(), n) };
    // SAFETY: `n` bytes of `value` are readable and `n ≤ size` are writable at `p` (this
    // function's contract); the regions are distinct (`value` is a local).
    unsafe { ptr::copy_nonoverlapping(ptr::addr_of!(value).cast::<u8>(), p.cast::<u8>(), n) };
}
