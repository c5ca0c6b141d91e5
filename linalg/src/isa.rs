//! The instruction sets this process runs its kernels with, detected once.

use std::fmt;
use std::sync::OnceLock;

/// The widest vector instruction set the kernels use on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// No vector extension the kernels know: portable code the compiler vectorises for the
    /// build's baseline (SSE2 on x86_64).
    Scalar,
    /// aarch64 Advanced SIMD (always present on aarch64).
    Neon,
    /// x86_64 AVX2 with FMA.
    Avx2Fma,
    /// x86_64 AVX-512 (F, BW, DQ, VL).
    Avx512,
}

/// What the CPU offers the kernels, detected once per process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    pub isa: Isa,
    /// AVX-512 VNNI or AVX-VNNI (int8 dot products), or aarch64's dot-product extension.
    pub int8_dot: bool,
    /// AVX-512 BF16 (bf16 dot products).
    pub bf16: bool,
}

impl Features {
    /// This CPU's features (detected on first use).
    pub fn get() -> Features {
        static FEATURES: OnceLock<Features> = OnceLock::new();
        *FEATURES.get_or_init(detect)
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Features {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    // The AVX-512 level implies the AVX2+FMA one (the portable kernels run their AVX2 copy
    // there), so it is claimed only with both.
    let avx512 = avx2
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl");
    let isa = if avx512 {
        Isa::Avx512
    } else if avx2 {
        Isa::Avx2Fma
    } else {
        Isa::Scalar
    };
    Features {
        isa,
        int8_dot: (avx512 && is_x86_feature_detected!("avx512vnni"))
            || (avx2 && is_x86_feature_detected!("avxvnni")),
        bf16: avx512 && is_x86_feature_detected!("avx512bf16"),
    }
}

#[cfg(target_arch = "aarch64")]
fn detect() -> Features {
    Features {
        isa: Isa::Neon,
        int8_dot: std::arch::is_aarch64_feature_detected!("dotprod"),
        bf16: std::arch::is_aarch64_feature_detected!("bf16"),
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect() -> Features {
    Features {
        isa: Isa::Scalar,
        int8_dot: false,
        bf16: false,
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Scalar => "scalar",
            Isa::Neon => "neon",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Avx512 => "avx512",
        })
    }
}

impl fmt::Display for Features {
    /// As `xnpu devices` prints it: `avx512 (int8 dot, bf16)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.isa)?;
        let extras: Vec<&str> = [(self.int8_dot, "int8 dot"), (self.bf16, "bf16")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        if !extras.is_empty() {
            write!(f, " ({})", extras.join(", "))?;
        }
        Ok(())
    }
}
