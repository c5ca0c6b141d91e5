//! Fast Fourier transforms that round as NumPy's do.
//!
//! The ONNX conformance references of DFT and STFT were computed with `numpy.fft`, which in
//! NumPy 2 is pocketfft's C++ header. An exact DFT differs from them by their rounding — an
//! exact 0 where NumPy's float32 inverse has 1.9e-7 — by more than the cases' tolerance, so
//! these plans compute as pocketfft does: the same factorisation (8s, then 4s, one 2 moved to
//! the front, then odd primes), the same butterflies with their operations in the same order
//! (radix 2, 3, 4, 5, 7, 8 and 11 written out, a generic pass for larger primes), twiddle
//! factors computed in f64 as pocketfft computes them and rounded once, Bluestein's algorithm
//! where pocketfft's cost model picks it, and FFTPACK's real backward transform (`radb*`)
//! behind `numpy.fft.irfft`. Written from pocketfft's algorithm rather than translated; the
//! tests hold it to NumPy's values bit for bit.
//!
//! Which precision NumPy computes in is the caller's business (see `dft.rs`).

use std::ops::{Add, Mul, Neg, Sub};

use xnpu_core::{Error, Result};
use xnpu_linalg::buf;

/// The element type a plan computes in: f32 or f64.
pub(crate) trait Real:
    Copy
    + Default
    + PartialEq
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Neg<Output = Self>
{
    /// `x` rounded to the nearest value of this type.
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// `1/n` as NumPy computes its normalisation factor: `n` rounded to this type, then its
    /// reciprocal, rounded.
    fn recip(n: usize) -> Self;
}

impl Real for f32 {
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn recip(n: usize) -> f32 {
        1.0 / n as f32
    }
}

impl Real for f64 {
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn recip(n: usize) -> f64 {
        1.0 / n as f64
    }
}

fn zero<T: Real>() -> T {
    T::from_f64(0.0)
}

fn one<T: Real>() -> T {
    T::from_f64(1.0)
}

fn two<T: Real>() -> T {
    T::from_f64(2.0)
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Complex<T> {
    pub(crate) re: T,
    pub(crate) im: T,
}

impl<T: Real> Add for Complex<T> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Complex::new(self.re + o.re, self.im + o.im)
    }
}

impl<T: Real> Sub for Complex<T> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Complex::new(self.re - o.re, self.im - o.im)
    }
}

impl<T: Real> Complex<T> {
    pub(crate) fn new(re: T, im: T) -> Self {
        Complex { re, im }
    }

    fn scale(self, s: T) -> Self {
        Complex::new(self.re * s, self.im * s)
    }

    fn conj(self) -> Self {
        Complex::new(self.re, -self.im)
    }

    /// `self * w` for a backward transform, `self * conj(w)` for a forward one: a twiddle
    /// table holds the roots of the backward direction.
    fn twiddle<const FWD: bool>(self, w: Self) -> Self {
        if FWD {
            Complex::new(
                self.re * w.re + self.im * w.im,
                self.im * w.re - self.re * w.im,
            )
        } else {
            Complex::new(
                self.re * w.re - self.im * w.im,
                self.re * w.im + self.im * w.re,
            )
        }
    }

    /// `self * -i` forward, `self * i` backward.
    fn rot90<const FWD: bool>(self) -> Self {
        if FWD {
            Complex::new(self.im, -self.re)
        } else {
            Complex::new(-self.im, self.re)
        }
    }
}

/// `pi/4 / n` as pocketfft computes it, in x87 extended precision (`0.25L * pi / n`, pi
/// rounded to 64 bits) and then rounded to f64: for about one length in four this double
/// rounding differs from f64 arithmetic, and a twiddle factor with it.
fn quarter_pi_over(n: usize) -> f64 {
    // pi = PI_MANTISSA * 2^-62, so pi/4 = PI_MANTISSA * 2^-64.
    const PI_MANTISSA: u128 = 0xC90F_DAA2_2168_C235;
    let n = n as u128;
    if n == 0 || n >= 1 << 60 {
        // No plan of this length can be allocated; keep the arithmetic total anyway.
        return std::f64::consts::FRAC_PI_4 / n as f64;
    }
    // The quotient PI_MANTISSA * 2^64 / n has at least 66 bits: a rounding bit beyond the
    // 64 kept, and the remainder as the sticky bit.
    let num = PI_MANTISSA << 64;
    let (q, r) = (num / n, num % n);
    let (m64, e64) = round_bits(q, r != 0, 64);
    let (m53, e53) = round_bits(m64, false, 53);
    // The value is m53 * 2^(e64 + e53 - 128), a normal f64 for every n here.
    let exp = e64 + e53 - 128;
    m53 as f64 * f64::from_bits(((1023 + exp) as u64) << 52)
}

/// `x` (followed by more nonzero bits when `sticky`) rounded to its `bits` leading bits, to
/// nearest, ties to even: the mantissa and how many bits were dropped.
fn round_bits(x: u128, sticky: bool, bits: u32) -> (u128, i32) {
    let len = 128 - x.leading_zeros();
    if len <= bits {
        return (x, 0);
    }
    let drop = len - bits;
    let (mut m, rest, half) = (x >> drop, x & ((1 << drop) - 1), 1u128 << (drop - 1));
    if rest > half || (rest == half && (sticky || m & 1 == 1)) {
        m += 1;
    }
    if m >> bits != 0 {
        (m >> 1, drop as i32 + 1)
    } else {
        (m, drop as i32)
    }
}

/// `e^(2 pi i x / n)` in f64 for `x < n`, reduced to the first octant as pocketfft does.
fn root(x: usize, n: usize, ang: f64) -> Complex<f64> {
    // In eighths of a turn: the quadrants start at 0, 2n, 4n and 6n.
    let (x, n) = (8 * x as u128, n as u128);
    let cs = |k: u128| ((k as f64 * ang).cos(), (k as f64 * ang).sin());
    let c = Complex::new;
    if x < 4 * n {
        if x < 2 * n {
            if x < n {
                let (co, si) = cs(x);
                c(co, si)
            } else {
                let (co, si) = cs(2 * n - x);
                c(si, co)
            }
        } else {
            let x = x - 2 * n;
            if x < n {
                let (co, si) = cs(x);
                c(-si, co)
            } else {
                let (co, si) = cs(2 * n - x);
                c(-co, si)
            }
        }
    } else {
        let x = 8 * n - x;
        if x < 2 * n {
            if x < n {
                let (co, si) = cs(x);
                c(co, -si)
            } else {
                let (co, si) = cs(2 * n - x);
                c(si, -co)
            }
        } else {
            let x = x - 2 * n;
            if x < n {
                let (co, si) = cs(x);
                c(-si, -co)
            } else {
                let (co, si) = cs(2 * n - x);
                c(-co, -si)
            }
        }
    }
}

/// The roots `e^(2 pi i k / n)`, each the product of one from a table of the low bits of `k`
/// and one from a table of its high bits (about sqrt(n) values each), multiplied in f64 and
/// rounded once to the plan's type.
struct Roots {
    n: usize,
    shift: u32,
    low: Vec<Complex<f64>>,
    high: Vec<Complex<f64>>,
}

impl Roots {
    fn new(n: usize) -> Result<Self> {
        let ang = quarter_pi_over(n);
        let nval = n / 2 + 1;
        let mut shift = 1u32;
        while (1u128 << (2 * shift)) < nval as u128 {
            shift += 1;
        }
        let size = 1usize << shift;
        let mut low = buf::reserved(size, "an FFT's twiddle factors")?;
        low.push(Complex::new(1.0, 0.0));
        low.extend((1..size).map(|i| root(i, n, ang)));
        let count = nval.div_ceil(size);
        let mut high = buf::reserved(count, "an FFT's twiddle factors")?;
        high.push(Complex::new(1.0, 0.0));
        high.extend((1..count).map(|i| root(i * size, n, ang)));
        Ok(Roots {
            n,
            shift,
            low,
            high,
        })
    }

