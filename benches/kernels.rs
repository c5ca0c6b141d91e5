//! The CPU's fast kernels (`xnpu-linalg`) on the sizes models use, so regressions show:
//! fp32 GEMM (square, a transformer's projections, a batch-1 vector product) and fp32
//! convolutions (ResNet's 3x3 and 1x1, MobileNet's depthwise, a Whisper-style 1-D front), in
//! rayon pools of 1 and 2 threads. Throughput is in floating-point operations (2 per
//! multiply-add).
//!
//! `cargo bench --bench kernels` (`-- gemm` etc. to filter). The 4-bit MatMulNBits kernel has
//! its own bench: `cargo bench -p xnpu-backend-cpu --bench nbits`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use xnpu_linalg::{sgemm, Act, Geometry, MatRef, PackedA, PackedB, PackedConv};

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(-1.0f32..1.0)).collect()
}

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("a rayon pool")
}

fn gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm");
    g.measurement_time(Duration::from_secs(4)).sample_size(20);
    for (m, k, n) in [
        (1024, 1024, 1024),
        (128, 768, 768),
        (128, 768, 3072),
        (1, 4096, 4096),
        (49, 512, 2048),
    ] {
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let mut out = vec![0.0f32; m * n];
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        for threads in [1, 2] {
            let p = pool(threads);
            g.bench_function(format!("{m}x{k}x{n}/{threads}t"), |bench| {
                bench.iter(|| {
                    p.install(|| {
                        let am = MatRef::row_major(&a, m, k).expect("a");
                        let bm = MatRef::row_major(&b, k, n).expect("b");
                        sgemm(am, bm, &mut out, n, 1.0, false).expect("sgemm");
                    });
                    black_box(&out);
                })
            });
            if !xnpu_linalg::packed::available() {
                continue;
            }
            // A packed once (a layer's weights), B packed on every call (its activations).
            let pa = PackedA::new(MatRef::row_major(&a, m, k).expect("a")).expect("pack a");
            let mut pb = PackedB::default();
            g.bench_function(format!("packed/{m}x{k}x{n}/{threads}t"), |bench| {
                bench.iter(|| {
                    p.install(|| {
                        pb.repack(MatRef::row_major(&b, k, n).expect("b"))
                            .expect("pack b");
                        xnpu_linalg::packed::gemm(&pa, &pb, &mut out, n, false).expect("gemm");
                    });
                    black_box(&out);
                })
            });
        }
    }
    g.finish();
}

/// (name, c_in, c_out, groups, kernel, stride, pad, input)
type ConvCase = (
    &'static str,
    usize,
    usize,
    usize,
    [usize; 2],
    usize,
    usize,
    [usize; 2],
);

const CONVS: [ConvCase; 5] = [
    ("resnet_stem_7x7s2", 3, 64, 1, [7, 7], 2, 3, [224, 224]),
    ("resnet_3x3_64", 64, 64, 1, [3, 3], 1, 1, [56, 56]),
    ("resnet_1x1_256", 256, 64, 1, [1, 1], 1, 0, [56, 56]),
    ("mobilenet_dw_3x3", 96, 96, 96, [3, 3], 1, 1, [28, 28]),
    ("whisper_conv1d_3", 80, 384, 1, [1, 3], 1, 1, [1, 3000]),
];

fn conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv");
    g.measurement_time(Duration::from_secs(4)).sample_size(20);
    for (name, c_in, c_out, groups, k, s, p, input) in CONVS {
        let w = values(c_out * c_in / groups * k[0] * k[1], 3);
        let packed = PackedConv::new(
            &w,
            c_out,
            c_in,
            groups,
            k,
            Some(&values(c_out, 4)),
            Act::Relu,
        )
        .expect("pack");
        let pad_h = if k[0] == 1 { 0 } else { p };
        let out = |i: usize, k: usize, p: usize| (i + 2 * p - k) / s + 1;
        let geom = Geometry {
            batch: 1,
            input,
            output: [out(input[0], k[0], pad_h), out(input[1], k[1], p)],
            stride: [if k[0] == 1 { 1 } else { s }, s],
            dilation: [1, 1],
            pad_begin: [pad_h, p],
        };
        let x = values(c_in * input[0] * input[1], 5);
        let mut y = vec![0.0f32; c_out * geom.output[0] * geom.output[1]];
        let flops = 2 * c_out * (c_in / groups) * k[0] * k[1] * geom.output[0] * geom.output[1];
        g.throughput(Throughput::Elements(flops as u64));
        for threads in [1, 2] {
            let pl = pool(threads);
            g.bench_function(format!("{name}/{threads}t"), |bench| {
                bench.iter(|| {
                    pl.install(|| packed.run(&geom, &x, &mut y).expect("conv"));
                    black_box(&y);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, gemm, conv);
criterion_main!(benches);
