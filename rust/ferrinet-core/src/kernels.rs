//! The dense-layer maths on whole matrices, made fast. Everything else calls these.
//!
//! ```text
//! forward      z  = x W^T + b        (n, in) x (out, in)^T -> (n, out)
//! weight grad  dW = delta^T x        (n, out)^T x (n, in)  -> (out, in)
//! input grad   dx = delta W          (n, out) x (out, in)  -> (n, in)
//! ```
//! Batches go to the `gemm` crate (runtime-dispatched AVX-512 / AVX2+FMA / SSE micro-kernels;
//! chosen over matrixmultiply and faer by measuring the layer shapes, see benches/README.md).
//! Single samples (the article's per-sample SGD) are matrix-vector products, where a GEMM's
//! packing costs more than the arithmetic: they use the loops below, generic over `FMA`,
//! compiled twice, once with AVX2+FMA enabled and once for any x86-64 / other CPU, and picked
//! at run time. Where the pick is made:
//! - per kernel call, for the `pub fn`s made by `dispatch!` (`gemv_bias`, `sgd_rank1`, ...:
//!   `predict` of one row, the small-batch loops, the end of a `train` call): a test of the
//!   CPU and a call that cannot be inlined, around each kernel;
//! - per call of a whole per-sample loop, for `train`'s steps (per_sample.rs: `run_steps`) and
//!   `backward`'s one-sample step (network.rs: `backward_sample`): each has one
//!   `#[target_feature(enable = "avx2,fma")]` entry and one plain entry around a step written
//!   with the `#[inline(always)]` kernels of `per_cpu`, so that the kernels, the activations
//!   and the loss compile into one loop per CPU target (2-8-1 f64: 1,018 instructions per
//!   `train` step, 1,269 with a pick per kernel; examples/count_steps.rs). Both entries take a
//!   `baseline` flag that the tests set, so that the baseline copy is checked on AVX2 machines
//!   too.
//!
//! `FMA` alone decides the roundings, so both picks give the same bits on one CPU.
//!
//! Summation order: each dot product is split over 8 interleaved partial sums (combined in a
//! fixed tree), so results differ from the reference's left-to-right sums by a few ulps. On one
//! machine they do not depend on the thread count; across machines the FMA and non-FMA builds
//! of a kernel round differently (a*b+c once vs twice).

use crate::activation::Activation;
use crate::float::Real;
use crate::panels;
use crate::team::{for_each_part, Disjoint};

/// Below this many multiply-adds a plain loop beats a GEMM call.
const SMALL: usize = 4096;
const LANES: usize = 8;

/// Work split for large products: 1 = this thread only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads(pub usize);

impl Threads {
    /// How many threads a product of `flops` flops is cut between: below ~1 MFLOP a thread
    /// hand-off costs more than it saves.
    pub(crate) fn parts(self, flops: usize) -> usize {
        if self.0 > 1 && flops > 1 << 20 {
            self.0
        } else {
            1
        }
    }
}

#[inline(always)]
fn madd<T: Real, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Defines `pub fn $name` that runs `$imp::<T, true>` compiled for AVX2+FMA when the CPU has
/// them, else `$imp::<T, false>` compiled for the baseline target.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $avx:ident, $imp:ident, ($($arg:ident : $ty:ty),*)) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx<T: Real>($($arg: $ty),*) {
            $imp::<T, true>($($arg),*)
        }

        $(#[$doc])*
        pub fn $name<T: Real>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if has_avx2_fma() {
                // SAFETY: the CPU supports the features the function was compiled for.
                return unsafe { $avx::<T>($($arg),*) };
            }
            $imp::<T, false>($($arg),*)
        }
    };
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    // std caches the CPUID answer; this is a load and a test.
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Whether this CPU takes the AVX2+FMA kernels (`FMA = true`): what a caller that dispatches
/// once per call (see `per_cpu`) tests before entering its `#[target_feature]` copy.
#[inline]
pub(crate) fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2_fma()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Which kernels this CPU runs: "avx2+fma" or "baseline" (for benchmarks and bug reports).
pub fn cpu_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        return "avx2+fma";
    }
    "baseline"
}

/// `with_tail!(tail, f::<T, FMA>(args))` calls `f::<T, FMA, TAIL>(args)` with the constant
/// TAIL equal to `tail` (< LANES): one copy of a row loop per tail length.
macro_rules! with_tail {
    ($tail:expr, $f:ident::<$t:ty, $fma:ident>($($arg:expr),*)) => {
        match $tail {
            0 => $f::<$t, $fma, 0>($($arg),*),
            1 => $f::<$t, $fma, 1>($($arg),*),
            2 => $f::<$t, $fma, 2>($($arg),*),
            3 => $f::<$t, $fma, 3>($($arg),*),
            4 => $f::<$t, $fma, 4>($($arg),*),
            5 => $f::<$t, $fma, 5>($($arg),*),
            6 => $f::<$t, $fma, 6>($($arg),*),
            _ => $f::<$t, $fma, 7>($($arg),*),
        }
    };
}