    /// `e^(2 pi i k / n)` for `k < n`.
    fn get<T: Real>(&self, k: usize) -> Complex<T> {
        let (k, flip) = if 2 * k <= self.n {
            (k, false)
        } else {
            (self.n - k, true)
        };
        let a = self.low[k & ((1 << self.shift) - 1)];
        let b = self.high[k >> self.shift];
        let re = T::from_f64(a.re * b.re - a.im * b.im);
        let im = T::from_f64(a.re * b.im + a.im * b.re);
        Complex::new(re, if flip { -im } else { im })
    }
}

fn largest_prime_factor(mut n: usize) -> usize {
    let mut res = 1;
    while n.is_multiple_of(2) {
        res = 2;
        n /= 2;
    }
    let mut x = 3;
    while x <= n / x {
        while n.is_multiple_of(x) {
            res = x;
            n /= x;
        }
        x += 2;
    }
    if n > 1 {
        n
    } else {
        res
    }
}

/// pocketfft's estimate of the work of a length-`n` transform.
fn cost_guess(mut n: usize) -> f64 {
    const LARGE_FACTOR_PENALTY: f64 = 1.1;
    let whole = n as f64;
    let mut result = 0.0;
    while n.is_multiple_of(2) {
        result += 2.0;
        n /= 2;
    }
    let weigh = |x: usize| {
        if x <= 5 {
            x as f64
        } else {
            LARGE_FACTOR_PENALTY * x as f64
        }
    };
    let mut x = 3;
    while x <= n / x {
        while n.is_multiple_of(x) {
            result += weigh(x);
            n /= x;
        }
        x += 2;
    }
    if n > 1 {
        result += weigh(n);
    }
    result * whole
}

/// The smallest product of 2, 3, 5, 7 and 11 that is at least `n`.
fn good_size(n: usize) -> usize {
    if n <= 12 {
        return n;
    }
    let n = n as u128;
    let mut best = 2 * n;
    let mut f11 = 1;
    while f11 < best {
        let mut f7 = f11;
        while f7 < best {
            let mut f5 = f7;
            while f5 < best {
                let mut x = f5;
                while x < n {
                    x *= 2;
                }
                loop {
                    if x < n {
                        x *= 3;
                    } else if x > n {
                        best = best.min(x);
                        if x & 1 == 1 {
                            break;
                        }
                        x >>= 1;
                    } else {
                        return n as usize;
                    }
                }
                f5 *= 5;
            }
            f7 *= 7;
        }
        f11 *= 11;
    }
    // At most 2n, which the caller's 2n - 1 < usize::MAX bounds.
    best as usize
}

/// Whether pocketfft computes a length-`n` transform by Bluestein's algorithm; `weight`
/// scales the direct plan's cost (0.5 for a real transform).
fn prefers_bluestein(n: usize, weight: f64) -> bool {
    if n < 50 {
        return false;
    }
    let p = largest_prime_factor(n) as u128;
    let Some(twice) = n.checked_mul(2) else {
        // Too long for either plan's buffers; the direct plan says so when it allocates.
        return false;
    };
    if p * p <= n as u128 {
        return false;
    }
    let direct = weight * cost_guess(n);
    let blue = 2.0 * cost_guess(good_size(twice - 1)) * 1.5;
    blue < direct
}

fn overflow(n: usize) -> Error {
    Error::compute(format!("an FFT of length {n} is too long to plan"))
}

/// The factors of a complex plan, in the order its passes run.
fn complex_factors(mut n: usize) -> Vec<usize> {
    let mut f = Vec::new();
    while n.is_multiple_of(8) {
        f.push(8);
        n /= 8;
    }
    while n.is_multiple_of(4) {
        f.push(4);
        n /= 4;
    }
    odd_factors(n, f)
}

/// The factors of a real plan, in the order its passes run.
fn real_factors(mut n: usize) -> Vec<usize> {
    let mut f = Vec::new();
    while n.is_multiple_of(4) {
        f.push(4);
        n /= 4;
    }
    odd_factors(n, f)
}

/// `f` followed by the factors of `n` (no 4 left in it): a 2 goes to the front.
fn odd_factors(mut n: usize, mut f: Vec<usize>) -> Vec<usize> {
    if n.is_multiple_of(2) {
        n /= 2;
        f.push(2);
        let last = f.len() - 1;
        f.swap(0, last);
    }
    let mut d = 3;
    while d <= n / d {
        while n.is_multiple_of(d) {
            f.push(d);
            n /= d;
        }
        d += 2;
    }
    if n > 1 {
        f.push(n);
    }
    f
}

/// `cos(2 pi k / p)` and `sin(2 pi k / p)` for k = 1..=(p-1)/2, of the primes whose
/// butterflies are written out (pocketfft's constants, rounded to f64).
const ODD_ROOTS: [(usize, &[(f64, f64)]); 4] = [
    (3, &[(-0.5, 0.8660254037844386)]),
    (
        5,
        &[
            (0.30901699437494745, 0.9510565162951535),
            (-0.8090169943749475, 0.5877852522924731),
        ],
    ),
    (
        7,
        &[
            (0.6234898018587335, 0.7818314824680298),
            (-0.2225209339563144, 0.9749279121818236),
            (-0.9009688679024191, 0.4338837391175581),
        ],
    ),
    (
        11,
        &[
            (0.8412535328311812, 0.5406408174555976),
            (0.41541501300188644, 0.9096319953545183),
            (-0.14231483827328514, 0.9898214418809327),
            (-0.6548607339452851, 0.7557495743542583),
            (-0.9594929736144974, 0.28173255684142967),
        ],
    ),
];

/// One pass of a complex plan.
struct Stage<T> {
    ip: usize,
    /// `tw[(j-1)*(ido-1) + i-1]`: the twiddle of output `j` at offset `i`.
    tw: Vec<Complex<T>>,
    /// A generic pass's `ip` roots of its own length.
    tws: Vec<Complex<T>>,
}

/// A mixed-radix Cooley-Tukey plan (pocketfft's `cfftp`).
struct CooleyTukey<T> {
    n: usize,
    stages: Vec<Stage<T>>,
}

impl<T: Real> CooleyTukey<T> {
    fn new(n: usize) -> Result<Self> {
        if n <= 1 {
            return Ok(CooleyTukey {
                n,
                stages: Vec::new(),
            });
        }
        let roots = Roots::new(n)?;
        let mut stages = Vec::new();
        let mut l1 = 1;
        for ip in complex_factors(n) {
            let ido = n / (l1 * ip);
            let mut tw = buf::reserved((ip - 1) * (ido - 1), "an FFT's twiddle factors")?;
            for j in 1..ip {
                tw.extend((1..ido).map(|i| roots.get(j * l1 * i)));
            }
            let mut tws = Vec::new();
            if ip > 11 {
                tws = buf::reserved(ip, "an FFT's twiddle factors")?;
                tws.extend((0..ip).map(|j| roots.get(j * l1 * ido)));
            }
            stages.push(Stage { ip, tw, tws });
            l1 *= ip;
        }
        Ok(CooleyTukey { n, stages })
    }

