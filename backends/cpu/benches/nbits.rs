//! MatMulNBits (4-bit, block 32) on Phi-3.5-mini's MLP shapes: the fast kernel's f32 and int8
//! paths against its scalar fallback and a naive loop, in rayon pools of 1 and 2 threads, and
//! this machine's memory read bandwidth for comparison.
//!
//! Throughput is the weight bytes read per call (B, scales and zero points). "hot" runs one
//! weight matrix again and again (it may stay in the last-level cache); "cold" cycles through
//! copies totalling more than 128 MiB, so each call streams its weights from memory, as a model's
//! layers do.
//!
//! `cargo bench -p xnpu-backend-cpu --bench nbits` (`-- decode` etc. to filter).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use xnpu_backend_cpu::nn::nbits_fast::{
    matmul_nbits_f32, matmul_nbits_f32_scalar, NBitsWeights, ZeroPoints,
};

const BS: usize = 32;

struct Weights {
    b: Vec<u8>,
    scales: Vec<f32>,
    zp: Vec<u8>,
    n: usize,
    k: usize,
}

impl Weights {
    fn new(rng: &mut StdRng, n: usize, k: usize) -> Weights {
        let nb = k.div_ceil(BS);
        Weights {
            b: (0..n * nb * BS / 2).map(|_| rng.random()).collect(),
            scales: (0..n * nb)
                .map(|_| rng.random_range(0.001f32..0.02))
                .collect(),
            zp: (0..n * nb.div_ceil(2)).map(|_| rng.random()).collect(),
            n,
            k,
        }
    }

    fn view(&self) -> NBitsWeights<'_> {
        NBitsWeights {
            b: &self.b,
            scales: &self.scales,
            zero_points: ZeroPoints::Packed(&self.zp),
            n: self.n,
            k: self.k,
            block_size: BS,
        }
    }

    fn bytes(&self) -> u64 {
        (self.b.len() + self.scales.len() * 4 + self.zp.len()) as u64
    }
}

/// The obvious loop: dequantise each weight and multiply-add, one thread.
fn naive(a: &[f32], m: usize, w: &Weights, out: &mut [f32]) {
    let (n, k) = (w.n, w.k);
    let nb = k.div_ceil(BS);
    let zp_row = nb.div_ceil(2);
    for r in 0..m {
        for c in 0..n {
            let mut acc = 0.0f32;
            for (kk, &x) in a[r * k..(r + 1) * k].iter().enumerate() {
                let blk = kk / BS;
                let byte = w.b[c * nb * BS / 2 + kk / 2];
                let q = if kk % 2 == 0 { byte & 0xF } else { byte >> 4 };
                let zb = w.zp[c * zp_row + blk / 2];
                let z = if blk.is_multiple_of(2) {
                    zb & 0xF
                } else {
                    zb >> 4
                };
                acc += x * (q as f32 - z as f32) * w.scales[c * nb + blk];
            }
            out[r * n + c] = acc;
        }
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn decode(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    for (k, n) in [(3072usize, 8192usize), (8192, 3072)] {
        // Copies of the weights: more than 128 MiB in all for the cold runs.
        let first = Weights::new(&mut rng, n, k);
        let copies = (128usize << 20).div_ceil(first.bytes() as usize) + 1;
        let mut all = vec![first];
        all.extend((1..copies).map(|_| Weights::new(&mut rng, n, k)));
        let a: Vec<f32> = (0..k).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let mut out = vec![0.0f32; n];
        let mut g = c.benchmark_group(format!("decode_k{k}_n{n}"));
        g.throughput(Throughput::Bytes(all[0].bytes()));
        g.sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        for threads in [1, 2] {
            let p = pool(threads);
            for (path, int8) in [("f32", false), ("int8", true)] {
                g.bench_function(format!("fast_{path}_hot_t{threads}"), |bch| {
                    let w = all[0].view();
                    p.install(|| {
                        bch.iter(|| {
                            matmul_nbits_f32(black_box(&a), 1, &w, None, int8, &mut out).unwrap()
                        })
                    })
                });
                g.bench_function(format!("fast_{path}_cold_t{threads}"), |bch| {
                    let mut i = 0;
                    p.install(|| {
                        bch.iter(|| {
                            i = (i + 1) % all.len();
                            matmul_nbits_f32(black_box(&a), 1, &all[i].view(), None, int8, &mut out)
                                .unwrap()
                        })
                    })
                });
                g.bench_function(format!("scalar_{path}_hot_t{threads}"), |bch| {
                    let w = all[0].view();
                    p.install(|| {
                        bch.iter(|| {
                            matmul_nbits_f32_scalar(black_box(&a), 1, &w, None, int8, &mut out)
                                .unwrap()
                        })
                    })
                });
            }
        }
        g.sample_size(10);
        g.bench_function("naive_t1", |bch| {
            bch.iter(|| naive(black_box(&a), 1, &all[0], &mut out))
        });
        g.finish();
    }
}

/// Prompt prefill: M = 64 rows against the first shape.
fn prefill(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(2);
    let (m, k, n) = (64usize, 3072usize, 8192usize);
    let w = Weights::new(&mut rng, n, k);
    let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let mut out = vec![0.0f32; m * n];
    let mut g = c.benchmark_group(format!("prefill_m{m}_k{k}_n{n}"));
    // Elements = multiply-adds.
    g.throughput(Throughput::Elements((m * k * n) as u64));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for threads in [1, 2] {
        let p = pool(threads);
        for (path, int8) in [("f32", false), ("int8", true)] {
            g.bench_function(format!("fast_{path}_t{threads}"), |bch| {
                p.install(|| {
                    bch.iter(|| {
                        matmul_nbits_f32(black_box(&a), m, &w.view(), None, int8, &mut out).unwrap()
                    })
                })
            });
        }
    }
    g.finish();
}

/// Reading 1 GiB: one thread, and two threads on halves.
fn mem_read(c: &mut Criterion) {
    let buf: Vec<u64> = (0..(1usize << 30) / 8).map(|i| i as u64).collect();
    let sum = |x: &[u64]| -> u64 {
        let mut s = [0u64; 8];
        for ch in x.chunks_exact(8) {
            for (s, v) in s.iter_mut().zip(ch) {
                *s = s.wrapping_add(*v);
            }
        }
        s.iter().fold(0, |a, b| a.wrapping_add(*b))
    };
    let mut g = c.benchmark_group("mem_read_1GiB");
    g.throughput(Throughput::Bytes(1 << 30));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("t1", |bch| bch.iter(|| sum(black_box(&buf))));
    let p = pool(2);
    g.bench_function("t2", |bch| {
        p.install(|| {
            bch.iter(|| {
                black_box(&buf)
                    .par_chunks(buf.len() / 2)
                    .map(sum)
                    .reduce(|| 0, |a, b| a.wrapping_add(b))
            })
        })
    });
    g.finish();
}

criterion_group!(benches, mem_read, decode, prefill);
criterion_main!(benches);