/// Sum of 8 lanes in a fixed tree: ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
#[inline(always)]
fn reduce<T: Real>(l: [T; LANES]) -> T {
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// z[i] = w[i] . x + b[i] for every row i of w (out, in): four rows at a time so that 32
/// independent partial sums hide the latency of the adds.
#[inline(always)]
fn gemv_bias_impl<T: Real, const FMA: bool>(w: &[T], x: &[T], b: &[T], z: &mut [T]) {
    let n_in = x.len();
    let split = n_in - n_in % LANES;
    // Blocks of 4 rows.
    let n_out = b.len();
    let mut i = 0;
    // Rows shorter than a lane block go one at a time (below), where acc stays in registers.
    while i + 4 <= n_out && split > 0 {
        let r: [&[T]; 4] = std::array::from_fn(|q| &w[(i + q) * n_in..(i + q + 1) * n_in]);
        let mut acc = [[T::ZERO; LANES]; 4];
        let mut j = 0;
        while j < split {
            let xs = &x[j..j + LANES];
            for q in 0..4 {
                let ws = &r[q][j..j + LANES];
                for l in 0..LANES {
                    acc[q][l] = madd::<T, FMA>(ws[l], xs[l], acc[q][l]);
                }
            }
            j += LANES;
        }
        for q in 0..4 {
            // Constant lane indices (a `for l in 0..LANES` the compiler unrolls) keep acc in
            // registers; a variable index spilled it and stalled on store forwarding. Rows of
            // whole lane blocks (8, 784) skip the tail's 8 tests.
            if split < n_in {
                for l in 0..LANES {
                    if split + l < n_in {
                        acc[q][l] = madd::<T, FMA>(r[q][split + l], x[split + l], acc[q][l]);
                    }
                }
            }
            z[i + q] = reduce(acc[q]) + b[i + q];
        }
        i += 4;
    }
    // The remaining rows one at a time (all of them when rows are shorter than a lane block).
    let rest = w[i * n_in..]
        .chunks_exact(n_in)
        .zip(&b[i..])
        .zip(&mut z[i..]);
    for ((row, &bias), zi) in rest {
        let mut acc = [T::ZERO; LANES];
        for (ws, xs) in row[..split]
            .chunks_exact(LANES)
            .zip(x[..split].chunks_exact(LANES))
        {
            for l in 0..LANES {
                acc[l] = madd::<T, FMA>(ws[l], xs[l], acc[l]);
            }
        }
        if split < n_in {
            for l in 0..LANES {
                if split + l < n_in {
                    acc[l] = madd::<T, FMA>(row[split + l], x[split + l], acc[l]);
                }
            }
        }
        *zi = reduce(acc) + bias;
    }
}

/// `gemv_bias` for rows shorter than a lane block (TAIL = n_in < LANES), one row at a time: the same operations in the same order as a tail loop over all LANES lanes that
/// skips the missing ones, but with TAIL a constant the tail unrolls without a test per lane
/// and its bounds are checked once per row. (Networks with narrow layers, 2-8-1, spend most of
/// a step here: 8 tested lanes per row cost more than the row's own multiply-adds.)
#[inline(always)]
fn gemv_bias_rows<T: Real, const FMA: bool, const TAIL: usize>(
    w: &[T],
    x: &[T],
    b: &[T],
    z: &mut [T],
) {
    let n_in = x.len();
    let split = n_in - TAIL;
    let x_tail: &[T; TAIL] = x[split..].try_into().expect("TAIL = n_in % LANES");
    for ((row, &bias), zi) in w.chunks_exact(n_in).zip(b).zip(z) {
        let mut acc = [T::ZERO; LANES];
        for (ws, xs) in row[..split]
            .chunks_exact(LANES)
            .zip(x[..split].chunks_exact(LANES))
        {
            for l in 0..LANES {
                acc[l] = madd::<T, FMA>(ws[l], xs[l], acc[l]);
            }
        }
        let w_tail: &[T; TAIL] = row[split..].try_into().expect("rows of n_in");
        for l in 0..TAIL {
            acc[l] = madd::<T, FMA>(w_tail[l], x_tail[l], acc[l]);
        }
        *zi = reduce(acc) + bias;
    }
}

dispatch!(
    /// `gemv_bias` for rows of LANES values or more.
    gemv_bias_lanes,
    gemv_bias_avx2,
    gemv_bias_impl,
    (w: &[T], x: &[T], b: &[T], z: &mut [T])
);

#[inline(always)]
fn gemv_bias_narrow_impl<T: Real, const FMA: bool>(w: &[T], x: &[T], b: &[T], z: &mut [T]) {
    with_tail!(x.len(), gemv_bias_rows::<T, FMA>(w, x, b, z))
}

dispatch!(
    /// `gemv_bias` for rows shorter than LANES values.
    gemv_bias_narrow,
    gemv_bias_narrow_avx2,
    gemv_bias_narrow_impl,
    (w: &[T], x: &[T], b: &[T], z: &mut [T])
);

/// One sample through a dense layer: z = W x + b, W (out, in) row-major. Rows shorter than a
/// lane block (2-8-1's first layer) take their own copy of the kernel (`gemv_bias_rows`), so
/// that the lane-block kernel of wide layers is compiled as it was without them.
pub fn gemv_bias<T: Real>(w: &[T], x: &[T], b: &[T], z: &mut [T]) {
    if x.len() < LANES {
        gemv_bias_narrow(w, x, b, z)
    } else {
        gemv_bias_lanes(w, x, b, z)
    }
}

/// dx += delta_i * W[i, :] over rows i (the input gradient of one sample).
#[inline(always)]
fn gemv_t_accumulate_impl<T: Real, const FMA: bool>(w: &[T], delta: &[T], dx: &mut [T]) {
    let n_in = dx.len();
    for (row, &d) in w.chunks_exact(n_in).zip(delta) {
        for (o, &wv) in dx.iter_mut().zip(row) {
            *o = madd::<T, FMA>(d, wv, *o);
        }
    }
}

dispatch!(
    /// dx += W^T delta for one sample (dx must be zeroed by the caller for dx = W^T delta).
    gemv_t_accumulate,
    gemv_t_accumulate_avx2,
    gemv_t_accumulate_impl,
    (w: &[T], delta: &[T], dx: &mut [T])
);

/// The article's per-sample SGD step for one layer, fused: with s_i = learning_rate * delta_i,
/// optionally dx += delta_i W[i, :] with the weights *before* the update (erratum 3), then
/// W[i, :] -= s_i x and b_i -= s_i, in one pass over W.
#[inline(always)]
fn sgd_rank1_impl<T: Real, const FMA: bool>(
    w: &mut [T],
    b: &mut [T],
    delta: &[T],
    x: &[T],
    learning_rate: T,
    dx: Option<&mut [T]>,
) {
    let n_in = x.len();
    match dx {
        Some(dx) => {
            for ((row, bi), &d) in w.chunks_exact_mut(n_in).zip(b.iter_mut()).zip(delta) {
                let s = -(learning_rate * d);
                for ((wv, o), &xv) in row.iter_mut().zip(dx.iter_mut()).zip(x) {
                    *o = madd::<T, FMA>(d, *wv, *o);
                    *wv = madd::<T, FMA>(s, xv, *wv);
                }
                *bi += s;
            }
        }
        None => {
            for ((row, bi), &d) in w.chunks_exact_mut(n_in).zip(b.iter_mut()).zip(delta) {
                let s = -(learning_rate * d);
                for (wv, &xv) in row.iter_mut().zip(x) {
                    *wv = madd::<T, FMA>(s, xv, *wv);
                }
                *bi += s;
            }
        }
    }
}

dispatch!(
    /// `sgd_rank1` for rows of LANES values or more.
    sgd_rank1_lanes,
    sgd_rank1_avx2,
    sgd_rank1_impl,
    (w: &mut [T], b: &mut [T], delta: &[T], x: &[T], learning_rate: T, dx: Option<&mut [T]>)
);

/// `sgd_rank1_impl` for rows shorter than a lane block (TAIL = n_in < LANES), the same
/// operations in the same order, with the row length a constant: each row unrolls, and its
/// bounds are checked once (as `gemv_bias_rows`; a loop over 2 values costs more in setup than
/// in arithmetic).
#[inline(always)]
fn sgd_rank1_rows<T: Real, const FMA: bool, const TAIL: usize>(
    w: &mut [T],
    b: &mut [T],
    delta: &[T],
    x: &[T],
    learning_rate: T,
    dx: Option<&mut [T]>,
) {
    let x: &[T; TAIL] = x.try_into().expect("TAIL = n_in");
    let rows = w.chunks_exact_mut(TAIL).zip(b.iter_mut()).zip(delta);
    match dx {
        Some(dx) => {
            let dx: &mut [T; TAIL] = dx.try_into().expect("dx has n_in values");
            for ((row, bi), &d) in rows {
                let row: &mut [T; TAIL] = row.try_into().expect("rows of n_in");
                let s = -(learning_rate * d);
                for l in 0..TAIL {
                    dx[l] = madd::<T, FMA>(d, row[l], dx[l]);
                    row[l] = madd::<T, FMA>(s, x[l], row[l]);
                }
                *bi += s;
            }
        }
        None => {
            for ((row, bi), &d) in rows {
                let row: &mut [T; TAIL] = row.try_into().expect("rows of n_in");
                let s = -(learning_rate * d);
                for l in 0..TAIL {
                    row[l] = madd::<T, FMA>(s, x[l], row[l]);
                }
                *bi += s;
            }
        }
    }
}

#[inline(always)]
fn sgd_rank1_narrow_impl<T: Real, const FMA: bool>(
    w: &mut [T],
    b: &mut [T],
    delta: &[T],
    x: &[T],
    learning_rate: T,
    dx: Option<&mut [T]>,
) {
    with_tail!(
        x.len(),
        sgd_rank1_rows::<T, FMA>(w, b, delta, x, learning_rate, dx)
    )
}

dispatch!(
    /// `sgd_rank1` for rows shorter than LANES values.
    sgd_rank1_narrow,
    sgd_rank1_narrow_avx2,
    sgd_rank1_narrow_impl,
    (w: &mut [T], b: &mut [T], delta: &[T], x: &[T], learning_rate: T, dx: Option<&mut [T]>)
);

/// Fused per-sample SGD update of one layer (see `sgd_rank1_impl`); rows shorter than a lane
/// block take their own copy of the kernel (`sgd_rank1_rows`), as in `gemv_bias`.
pub fn sgd_rank1<T: Real>(
    w: &mut [T],
    b: &mut [T],
    delta: &[T],
    x: &[T],
    learning_rate: T,
    dx: Option<&mut [T]>,
) {
    if x.len() < LANES {
        sgd_rank1_narrow(w, b, delta, x, learning_rate, dx)
    } else {
        sgd_rank1_lanes(w, b, delta, x, learning_rate, dx)
    }
}

/// The first layer's per-sample SGD step, deferred and fused with the next sample's forward
/// pass. For every row i, with s_i = -(learning_rate * delta_i):
///
/// ```text
/// W[i, :] += s_i x_prev,  b_i += s_i     (the update `sgd_rank1` makes, one step late)
/// z_i = W[i, :] . x + b_i                 (the forward pass of `gemv_bias`, new weights)
/// ```
/// Same roundings and summation order as `sgd_rank1` followed by `gemv_bias`, so the result is
/// the same; but W is read and written once per sample instead of read, read and written. A
/// block of rows whose s are all zero (ReLU units that were off) is not rewritten: w + 0 x is w
/// (up to the sign of a zero weight).
// long-function: the hot per-sample kernel; its row blocks and its row and lane tails are one
// body, compiled once per (type, FMA) with its accumulators in registers: left whole so that
// splitting it cannot change the hot loop.
#[inline(always)]
fn sgd_rank1_gemv_impl<T: Real, const FMA: bool>(
    w: &mut [T],
    b: &mut [T],
    delta_prev: &[T],
    x_prev: &[T],
    learning_rate: T,
    x: &[T],
    z: &mut [T],
) {
    let n_in = x.len();
    let split = n_in - n_in % LANES;
    let n_out = b.len();
    let step = |d: T| -(learning_rate * d);
    // Blocks of R rows, as in `gemv_bias`: 4 x 8 independent partial sums hide the latency of
    // the multiply-adds (2 rows measured slower, 12 against 36 us in f32).
    const R: usize = 4;
    let mut i = 0;
    // Rows shorter than a lane block go one at a time (below), where acc stays in registers.
    while i + R <= n_out && split > 0 {
        let s: [T; R] = std::array::from_fn(|q| step(delta_prev[i + q]));
        let mut rows = w[i * n_in..(i + R) * n_in].chunks_exact_mut(n_in);
        let r: [&mut [T]; R] = std::array::from_fn(|_| rows.next().expect("R rows"));
        let mut acc = [[T::ZERO; LANES]; R];
        if s.iter().any(|&v| v != T::ZERO) {
            let mut j = 0;
            while j < split {
                let xs = &x[j..j + LANES];
                let ps = &x_prev[j..j + LANES];
                for q in 0..R {
                    let ws = &mut r[q][j..j + LANES];
                    for l in 0..LANES {
                        ws[l] = madd::<T, FMA>(s[q], ps[l], ws[l]);
                        acc[q][l] = madd::<T, FMA>(ws[l], xs[l], acc[q][l]);
                    }
                }
                j += LANES;
            }
        } else {
            let mut j = 0;
            while j < split {
                let xs = &x[j..j + LANES];
                for q in 0..R {
                    let ws = &r[q][j..j + LANES];
                    for l in 0..LANES {
                        acc[q][l] = madd::<T, FMA>(ws[l], xs[l], acc[q][l]);
                    }
                }
                j += LANES;
            }
        }
        for q in 0..R {
            for (l, a) in acc[q].iter_mut().enumerate() {
                let jj = split + l;
                if jj < n_in {
                    r[q][jj] = madd::<T, FMA>(s[q], x_prev[jj], r[q][jj]);
                    *a = madd::<T, FMA>(r[q][jj], x[jj], *a);
                }
            }
            b[i + q] += s[q];
            z[i + q] = reduce(acc[q]) + b[i + q];
        }
        i += R;
    }
    // The remaining rows one at a time (all of them when rows are shorter than a lane block).
    let rows = w[i * n_in..].chunks_exact_mut(n_in);
    for (((row, bi), zi), &d) in rows.zip(&mut b[i..]).zip(&mut z[i..]).zip(&delta_prev[i..]) {
        let s = step(d);
        let mut acc = [T::ZERO; LANES];
        for j in (0..split).step_by(LANES) {
            for (l, a) in acc.iter_mut().enumerate() {
                row[j + l] = madd::<T, FMA>(s, x_prev[j + l], row[j + l]);
                *a = madd::<T, FMA>(row[j + l], x[j + l], *a);
            }
        }
        for (l, a) in acc.iter_mut().enumerate() {
            let jj = split + l;
            if jj < n_in {
                row[jj] = madd::<T, FMA>(s, x_prev[jj], row[jj]);
                *a = madd::<T, FMA>(row[jj], x[jj], *a);
            }
        }
        *bi += s;
        *zi = reduce(acc) + *bi;
    }
}

/// `sgd_rank1_gemv` for rows shorter than a lane block (TAIL = n_in < LANES), one row at a
/// time (as `gemv_bias_rows`: the same operations, no test per lane).
#[inline(always)]
fn sgd_rank1_gemv_rows<T: Real, const FMA: bool, const TAIL: usize>(
    w: &mut [T],
    b: &mut [T],
    delta_prev: &[T],
    x_prev: &[T],
    learning_rate: T,
    x: &[T],
    z: &mut [T],
) {
    let n_in = x.len();
    let split = n_in - TAIL;
    let x_tail: &[T; TAIL] = x[split..].try_into().expect("TAIL = n_in % LANES");
    let p_tail: &[T; TAIL] = x_prev[split..].try_into().expect("x_prev has n_in values");
    let rows = w.chunks_exact_mut(n_in);
    for (((row, bi), zi), &d) in rows.zip(b).zip(z).zip(delta_prev) {
        let s = -(learning_rate * d);
        let mut acc = [T::ZERO; LANES];
        let (head, tail) = row.split_at_mut(split);
        for ((ws, ps), xs) in head
            .chunks_exact_mut(LANES)
            .zip(x_prev[..split].chunks_exact(LANES))
            .zip(x[..split].chunks_exact(LANES))
        {
            for l in 0..LANES {
                ws[l] = madd::<T, FMA>(s, ps[l], ws[l]);
                acc[l] = madd::<T, FMA>(ws[l], xs[l], acc[l]);
            }
        }
        let w_tail: &mut [T; TAIL] = tail.try_into().expect("rows of n_in");
        for l in 0..TAIL {
            w_tail[l] = madd::<T, FMA>(s, p_tail[l], w_tail[l]);
            acc[l] = madd::<T, FMA>(w_tail[l], x_tail[l], acc[l]);
        }
        *bi += s;
        *zi = reduce(acc) + *bi;
    }
}

#[inline(always)]
fn sgd_rank1_gemv_narrow_impl<T: Real, const FMA: bool>(
    w: &mut [T],
    b: &mut [T],
    delta_prev: &[T],
    x_prev: &[T],
    learning_rate: T,
    x: &[T],
    z: &mut [T],
) {
    let d = delta_prev;
    with_tail!(
        x.len(),
        sgd_rank1_gemv_rows::<T, FMA>(w, b, d, x_prev, learning_rate, x, z)
    )
}

#[cfg(feature = "internals")]
use per_cpu::sgd_rank1_gemv as sgd_rank1_gemv_any;

dispatch!(
    /// The previous sample's first-layer SGD update fused with this sample's forward pass (see
    /// `sgd_rank1_gemv_impl`; rows shorter than a lane block take `sgd_rank1_gemv_rows`),
    /// dispatched on its own: for examples/per_sample.rs, which times it. `train` takes
    /// `per_cpu::sgd_rank1_gemv` inside its loop, which is dispatched once per call.
    #[cfg(feature = "internals")]
    sgd_rank1_gemv,
    sgd_rank1_gemv_avx2,
    sgd_rank1_gemv_any,
    (w: &mut [T], b: &mut [T], delta_prev: &[T], x_prev: &[T], learning_rate: T, x: &[T], z: &mut [T])
);

/// acc += x, elementwise (the threads' shares of a gradient, added in order).
#[inline(always)]
fn add_assign_impl<T: Real, const FMA: bool>(acc: &mut [T], x: &[T]) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += v;
    }
}

