//! The first layer of a mini-batch epoch: its weights kept in panels of `NR` neurons (8 in
//! float64, 16 in float32: two 256-bit registers), and the step's two large products computed
//! by a register-blocked 6 x NR AVX2+FMA tile that reads x, delta and the panels where they
//! lie, with no packing. Plain SGD updates W inside the second product; another optimizer
//! gets the gradient in the same panels, with its own state (Adam's moments, ...) kept there
//! too, and steps them in place: every optimizer's update is element by element.
//!
//! Layout. Panel p holds neurons NR p..NR (p + 1); for each input k their weights are adjacent:
//!
//!   P[p][k][j] = W[NR p + j][k]      (the last panel padded with zero rows of W)
//!
//! The two products of a step (`NeuralNetwork::sgd_batch`, `backprop`) with x (n, in)
//! the batch:
//!
//! - forward:  z (n, out) = x W^T.  A tile of z is 6 rows of x times one panel:
//!   z[r][NR p + j] = sum_k x[r][k] P[p][k][j], x[r][k] broadcast, P[p][k][..] two loads;
//! - update:   W += s delta^T x (s = -lr).  A tile of P is 6 inputs of one panel:
//!   P[p][k][j] += s sum_r x[r][k] D[p][r][j] (or G[p][k][j] = the sum, for an optimizer),
//!   with D = delta in the same panels (copied, 8K
//!   values for 64 x 128: delta's rows are 1 KB apart in float64, which would put a tile's 64
//!   reads of it into 4 of L1's 64 sets).
//!
//! Why not the gemm crate here: it copies both operands into its packed layout on every call
//! (for W (128, 784) in float64 that is 800 KB, more than L2), then runs its kernel. With W
//! stored as its panels, the forward product reads W's panels as they are and the update
//! writes into them, so neither product packs anything but the small delta. Measured on
//! 64 x 784 x 128, one thread (examples/panel_products.rs): float64 forward 276 against the
//! crate's 306 us, update 286 against 304; float32 134 against 164 (141 from W^T), 144 against
//! 150: about 94% of this core's FMA peak.
//!
//! Every element is one sum over k in order (the forward's in blocks of `KC` inputs, each
//! block's sum added to z in order), so its bits do not depend on how z or W is tiled, nor on
//! how many threads share the panels. Only for CPUs with AVX2 and FMA (`available`);
//! elsewhere the epoch keeps W (or W^T) and the crate.

use std::any::TypeId;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::cell::RefCell;

use crate::float::Real;
use crate::kernels::{as_is, Finish};
use crate::team::{for_each_part, Disjoint};

/// Rows (forward) or inputs (update) per tile: 6 x 2 accumulators use 12 of the 16 ymm
/// registers, leaving 2 for the panel's loads and 1 for the broadcast.
const MR: usize = 6;
/// Inputs per block of the forward product: a panel's block (256 x 8 float64 or 256 x 16
/// float32, 16 KB) stays in L1 while every row tile of a block of rows reads it.
const KC: usize = 256;
/// Rows per block of the forward product: the block's rows of x (96 x 256 float64, 192 KB)
/// stay in L2 while every panel reads them. Measured on 784-128: batch 256, 1,118 us against
/// 1,172 us without row blocks (and the gemm crate's 1,130); batch 64 is one block.
const MC: usize = 96;

/// Values of delta (n x n_out) from which its copy into panels is shared between threads.
const PARALLEL_COPY_MIN: usize = 1 << 14;

/// A float type of the panels: a 256-bit register of `LANES` values and the AVX2+FMA
/// operations the tile needs on it.
pub(crate) trait Lane: Real {
    /// Values per register: 4 float64, 8 float32.
    const LANES: usize;
    /// Neurons per panel: two registers.
    const NR: usize = 2 * Self::LANES;
    #[cfg(target_arch = "x86_64")]
    type V: Copy;
    /// Runs `f` with this thread's scratch buffer for delta in panels (kept between steps,
    /// so a step allocates nothing).
    fn with_scratch<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R;
    #[cfg(target_arch = "x86_64")]
    unsafe fn zero() -> Self::V;
    #[cfg(target_arch = "x86_64")]
    unsafe fn load(p: *const Self) -> Self::V;
    #[cfg(target_arch = "x86_64")]
    unsafe fn store(p: *mut Self, v: Self::V);
    /// Every lane = *p.
    #[cfg(target_arch = "x86_64")]
    unsafe fn splat(p: *const Self) -> Self::V;
    #[cfg(target_arch = "x86_64")]
    unsafe fn set1(v: Self) -> Self::V;
    /// a b + c, one rounding.
    #[cfg(target_arch = "x86_64")]
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    #[cfg(target_arch = "x86_64")]
    unsafe fn vadd(a: Self::V, b: Self::V) -> Self::V;
}

