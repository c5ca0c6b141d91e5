//! xnpu's C ABI: `include/xnpu.h`.