dispatch!(add_assign, add_assign_avx2, add_assign_impl, (acc: &mut [T], x: &[T]));

/// dW = delta^T x for one sample: the outer product.
#[inline(always)]
fn outer_impl<T: Real, const FMA: bool>(delta: &[T], x: &[T], dw: &mut [T]) {
    for (row, &d) in dw.chunks_exact_mut(x.len()).zip(delta) {
        for (o, &xv) in row.iter_mut().zip(x) {
            *o = d * xv;
        }
    }
}

dispatch!(outer, outer_avx2, outer_impl, (delta: &[T], x: &[T], dw: &mut [T]));

/// SGD without momentum: g += weight_decay * p (when non-zero); p -= lr * g. As for Adam, no
/// multiply-add is fused, so the AVX2 build gives the scalar formula's bits.
#[inline(always)]
fn sgd_update_impl<T: Real, const FMA: bool>(p: &mut [T], g: &[T], lr: T, weight_decay: T) {
    if weight_decay != T::ZERO {
        for (p, &g) in p.iter_mut().zip(g) {
            let g_k = g + weight_decay * *p;
            *p -= lr * g_k;
        }
    } else {
        for (p, &g) in p.iter_mut().zip(g) {
            *p -= lr * g;
        }
    }
}

dispatch!(
    /// One plain SGD step over a tensor (see `sgd_update_impl`).
    sgd_update,
    sgd_update_avx2,
    sgd_update_impl,
    (p: &mut [T], g: &[T], lr: T, weight_decay: T)
);

/// The per-step constants of Adam / AdamW (docs/maths.md), computed once per tensor.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep<T> {
    pub beta1: T,
    pub one_minus_beta1: T,
    pub beta2: T,
    pub one_minus_beta2: T,
    pub step_size: T,            // lr / bc1
    pub inv_sqrt_correction2: T, // 1 / sqrt(bc2)
    pub eps: T,
    pub weight_decay: T,
    pub decay: T,        // 1 - lr * weight_decay (AdamW)
    pub decoupled: bool, // AdamW
}

/// One element of Adam's update (docs/maths.md); `vhat_of` turns v into v-hat (AMSGrad keeps a
/// running max first). No multiply-add is fused here (Rust never contracts a * b + c by
/// itself), so the AVX2 build computes exactly the scalar formula, 4 or 8 elements at a time.
#[inline(always)]
fn adam_element<T: Real>(
    c: &AdamStep<T>,
    coupled: bool,
    p: &mut T,
    g: T,
    m: &mut T,
    v: &mut T,
    vhat_of: impl FnOnce(T) -> T,
) {
    let mut g_k = g;
    if c.decoupled {
        *p *= c.decay;
    } else if coupled {
        g_k += c.weight_decay * *p;
    }
    *m = c.beta1 * *m + c.one_minus_beta1 * g_k;
    *v = c.beta2 * *v + c.one_minus_beta2 * (g_k * g_k);
    let denom = vhat_of(*v).sqrt() * c.inv_sqrt_correction2 + c.eps;
    *p -= (c.step_size * *m) / denom;
}