    /// Transforms `c` in place and multiplies it by `fct`.
    fn run<const FWD: bool>(&self, c: &mut [Complex<T>], fct: T) -> Result<()> {
        if self.n == 1 {
            c[0] = c[0].scale(fct);
            return Ok(());
        }
        let mut ch = buf::zeroed(self.n, "an FFT's work buffer")?;
        let mut in_c = true;
        let mut l1 = 1;
        for st in &self.stages {
            let ido = self.n / (l1 * st.ip);
            let (src, dst) = if in_c {
                (&mut *c, &mut ch[..])
            } else {
                (&mut ch[..], &mut *c)
            };
            let tw = &st.tw[..];
            match st.ip {
                2 => pass::<T, FWD, 2>(ido, l1, src, dst, tw, |[a, b]| [a + b, a - b]),
                4 => pass::<T, FWD, 4>(ido, l1, src, dst, tw, butterfly4::<T, FWD>),
                8 => pass::<T, FWD, 8>(ido, l1, src, dst, tw, butterfly8::<T, FWD>),
                3 => odd_pass::<T, FWD, 3>(ido, l1, src, dst, tw),
                5 => odd_pass::<T, FWD, 5>(ido, l1, src, dst, tw),
                7 => odd_pass::<T, FWD, 7>(ido, l1, src, dst, tw),
                11 => odd_pass::<T, FWD, 11>(ido, l1, src, dst, tw),
                ip => {
                    generic_pass::<T, FWD>(ido, ip, l1, src, dst, tw, &st.tws)?;
                    // The generic pass leaves its result where its input was.
                    in_c = !in_c;
                }
            }
            in_c = !in_c;
            l1 *= st.ip;
        }
        if in_c {
            if fct != one() {
                c.iter_mut().for_each(|v| *v = v.scale(fct));
            }
        } else if fct != one() {
            c.iter_mut().zip(&ch).for_each(|(v, w)| *v = w.scale(fct));
        } else {
            c.copy_from_slice(&ch);
        }
        Ok(())
    }
}

/// A radix-`IP` pass: `butterfly` combines the `IP` inputs of each (k, i), and every output
/// but the first is twiddled, except at offset 0 where the twiddles are 1.
fn pass<T: Real, const FWD: bool, const IP: usize>(
    ido: usize,
    l1: usize,
    cc: &[Complex<T>],
    ch: &mut [Complex<T>],
    tw: &[Complex<T>],
    butterfly: impl Fn([Complex<T>; IP]) -> [Complex<T>; IP],
) {
    for k in 0..l1 {
        for i in 0..ido {
            let y = butterfly(std::array::from_fn(|j| cc[i + ido * (j + IP * k)]));
            ch[i + ido * k] = y[0];
            for (j, &v) in y.iter().enumerate().skip(1) {
                ch[i + ido * (k + l1 * j)] = if i == 0 {
                    v
                } else {
                    v.twiddle::<FWD>(tw[i - 1 + (j - 1) * (ido - 1)])
                };
            }
        }
    }
}

fn butterfly4<T: Real, const FWD: bool>(x: [Complex<T>; 4]) -> [Complex<T>; 4] {
    let (t2, t1) = (x[0] + x[2], x[0] - x[2]);
    let (t3, t4) = (x[1] + x[3], (x[1] - x[3]).rot90::<FWD>());
    [t2 + t3, t1 + t4, t2 - t3, t1 - t4]
}

fn butterfly8<T: Real, const FWD: bool>(x: [Complex<T>; 8]) -> [Complex<T>; 8] {
    let h = T::from_f64(std::f64::consts::FRAC_1_SQRT_2);
    // By e^(-+i pi/4) and e^(-+3i pi/4), each a sum and a difference scaled by sqrt(1/2).
    let rot45 = |a: Complex<T>| {
        if FWD {
            Complex::new(h * (a.re + a.im), h * (a.im - a.re))
        } else {
            Complex::new(h * (a.re - a.im), h * (a.im + a.re))
        }
    };
    let rot135 = |a: Complex<T>| {
        if FWD {
            Complex::new(h * (a.im - a.re), h * (-a.re - a.im))
        } else {
            Complex::new(h * (-a.re - a.im), h * (a.re - a.im))
        }
    };
    let (a1, a5) = (x[1] + x[5], x[1] - x[5]);
    let (a3, a7) = (x[3] + x[7], x[3] - x[7]);
    let (a1, a3) = (a1 + a3, (a1 - a3).rot90::<FWD>());
    let a7 = a7.rot90::<FWD>();
    let (a5, a7) = (rot45(a5 + a7), rot135(a5 - a7));
    let (a0, a4) = (x[0] + x[4], x[0] - x[4]);
    let (a2, a6) = (x[2] + x[6], x[2] - x[6]);
    let (a0, a2) = (a0 + a2, a0 - a2);
    let a6 = a6.rot90::<FWD>();
    let (a4, a6) = (a4 + a6, a4 - a6);
    [
        a0 + a1,
        a4 + a5,
        a2 + a3,
        a6 + a7,
        a0 - a1,
        a4 - a5,
        a2 - a3,
        a6 - a7,
    ]
}

/// The radix-`P` pass of a prime whose butterfly pocketfft writes out (3, 5, 7, 11): inputs
/// paired as sums and differences, each output pair a sum over them in order of the pair.
fn odd_pass<T: Real, const FWD: bool, const P: usize>(
    ido: usize,
    l1: usize,
    cc: &[Complex<T>],
    ch: &mut [Complex<T>],
    tw: &[Complex<T>],
) {
    let table = ODD_ROOTS
        .iter()
        .find(|(p, _)| *p == P)
        .expect("odd_pass is only called for the primes of ODD_ROOTS")
        .1;
    let h = (P - 1) / 2;
    // coef[u][m]: cos and sin of 2 pi r / P for r = u*m mod P, the coefficient of pair m in
    // output u (sines negated forward).
    let mut coef = [[(zero::<T>(), zero::<T>()); 6]; 6];
    for (u, row) in coef.iter_mut().enumerate().take(h + 1).skip(1) {
        for (m, slot) in row.iter_mut().enumerate().take(h + 1).skip(1) {
            let r = u * m % P;
            let sign = if FWD { -1.0 } else { 1.0 };
            let (k, s) = if r <= h { (r, sign) } else { (P - r, -sign) };
            let (c, si) = table[k - 1];
            *slot = (T::from_f64(c), T::from_f64(s * si));
        }
    }
    pass::<T, FWD, P>(ido, l1, cc, ch, tw, |x| {
        let mut y = [Complex::default(); P];
        let sum = |m: usize| x[m] + x[P - m];
        let dif = |m: usize| x[m] - x[P - m];
        y[0] = (1..=h).fold(x[0], |acc, m| acc + sum(m));
        for (u, row) in coef.iter().enumerate().take(h + 1).skip(1) {
            let (c1, s1) = row[1];
            let d1 = dif(1);
            let mut ca = x[0] + sum(1).scale(c1);
            let (mut cbi, mut cbr) = (s1 * d1.re, s1 * d1.im);
            for (m, &(c, s)) in row.iter().enumerate().take(h + 1).skip(2) {
                let d = dif(m);
                ca = ca + sum(m).scale(c);
                cbi = cbi + s * d.re;
                cbr = cbr + s * d.im;
            }
            let cb = Complex::new(-cbr, cbi);
            y[u] = ca + cb;
            y[P - u] = ca - cb;
        }
        y
    });
}