/// `Lane` for a float type from its register type and intrinsics (each inlined into the
/// `#[target_feature]` kernels that call it, which enable AVX2 and FMA).
macro_rules! lane {
    ($t:ty, $lanes:expr, $v:ty, $zero:ident, $load:ident, $store:ident, $splat:ident,
     $set1:ident, $fma:ident, $add:ident) => {
        impl Lane for $t {
            const LANES: usize = $lanes;
            #[cfg(target_arch = "x86_64")]
            type V = $v;
            fn with_scratch<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R {
                thread_local! {
                    static SCRATCH: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
                }
                SCRATCH.with(|s| f(&mut s.borrow_mut()))
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            unsafe fn zero() -> $v {
                $zero()
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            unsafe fn load(p: *const $t) -> $v {
                $load(p)
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            unsafe fn store(p: *mut $t, v: $v) {
                $store(p, v)
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            unsafe fn splat(p: *const $t) -> $v {
                $splat(&*p)
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            unsafe fn set1(v: $t) -> $v {
                $set1(v)
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            unsafe fn fma(a: $v, b: $v, c: $v) -> $v {
                $fma(a, b, c)
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            unsafe fn vadd(a: $v, b: $v) -> $v {
                $add(a, b)
            }
        }
    };
}

#[rustfmt::skip]
lane!(f64, 4, __m256d, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd,
      _mm256_broadcast_sd, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd);
#[rustfmt::skip]
lane!(f32, 8, __m256, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps,
      _mm256_broadcast_ss, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps);

/// `s` as a slice of E, which T is (asserted).
fn cast<T: 'static, E: 'static>(s: &[T]) -> &[E] {
    assert_eq!(TypeId::of::<T>(), TypeId::of::<E>(), "one float type");
    // SAFETY: T is E (asserted).
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
}

/// `cast` for a mutable slice.
fn cast_mut<T: 'static, E: 'static>(s: &mut [T]) -> &mut [E] {
    assert_eq!(TypeId::of::<T>(), TypeId::of::<E>(), "one float type");
    // SAFETY: T is E (asserted); the borrow of s is handed on.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
}

/// Runs `$body` with `E` the float type `$t` is (f64 or f32: the only `Real` types).
macro_rules! on_lane {
    ($t:ty, $body:expr) => {
        if TypeId::of::<$t>() == TypeId::of::<f64>() {
            type E = f64;
            $body
        } else {
            type E = f32;
            $body
        }
    };
}

/// `$f::<E, R>($args)` for the R = `$rest` (< MR) rows or inputs left after the whole tiles;
/// nothing when none is left. R must be a constant: each tile size is its own kernel.
macro_rules! tail {
    ($rest:expr, $f:ident, ($($arg:expr),*)) => {
        match $rest {
            0 => {}
            1 => $f::<E, 1>($($arg),*),
            2 => $f::<E, 2>($($arg),*),
            3 => $f::<E, 3>($($arg),*),
            4 => $f::<E, 4>($($arg),*),
            _ => $f::<E, 5>($($arg),*),
        }
    };
}

/// Whether this CPU runs the panel products (AVX2 and FMA).
pub fn available() -> bool {
    crate::kernels::avx2_fma()
}

/// The length of W (n_out, n_in) in panels.
pub fn panels_len<T: Real>(n_out: usize, n_in: usize) -> usize {
    on_lane!(T, panels_len_in::<E>(n_out, n_in))
}

/// P = W (n_out, n_in) row-major in panels (module doc), padding zeroed.
pub fn pack<T: Real>(w: &[T], n_out: usize, n_in: usize, p: &mut [T]) {
    on_lane!(T, pack_in::<E>(cast(w), n_out, n_in, cast_mut(p)))
}

/// W (n_out, n_in) row-major from its panels.
pub fn unpack<T: Real>(p: &[T], n_out: usize, n_in: usize, w: &mut [T]) {
    on_lane!(T, unpack_in::<E>(cast(p), n_out, n_in, cast_mut(w)))
}

/// z (n, n_out) = x (n, n_in) W^T, W given as its panels `p`, cut between `parts` threads by
/// panels (each thread its neurons' columns of z: the same bits for any count). Needs
/// `available()`.
#[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
pub fn forward<T: Real>(
    x: &[T],
    shape: (usize, usize),
    p: &[T],
    n_out: usize,
    z: &mut [T],
    parts: usize,
) {
    forward_finishing(x, shape, p, n_out, z, parts, &as_is);
}

/// `forward`, each part handing its block of z (every row, its panels' columns) to `finish`
/// as soon as its product is done (`kernels::Finish`: the bias and the activation, on the
/// thread that wrote the block, while it is in that core's cache).
pub(crate) fn forward_finishing<T: Real>(
    x: &[T],
    shape: (usize, usize),
    p: &[T],
    n_out: usize,
    z: &mut [T],
    parts: usize,
    finish: Finish<T>,
) {
    on_lane!(T, {
        // T is E (`on_lane!`): the cast of z's pointer back to T is the same buffer.
        let finish = |zd: Disjoint<E>, rows, cols| finish(zd.cast::<T>(), rows, cols);
        forward_in::<E>(cast(x), shape, cast(p), n_out, cast_mut(z), parts, &finish)
    })
}

/// P += s delta^T x: W (n_out, n_in), as its panels `p`, plus s times the weight gradient
/// sum_r delta[r]^T x[r], each element's sum over the n rows in order, then one fused
/// multiply-add into W. Cut between `parts` threads by inputs (each thread W's columns of its
/// inputs: the same bits for any count). Needs `available()`.
pub fn add_weight_product<T: Real>(
    (x, shape): (&[T], (usize, usize)),
    delta: &[T],
    n_out: usize,
    p: &mut [T],
    s: T,
    parts: usize,
) {
    on_lane!(T, {
        let (x, delta, p) = (cast::<T, E>(x), cast::<T, E>(delta), cast_mut::<T, E>(p));
        let s = cast::<T, E>(std::slice::from_ref(&s))[0];
        let s = Some(s);
        E::with_scratch(|d| add_weight_product_in::<E>(x, shape, delta, n_out, p, s, d, parts))
    })
}

/// G = delta^T x, the weight gradient, written in panels (`g` as long as W's panels), each
/// element's sum over the n rows in order. Cut between threads as `add_weight_product`.
/// Needs `available()`.
pub fn weight_product<T: Real>(
    (x, shape): (&[T], (usize, usize)),
    delta: &[T],
    n_out: usize,
    g: &mut [T],
    parts: usize,
) {
    on_lane!(T, {
        let (x, delta, g) = (cast::<T, E>(x), cast::<T, E>(delta), cast_mut::<T, E>(g));
        E::with_scratch(|d| add_weight_product_in::<E>(x, shape, delta, n_out, g, None, d, parts))
    })
}

/// The length of W (n_out, n_in) in panels.
fn panels_len_in<E: Lane>(n_out: usize, n_in: usize) -> usize {
    n_out.div_ceil(E::NR) * E::NR * n_in
}

/// P = W (n_out, n_in) row-major in panels (module doc), padding zeroed.
fn pack_in<E: Lane>(w: &[E], n_out: usize, n_in: usize, p: &mut [E]) {
    assert!(w.len() == n_out * n_in && p.len() == panels_len_in::<E>(n_out, n_in));
    for (pi, panel) in p.chunks_exact_mut(E::NR * n_in).enumerate() {
        for j in 0..E::NR {
            let neuron = pi * E::NR + j;
            let row = (neuron < n_out).then(|| &w[neuron * n_in..(neuron + 1) * n_in]);
            for k in 0..n_in {
                panel[k * E::NR + j] = row.map_or(E::ZERO, |r| r[k]);
            }
        }
    }
}

/// W (n_out, n_in) row-major from its panels.
fn unpack_in<E: Lane>(p: &[E], n_out: usize, n_in: usize, w: &mut [E]) {
    assert!(w.len() == n_out * n_in && p.len() == panels_len_in::<E>(n_out, n_in));
    for (neuron, row) in w.chunks_exact_mut(n_in).enumerate() {
        let panel = &p[(neuron / E::NR) * E::NR * n_in..];
        let j = neuron % E::NR;
        for (k, v) in row.iter_mut().enumerate() {
            *v = panel[k * E::NR + j];
        }
    }
}

/// z (n, n_out) = x (n, n_in) W^T, W given as its panels `p`, cut between `parts` threads by
/// panels (each thread its neurons' columns of z: the same bits for any count). Needs
/// `available()`.
fn forward_in<E: Lane>(
    x: &[E],
    (n, n_in): (usize, usize),
    p: &[E],
    n_out: usize,
    z: &mut [E],
    parts: usize,
    finish: Finish<E>,
) {
    assert!(
        x.len() == n * n_in && z.len() == n * n_out && p.len() == panels_len_in::<E>(n_out, n_in)
    );
    assert!(available(), "the panel products need AVX2 and FMA");
    if n_in == 0 {
        z.fill(E::ZERO);
        return finish(Disjoint::new(z), (0, n), (0, n_out));
    }
    let ranges = split(n_out.div_ceil(E::NR), parts);
    let zd = Disjoint::new(z);
    #[cfg(target_arch = "x86_64")]
    for_each_part(ranges.len(), |i| {
        let (p0, p1) = ranges[i];
        // SAFETY: the CPU has AVX2 and FMA (asserted); the shapes are asserted above; each
        // part writes the columns of its own panels only, while z's borrow lives.
        unsafe { forward_avx2(x, (n, n_in), p, n_out, zd, (p0, p1)) };
        finish(zd, (0, n), (p0 * E::NR, (p1 * E::NR).min(n_out)));
    });
}

/// `panels` cut into at most `parts` runs of near-equal length, none empty.
fn split(panels: usize, parts: usize) -> Vec<(usize, usize)> {
    let parts = parts.clamp(1, panels.max(1));
    (0..parts)
        .map(|i| (i * panels / parts, (i + 1) * panels / parts))
        .filter(|(a, b)| a < b)
        .collect()
}

/// P += s delta^T x: W (n_out, n_in), as its panels `p`, plus s times the weight gradient
/// sum_r delta[r]^T x[r], each element's sum over the n rows in order, then one fused
/// multiply-add into W. `d` is scratch for delta in panels. Needs `available()`.
/// Cut between `parts` threads by panels, as `forward`.
#[allow(clippy::too_many_arguments)]
fn add_weight_product_in<E: Lane>(
    x: &[E],
    (n, n_in): (usize, usize),
    delta: &[E],
    n_out: usize,
    p: &mut [E],
    s: Option<E>,
    d: &mut Vec<E>,
    parts: usize,
) {
    assert!(x.len() == n * n_in && delta.len() == n * n_out);
    assert!(p.len() == panels_len_in::<E>(n_out, n_in));
    assert!(available(), "the panel products need AVX2 and FMA");
    let panels = n_out.div_ceil(E::NR);
    // Every value of D is written (the last panel's padding with zeros): no clearing.
    d.resize(panels * n * E::NR, E::ZERO);
    // A large copy is shared by panels: done by the caller alone, it left the other threads
    // waiting (float64 batch 256 on 2 threads: 145 samples on the caller against 78 for the
    // whole copy on one thread, the lines of D being in the other core's cache from the last
    // step).
    let copy_parts = if n * n_out >= PARALLEL_COPY_MIN {
        parts
    } else {
        1
    };
    let copies = split(panels, copy_parts);
    let dd = Disjoint::new(d);
    for_each_part(copies.len(), |i| {
        let (p0, p1) = copies[i];
        // SAFETY: panels p0..p1 of D are this part's only, inside d while its borrow lives.
        let mine =
            unsafe { std::slice::from_raw_parts_mut(dd.at(p0 * n * E::NR), (p1 - p0) * n * E::NR) };
        delta_panels(delta, (n, n_out), mine, (p0, p1));
    });
    // Threads share the inputs, each a run of whole tiles of MR inputs (the last with the
    // tail) for every panel: each copies only its own columns of x. Shared by panels, every
    // thread would copy all of them (the float32 batch-256 epoch scaled 1.62x on 2 threads
    // that way).
    let ranges = split(n_in.div_ceil(MR), parts);
    let (d, pd) = (&d[..], Disjoint::new(p));
    #[cfg(target_arch = "x86_64")]
    for_each_part(ranges.len(), |i| {
        let (t0, t1) = ranges[i];
        let inputs = (t0 * MR, (t1 * MR).min(n_in));
        let mut cols = vec![E::ZERO; n * MR];
        // SAFETY: the CPU has AVX2 and FMA (asserted); the shapes are asserted above; each
        // part writes its own inputs' rows of every panel of P only, while p's borrow lives.
        unsafe { update_avx2(x, (n, n_in), (d, panels), pd, s, &mut cols, inputs) }
    });
}

/// D[p][r] = row r's neurons NR p..NR (p + 1) of delta (n, n_out), for panels p0..p1 (`d`
/// holds those panels only); the last panel's padding zeroed.
fn delta_panels<E: Lane>(
    delta: &[E],
    (n, n_out): (usize, usize),
    d: &mut [E],
    (p0, p1): (usize, usize),
) {
    for (r, row) in delta.chunks(n_out.max(1)).enumerate() {
        for pi in p0..p1 {
            let piece = &row[pi * E::NR..((pi + 1) * E::NR).min(n_out)];
            let at = ((pi - p0) * n + r) * E::NR;
            if piece.len() == E::NR {
                d[at..at + E::NR].copy_from_slice(piece);
            } else {
                d[at..at + piece.len()].copy_from_slice(piece);
                d[at + piece.len()..at + E::NR].fill(E::ZERO);
            }
        }
    }
}

/// The sums of one R x 8 tile over `k` steps: acc[i] += a[i * a_i] * b[0..8], then a += a_k,
/// b += E::NR. R rows of a (broadcast), one panel row of b (two loads) per step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<E: Lane, const R: usize>(
    k: usize,
    a: *const E,
    (a_i, a_k): (usize, usize),
    b: *const E,
) -> [[E::V; 2]; R] {
    let mut acc = [[E::zero(); 2]; R];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        let b0 = E::load(b);
        let b1 = E::load(b.add(E::LANES));
        for (i, row) in acc.iter_mut().enumerate() {
            let v = E::splat(a.add(i * a_i));
            row[0] = E::fma(v, b0, row[0]);
            row[1] = E::fma(v, b1, row[1]);
        }
        a = a.add(a_k);
        b = b.add(E::NR);
    }
    acc
}

/// Writes (or, with `add`, adds) an R x 8 tile into c (row stride ldc), its first `cols`
/// columns only.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store<E: Lane, const R: usize>(
    acc: [[E::V; 2]; R],
    c: *mut E,
    ldc: usize,
    cols: usize,
    add: bool,
) {
    for (i, row) in acc.iter().enumerate() {
        let c = c.add(i * ldc);
        if cols == E::NR {
            let (mut lo, mut hi) = (row[0], row[1]);
            if add {
                lo = E::vadd(E::load(c), lo);
                hi = E::vadd(E::load(c.add(E::LANES)), hi);
            }
            E::store(c, lo);
            E::store(c.add(E::LANES), hi);
        } else {
            let mut t = [E::ZERO; 16];
            E::store(t.as_mut_ptr(), row[0]);
            E::store(t.as_mut_ptr().add(E::LANES), row[1]);
            for (j, &v) in t[..E::NR].iter().enumerate().take(cols) {
                let at = c.add(j);
                *at = if add { *at + v } else { v };
            }
        }
    }
}

/// One row tile of the forward product: rows r..r+R of z, panel p, inputs k0..k0+kc.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn forward_tile<E: Lane, const R: usize>(
    (x, n_in): (&[E], usize),
    p: &[E],
    (z, n_out): (Disjoint<E>, usize),
    (r, pi): (usize, usize),
    (k0, kc): (usize, usize),
) {
    let a = x.as_ptr().add(r * n_in + k0);
    let b = p.as_ptr().add(pi * E::NR * n_in + k0 * E::NR);
    let acc = tile::<E, R>(kc, a, (n_in, 1), b);
    let cols = (n_out - pi * E::NR).min(E::NR);
    store::<E, R>(acc, z.at(r * n_out + pi * E::NR), n_out, cols, k0 > 0);
}

/// The forward product's panels p0..p1: for each block of inputs and of rows, each panel's
/// block is read by every row tile of the block while it is in L1.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_avx2<E: Lane>(
    x: &[E],
    (n, n_in): (usize, usize),
    p: &[E],
    n_out: usize,
    z: Disjoint<E>,
    (p0, p1): (usize, usize),
) {
    // Blocks of inputs of near-equal size, at most KC each.
    let blocks = n_in.div_ceil(KC).max(1);
    let per = n_in.div_ceil(blocks);
    // Blocks of rows of near-equal size, at most MC each, in whole tiles where they can be.
    let rows_per = n.div_ceil(n.div_ceil(MC).max(1)).next_multiple_of(MR);
    let (xs, zs) = ((x, n_in), (z, n_out));
    let mut k0 = 0;
    while k0 < n_in {
        let ks = (k0, per.min(n_in - k0));
        let mut r0 = 0;
        while r0 < n {
            let r1 = (r0 + rows_per).min(n);
            for pi in p0..p1 {
                let mut r = r0;
                while r + MR <= r1 {
                    forward_tile::<E, MR>(xs, p, zs, (r, pi), ks);
                    r += MR;
                }
                tail!(r1 - r, forward_tile, (xs, p, zs, (r, pi), ks));
            }
            r0 = r1;
        }
        k0 += ks.1;
    }
}

/// One tile of the update: inputs k..k+R of panel p, P += s (sum over the n rows), or with
/// `add` false P = the sum, with
/// those R columns of x copied to `cols` (n x R, row-major).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn update_tile<E: Lane, const R: usize>(
    (cols, n, n_in): (*const E, usize, usize),
    d: &[E],
    p: Disjoint<E>,
    (s, add): (E::V, bool),
    (k, pi): (usize, usize),
) {
    let b = d.as_ptr().add(pi * n * E::NR);
    let acc = tile::<E, R>(n, cols, (1, R), b);
    let c = p.at(pi * E::NR * n_in + k * E::NR);
    for (i, row) in acc.iter().enumerate() {
        let c = c.add(i * E::NR);
        if add {
            E::store(c, E::fma(s, row[0], E::load(c)));
            E::store(c.add(E::LANES), E::fma(s, row[1], E::load(c.add(E::LANES))));
        } else {
            E::store(c, row[0]);
            E::store(c.add(E::LANES), row[1]);
        }
    }
}

/// Inputs k..k+R of panels p0..p1: the R columns of x copied together first (n x R values):
/// read in place, a tile's n steps would each fall on another row of x, another line and
/// another 4 KB page, for each of the panels; copied, the panels' tiles read them in order
/// (64 x 784 x 128: 284 instead of 292 us).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn update_inputs<E: Lane, const R: usize>(
    (x, n, n_in): (&[E], usize, usize),
    k: usize,
    (d, p, s): (&[E], Disjoint<E>, (E::V, bool)),
    cols: &mut [E],
    (p0, p1): (usize, usize),
) {
    for (r, dst) in cols.chunks_exact_mut(R).take(n).enumerate() {
        dst.copy_from_slice(&x[r * n_in + k..r * n_in + k + R]);
    }
    for pi in p0..p1 {
        // The next tile's lines of P, a panel (n_in x 8 values) further on: P is larger than
        // L2 in the shapes this is for, and a tile reads them only as it ends.
        let ahead = p.at(0).wrapping_add(((pi + 1) * n_in + k) * E::NR);
        for line in 0..R {
            // A hint only: it never faults, even past the end of P.
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line * E::NR).cast());
        }
        update_tile::<E, R>((cols.as_ptr(), n, n_in), d, p, s, (k, pi));
    }
}