/// Adam / AdamW over a tensor; `vmax` (same length) for AMSGrad.
#[inline(always)]
fn adam_update_impl<T: Real, const FMA: bool>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: Option<&mut [T]>,
    c: AdamStep<T>,
) {
    let coupled = !c.decoupled && c.weight_decay != T::ZERO;
    let pgmv = p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut());
    match vmax {
        None => {
            for (((p, &g), m), v) in pgmv {
                adam_element(&c, coupled, p, g, m, v, |v| v);
            }
        }
        Some(vmax) => {
            assert_eq!(vmax.len(), g.len(), "AMSGrad state length");
            for ((((p, &g), m), v), vm) in pgmv.zip(vmax.iter_mut()) {
                adam_element(&c, coupled, p, g, m, v, |v| {
                    *vm = vm.max(v);
                    *vm
                });
            }
        }
    }
}

dispatch!(
    /// One Adam/AdamW step over a tensor (see `adam_update_impl`).
    adam_update,
    adam_update_avx2,
    adam_update_impl,
    (p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], vmax: Option<&mut [T]>, c: AdamStep<T>)
);

/// How a product's output is cut between threads: into blocks of C's rows or of its columns,
/// each block one single-threaded GEMM call. Every element of C is then computed by one call,
/// so no thread's partial sums need adding up afterwards. The bits stay one thread's only when
/// the gemm crate blocks k the same way for a block as for the whole C, which holds for the
/// shapes asserted below (`split_products_are_one_threads_bits`, and whole epochs in
/// tests/kernel_paths.rs) but not for every shape: it picks its blocking from the call's
/// shape, and for blocks of 64 columns or fewer may pick another (784-128 forward at batch 32
/// or 64 differs in the last bit between 1 and 2 threads). A given count always gives the same
/// bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// Blocks of rows: for dW (out, in), a thread owns whole neurons (rows of W).
    Rows,
    /// Blocks of columns: for z (n, out) = x W^T, a thread computes its neurons' outputs and
    /// reads only their rows of W.
    Cols,
}

/// Blocks are whole multiples of this many rows or columns (a multiple of every micro-kernel's
/// tile), so that cutting C costs no partial tiles beyond the one at C's edge.
const SPLIT_ALIGN: usize = 16;

/// The blocks `parts` threads cut `len` rows or columns into: (start, end) pairs, one per
/// thread that gets any (fewer where `len` holds fewer than `parts` aligned blocks).
fn split_blocks(len: usize, parts: usize) -> Vec<(usize, usize)> {
    // One block per thread: 2 or 4 per thread measured slower on 784-128 (smaller products).
    let parts = parts.min(len.div_ceil(SPLIT_ALIGN)).max(1);
    let per = len.div_ceil(parts).div_ceil(SPLIT_ALIGN) * SPLIT_ALIGN;
    (0..parts)
        .map(|i| (i * per, ((i + 1) * per).min(len)))
        .filter(|(start, end)| start < end)
        .collect()
}

/// Whether a layer's products for a batch of n rows (n x n_in x n_out multiply-adds) are cut
/// between `threads` (each thread a block of the layer's neurons).
pub fn splits_product(n: usize, n_in: usize, n_out: usize, threads: Threads) -> bool {
    threads.parts(2 * n * n_in * n_out) > 1
}

/// What runs on a block of C right after its product, on the thread that computed it:
/// `finish(c, rows, columns)`, with c the whole of C (row-major) of which this call owns the
/// block rows.0..rows.1 x columns.0..columns.1.
pub(crate) type Finish<'f, T> = &'f (dyn Fn(Disjoint<T>, (usize, usize), (usize, usize)) + Sync);

/// A `Finish` that does nothing.
pub(crate) fn as_is<T>(_: Disjoint<T>, _: (usize, usize), _: (usize, usize)) {}

/// C (m, n) = A (m, k) B (k, n), or C += s A B with `add: Some(s)` (C read and written once,
/// the scaling and the addition made as each element is written); A and B each given by
/// (row stride, column stride), C row-major. With several threads, C is cut as `split` says.
/// Each block of C is handed to `finish` as soon as its product is done, while it is in the
/// cache of the core that wrote it.
/// Safety: the strides must describe memory inside the slices (checked by the callers below).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into<T: Real>(
    (m, n, k): (usize, usize, usize),
    c: &mut [T],
    add: Option<T>,
    a: &[T],
    (a_rs, a_cs): (isize, isize),
    b: &[T],
    (b_rs, b_cs): (isize, isize),
    threads: Threads,
    split: Split,
    finish: Finish<T>,
) {
    assert!(c.len() >= m * n);
    // gemm computes dst = alpha dst + beta (lhs rhs), reading dst only when asked.
    let (alpha, beta) = match add {
        Some(scale) => (T::ONE, scale),
        None => (T::ZERO, T::ONE),
    };
    // One block of C: rows r0..r1, columns c0..c1.
    let block = |dst: Disjoint<T>, (r0, r1): (usize, usize), (c0, c1): (usize, usize)| {
        gemm::gemm(
            r1 - r0,
            c1 - c0,
            k,
            dst.at(r0 * n + c0),
            1,
            n as isize,
            add.is_some(),
            a.as_ptr().offset(r0 as isize * a_rs),
            a_cs,
            a_rs,
            b.as_ptr().offset(c0 as isize * b_cs),
            b_cs,
            b_rs,
            alpha,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
        finish(dst, (r0, r1), (c0, c1));
    };
    let dst = Disjoint::new(c);
    let parts = threads.parts(2 * m * n * k);
    if parts == 1 {
        // One call on this thread: no blocks to lay out (train's blocks come here 3 times
        // per 32 steps).
        return block(dst, (0, m), (0, n));
    }
    let blocks = split_blocks(if split == Split::Rows { m } else { n }, parts);
    for_each_part(blocks.len(), |i| match split {
        Split::Rows => block(dst, blocks[i], (0, n)),
        Split::Cols => block(dst, (0, m), blocks[i]),
    });
}

/// dst (out, in) = delta (n, out)^T x (n, in), or dst += s delta^T x with `add: Some(s)`: the
/// weight-gradient product, written out or added straight into the weights.
fn weight_product<T: Real>(
    delta: &[T],
    x: &[T],
    n: usize,
    dst: &mut [T],
    add: Option<T>,
    threads: Threads,
) {
    let n_out = delta.len() / n.max(1);
    let n_in = x.len() / n.max(1);
    assert!(delta.len() == n * n_out && x.len() == n * n_in && dst.len() == n_out * n_in);
    // SAFETY: shapes asserted above; delta^T is delta (n, out) read with swapped strides; x
    // row-major (n, in).
    unsafe {
        gemm_into(
            (n_out, n_in, n),
            dst,
            add,
            delta,
            (1, n_out as isize),
            x,
            (n_in as isize, 1),
            threads,
            Split::Rows,
            &as_is,
        )
    };
}

/// acc += every row of m (rows of acc.len()), in row order.
fn add_rows<T: Real>(m: &[T], acc: &mut [T]) {
    for row in m.chunks_exact(acc.len()) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
}

/// db = the column sums of delta (n, db.len()), rows added in order: the bias gradient.
fn bias_grad<T: Real>(delta: &[T], db: &mut [T]) {
    db.fill(T::ZERO);
    add_rows(delta, db);
}

/// The bias half of a plain-SGD step through the weight gradient: db = the column sums of
/// delta, b -= lr db.
fn sgd_bias<T: Real>(delta: &[T], b: &mut [T], db: &mut [T], lr: T) {
    bias_grad(delta, db);
    sgd_update(b, db, lr, T::ZERO);
}

/// z (n, out) = x (n, in) W^T + b and, with `activate: Some((f, a))`, a (n, out) = f(z).
///
/// Where the product is a GEMM, the bias and f are applied to each block of z by the thread
/// that computed it, right after its product (one pass over the block while it is in that
/// core's cache; with 2 threads each takes its own neurons' columns). The arithmetic is that
/// of the product, then `+ b`, then f, in that order, so the bits do not depend on the split.
/// Softmax needs whole rows: it runs after all blocks.
pub fn linear_forward<T: Real>(
    x: &[T],
    n: usize,
    w: &[T],
    b: &[T],
    z: &mut [T],
    activate: Option<(Activation, &mut [T])>,
    threads: Threads,
) {
    let (n_out, n_in) = (b.len(), w.len() / b.len().max(1));
    assert!(x.len() == n * n_in && z.len() == n * n_out && w.len() == n_out * n_in);
    if let Some((_, a)) = &activate {
        assert_eq!(a.len(), z.len(), "a has z's shape");
    }
    if !forward_is_gemm(n, n_in, n_out) {
        for (xk, zk) in x.chunks_exact(n_in).zip(z.chunks_exact_mut(n_out)) {
            gemv_bias(w, xk, b, zk);
        }
        if let Some((f, a)) = activate {
            f.apply(z, a, n_out);
        }
        return;
    }
    // W^T (in, out) is W (out, in) read with swapped strides.
    forward_product(x, n, (w, (1, n_in as isize)), b, z, activate, threads);
}

/// Whether `linear_forward` computes z with a GEMM for these shapes (else a loop of gemv).
pub fn forward_is_gemm(n: usize, n_in: usize, n_out: usize) -> bool {
    n > 1 && n * n_in * n_out > SMALL
}

/// `linear_forward` from the layer's weights stored transposed, `wt` (in, out) row-major =
/// W^T (W column-major), for shapes where it is a GEMM (`forward_is_gemm`). The product reads
/// W^T in place where `linear_forward` has the GEMM copy W into its packed layout first (the
/// gemm crate packs an operand whose rows are not contiguous): for 64 x 784 x 128 float32,
/// 141 instead of 161 us; float64 gains nothing (295 vs 294 us). Same operations in the same
/// order, so the same bits (`transposed_weights_give_the_same_bits`).
pub fn linear_forward_transposed<T: Real>(
    x: &[T],
    n: usize,
    wt: &[T],
    b: &[T],
    z: &mut [T],
    activate: Option<(Activation, &mut [T])>,
    threads: Threads,
) {
    let (n_out, n_in) = (b.len(), wt.len() / b.len().max(1));
    assert!(x.len() == n * n_in && z.len() == n * n_out && wt.len() == n_out * n_in);
    assert!(forward_is_gemm(n, n_in, n_out), "a GEMM-sized product");
    if let Some((_, a)) = &activate {
        assert_eq!(a.len(), z.len(), "a has z's shape");
    }
    forward_product(x, n, (wt, (n_out as isize, 1)), b, z, activate, threads);
}

/// The GEMM of `linear_forward`, with W^T (in, out) given as a slice and its (row stride,
/// column stride); the bias and f applied to each block of z as it is done.
fn forward_product<T: Real>(
    x: &[T],
    n: usize,
    (wt, wt_strides): (&[T], (isize, isize)),
    b: &[T],
    z: &mut [T],
    mut activate: Option<(Activation, &mut [T])>,
    threads: Threads,
) {
    let (n_out, n_in) = (b.len(), wt.len() / b.len().max(1));
    let finish = bias_then_elementwise(b, &mut activate);
    // SAFETY: shapes asserted by the callers; x row-major (n, in); the strides of W^T are
    // those of W (out, in) read transposed, or of W^T stored row-major.
    unsafe {
        gemm_into(
            (n, n_out, n_in),
            z,
            None,
            x,
            (n_in as isize, 1),
            wt,
            wt_strides,
            threads,
            Split::Cols,
            &finish,
        )
    };
    if let Some((Activation::Softmax, a)) = activate {
        Activation::Softmax.apply(z, a, n_out);
    }
}

/// The `Finish` of a layer's forward product z = x W^T: z += b on the block, then a = f(z)
/// where f is element by element (softmax needs whole rows: the caller applies it after).
fn bias_then_elementwise<'a, T: Real>(
    b: &'a [T],
    activate: &mut Option<(Activation, &mut [T])>,
) -> impl Fn(Disjoint<T>, (usize, usize), (usize, usize)) + Sync + 'a {
    let n_out = b.len();
    let elementwise = activate
        .as_mut()
        .filter(|(f, _)| *f != Activation::Softmax)
        .map(|(f, a)| (*f, Disjoint::new(a)));
    move |zd: Disjoint<T>, (r0, r1): (usize, usize), (c0, c1): (usize, usize)| {
        for r in r0..r1 {
            let at = r * n_out + c0;
            // SAFETY: row r's columns c0..c1 of z and a are this block's, written by this part
            // only; the caller's borrows of z and a outlive the product.
            let zr = unsafe { std::slice::from_raw_parts_mut(zd.at(at), c1 - c0) };
            for (zi, &bi) in zr.iter_mut().zip(&b[c0..c1]) {
                *zi += bi;
            }
            if let Some((f, ad)) = elementwise {
                let ar = unsafe { std::slice::from_raw_parts_mut(ad.at(at), c1 - c0) };
                f.apply(zr, ar, c1 - c0);
            }
        }
    }
}