/// The pass of a prime factor above 11 (pocketfft's `passg`): its result is left in `cc`.
fn generic_pass<T: Real, const FWD: bool>(
    ido: usize,
    ip: usize,
    l1: usize,
    cc: &mut [Complex<T>],
    ch: &mut [Complex<T>],
    wa: &[Complex<T>],
    csarr: &[Complex<T>],
) -> Result<()> {
    let ipph = ip.div_ceil(2);
    let idl1 = ido * l1;
    // CH and CX (the pass's output, in `cc`) are [ip][l1][ido], CC is [l1][ip][ido].
    let x = |a: usize, b: usize, c: usize| a + ido * (b + l1 * c);
    let xc = |a: usize, b: usize, c: usize| a + ido * (b + ip * c);
    let mut wal = buf::reserved(ip, "an FFT's twiddle factors")?;
    wal.push(Complex::new(one(), zero()));
    wal.extend(csarr[1..ip].iter().map(|w| if FWD { w.conj() } else { *w }));

    for k in 0..l1 {
        for i in 0..ido {
            ch[x(i, k, 0)] = cc[xc(i, 0, k)];
        }
    }
    for j in 1..ipph {
        let jc = ip - j;
        for k in 0..l1 {
            for i in 0..ido {
                let (a, b) = (cc[xc(i, j, k)], cc[xc(i, jc, k)]);
                ch[x(i, k, j)] = a + b;
                ch[x(i, k, jc)] = a - b;
            }
        }
    }
    for k in 0..l1 {
        for i in 0..ido {
            let tmp = (1..ipph).fold(ch[x(i, k, 0)], |acc, j| acc + ch[x(i, k, j)]);
            cc[x(i, k, 0)] = tmp;
        }
    }
    for l in 1..ipph {
        let lc = ip - l;
        let (w1, w2) = (wal[l], wal[2 * l]);
        for ik in 0..idl1 {
            let h = |b: usize| ch[ik + idl1 * b];
            cc[ik + idl1 * l] = Complex::new(
                h(0).re + w1.re * h(1).re + w2.re * h(2).re,
                h(0).im + w1.re * h(1).im + w2.re * h(2).im,
            );
            cc[ik + idl1 * lc] = Complex::new(
                -(w1.im * h(ip - 1).im) - w2.im * h(ip - 2).im,
                w1.im * h(ip - 1).re + w2.im * h(ip - 2).re,
            );
        }
        let mut iwal = 2 * l;
        let mut next = || {
            iwal += l;
            if iwal > ip {
                iwal -= ip;
            }
            wal[iwal]
        };
        let (mut j, mut jc) = (3, ip - 3);
        while j < ipph - 1 {
            let (xw, xw2) = (next(), next());
            for ik in 0..idl1 {
                let h = |b: usize| ch[ik + idl1 * b];
                let v = cc[ik + idl1 * l];
                cc[ik + idl1 * l] = Complex::new(
                    v.re + (h(j).re * xw.re + h(j + 1).re * xw2.re),
                    v.im + (h(j).im * xw.re + h(j + 1).im * xw2.re),
                );
                let v = cc[ik + idl1 * lc];
                cc[ik + idl1 * lc] = Complex::new(
                    v.re - (h(jc).im * xw.im + h(jc - 1).im * xw2.im),
                    v.im + (h(jc).re * xw.im + h(jc - 1).re * xw2.im),
                );
            }
            j += 2;
            jc -= 2;
        }
        while j < ipph {
            let xw = next();
            for ik in 0..idl1 {
                let h = |b: usize| ch[ik + idl1 * b];
                let v = cc[ik + idl1 * l];
                cc[ik + idl1 * l] = Complex::new(v.re + h(j).re * xw.re, v.im + h(j).im * xw.re);
                let v = cc[ik + idl1 * lc];
                cc[ik + idl1 * lc] = Complex::new(v.re - h(jc).im * xw.im, v.im + h(jc).re * xw.im);
            }
            j += 1;
            jc -= 1;
        }
    }

    // Shuffling and twiddling.
    for j in 1..ipph {
        let jc = ip - j;
        if ido == 1 {
            for ik in 0..idl1 {
                let (t1, t2) = (cc[ik + idl1 * j], cc[ik + idl1 * jc]);
                cc[ik + idl1 * j] = t1 + t2;
                cc[ik + idl1 * jc] = t1 - t2;
            }
            continue;
        }
        for k in 0..l1 {
            let (t1, t2) = (cc[x(0, k, j)], cc[x(0, k, jc)]);
            cc[x(0, k, j)] = t1 + t2;
            cc[x(0, k, jc)] = t1 - t2;
            for i in 1..ido {
                let (a, b) = (cc[x(i, k, j)], cc[x(i, k, jc)]);
                cc[x(i, k, j)] = (a + b).twiddle::<FWD>(wa[(j - 1) * (ido - 1) + i - 1]);
                cc[x(i, k, jc)] = (a - b).twiddle::<FWD>(wa[(jc - 1) * (ido - 1) + i - 1]);
            }
        }
    }
    Ok(())
}

/// Bluestein's algorithm: a length-`n` transform as a convolution computed by a plan of a
/// length `n2 >= 2n - 1` that factors well (pocketfft's `fftblue`).
struct Bluestein<T> {
    n: usize,
    n2: usize,
    plan: CooleyTukey<T>,
    /// `e^(i pi m^2 / n)`.
    bk: Vec<Complex<T>>,
    /// The forward transform of the zero-padded, symmetric `bk / n2`, first half.
    bkf: Vec<Complex<T>>,
}

impl<T: Real> Bluestein<T> {
    fn new(n: usize) -> Result<Self> {
        let twice = n.checked_mul(2).ok_or_else(|| overflow(n))?;
        let n2 = good_size(twice - 1);
        let plan = CooleyTukey::new(n2)?;
        let roots = Roots::new(twice)?;
        let mut bk = buf::reserved(n, "a Bluestein FFT's chirp")?;
        bk.push(Complex::new(one(), zero()));
        let mut coeff = 0usize;
        for m in 1..n {
            coeff += 2 * m - 1;
            if coeff >= twice {
                coeff -= twice;
            }
            bk.push(roots.get(coeff));
        }
        let xn2 = T::recip(n2);
        let mut tbkf = buf::zeroed(n2, "a Bluestein FFT's chirp")?;
        tbkf[0] = bk[0].scale(xn2);
        for m in 1..n {
            let v = bk[m].scale(xn2);
            tbkf[m] = v;
            tbkf[n2 - m] = v;
        }
        plan.run::<true>(&mut tbkf, one())?;
        tbkf.truncate(n2 / 2 + 1);
        Ok(Bluestein {
            n,
            n2,
            plan,
            bk,
            bkf: tbkf,
        })
    }

    fn run<const FWD: bool>(&self, c: &mut [Complex<T>], fct: T) -> Result<()> {
        let (n, n2) = (self.n, self.n2);
        let mut akf = buf::zeroed(n2, "a Bluestein FFT's work buffer")?;
        for m in 0..n {
            akf[m] = c[m].twiddle::<FWD>(self.bk[m]);
        }
        // Zero, or NaN where the signal has one, as pocketfft pads.
        let pad = akf[0].scale(zero());
        akf[n..].iter_mut().for_each(|v| *v = pad);
        self.plan.run::<true>(&mut akf, one())?;
        // The convolution: by bkf, conjugated for a forward transform's twiddle.
        let conv = |v: Complex<T>, w: Complex<T>| {
            if FWD {
                v.twiddle::<false>(w)
            } else {
                v.twiddle::<true>(w)
            }
        };
        akf[0] = conv(akf[0], self.bkf[0]);
        for m in 1..n2.div_ceil(2) {
            akf[m] = conv(akf[m], self.bkf[m]);
            akf[n2 - m] = conv(akf[n2 - m], self.bkf[m]);
        }
        if n2 % 2 == 0 {
            akf[n2 / 2] = conv(akf[n2 / 2], self.bkf[n2 / 2]);
        }
        self.plan.run::<false>(&mut akf, one())?;
        for m in 0..n {
            c[m] = akf[m].twiddle::<FWD>(self.bk[m]).scale(fct);
        }
        Ok(())
    }

    /// The real backward transform of `c`, in FFTPACK's half-complex order.
    fn run_real_backward(&self, c: &mut [T], fct: T) -> Result<()> {
        let n = self.n;
        let mut tmp = buf::zeroed(n, "a Bluestein FFT's signal")?;
        tmp[0] = Complex::new(c[0], c[0] * zero());
        // c[1..] fills the components from tmp[1].re on.
        for (p, &v) in c[1..].iter().enumerate() {
            let q = p + 2;
            if q % 2 == 0 {
                tmp[q / 2].re = v;
            } else {
                tmp[q / 2].im = v;
            }
        }
        if n.is_multiple_of(2) {
            tmp[n / 2].im = zero::<T>() * c[0];
        }
        for m in 1..n.div_ceil(2) {
            tmp[n - m] = tmp[m].conj();
        }
        self.run::<false>(&mut tmp, fct)?;
        c.iter_mut().zip(&tmp).for_each(|(v, t)| *v = t.re);
        Ok(())
    }
}