/// The update of inputs k0..k1 of every panel, a block of MR inputs at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn update_avx2<E: Lane>(
    x: &[E],
    (n, n_in): (usize, usize),
    (d, panels): (&[E], usize),
    p: Disjoint<E>,
    s: Option<E>,
    cols: &mut [E],
    (k0, k1): (usize, usize),
) {
    let xs = (x, n, n_in);
    let dps = (d, p, (E::set1(s.unwrap_or(E::ZERO)), s.is_some()));
    let range = (0, panels);
    let mut k = k0;
    while k + MR <= k1 {
        update_inputs::<E, MR>(xs, k, dps, cols, range);
        k += MR;
    }
    tail!(k1 - k, update_inputs, (xs, k, dps, cols, range));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn random(rng: &mut SplitMix64, len: usize) -> Vec<f64> {
        (0..len).map(|_| rng.uniform() * 2.0 - 1.0).collect()
    }

    #[test]
    fn pack_and_unpack_are_inverse_and_pad_with_zeros() {
        let mut rng = SplitMix64::new(5);
        for (n_out, n_in) in [(1, 1), (8, 3), (10, 7), (17, 5)] {
            let w = random(&mut rng, n_out * n_in);
            let mut p = vec![f64::NAN; panels_len::<f64>(n_out, n_in)];
            pack(&w, n_out, n_in, &mut p);
            let mut back = vec![0.0; w.len()];
            unpack(&p, n_out, n_in, &mut back);
            assert_eq!(back, w);
            let pad = p.len() - w.len();
            let zeros = p.iter().filter(|v| **v == 0.0).count();
            assert_eq!(zeros, pad, "{n_out}x{n_in}");
        }
    }

    /// Against plain loops summing in the same order (k ascending, one fused multiply-add per
    /// term within a block, the forward's blocks of inputs added in order): equal bits on
    /// shapes with every row and column tail, in both float types, on 1 to 3 threads.
    fn products_equal_plain_loops<T: Lane>() {
        let mut rng = SplitMix64::new(11);
        let bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
        for (n, n_in, n_out) in [
            (1, 1, 1),
            (7, 13, 9),
            (64, 784, 128),
            (13, 600, 10),
            (6, 257, 16),
            (9, 40, 33),
            (200, 50, 100), // delta's copy into panels shared between threads
        ] {
            let mut random_t =
                |len| -> Vec<T> { random(&mut rng, len).into_iter().map(T::from_f64).collect() };
            let (x, w, delta) = (
                random_t(n * n_in),
                random_t(n_out * n_in),
                random_t(n * n_out),
            );
            let mut p = vec![T::ZERO; panels_len::<T>(n_out, n_in)];
            pack(&w, n_out, n_in, &mut p);
            let mut z = vec![T::ZERO; n * n_out];
            forward(&x, (n, n_in), &p, n_out, &mut z, 1);
            for parts in [2, 3] {
                let mut z_parts = vec![T::ZERO; n * n_out];
                forward(&x, (n, n_in), &p, n_out, &mut z_parts, parts);
                assert!(bits(&z_parts) == bits(&z), "z on {parts} threads");
            }
            let blocks = n_in.div_ceil(KC).max(1);
            let per = n_in.div_ceil(blocks);
            for r in 0..n {
                for o in 0..n_out {
                    let mut total = T::ZERO;
                    for (bi, ks) in (0..n_in).collect::<Vec<_>>().chunks(per).enumerate() {
                        let mut acc = T::ZERO;
                        for &k in ks {
                            acc = x[r * n_in + k].mul_add(w[o * n_in + k], acc);
                        }
                        total = if bi == 0 { acc } else { total + acc };
                    }
                    let what = format!("z {} {n}x{n_in}x{n_out}", T::NAME);
                    assert_eq!(bits(&[z[r * n_out + o]]), bits(&[total]), "{what}");
                }
            }
            let s = T::from_f64(-0.0625);
            let w_before = p.clone();
            add_weight_product((&x, (n, n_in)), &delta, n_out, &mut p, s, 1);
            for parts in [2, 3] {
                let mut p_parts = w_before.clone();
                add_weight_product((&x, (n, n_in)), &delta, n_out, &mut p_parts, s, parts);
                assert!(bits(&p_parts) == bits(&p), "W on {parts} threads");
            }
            let mut back = vec![T::ZERO; w.len()];
            unpack(&p, n_out, n_in, &mut back);
            for o in 0..n_out {
                for k in 0..n_in {
                    let mut acc = T::ZERO;
                    for r in 0..n {
                        acc = x[r * n_in + k].mul_add(delta[r * n_out + o], acc);
                    }
                    let want = s.mul_add(acc, w[o * n_in + k]);
                    let what = format!("W {} {n}x{n_in}x{n_out}", T::NAME);
                    assert_eq!(bits(&[back[o * n_in + k]]), bits(&[want]), "{what}");
                }
            }
            // The padding of the last panel stays zero.
            let padded = p.iter().filter(|v| **v == T::ZERO).count();
            assert!(padded >= p.len() - w.len());
        }
    }

    #[test]
    fn products_equal_plain_loops_in_the_same_order() {
        if !available() {
            return; // nothing to compare: the epoch keeps W and the gemm crate here
        }
        products_equal_plain_loops::<f64>();
        products_equal_plain_loops::<f32>();
    }
}