/// dW (out, in) = delta (n, out)^T x (n, in);  db (out,) = column sums of delta.
pub fn linear_weight_grad<T: Real>(
    delta: &[T],
    x: &[T],
    n: usize,
    dw: &mut [T],
    db: &mut [T],
    threads: Threads,
) {
    let (n_out, n_in) = (db.len(), dw.len() / db.len().max(1));
    assert!(delta.len() == n * n_out && x.len() == n * n_in && dw.len() == n_out * n_in);
    bias_grad(delta, db);
    if weight_grad_is_gemm(n, n_in, n_out) {
        return weight_product(delta, x, n, dw, None, threads);
    }
    if n == 1 {
        return outer(delta, x, dw);
    }
    dw.fill(T::ZERO);
    for (dk, xk) in delta.chunks_exact(n_out).zip(x.chunks_exact(n_in)) {
        for (row, &d) in dw.chunks_exact_mut(n_in).zip(dk) {
            for (o, &xv) in row.iter_mut().zip(xk) {
                *o += d * xv;
            }
        }
    }
}

/// Whether `linear_weight_grad` computes dW with a GEMM for these shapes (else loops).
pub fn weight_grad_is_gemm(n: usize, n_in: usize, n_out: usize) -> bool {
    n > 1 && n * n_in * n_out > SMALL
}

/// Plain SGD on one layer through its weight gradient: db = column sums of delta (as
/// `linear_weight_grad`), b -= lr db (as `sgd_update`), and W += (-lr) delta^T x, the
/// multiplication by -lr and the addition to W made by the GEMM as it writes each element,
/// instead of writing dW and reading it back. Rounds differently from `sgd_update` on a
/// materialised dW (-lr * sum then add, against lr * round(sum) then subtract).
#[allow(clippy::too_many_arguments)]
pub fn sgd_through_weight_grad<T: Real>(
    delta: &[T],
    x: &[T],
    n: usize,
    w: &mut [T],
    b: &mut [T],
    db: &mut [T],
    lr: T,
    threads: Threads,
) {
    assert!(db.len() == b.len() && delta.len() == n * b.len());
    sgd_bias(delta, b, db, lr);
    weight_product(delta, x, n, w, Some(-lr), threads);
}

/// `sgd_through_weight_grad` on the layer's weights stored transposed, `wt` (in, out) = W^T:
/// W^T += (-lr) x^T delta, each thread a block of W^T's columns (whole neurons, as there). For
/// the gemm crate this is the same product as `sgd_through_weight_grad`'s: it turns a row-major
/// destination around, and W^T row-major turned around is W row-major. So the same bits
/// (`transposed_weights_give_the_same_bits`); measured 64 x 784 x 128: float32 146 vs 147 us,
/// float64 301 vs 296 us.
#[allow(clippy::too_many_arguments)]
pub fn sgd_through_weight_grad_transposed<T: Real>(
    delta: &[T],
    x: &[T],
    n: usize,
    wt: &mut [T],
    b: &mut [T],
    db: &mut [T],
    lr: T,
    threads: Threads,
) {
    let (n_out, n_in) = (b.len(), wt.len() / b.len().max(1));
    assert!(db.len() == n_out && delta.len() == n * n_out && x.len() == n * n_in);
    assert_eq!(wt.len(), n_in * n_out);
    sgd_bias(delta, b, db, lr);
    // SAFETY: shapes asserted above; x^T is x (n, in) read with swapped strides, delta (n, out)
    // row-major.
    unsafe {
        gemm_into(
            (n_in, n_out, n),
            wt,
            Some(-lr),
            x,
            (1, n_in as isize),
            delta,
            (n_out as isize, 1),
            threads,
            Split::Cols,
            &as_is,
        )
    };
}

/// `linear_forward` from the layer's weights kept in panels of 8 (float64) or 16 neurons, `p`
/// (panels.rs), for an epoch's first layer: z = x W^T by the panel product, then
/// `+ b` and f, as `forward_product` applies them. With threads, each computes the columns of
/// a run of panels; the bits do not depend on the count.
#[allow(clippy::too_many_arguments)]
pub fn linear_forward_panels<T: Real>(
    x: &[T],
    n: usize,
    n_in: usize,
    p: &[T],
    b: &[T],
    z: &mut [T],
    mut activate: Option<(Activation, &mut [T])>,
    threads: Threads,
) {
    let n_out = b.len();
    assert!(x.len() == n * n_in && z.len() == n * n_out);
    if let Some((_, a)) = &activate {
        assert_eq!(a.len(), z.len(), "a has z's shape");
    }
    let parts = threads.parts(2 * n * n_in * n_out);
    let finish = bias_then_elementwise(b, &mut activate);
    panels::forward_finishing(x, (n, n_in), p, n_out, z, parts, &finish);
    if let Some((Activation::Softmax, a)) = activate {
        Activation::Softmax.apply(z, a, n_out);
    }
}