/// A complex FFT of one length, planned as pocketfft plans it.
pub(crate) struct ComplexFft<T>(ComplexPlan<T>);

enum ComplexPlan<T> {
    Direct(CooleyTukey<T>),
    Bluestein(Bluestein<T>),
}

impl<T: Real> ComplexFft<T> {
    /// A plan for signals of `n > 0` values.
    pub(crate) fn new(n: usize) -> Result<Self> {
        Ok(ComplexFft(if prefers_bluestein(n, 1.0) {
            ComplexPlan::Bluestein(Bluestein::new(n)?)
        } else {
            ComplexPlan::Direct(CooleyTukey::new(n)?)
        }))
    }

    /// `c[k] <- fct * sum_j c[j] e^(-+2 pi i j k / n)`: `-` forward, `+` backward.
    pub(crate) fn run(&self, c: &mut [Complex<T>], forward: bool, fct: T) -> Result<()> {
        match (&self.0, forward) {
            (ComplexPlan::Direct(p), true) => p.run::<true>(c, fct),
            (ComplexPlan::Direct(p), false) => p.run::<false>(c, fct),
            (ComplexPlan::Bluestein(p), true) => p.run::<true>(c, fct),
            (ComplexPlan::Bluestein(p), false) => p.run::<false>(c, fct),
        }
    }
}

/// The backward FFT of a Hermitian spectrum into a real signal (NumPy's `irfft`), planned
/// as pocketfft plans it.
pub(crate) struct RealBackwardFft<T>(RealPlan<T>);

enum RealPlan<T> {
    Direct(RealCooleyTukey<T>),
    Bluestein(Bluestein<T>),
}

impl<T: Real> RealBackwardFft<T> {
    /// A plan for signals of `n > 0` values.
    pub(crate) fn new(n: usize) -> Result<Self> {
        Ok(RealBackwardFft(if prefers_bluestein(n, 0.5) {
            RealPlan::Bluestein(Bluestein::new(n)?)
        } else {
            RealPlan::Direct(RealCooleyTukey::new(n)?)
        }))
    }

    /// `c` holds the spectrum in FFTPACK's order — `re0, re1, im1, re2, im2, …`, ending
    /// with `re(n/2)` when `n` is even — and becomes `fct` times the real signal.
    pub(crate) fn run(&self, c: &mut [T], fct: T) -> Result<()> {
        match &self.0 {
            RealPlan::Direct(p) => p.run(c, fct),
            RealPlan::Bluestein(p) => p.run_real_backward(c, fct),
        }
    }
}

/// One pass of a real plan.
struct RealStage<T> {
    ip: usize,
    /// Twiddles as (re, im) pairs: `tw[(j-1)*(ido-1) + 2i-2]`, `… + 2i-1]`.
    tw: Vec<T>,
    /// A generic pass's `ip` roots of its own length, as (re, im) pairs.
    tws: Vec<T>,
}

/// FFTPACK's mixed-radix real plan (pocketfft's `rfftp`), backward direction only.
struct RealCooleyTukey<T> {
    n: usize,
    stages: Vec<RealStage<T>>,
}

impl<T: Real> RealCooleyTukey<T> {
    fn new(n: usize) -> Result<Self> {
        if n <= 1 {
            return Ok(RealCooleyTukey {
                n,
                stages: Vec::new(),
            });
        }
        let roots = Roots::new(n)?;
        let factors = real_factors(n);
        let mut stages = Vec::new();
        let mut l1 = 1;
        for (k, &ip) in factors.iter().enumerate() {
            let ido = n / (l1 * ip);
            let mut tw = Vec::new();
            if k + 1 < factors.len() {
                tw = buf::zeroed((ip - 1) * (ido - 1), "an FFT's twiddle factors")?;
                for j in 1..ip {
                    for i in 1..=(ido - 1) / 2 {
                        let w = roots.get::<T>(j * l1 * i);
                        tw[(j - 1) * (ido - 1) + 2 * i - 2] = w.re;
                        tw[(j - 1) * (ido - 1) + 2 * i - 1] = w.im;
                    }
                }
            }
            let mut tws = Vec::new();
            if ip > 5 {
                tws = buf::zeroed(2 * ip, "an FFT's twiddle factors")?;
                tws[0] = one();
                let (mut i, mut ic) = (2, 2 * ip - 2);
                while i <= ic {
                    let w = roots.get::<T>(i / 2 * (n / ip));
                    tws[i] = w.re;
                    tws[i + 1] = w.im;
                    tws[ic] = w.re;
                    tws[ic + 1] = -w.im;
                    i += 2;
                    ic -= 2;
                }
            }
            stages.push(RealStage { ip, tw, tws });
            l1 *= ip;
        }
        Ok(RealCooleyTukey { n, stages })
    }

    fn run(&self, c: &mut [T], fct: T) -> Result<()> {
        if self.n == 1 {
            c[0] = c[0] * fct;
            return Ok(());
        }
        let mut ch = buf::zeroed(self.n, "an FFT's work buffer")?;
        let mut in_c = true;
        let mut l1 = 1;
        for st in &self.stages {
            let ido = self.n / (st.ip * l1);
            let (src, dst) = if in_c {
                (&mut *c, &mut ch[..])
            } else {
                (&mut ch[..], &mut *c)
            };
            let r = RadixB {
                ido,
                l1,
                wa: &st.tw,
            };
            match st.ip {
                4 => r.radb4(src, dst),
                2 => r.radb2(src, dst),
                3 => r.radb3(src, dst),
                5 => r.radb5(src, dst),
                ip => r.radbg(ip, src, dst, &st.tws),
            }
            in_c = !in_c;
            l1 *= st.ip;
        }
        if in_c {
            if fct != one() {
                c.iter_mut().for_each(|v| *v = fct * *v);
            }
        } else if fct != one() {
            c.iter_mut().zip(&ch).for_each(|(v, w)| *v = fct * *w);
        } else {
            c.copy_from_slice(&ch);
        }
        Ok(())
    }
}

/// `(c*e + d*f, c*f - d*e)`: `conj(c + id) * (e + if)`, as (im, re).
fn mulpm<T: Real>(c: T, d: T, e: T, f: T) -> (T, T) {
    (c * e + d * f, c * f - d * e)
}

/// The shape of one backward real pass: `ido` values per transform, `l1` transforms, the
/// pass's twiddles `wa`. Input `cc` is [l1][ip][ido], output `ch` is [ip][l1][ido].
struct RadixB<'a, T> {
    ido: usize,
    l1: usize,
    wa: &'a [T],
}

