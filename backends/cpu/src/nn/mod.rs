//! Reference kernels of the `nn` family: matrix products, convolutions, pools,
//! quantization and einsum.

mod causal_conv;
mod col2im;
pub(crate) mod conv;
mod deform_conv;
mod det;
mod einsum;
pub mod fused;
pub(crate) mod matmul;
pub mod nbits;
pub mod nbits_fast;
mod num;
mod pool;
mod quantize;

use xnpu_core::Value;
use xnpu_ops::nn::*;

kernel!(MatMul, |_, inputs, _| matmul::matmul(inputs));
kernel!(MatMulInteger, |_, inputs, _| matmul::matmul_integer(inputs));
kernel!(QLinearMatMul, |_, inputs, _| matmul::qlinear_matmul(inputs));
kernel!(Gemm, |o, inputs, _| matmul::gemm(o, inputs));
kernel!(Conv, |o, inputs, _| conv::conv(o, inputs));
kernel!(ConvInteger, |o, inputs, _| conv::conv_integer(o, inputs));
kernel!(QLinearConv, |o, inputs, _| conv::qlinear_conv(o, inputs));
kernel!(DeformConv, |o, inputs, _| deform_conv::run(o, inputs));
kernel!(ConvTranspose, |o, inputs, _| col2im::conv_transpose(
    o, inputs
));
kernel!(Pool, |o, inputs, n_outputs| pool::pool(
    o, inputs, n_outputs
));
kernel!(GlobalPool, |o, inputs, _| pool::global_pool(o, inputs));
kernel!(MaxUnpool, |o, inputs, _| pool::max_unpool(o, inputs));
kernel!(MaxRoiPool, |o, inputs, _| pool::max_roi_pool(o, inputs));
kernel!(QuantizeLinear, |o, inputs, _| quantize::quantize_linear(
    o, inputs
));
kernel!(
    DequantizeLinear,
    |o, inputs, _| quantize::dequantize_linear(o, inputs)
);
kernel!(DynamicQuantizeLinear, |_, inputs, _| {
    quantize::dynamic_quantize_linear(inputs)
});
kernel!(Einsum, |o, inputs, _| einsum::einsum(o, inputs));
kernel!(Col2Im, |o, inputs, _| col2im::col2im(o, inputs));
kernel!(Det, |_, inputs, _| det::run(inputs));
kernel!(CausalConvWithState, |o, inputs, _| causal_conv::run(
    o, inputs
));
kernel!(FusedConv, |o, inputs, _| fused::fused_conv(o, inputs));
kernel!(FusedGemm, |o, inputs, _| fused::fused_gemm(o, inputs));
kernel!(MatMulBias, |o, inputs, _| fused::matmul_bias(o, inputs));
kernel!(MatMulNBits, |o, inputs, _| nbits::run(o, inputs)
    .map(|t| vec![Value::Tensor(t)]));

/// Hostile sizes (issue 21): each is an error that says what is wrong, never a panic or an
/// abort. Sizes are chosen so that the byte count passes `isize::MAX`: the allocation is
/// refused whatever the machine's memory and overcommit policy.
#[cfg(test)]
mod hostile {
    use super::*;
    use crate::Kernel;
    use xnpu_core::{Result, Tensor};

    fn run(op: &impl Kernel, inputs: Vec<Tensor>) -> Result<Vec<Value>> {
        let vals: Vec<Value> = inputs.into_iter().map(Value::Tensor).collect();
        let refs: Vec<Option<&Value>> = vals.iter().map(Some).collect();
        op.run(&refs, 1)
    }

    fn err(r: Result<Vec<Value>>) -> String {
        match r {
            Ok(v) => panic!("expected an error, got {} outputs", v.len()),
            Err(e) => e.to_string(),
        }
    }

    fn f32s(shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(shape, vec![1.0f32; n]).unwrap()
    }

    fn window(kernel: Option<Vec<usize>>, strides: Vec<usize>, pads: Vec<usize>) -> Window {
        Window {
            kernel_shape: kernel,
            strides,
            pads,
            ..Window::default()
        }
    }