/// `sgd_through_weight_grad` on the layer's weights kept in panels, `p`
/// (panels.rs): db = column sums of delta, b -= lr db, and W += (-lr) delta^T x made by the
/// panel product as it writes each weight (one fused multiply-add of -lr and the sum). With
/// threads, each takes a run of inputs (`panels::add_weight_product`).
#[allow(clippy::too_many_arguments)]
pub fn sgd_through_weight_grad_panels<T: Real>(
    delta: &[T],
    x: &[T],
    n: usize,
    p: &mut [T],
    b: &mut [T],
    db: &mut [T],
    lr: T,
    threads: Threads,
) {
    let n_out = b.len();
    let n_in = x.len() / n.max(1);
    assert!(db.len() == n_out && delta.len() == n * n_out && x.len() == n * n_in);
    sgd_bias(delta, b, db, lr);
    let parts = threads.parts(2 * n * n_in * n_out);
    panels::add_weight_product((x, (n, n_in)), delta, n_out, p, -lr, parts);
}

/// `linear_weight_grad` into panels (panels.rs) for a layer whose weights are kept in them:
/// G = delta^T x with G as long as W's panels, db = column sums of delta. With threads, each
/// takes a run of inputs, as in the SGD update.
pub fn linear_weight_grad_panels<T: Real>(
    delta: &[T],
    x: &[T],
    n: usize,
    g: &mut [T],
    db: &mut [T],
    threads: Threads,
) {
    let n_out = db.len();
    let n_in = x.len() / n.max(1);
    assert!(delta.len() == n * n_out && x.len() == n * n_in);
    bias_grad(delta, db);
    let parts = threads.parts(2 * n * n_in * n_out);
    panels::weight_product((x, (n, n_in)), delta, n_out, g, parts);
}

/// dx (n, in) = delta (n, out) W (out, in).
pub fn linear_input_grad<T: Real>(delta: &[T], n: usize, w: &[T], dx: &mut [T], threads: Threads) {
    let n_in = dx.len() / n.max(1);
    let n_out = delta.len() / n.max(1);
    assert!(w.len() == n_out * n_in && dx.len() == n * n_in);
    if n == 1 || n * n_in * n_out <= SMALL {
        dx.fill(T::ZERO);
        for (dk, dxk) in delta.chunks_exact(n_out).zip(dx.chunks_exact_mut(n_in)) {
            gemv_t_accumulate(w, dk, dxk);
        }
        return;
    }
    // SAFETY: shapes asserted above; both operands row-major.
    unsafe {
        gemm_into(
            (n, n_in, n_out),
            dx,
            None,
            delta,
            (n_out as isize, 1),
            w,
            (n_in as isize, 1),
            threads,
            Split::Rows,
            &as_is,
        )
    };
}

/// G (n, n) = x x^T for x (n, k) row-major: the dot products of every pair of rows.
pub fn gram<T: Real>(x: &[T], n: usize, g: &mut [T], threads: Threads) {
    let k = x.len() / n.max(1);
    assert!(x.len() == n * k && g.len() == n * n);
    // SAFETY: shapes asserted above; x^T is x read with swapped strides.
    unsafe {
        gemm_into(
            (n, n, k),
            g,
            None,
            x,
            (k as isize, 1),
            x,
            (1, k as isize),
            threads,
            Split::Rows,
            &as_is,
        )
    };
}

/// W (out, in) += s (n, out)^T x (n, in) and b += the rows of s, added in row order: the
/// updates of n samples' SGD steps (s_k = -(lr * delta_k)) applied at once.
pub fn add_rank_n_update<T: Real>(
    s: &[T],
    x: &[T],
    n: usize,
    w: &mut [T],
    b: &mut [T],
    threads: Threads,
) {
    assert!(s.len() == n * b.len());
    add_rows(s, b);
    weight_product(s, x, n, w, Some(T::ONE), threads);
}

#[inline(always)]
fn axpy_impl<T: Real, const FMA: bool>(y: &mut [T], a: T, x: &[T]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv = madd::<T, FMA>(a, xv, *yv);
    }
}

/// The one-sample kernels with the kernel set chosen by the caller, for a whole per-sample
/// step (or loop of steps) dispatched once per call instead of once per kernel: every function
/// here is `#[inline(always)]`, so that it compiles into its caller, and the caller is itself
/// `#[inline(always)]` up to one `#[target_feature(enable = "avx2,fma")]` entry taken when
/// `avx2_fma()` (with `FMA = true`), or a plain entry (`FMA = false`) otherwise. The
/// arithmetic is that of the dispatched function of the same name above, on the same CPU bit
/// for bit: `FMA` alone decides the roundings (a `FMA = true` kernel compiled without the
/// feature would still round once per multiply-add, through a slower libm call). What the
/// single entry saves is the test and the call that every dispatched kernel costs, and the
/// argument checks that a kernel which cannot be inlined makes again: on 2-8-1 they were about
/// a tenth of a step.
pub(crate) mod per_cpu {
    use super::*;

    /// `gemv_bias`: z = W x + b for one sample.
    #[inline(always)]
    pub(crate) fn gemv_bias<T: Real, const FMA: bool>(w: &[T], x: &[T], b: &[T], z: &mut [T]) {
        if x.len() < LANES {
            gemv_bias_narrow_impl::<T, FMA>(w, x, b, z)
        } else {
            gemv_bias_impl::<T, FMA>(w, x, b, z)
        }
    }

    /// `gemv_t_accumulate`: dx += W^T delta for one sample.
    #[inline(always)]
    pub(crate) fn gemv_t_accumulate<T: Real, const FMA: bool>(w: &[T], delta: &[T], dx: &mut [T]) {
        gemv_t_accumulate_impl::<T, FMA>(w, delta, dx)
    }

    /// `sgd_rank1`: one sample's fused SGD step of a layer, with dx when asked.
    #[inline(always)]
    pub(crate) fn sgd_rank1<T: Real, const FMA: bool>(
        w: &mut [T],
        b: &mut [T],
        delta: &[T],
        x: &[T],
        learning_rate: T,
        dx: Option<&mut [T]>,
    ) {
        if x.len() < LANES {
            sgd_rank1_narrow_impl::<T, FMA>(w, b, delta, x, learning_rate, dx)
        } else {
            sgd_rank1_impl::<T, FMA>(w, b, delta, x, learning_rate, dx)
        }
    }

    /// `sgd_rank1_gemv`: the previous sample's first-layer step fused with this sample's
    /// forward pass.
    #[inline(always)]
    pub(crate) fn sgd_rank1_gemv<T: Real, const FMA: bool>(
        w: &mut [T],
        b: &mut [T],
        delta_prev: &[T],
        x_prev: &[T],
        learning_rate: T,
        x: &[T],
        z: &mut [T],
    ) {
        let d = delta_prev;
        if x.len() < LANES {
            sgd_rank1_gemv_narrow_impl::<T, FMA>(w, b, d, x_prev, learning_rate, x, z)
        } else {
            sgd_rank1_gemv_impl::<T, FMA>(w, b, d, x_prev, learning_rate, x, z)
        }
    }