impl<T: Real> RadixB<'_, T> {
    fn wa(&self, x: usize, i: usize) -> T {
        self.wa[i + x * (self.ido - 1)]
    }

    fn radb2(&self, cc: &[T], ch: &mut [T]) {
        let (ido, l1) = (self.ido, self.l1);
        let c = |a: usize, b: usize, k: usize| cc[a + ido * (b + 2 * k)];
        let h = |a: usize, k: usize, j: usize| a + ido * (k + l1 * j);
        for k in 0..l1 {
            ch[h(0, k, 0)] = c(0, 0, k) + c(ido - 1, 1, k);
            ch[h(0, k, 1)] = c(0, 0, k) - c(ido - 1, 1, k);
        }
        if ido % 2 == 0 {
            for k in 0..l1 {
                ch[h(ido - 1, k, 0)] = two::<T>() * c(ido - 1, 0, k);
                ch[h(ido - 1, k, 1)] = -two::<T>() * c(0, 1, k);
            }
        }
        if ido <= 2 {
            return;
        }
        for k in 0..l1 {
            for i in (2..ido).step_by(2) {
                let ic = ido - i;
                ch[h(i - 1, k, 0)] = c(i - 1, 0, k) + c(ic - 1, 1, k);
                let tr2 = c(i - 1, 0, k) - c(ic - 1, 1, k);
                let ti2 = c(i, 0, k) + c(ic, 1, k);
                ch[h(i, k, 0)] = c(i, 0, k) - c(ic, 1, k);
                let (im, re) = mulpm(self.wa(0, i - 2), self.wa(0, i - 1), ti2, tr2);
                ch[h(i, k, 1)] = im;
                ch[h(i - 1, k, 1)] = re;
            }
        }
    }

    fn radb3(&self, cc: &[T], ch: &mut [T]) {
        let (ido, l1) = (self.ido, self.l1);
        let taur = T::from_f64(-0.5);
        let taui = T::from_f64(0.8660254037844386);
        let c = |a: usize, b: usize, k: usize| cc[a + ido * (b + 3 * k)];
        let h = |a: usize, k: usize, j: usize| a + ido * (k + l1 * j);
        for k in 0..l1 {
            let tr2 = two::<T>() * c(ido - 1, 1, k);
            let cr2 = c(0, 0, k) + taur * tr2;
            ch[h(0, k, 0)] = c(0, 0, k) + tr2;
            let ci3 = (two::<T>() * taui) * c(0, 2, k);
            ch[h(0, k, 2)] = cr2 + ci3;
            ch[h(0, k, 1)] = cr2 - ci3;
        }
        if ido == 1 {
            return;
        }
        for k in 0..l1 {
            for i in (2..ido).step_by(2) {
                let ic = ido - i;
                let tr2 = c(i - 1, 2, k) + c(ic - 1, 1, k);
                let ti2 = c(i, 2, k) - c(ic, 1, k);
                let cr2 = c(i - 1, 0, k) + taur * tr2;
                let ci2 = c(i, 0, k) + taur * ti2;
                ch[h(i - 1, k, 0)] = c(i - 1, 0, k) + tr2;
                ch[h(i, k, 0)] = c(i, 0, k) + ti2;
                let cr3 = taui * (c(i - 1, 2, k) - c(ic - 1, 1, k));
                let ci3 = taui * (c(i, 2, k) + c(ic, 1, k));
                let (dr3, dr2) = (cr2 + ci3, cr2 - ci3);
                let (di2, di3) = (ci2 + cr3, ci2 - cr3);
                for (j, di, dr) in [(1, di2, dr2), (2, di3, dr3)] {
                    let (im, re) = mulpm(self.wa(j - 1, i - 2), self.wa(j - 1, i - 1), di, dr);
                    ch[h(i, k, j)] = im;
                    ch[h(i - 1, k, j)] = re;
                }
            }
        }
    }

    fn radb4(&self, cc: &[T], ch: &mut [T]) {
        let (ido, l1) = (self.ido, self.l1);
        let sqrt2 = T::from_f64(std::f64::consts::SQRT_2);
        let c = |a: usize, b: usize, k: usize| cc[a + ido * (b + 4 * k)];
        let h = |a: usize, k: usize, j: usize| a + ido * (k + l1 * j);
        for k in 0..l1 {
            let (tr2, tr1) = (c(0, 0, k) + c(ido - 1, 3, k), c(0, 0, k) - c(ido - 1, 3, k));
            let tr3 = two::<T>() * c(ido - 1, 1, k);
            let tr4 = two::<T>() * c(0, 2, k);
            ch[h(0, k, 0)] = tr2 + tr3;
            ch[h(0, k, 2)] = tr2 - tr3;
            ch[h(0, k, 3)] = tr1 + tr4;
            ch[h(0, k, 1)] = tr1 - tr4;
        }
        if ido % 2 == 0 {
            for k in 0..l1 {
                let (ti1, ti2) = (c(0, 3, k) + c(0, 1, k), c(0, 3, k) - c(0, 1, k));
                let (tr2, tr1) = (
                    c(ido - 1, 0, k) + c(ido - 1, 2, k),
                    c(ido - 1, 0, k) - c(ido - 1, 2, k),
                );
                ch[h(ido - 1, k, 0)] = tr2 + tr2;
                ch[h(ido - 1, k, 1)] = sqrt2 * (tr1 - ti1);
                ch[h(ido - 1, k, 2)] = ti2 + ti2;
                ch[h(ido - 1, k, 3)] = -sqrt2 * (tr1 + ti1);
            }
        }
        if ido <= 2 {
            return;
        }
        for k in 0..l1 {
            for i in (2..ido).step_by(2) {
                let ic = ido - i;
                let (tr2, tr1) = (
                    c(i - 1, 0, k) + c(ic - 1, 3, k),
                    c(i - 1, 0, k) - c(ic - 1, 3, k),
                );
                let (ti1, ti2) = (c(i, 0, k) + c(ic, 3, k), c(i, 0, k) - c(ic, 3, k));
                let (tr4, ti3) = (c(i, 2, k) + c(ic, 1, k), c(i, 2, k) - c(ic, 1, k));
                let (tr3, ti4) = (
                    c(i - 1, 2, k) + c(ic - 1, 1, k),
                    c(i - 1, 2, k) - c(ic - 1, 1, k),
                );
                ch[h(i - 1, k, 0)] = tr2 + tr3;
                let cr3 = tr2 - tr3;
                ch[h(i, k, 0)] = ti2 + ti3;
                let ci3 = ti2 - ti3;
                let (cr4, cr2) = (tr1 + tr4, tr1 - tr4);
                let (ci2, ci4) = (ti1 + ti4, ti1 - ti4);
                for (j, ci, cr) in [(1, ci2, cr2), (2, ci3, cr3), (3, ci4, cr4)] {
                    let (im, re) = mulpm(self.wa(j - 1, i - 2), self.wa(j - 1, i - 1), ci, cr);
                    ch[h(i, k, j)] = im;
                    ch[h(i - 1, k, j)] = re;
                }
            }
        }
    }

    fn radb5(&self, cc: &[T], ch: &mut [T]) {
        let (ido, l1) = (self.ido, self.l1);
        let tr11 = T::from_f64(0.30901699437494745);
        let ti11 = T::from_f64(0.9510565162951535);
        let tr12 = T::from_f64(-0.8090169943749475);
        let ti12 = T::from_f64(0.5877852522924731);
        let c = |a: usize, b: usize, k: usize| cc[a + ido * (b + 5 * k)];
        let h = |a: usize, k: usize, j: usize| a + ido * (k + l1 * j);
        for k in 0..l1 {
            let ti5 = c(0, 2, k) + c(0, 2, k);
            let ti4 = c(0, 4, k) + c(0, 4, k);
            let tr2 = c(ido - 1, 1, k) + c(ido - 1, 1, k);
            let tr3 = c(ido - 1, 3, k) + c(ido - 1, 3, k);
            ch[h(0, k, 0)] = c(0, 0, k) + tr2 + tr3;
            let cr2 = c(0, 0, k) + tr11 * tr2 + tr12 * tr3;
            let cr3 = c(0, 0, k) + tr12 * tr2 + tr11 * tr3;
            let (ci5, ci4) = mulpm(ti5, ti4, ti11, ti12);
            ch[h(0, k, 4)] = cr2 + ci5;
            ch[h(0, k, 1)] = cr2 - ci5;
            ch[h(0, k, 3)] = cr3 + ci4;
            ch[h(0, k, 2)] = cr3 - ci4;
        }
        if ido == 1 {
            return;
        }
        for k in 0..l1 {
            for i in (2..ido).step_by(2) {
                let ic = ido - i;
                let (tr2, tr5) = (
                    c(i - 1, 2, k) + c(ic - 1, 1, k),
                    c(i - 1, 2, k) - c(ic - 1, 1, k),
                );
                let (ti5, ti2) = (c(i, 2, k) + c(ic, 1, k), c(i, 2, k) - c(ic, 1, k));
                let (tr3, tr4) = (
                    c(i - 1, 4, k) + c(ic - 1, 3, k),
                    c(i - 1, 4, k) - c(ic - 1, 3, k),
                );
                let (ti4, ti3) = (c(i, 4, k) + c(ic, 3, k), c(i, 4, k) - c(ic, 3, k));
                ch[h(i - 1, k, 0)] = c(i - 1, 0, k) + tr2 + tr3;
                ch[h(i, k, 0)] = c(i, 0, k) + ti2 + ti3;
                let cr2 = c(i - 1, 0, k) + tr11 * tr2 + tr12 * tr3;
                let ci2 = c(i, 0, k) + tr11 * ti2 + tr12 * ti3;
                let cr3 = c(i - 1, 0, k) + tr12 * tr2 + tr11 * tr3;
                let ci3 = c(i, 0, k) + tr12 * ti2 + tr11 * ti3;
                let (cr5, cr4) = mulpm(tr5, tr4, ti11, ti12);
                let (ci5, ci4) = mulpm(ti5, ti4, ti11, ti12);
                let (dr4, dr3) = (cr3 + ci4, cr3 - ci4);
                let (di3, di4) = (ci3 + cr4, ci3 - cr4);
                let (dr5, dr2) = (cr2 + ci5, cr2 - ci5);
                let (di2, di5) = (ci2 + cr5, ci2 - cr5);
                for (j, di, dr) in [(1, di2, dr2), (2, di3, dr3), (3, di4, dr4), (4, di5, dr5)] {
                    let (im, re) = mulpm(self.wa(j - 1, i - 2), self.wa(j - 1, i - 1), di, dr);
                    ch[h(i, k, j)] = im;
                    ch[h(i - 1, k, j)] = re;
                }
            }
        }
    }

    /// The pass of a prime factor above 5 (FFTPACK's `radbg`); uses `cc` as scratch.
    fn radbg(&self, ip: usize, cc: &mut [T], ch: &mut [T], csarr: &[T]) {
        let (ido, l1) = (self.ido, self.l1);
        let ipph = ip.div_ceil(2);
        let idl1 = ido * l1;
        // CC is [l1][ip][ido]; CH and C1 (`cc` reused) are [ip][l1][ido].
        let xc = |a: usize, b: usize, c: usize| a + ido * (b + ip * c);
        let x = |a: usize, b: usize, c: usize| a + ido * (b + l1 * c);

        for k in 0..l1 {
            for i in 0..ido {
                ch[x(i, k, 0)] = cc[xc(i, 0, k)];
            }
        }
        for j in 1..ipph {
            let (jc, j2) = (ip - j, 2 * j - 1);
            for k in 0..l1 {
                ch[x(0, k, j)] = two::<T>() * cc[xc(ido - 1, j2, k)];
                ch[x(0, k, jc)] = two::<T>() * cc[xc(0, j2 + 1, k)];
            }
        }
        if ido != 1 {
            for j in 1..ipph {
                let (jc, j2) = (ip - j, 2 * j - 1);
                for k in 0..l1 {
                    for i in (1..ido - 1).step_by(2) {
                        let ic = ido - i - 2;
                        ch[x(i, k, j)] = cc[xc(i, j2 + 1, k)] + cc[xc(ic, j2, k)];
                        ch[x(i, k, jc)] = cc[xc(i, j2 + 1, k)] - cc[xc(ic, j2, k)];
                        ch[x(i + 1, k, j)] = cc[xc(i + 1, j2 + 1, k)] - cc[xc(ic + 1, j2, k)];
                        ch[x(i + 1, k, jc)] = cc[xc(i + 1, j2 + 1, k)] + cc[xc(ic + 1, j2, k)];
                    }
                }
            }
        }
        for l in 1..ipph {
            let lc = ip - l;
            for ik in 0..idl1 {
                let h = |b: usize| ch[ik + idl1 * b];
                cc[ik + idl1 * l] = h(0) + csarr[2 * l] * h(1) + csarr[4 * l] * h(2);
                cc[ik + idl1 * lc] = csarr[2 * l + 1] * h(ip - 1) + csarr[4 * l + 1] * h(ip - 2);
            }
            let mut iang = 2 * l;
            let mut next = || {
                iang += l;
                if iang > ip {
                    iang -= ip;
                }
                (csarr[2 * iang], csarr[2 * iang + 1])
            };
            let (mut j, mut jc) = (3, ip - 3);
            while j + 3 < ipph {
                let (a1, a2, a3, a4) = (next(), next(), next(), next());
                for ik in 0..idl1 {
                    let h = |b: usize| ch[ik + idl1 * b];
                    let v = cc[ik + idl1 * l];
                    cc[ik + idl1 * l] =
                        v + (a1.0 * h(j) + a2.0 * h(j + 1) + a3.0 * h(j + 2) + a4.0 * h(j + 3));
                    let v = cc[ik + idl1 * lc];
                    cc[ik + idl1 * lc] =
                        v + (a1.1 * h(jc) + a2.1 * h(jc - 1) + a3.1 * h(jc - 2) + a4.1 * h(jc - 3));
                }
                j += 4;
                jc -= 4;
            }
            while j + 1 < ipph {
                let (a1, a2) = (next(), next());
                for ik in 0..idl1 {
                    let h = |b: usize| ch[ik + idl1 * b];
                    let v = cc[ik + idl1 * l];
                    cc[ik + idl1 * l] = v + (a1.0 * h(j) + a2.0 * h(j + 1));
                    let v = cc[ik + idl1 * lc];
                    cc[ik + idl1 * lc] = v + (a1.1 * h(jc) + a2.1 * h(jc - 1));
                }
                j += 2;
                jc -= 2;
            }
            while j < ipph {
                let a = next();
                for ik in 0..idl1 {
                    let v = cc[ik + idl1 * l];
                    cc[ik + idl1 * l] = v + a.0 * ch[ik + idl1 * j];
                    let v = cc[ik + idl1 * lc];
                    cc[ik + idl1 * lc] = v + a.1 * ch[ik + idl1 * jc];
                }
                j += 1;
                jc -= 1;
            }
        }
        for j in 1..ipph {
            for ik in 0..idl1 {
                ch[ik] = ch[ik] + ch[ik + idl1 * j];
            }
        }
        for j in 1..ipph {
            let jc = ip - j;
            for k in 0..l1 {
                let (a, b) = (cc[x(0, k, j)], cc[x(0, k, jc)]);
                ch[x(0, k, jc)] = a + b;
                ch[x(0, k, j)] = a - b;
            }
        }
        if ido == 1 {
            return;
        }
        for j in 1..ipph {
            let jc = ip - j;
            for k in 0..l1 {
                for i in (1..ido - 1).step_by(2) {
                    ch[x(i, k, j)] = cc[x(i, k, j)] - cc[x(i + 1, k, jc)];
                    ch[x(i, k, jc)] = cc[x(i, k, j)] + cc[x(i + 1, k, jc)];
                    ch[x(i + 1, k, j)] = cc[x(i + 1, k, j)] + cc[x(i, k, jc)];
                    ch[x(i + 1, k, jc)] = cc[x(i + 1, k, j)] - cc[x(i, k, jc)];
                }
            }
        }
        for j in 1..ip {
            let is = (j - 1) * (ido - 1);
            for k in 0..l1 {
                for (step, i) in (1..ido - 1).step_by(2).enumerate() {
                    let (w0, w1) = (self.wa[is + 2 * step], self.wa[is + 2 * step + 1]);
                    let (t1, t2) = (ch[x(i, k, j)], ch[x(i + 1, k, j)]);
                    ch[x(i, k, j)] = w0 * t1 - w1 * t2;
                    ch[x(i + 1, k, j)] = w0 * t2 + w1 * t1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Kind {
        Complex,
        Real,
    }

    /// One of NumPy's results (`scripts/gen_fft_cases.py`): the bit patterns of its values
    /// (re, im interleaved for a complex result) when short, and their FNV-1a hash.
    #[derive(Debug)]
    struct NumpyCase {
        kind: Kind,
        double: bool,
        forward: bool,
        n: usize,
        bits: &'static [u64],
        fnv: u64,
    }

    include!("fft_numpy.rs");

    /// The generator's signal, exact in f32.
    fn signal<T: Real>(n: usize) -> Vec<Complex<T>> {
        (0..n)
            .map(|j| {
                let re = ((37 * j + 11) % 101) as f64 / 16.0 - 3.0;
                let im = ((53 * j + 7) % 89) as f64 / 32.0 - 1.25;
                Complex::new(T::from_f64(re), T::from_f64(im))
            })
            .collect()
    }

    /// The spectrum `h` of a real signal of `n` values in FFTPACK's order.
    fn half_complex<T: Real>(h: &[Complex<T>], n: usize) -> Vec<T> {
        let mut sig = vec![h[0].re];
        for v in &h[1..=(n - 1) / 2] {
            sig.extend([v.re, v.im]);
        }
        if n.is_multiple_of(2) {
            sig.push(h[n / 2].re);
        }
        sig
    }

    fn computed<T: Real>(c: &NumpyCase) -> Vec<T> {
        let n = c.n;
        match c.kind {
            Kind::Complex => {
                let mut x = signal::<T>(n);
                let fct = if c.forward { one() } else { T::recip(n) };
                ComplexFft::new(n)
                    .unwrap()
                    .run(&mut x, c.forward, fct)
                    .unwrap();
                x.iter().flat_map(|v| [v.re, v.im]).collect()
            }
            Kind::Real => {
                let mut x = half_complex(&signal::<T>(n / 2 + 1), n);
                RealBackwardFft::new(n)
                    .unwrap()
                    .run(&mut x, T::recip(n))
                    .unwrap();
                x
            }
        }
    }

    fn fnv1a(words: &[u64], width: usize) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for w in words {
            for b in &w.to_le_bytes()[..width] {
                h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// How many values of the type lie between two bit patterns.
    fn ulps(a: u64, b: u64, double: bool) -> u64 {
        let ordered = |x: u64| -> i128 {
            let (sign, mag) = if double {
                (x >> 63, x & !(1 << 63))
            } else {
                ((x >> 31) & 1, x & 0x7fff_ffff)
            };
            if sign == 1 {
                -(mag as i128)
            } else {
                mag as i128
            }
        };
        (ordered(a) - ordered(b)).unsigned_abs() as u64
    }

    #[test]
    fn transforms_equal_numpys_bit_for_bit() {
        let mut failures = Vec::new();
        for c in NUMPY_CASES {
            let (words, width) = if c.double {
                let v = computed::<f64>(c);
                (v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), 8)
            } else {
                let v = computed::<f32>(c);
                (v.iter().map(|x| x.to_bits() as u64).collect(), 4)
            };
            if fnv1a(&words, width) == c.fnv {
                continue;
            }
            let worst = (!c.bits.is_empty()).then(|| {
                words
                    .iter()
                    .zip(c.bits)
                    .map(|(&a, &b)| ulps(a, b, c.double))
                    .max()
                    .unwrap_or(0)
            });
            failures.push(format!(
                "{:?} n={} double={} forward={}: differs from NumPy (max ulps {worst:?})",
                c.kind, c.n, c.double, c.forward
            ));
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn quarter_pi_over_n_rounds_through_extended_precision() {
        // From NumPy's longdouble (x87) arithmetic; f64 arithmetic is off by one ulp at 3,
        // 6 and 13.
        for (n, bits) in [
            (1, 0x3fe9_21fb_5444_2d18u64),
            (3, 0x3fd0_c152_382d_7366),
            (6, 0x3fc0_c152_382d_7366),
            (13, 0x3fae_eebf_2ca2_ada8),
            (4096, 0x3f29_21fb_5444_2d18),
            (1_000_003, 0x3eaa_5a7f_a516_0fc7),
        ] {
            assert_eq!(quarter_pi_over(n).to_bits(), bits, "n = {n}");
        }
    }

    #[test]
    fn an_impulse_has_an_exactly_flat_spectrum() {
        for n in 1..=20 {
            let mut x = vec![Complex::new(0.0f32, 0.0); n];
            x[0] = Complex::new(1.0, 0.0);
            ComplexFft::new(n).unwrap().run(&mut x, true, 1.0).unwrap();
            assert!(
                x.iter().all(|v| *v == Complex::new(1.0, 0.0)),
                "n = {n}: {x:?}"
            );
        }
    }

    #[test]
    fn a_tone_at_a_multiple_of_a_quarter_turn_transforms_exactly() {
        // x[j] = i^j: all of it lands in bin n/4, with nothing elsewhere.
        for n in [4, 8, 16, 32, 64] {
            let quarter = [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)];
            let mut x: Vec<Complex<f32>> = (0..n)
                .map(|j| Complex::new(quarter[j % 4].0, quarter[j % 4].1))
                .collect();
            ComplexFft::new(n).unwrap().run(&mut x, true, 1.0).unwrap();
            for (k, v) in x.iter().enumerate() {
                let want = if k == n / 4 { n as f32 } else { 0.0 };
                assert_eq!((v.re, v.im), (want, 0.0), "n = {n}, bin {k}");
            }
        }
    }

    #[test]
    fn backward_after_forward_restores_the_signal_at_every_length() {
        // Every plan shape up to 300: the radices, the generic pass, Bluestein (89, 101, …).
        for n in 1..=300 {
            let x = signal::<f64>(n);
            let plan = ComplexFft::new(n).unwrap();
            let mut y = x.clone();
            plan.run(&mut y, true, 1.0).unwrap();
            plan.run(&mut y, false, <f64 as Real>::recip(n)).unwrap();
            for (a, b) in x.iter().zip(&y) {
                assert!(
                    (a.re - b.re).abs() < 1e-12 && (a.im - b.im).abs() < 1e-12,
                    "n = {n}"
                );
            }
        }
    }

    #[test]
    fn real_backward_inverts_the_spectrum_of_a_real_signal_at_every_length() {
        // Bluestein from 191 on.
        for n in 1..=300 {
            let x: Vec<f64> = signal::<f64>(n).iter().map(|v| v.re).collect();
            let mut spec: Vec<Complex<f64>> = x.iter().map(|&v| Complex::new(v, 0.0)).collect();
            ComplexFft::new(n)
                .unwrap()
                .run(&mut spec, true, 1.0)
                .unwrap();
            let mut y = half_complex(&spec, n);
            RealBackwardFft::new(n)
                .unwrap()
                .run(&mut y, <f64 as Real>::recip(n))
                .unwrap();
            for (a, b) in x.iter().zip(&y) {
                assert!((a - b).abs() < 1e-12, "n = {n}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn plans_pick_bluestein_where_pocketfft_does() {
        // Large prime factors from 50 on, when the padded convolution is cheaper.
        assert!(!prefers_bluestein(47, 1.0));
        assert!(!prefers_bluestein(97, 1.0));
        assert!(prefers_bluestein(101, 1.0));
        assert!(!prefers_bluestein(221, 1.0));
        assert!(!prefers_bluestein(101, 0.5));
        assert!(prefers_bluestein(211, 0.5));
        assert!(!prefers_bluestein(usize::MAX, 1.0));
    }
}