    #[test]
    fn conv_pads_near_i64_max_are_an_error() {
        let big = i64::MAX as usize;
        let conv = Conv {
            window: window(None, vec![], vec![big, big, big, big]),
            group: 1,
        };
        let e = err(run(
            &conv,
            vec![f32s(vec![1, 1, 3, 3]), f32s(vec![1, 1, 2, 2])],
        ));
        assert!(
            e.contains(&format!("pads {big} and {big} overflows")),
            "{e}"
        );
        // Fits a usize but not the kernel's i64 positions.
        let conv = Conv {
            window: window(None, vec![], vec![1 << 62, 1 << 62]),
            group: 1,
        };
        let e = err(run(&conv, vec![f32s(vec![1, 1, 3]), f32s(vec![1, 1, 1])]));
        assert!(e.contains("larger than i64::MAX"), "{e}");
    }

    #[test]
    fn conv_output_past_memory_is_an_error() {
        // 2^62 + 3 output positions of f32.
        let conv = Conv {
            window: window(None, vec![], vec![1 << 61, 1 << 61]),
            group: 1,
        };
        let e = err(run(&conv, vec![f32s(vec![1, 1, 3]), f32s(vec![1, 1, 1])]));
        assert!(e.contains("cannot allocate"), "{e}");
        assert!(e.contains("the convolution's output"), "{e}");
    }

    #[test]
    fn max_pool_pads_of_2_31_are_an_error() {
        let pool = Pool {
            kind: PoolKind::Max {
                column_major: false,
            },
            window: window(Some(vec![2, 2]), vec![], vec![1 << 31; 4]),
        };
        let e = err(run(&pool, vec![f32s(vec![1, 1, 2, 2])]));
        assert!(
            e.contains("cannot allocate") || e.contains("overflow"),
            "{e}"
        );
        // One dim: 2^62 windows of 2 taps each.
        let pool = Pool {
            kind: PoolKind::Average {
                count_include_pad: true,
            },
            window: window(Some(vec![2]), vec![], vec![1 << 61, 1 << 61]),
        };
        let e = err(run(&pool, vec![f32s(vec![1, 1, 2])]));
        assert!(e.contains("the pool's window taps"), "{e}");
    }

    #[test]
    fn conv_transpose_output_past_memory_is_an_error() {
        let op = ConvTranspose {
            window: Window::default(),
            group: 1,
            output_padding: vec![],
            output_shape: Some(vec![1 << 62]),
        };
        let e = err(run(&op, vec![f32s(vec![1, 1, 2]), f32s(vec![1, 1, 2])]));
        assert!(e.contains("ConvTranspose's output"), "{e}");
    }

    #[test]
    fn empty_operands_with_a_huge_product_are_an_error() {
        // [2^31, 0] @ [0, 2^31]: no input values, 2^62 output values.
        let a = Tensor::from_vec(vec![1 << 31, 0], Vec::<f32>::new()).unwrap();
        let b = Tensor::from_vec(vec![0, 1 << 31], Vec::<f32>::new()).unwrap();
        let e = err(run(&MatMul, vec![a, b]));
        assert!(e.contains("the matmul's output"), "{e}");
        // 2^62 empty matrices each have determinant 1.
        let d = Tensor::from_vec(vec![1 << 62, 0, 0], Vec::<f32>::new()).unwrap();
        let e = err(run(&Det, vec![d]));
        assert!(e.contains("Det's output"), "{e}");
    }

    #[test]
    fn matmul_nbits_with_no_k_and_a_huge_n_is_an_error() {
        let op = MatMulNBits {
            k: 0,
            n: 1 << 62,
            bits: 4,
            block_size: 16,
            accuracy_level: 0,
        };
        let a = Tensor::from_vec(vec![1, 0], Vec::<f32>::new()).unwrap();
        let b = Tensor::from_vec(vec![0], Vec::<u8>::new()).unwrap();
        let s = Tensor::from_vec(vec![0], Vec::<f32>::new()).unwrap();
        let e = err(run(&op, vec![a, b, s]));
        assert!(e.contains("MatMulNBits' output"), "{e}");
        let bad = MatMulNBits {
            block_size: 0,
            n: 1,
            ..op
        };
        let a = Tensor::from_vec(vec![1, 0], Vec::<f32>::new()).unwrap();
        let b = Tensor::from_vec(vec![0], Vec::<u8>::new()).unwrap();
        let s = Tensor::from_vec(vec![0], Vec::<f32>::new()).unwrap();
        let e = err(run(&bad, vec![a, b, s]));
        assert!(e.contains("block_size=0"), "{e}");
    }
}