    /// `axpy`: y += a x.
    #[inline(always)]
    pub(crate) fn axpy<T: Real, const FMA: bool>(y: &mut [T], a: T, x: &[T]) {
        axpy_impl::<T, FMA>(y, a, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn random(n: usize, rng: &mut SplitMix64) -> Vec<f64> {
        (0..n).map(|_| 2.0 * rng.uniform() - 1.0).collect()
    }

    /// A batch x (n, n_in) and a layer's W (n_out, n_in) and b (n_out,), uniform in (-1, 1).
    fn random_layer(
        (n, n_in, n_out): (usize, usize, usize),
        rng: &mut SplitMix64,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let x = random(n * n_in, rng);
        let w = random(n_out * n_in, rng);
        (x, w, random(n_out, rng))
    }

    fn same_bits(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits())
    }

    /// Plain triple loops: what every kernel must agree with.
    fn naive_forward(x: &[f64], n: usize, w: &[f64], b: &[f64]) -> Vec<f64> {
        let (n_out, n_in) = (b.len(), w.len() / b.len());
        let mut z = vec![0.0; n * n_out];
        for k in 0..n {
            for i in 0..n_out {
                let mut s = 0.0;
                for j in 0..n_in {
                    s += w[i * n_in + j] * x[k * n_in + j];
                }
                z[k * n_out + i] = s + b[i];
            }
        }
        z
    }

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn kernels_match_naive_loops_on_every_path() {
        let mut rng = SplitMix64::new(7);
        // Shapes that hit the gemv (n = 1), small-loop and gemm paths, with odd tails.
        for &(n, n_in, n_out) in &[
            (1, 3, 2),
            (1, 17, 9),
            (1, 784, 13),
            (3, 5, 7),
            (64, 33, 19),
            (40, 100, 50),
        ] {
            let (x, w, b) = random_layer((n, n_in, n_out), &mut rng);
            let mut z = vec![0.0; n * n_out];
            linear_forward(&x, n, &w, &b, &mut z, None, Threads(1));
            close(&z, &naive_forward(&x, n, &w, &b));
            let mut z2 = vec![0.0; n * n_out];
            linear_forward(&x, n, &w, &b, &mut z2, None, Threads(2));
            assert_eq!(z, z2, "thread count must not change the result");

            let delta = random(n * n_out, &mut rng);
            let (mut dw, mut db) = (vec![0.0; n_out * n_in], vec![0.0; n_out]);
            linear_weight_grad(&delta, &x, n, &mut dw, &mut db, Threads(1));
            let (mut dw_ref, mut db_ref) = (vec![0.0; n_out * n_in], vec![0.0; n_out]);
            for k in 0..n {
                for i in 0..n_out {
                    db_ref[i] += delta[k * n_out + i];
                    for j in 0..n_in {
                        dw_ref[i * n_in + j] += delta[k * n_out + i] * x[k * n_in + j];
                    }
                }
            }
            close(&dw, &dw_ref);
            close(&db, &db_ref);

            let mut dx = vec![0.0; n * n_in];
            linear_input_grad(&delta, n, &w, &mut dx, Threads(1));
            let mut dx_ref = vec![0.0; n * n_in];
            for k in 0..n {
                for i in 0..n_out {
                    for j in 0..n_in {
                        dx_ref[k * n_in + j] += delta[k * n_out + i] * w[i * n_in + j];
                    }
                }
            }
            close(&dx, &dx_ref);
        }
    }

    /// Above the threshold, threads cut each product's output into blocks of rows (dW, dx)
    /// or columns (z) and each block is its own GEMM call: every element is still summed by
    /// one call over the same k, so 2 or 3 threads give one thread's bits. The shapes have
    /// edges that are not multiples of `SPLIT_ALIGN`, and block counts that leave a short one.
    #[test]
    fn split_products_are_one_threads_bits() {
        let mut rng = SplitMix64::new(19);
        for &(n, n_in, n_out) in &[(256, 300, 100), (77, 784, 130), (300, 129, 45)] {
            assert!(
                splits_product(n, n_in, n_out, Threads(2)),
                "{n}x{n_in}x{n_out}"
            );
            let (x, w, b) = random_layer((n, n_in, n_out), &mut rng);
            let delta = random(n * n_out, &mut rng);
            let run = |threads: Threads| {
                let mut z = vec![0.0; n * n_out];
                linear_forward(&x, n, &w, &b, &mut z, None, threads);
                let (mut dw, mut db) = (vec![0.0; n_out * n_in], vec![0.0; n_out]);
                linear_weight_grad(&delta, &x, n, &mut dw, &mut db, threads);
                let mut dx = vec![0.0; n * n_in];
                linear_input_grad(&delta, n, &w, &mut dx, threads);
                let (mut w_sgd, mut b_sgd, mut db_sgd) = (w.clone(), b.clone(), vec![0.0; n_out]);
                sgd_through_weight_grad(
                    &delta,
                    &x,
                    n,
                    &mut w_sgd,
                    &mut b_sgd,
                    &mut db_sgd,
                    0.1,
                    threads,
                );
                [z, dw, db, dx, w_sgd, b_sgd]
            };
            let one = run(Threads(1));
            close(&one[0], &naive_forward(&x, n, &w, &b));
            for k in [2, 3] {
                let other = run(Threads(k));
                for (i, (a, e)) in other.iter().zip(&one).enumerate() {
                    assert!(
                        same_bits(a, e),
                        "{n}x{n_in}x{n_out}, {k} threads: product {i} differs"
                    );
                }
            }
        }
    }

    #[test]
    fn transposed_weights_give_the_same_bits() {
        // The forward product and the fused SGD update from W^T stored row-major give the
        // bits of the same calls on W, on 1-3 threads, for batch sizes whose sums over the
        // batch (the SGD update's k) fit in one of the GEMM's depth blocks and for larger ones.
        let mut rng = SplitMix64::new(23);
        for &(n, n_in, n_out) in &[
            (64, 784, 128),
            (256, 784, 128),
            (1000, 300, 50),
            (33, 129, 45),
        ] {
            let (x, w, b) = random_layer((n, n_in, n_out), &mut rng);
            let delta = random(n * n_out, &mut rng);
            let transpose = |w: &[f64]| {
                let mut t = vec![0.0; w.len()];
                for i in 0..n_out {
                    for j in 0..n_in {
                        t[j * n_out + i] = w[i * n_in + j];
                    }
                }
                t
            };
            let wt = transpose(&w);
            for threads in [1, 2, 3].map(Threads) {
                let (mut z, mut a) = (vec![0.0; n * n_out], vec![0.0; n * n_out]);
                let act = Some((Activation::Relu, &mut a[..]));
                linear_forward(&x, n, &w, &b, &mut z, act, threads);
                let (mut zt, mut at) = (vec![0.0; n * n_out], vec![0.0; n * n_out]);
                let act = Some((Activation::Relu, &mut at[..]));
                linear_forward_transposed(&x, n, &wt, &b, &mut zt, act, threads);
                assert!(
                    same_bits(&z, &zt) && same_bits(&a, &at),
                    "forward {n}x{n_in}x{n_out}"
                );
                let (mut w1, mut b1, mut db1) = (w.clone(), b.clone(), vec![0.0; n_out]);
                sgd_through_weight_grad(&delta, &x, n, &mut w1, &mut b1, &mut db1, 0.1, threads);
                let (mut w2, mut b2, mut db2) = (wt.clone(), b.clone(), vec![0.0; n_out]);
                sgd_through_weight_grad_transposed(
                    &delta, &x, n, &mut w2, &mut b2, &mut db2, 0.1, threads,
                );
                assert!(
                    same_bits(&transpose(&w1), &w2) && same_bits(&b1, &b2) && same_bits(&db1, &db2),
                    "SGD update {n}x{n_in}x{n_out}, {threads:?}"
                );
            }
        }
    }

    /// The bias and the activation applied block by block inside the forward product
    /// (`linear_forward` with `Some`) give the bits of the product, then `+ b`, then
    /// `Activation::apply` on the whole of z: for every activation, on 1-3 threads, on shapes
    /// that run as a split GEMM, an unsplit one and the small loop.
    #[test]
    fn forward_with_activation_is_product_then_bias_then_f() {
        let mut rng = SplitMix64::new(23);
        for &(n, n_in, n_out) in &[(256, 300, 100), (77, 784, 130), (16, 40, 30), (1, 50, 7)] {
            let (x, w, b) = random_layer((n, n_in, n_out), &mut rng);
            let mut z_ref = vec![0.0; n * n_out];
            linear_forward(&x, n, &w, &b, &mut z_ref, None, Threads(1));
            close(&z_ref, &naive_forward(&x, n, &w, &b));
            for act in Activation::ALL {
                let mut a_ref = vec![0.0; n * n_out];
                act.apply(&z_ref, &mut a_ref, n_out);
                for k in 1..=3 {
                    let (mut z, mut a) = (vec![f64::NAN; n * n_out], vec![f64::NAN; n * n_out]);
                    linear_forward(&x, n, &w, &b, &mut z, Some((act, &mut a)), Threads(k));
                    let case = format!("{n}x{n_in}x{n_out} {act:?} {k} threads");
                    assert!(same_bits(&z, &z_ref), "{case}: z");
                    assert!(same_bits(&a, &a_ref), "{case}: a");
                }
            }
        }
    }

    #[test]
    fn split_blocks_cover_the_output_once() {
        for (len, threads) in [(128, 2), (130, 2), (10, 4), (100, 3), (16, 2), (1000, 7)] {
            let blocks = split_blocks(len, threads);
            assert!(
                !blocks.is_empty() && blocks.len() <= threads,
                "{len}/{threads}"
            );
            assert_eq!(blocks[0].0, 0);
            assert_eq!(blocks.last().unwrap().1, len);
            for pair in blocks.windows(2) {
                assert_eq!(pair[0].1, pair[1].0, "{len}/{threads}: {blocks:?}");
                assert_eq!(pair[0].1 % SPLIT_ALIGN, 0, "{len}/{threads}: {blocks:?}");
            }
        }
        assert_eq!(
            Threads(2).parts(1 << 20),
            1,
            "a small product stays on one thread"
        );
        assert_eq!(Threads(2).parts((1 << 20) + 1), 2);
    }

    #[test]
    fn fused_sgd_uses_the_weights_before_the_update() {
        let mut rng = SplitMix64::new(3);
        let (n_in, n_out) = (11, 5);
        let (w0, b0) = (random(n_out * n_in, &mut rng), random(n_out, &mut rng));
        let (delta, x) = (random(n_out, &mut rng), random(n_in, &mut rng));
        let (mut w, mut b, mut dx) = (w0.clone(), b0.clone(), vec![0.0; n_in]);
        sgd_rank1(&mut w, &mut b, &delta, &x, 0.1, Some(&mut dx));
        let mut dx_ref = vec![0.0; n_in];
        linear_input_grad(&delta, 1, &w0, &mut dx_ref, Threads(1));
        close(&dx, &dx_ref);
        for i in 0..n_out {
            assert!((b[i] - (b0[i] - 0.1 * delta[i])).abs() < 1e-15);
            for j in 0..n_in {
                let expected = w0[i * n_in + j] - 0.1 * delta[i] * x[j];
                assert!((w[i * n_in + j] - expected).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn float32_kernels_agree_with_float64() {
        let mut rng = SplitMix64::new(11);
        let (n, n_in, n_out) = (20, 64, 32);
        let (x, w, b) = random_layer((n, n_in, n_out), &mut rng);
        let to32 = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<_>>();
        let mut z32 = vec![0.0f32; n * n_out];
        linear_forward(
            &to32(&x),
            n,
            &to32(&w),
            &to32(&b),
            &mut z32,
            None,
            Threads(1),
        );
        let z64 = naive_forward(&x, n, &w, &b);
        for (a, e) in z32.iter().zip(&z64) {
            assert!((*a as f64 - e).abs() < 1e-5 * (1.0 + e.abs()));
        }
    }

    /// The deferred first-layer update fused into the next forward pass (`sgd_rank1_gemv`) gives the
    /// bits of the update followed by the forward pass (`sgd_rank1` then `gemv_bias`), for shapes
    /// with and without row and lane tails, in f64 and f32, with some rows' steps zero (ReLU units
    /// that were off: their block is not rewritten); with both kernel sets (`per_cpu`, FMA and
    /// baseline, whatever this CPU has).
    #[test]
    fn the_fused_update_and_forward_equal_the_two_passes() {
        fn check<T: Real, const FMA: bool>(rng: &mut SplitMix64, n_in: usize, n_out: usize) {
            let draw = |rng: &mut SplitMix64, n: usize| -> Vec<T> {
                (0..n)
                    .map(|_| T::from_f64(rng.uniform() * 2.0 - 1.0))
                    .collect()
            };
            let w = draw(rng, n_in * n_out);
            let b = draw(rng, n_out);
            let (x_prev, x) = (draw(rng, n_in), draw(rng, n_in));
            let mut delta = draw(rng, n_out);
            // Rows 0..4 all off (a block that skips its update), then every third row off.
            for (i, d) in delta.iter_mut().enumerate() {
                if i < 4 || i % 3 == 0 {
                    *d = T::ZERO;
                }
            }
            let lr = T::from_f64(0.3);
            let (mut w1, mut b1, mut z1) = (w.clone(), b.clone(), vec![T::ZERO; n_out]);
            per_cpu::sgd_rank1::<T, FMA>(&mut w1, &mut b1, &delta, &x_prev, lr, None);
            per_cpu::gemv_bias::<T, FMA>(&w1, &x, &b1, &mut z1);
            let (mut w2, mut b2, mut z2) = (w, b, vec![T::ZERO; n_out]);
            per_cpu::sgd_rank1_gemv::<T, FMA>(&mut w2, &mut b2, &delta, &x_prev, lr, &x, &mut z2);
            let f = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
            let case = format!("{n_out}x{n_in}, FMA {FMA}");
            assert_eq!(f(&w1), f(&w2), "weights, {case}");
            assert_eq!(f(&b1), f(&b2), "biases, {case}");
            assert_eq!(f(&z1), f(&z2), "z, {case}");
        }
        let mut rng = SplitMix64::new(7);
        for &(n_in, n_out) in &[(784, 128), (8, 4), (13, 7), (1, 1), (2, 9), (35, 10)] {
            check::<f64, true>(&mut rng, n_in, n_out);
            check::<f32, true>(&mut rng, n_in, n_out);
            check::<f64, false>(&mut rng, n_in, n_out);
            check::<f32, false>(&mut rng, n_in, n_out);
        }
    }

    /// `per_cpu_kernels_are_the_dispatched_ones`' check of (z, dx, W, b) after a forward pass, an
    /// input gradient and a fused step from (W, b, x, delta, lr), against plain loops in f64: a
    /// few roundings of T per term (2^-20 relative in f32, u = 2^-24; 2^-49 in f64).
    fn near_plain_loops<T: Real>(
        case: &str,
        (w, b, x, delta, lr): (&[T], &[T], &[T], &[T], T),
        [z, dx, w1, b1]: &[Vec<T>; 4],
    ) {
        let (n_in, n_out) = (x.len(), b.len());
        let to64 = |v: &[T]| v.iter().map(|x| x.to_f64()).collect::<Vec<_>>();
        let (w64, x64, d64, lr) = (to64(w), to64(x), to64(delta), lr.to_f64());
        let eps = if std::mem::size_of::<T>() == 4 {
            2f64.powi(-20)
        } else {
            2f64.powi(-49)
        };
        let tol = eps * (n_in as f64 + 1.0);
        let near = |got: T, want: f64| (got.to_f64() - want).abs() <= tol;
        for i in 0..n_out {
            let mut s = b[i].to_f64();
            for j in 0..n_in {
                s += w64[i * n_in + j] * x64[j];
                let step = lr * d64[i] * x64[j];
                assert!(
                    near(w1[i * n_in + j], w64[i * n_in + j] - step),
                    "{case}: w"
                );
            }
            assert!(near(z[i], s), "{case}: z {i}");
            assert!(near(b1[i], b[i].to_f64() - lr * d64[i]), "{case}: b");
        }
        for j in 0..n_in {
            let s: f64 = (0..n_out).map(|i| d64[i] * w64[i * n_in + j]).sum();
            assert!(near(dx[j], s), "{case}: dx {j}");
        }
    }

    /// The one-sample kernels of `per_cpu` with the CPU's kernel set give the bits of the
    /// dispatched kernels (which `predict`, the small-batch loops and the end of a `train` call
    /// take), in f64 and f32, on shapes with and without lane tails; the baseline set agrees
    /// with plain loops to rounding (no FMA: products rounded before each add).
    #[test]
    fn per_cpu_kernels_are_the_dispatched_ones() {
        fn check<T: Real>(rng: &mut SplitMix64, n_in: usize, n_out: usize) {
            let draw = |rng: &mut SplitMix64, n: usize| -> Vec<T> {
                (0..n)
                    .map(|_| T::from_f64(rng.uniform() * 2.0 - 1.0))
                    .collect()
            };
            let (w, b, x, delta) = (
                draw(rng, n_in * n_out),
                draw(rng, n_out),
                draw(rng, n_in),
                draw(rng, n_out),
            );
            let lr = T::from_f64(0.3);
            let f = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
            let case = format!("{n_out}x{n_in} {}", T::NAME);
            // each kernel through the CPU's set: (z, dx, w, b) after a forward pass, an input
            // gradient and a fused step with dx
            let run = |fma: bool| {
                let (mut z, mut dx, mut dx2) = (
                    vec![T::ZERO; n_out],
                    vec![T::ZERO; n_in],
                    vec![T::ZERO; n_in],
                );
                let (mut w, mut b) = (w.clone(), b.clone());
                if fma {
                    per_cpu::gemv_bias::<T, true>(&w, &x, &b, &mut z);
                    per_cpu::gemv_t_accumulate::<T, true>(&w, &delta, &mut dx);
                    per_cpu::sgd_rank1::<T, true>(&mut w, &mut b, &delta, &x, lr, Some(&mut dx2));
                } else {
                    per_cpu::gemv_bias::<T, false>(&w, &x, &b, &mut z);
                    per_cpu::gemv_t_accumulate::<T, false>(&w, &delta, &mut dx);
                    per_cpu::sgd_rank1::<T, false>(&mut w, &mut b, &delta, &x, lr, Some(&mut dx2));
                }
                assert_eq!(f(&dx), f(&dx2), "{case}: dx of the fused step, FMA {fma}");
                [z, dx, w, b]
            };
            let (mut z, mut dx) = (vec![T::ZERO; n_out], vec![T::ZERO; n_in]);
            let (mut w1, mut b1) = (w.clone(), b.clone());
            gemv_bias(&w, &x, &b, &mut z);
            gemv_t_accumulate(&w, &delta, &mut dx);
            sgd_rank1(&mut w1, &mut b1, &delta, &x, lr, None);
            let dispatched = [z, dx, w1, b1];
            let cpu = run(avx2_fma());
            for (what, (p, d)) in ["z", "dx", "w", "b"]
                .iter()
                .zip(cpu.iter().zip(&dispatched))
            {
                assert_eq!(f(p), f(d), "{case}: {what}");
            }
            // the baseline set against plain loops, in f64
            near_plain_loops(&case, (&w, &b, &x, &delta, lr), &run(false));
        }
        let mut rng = SplitMix64::new(9);
        for &(n_in, n_out) in &[(2, 8), (8, 1), (784, 13), (13, 7), (1, 1), (35, 10)] {
            check::<f64>(&mut rng, n_in, n_out);
            check::<f32>(&mut rng, n_in, n_out);
        }
    }
}
