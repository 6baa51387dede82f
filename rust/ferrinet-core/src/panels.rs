//! Float64's first layer in a plain-SGD epoch: its weights kept in panels of 8 neurons, and
//! the step's two large products computed by a register-blocked 6 x 8 AVX2+FMA tile that reads
//! x, delta and the panels where they lie, with no packing.
//!
//! Layout. Panel p holds neurons 8p..8p+8; for each input k its 8 weights are adjacent:
//!
//!   P[p][k][j] = W[8p + j][k]      (the last panel padded with zero rows of W)
//!
//! The two products of a step (`NeuralNetwork::sgd_batch`) with x (n, in) the batch:
//!
//! - forward:  z (n, out) = x W^T.  A tile of z is 6 rows of x times one panel:
//!   z[r][8p + j] = sum_k x[r][k] P[p][k][j], x[r][k] broadcast, P[p][k][..] two loads;
//! - update:   W += s delta^T x (s = -lr).  A tile of P is 6 inputs of one panel:
//!   P[p][k][j] += s sum_r x[r][k] D[p][r][j], with D = delta in the same panels (copied, 8K
//!   values for 64 x 128: delta's rows are 1 KB apart, which would put a tile's 64 reads of
//!   it into 4 of L1's 64 sets).
//!
//! Why not the gemm crate here: it copies both operands into its packed layout on every call
//! (for W (128, 784) in float64 that is 800 KB, more than L2), then runs its kernel. With W
//! stored as its panels, the forward product reads W's panels as they are and the update
//! writes into them, so neither product packs anything but the small delta.
//!
//! Every element is one sum over k in order (the forward's in blocks of `KC` inputs, each
//! block's sum added to z in order), so its bits do not depend on how z or W is tiled.
//! Only for CPUs with AVX2 and FMA (`available`); elsewhere the epoch keeps W and the crate.

use std::any::TypeId;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::cell::RefCell;

use crate::float::Real;
use crate::team::{for_each_part, Disjoint};

/// Neurons per panel: one tile row is two 4-wide float64 registers.
pub const NR: usize = 8;
/// Rows (forward) or inputs (update) per tile: 6 x 2 accumulators use 12 of the 16 ymm
/// registers, leaving 2 for the panel's loads and 1 for the broadcast.
const MR: usize = 6;
/// Inputs per block of the forward product: a panel's block (256 x 8 float64, 16 KB) stays in
/// L1 while every row tile of a block of rows reads it.
const KC: usize = 256;
/// Rows per block of the forward product: the block's rows of x (96 x 256 float64, 192 KB)
/// stay in L2 while every panel reads them. Measured on 784-128: batch 256, 1,118 us against
/// 1,172 us without row blocks (and the gemm crate's 1,130); batch 64 is one block.
const MC: usize = 96;

/// `s` as float64 values. T is f64 wherever the first layer is kept in panels (the epoch
/// chooses panels for float64 only); anything else is a bug, hence the assertion.
pub fn as_f64<T: Real>(s: &[T]) -> &[f64] {
    assert_eq!(
        TypeId::of::<T>(),
        TypeId::of::<f64>(),
        "panels hold float64"
    );
    // SAFETY: T is f64 (asserted), so the slice is one of f64 values.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
}

/// `as_f64` for a mutable slice.
pub fn as_f64_mut<T: Real>(s: &mut [T]) -> &mut [f64] {
    assert_eq!(
        TypeId::of::<T>(),
        TypeId::of::<f64>(),
        "panels hold float64"
    );
    // SAFETY: as in `as_f64`; the borrow of s is handed on.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
}

/// Runs `f` with this thread's scratch buffer for delta in panels (kept between steps, so a
/// step allocates nothing).
pub fn with_scratch<R>(f: impl FnOnce(&mut Vec<f64>) -> R) -> R {
    thread_local! {
        static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

/// Whether this CPU runs the panel products (AVX2 and FMA).
pub fn available() -> bool {
    crate::kernels::avx2_fma()
}

/// The length of W (n_out, n_in) in panels.
pub fn panels_len(n_out: usize, n_in: usize) -> usize {
    n_out.div_ceil(NR) * NR * n_in
}

/// P = W (n_out, n_in) row-major in panels (module doc), padding zeroed.
pub fn pack(w: &[f64], n_out: usize, n_in: usize, p: &mut [f64]) {
    assert!(w.len() == n_out * n_in && p.len() == panels_len(n_out, n_in));
    for (pi, panel) in p.chunks_exact_mut(NR * n_in).enumerate() {
        for j in 0..NR {
            let neuron = pi * NR + j;
            let row = (neuron < n_out).then(|| &w[neuron * n_in..(neuron + 1) * n_in]);
            for k in 0..n_in {
                panel[k * NR + j] = row.map_or(0.0, |r| r[k]);
            }
        }
    }
}

/// W (n_out, n_in) row-major from its panels.
pub fn unpack(p: &[f64], n_out: usize, n_in: usize, w: &mut [f64]) {
    assert!(w.len() == n_out * n_in && p.len() == panels_len(n_out, n_in));
    for (neuron, row) in w.chunks_exact_mut(n_in).enumerate() {
        let panel = &p[(neuron / NR) * NR * n_in..];
        let j = neuron % NR;
        for (k, v) in row.iter_mut().enumerate() {
            *v = panel[k * NR + j];
        }
    }
}

/// z (n, n_out) = x (n, n_in) W^T, W given as its panels `p`, cut between `parts` threads by
/// panels (each thread its neurons' columns of z: the same bits for any count). Needs
/// `available()`.
pub fn forward(
    x: &[f64],
    (n, n_in): (usize, usize),
    p: &[f64],
    n_out: usize,
    z: &mut [f64],
    parts: usize,
) {
    assert!(x.len() == n * n_in && z.len() == n * n_out && p.len() == panels_len(n_out, n_in));
    assert!(available(), "the panel products need AVX2 and FMA");
    if n_in == 0 {
        return z.fill(0.0);
    }
    let ranges = split(n_out.div_ceil(NR), parts);
    let zd = Disjoint::new(z);
    #[cfg(target_arch = "x86_64")]
    for_each_part(ranges.len(), |i| {
        // SAFETY: the CPU has AVX2 and FMA (asserted); the shapes are asserted above; each
        // part writes the columns of its own panels only, while z's borrow lives.
        unsafe { forward_avx2(x, (n, n_in), p, n_out, zd, ranges[i]) }
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
pub fn add_weight_product(
    x: &[f64],
    (n, n_in): (usize, usize),
    delta: &[f64],
    n_out: usize,
    p: &mut [f64],
    s: f64,
    d: &mut Vec<f64>,
    parts: usize,
) {
    assert!(x.len() == n * n_in && delta.len() == n * n_out);
    assert!(p.len() == panels_len(n_out, n_in));
    assert!(available(), "the panel products need AVX2 and FMA");
    let panels = n_out.div_ceil(NR);
    // Every value of D is written below (the last panel's padding with zeros): no clearing.
    d.resize(panels * n * NR, 0.0);
    // Row r's neurons 8p..8p+8 go to D[p][r]: whole 8-value pieces (the last one shorter).
    for (r, row) in delta.chunks(n_out.max(1)).enumerate() {
        let mut pieces = row.chunks_exact(NR);
        for (pi, piece) in (&mut pieces).enumerate() {
            let at = (pi * n + r) * NR;
            let piece: &[f64; NR] = piece.try_into().expect("NR values");
            *<&mut [f64; NR]>::try_from(&mut d[at..at + NR]).expect("NR values") = *piece;
        }
        let tail = pieces.remainder();
        if !tail.is_empty() {
            let at = ((n_out / NR) * n + r) * NR;
            d[at..at + tail.len()].copy_from_slice(tail);
            d[at + tail.len()..at + NR].fill(0.0);
        }
    }
    let ranges = split(panels, parts);
    let (d, pd) = (&d[..], Disjoint::new(p));
    #[cfg(target_arch = "x86_64")]
    for_each_part(ranges.len(), |i| {
        let mut cols = vec![0.0; n * MR];
        // SAFETY: the CPU has AVX2 and FMA (asserted); the shapes are asserted above; each
        // part writes its own panels of P only, while p's borrow lives.
        unsafe { update_avx2(x, (n, n_in), d, pd, s, &mut cols, ranges[i]) }
    });
}

/// The sums of one R x 8 tile over `k` steps: acc[i] += a[i * a_i] * b[0..8], then a += a_k,
/// b += NR. R rows of a (broadcast), one panel row of b (two loads) per step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<const R: usize>(
    k: usize,
    a: *const f64,
    (a_i, a_k): (usize, usize),
    b: *const f64,
) -> [[__m256d; 2]; R] {
    let mut acc = [[_mm256_setzero_pd(); 2]; R];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        let b0 = _mm256_loadu_pd(b);
        let b1 = _mm256_loadu_pd(b.add(4));
        for (i, row) in acc.iter_mut().enumerate() {
            let v = _mm256_broadcast_sd(&*a.add(i * a_i));
            row[0] = _mm256_fmadd_pd(v, b0, row[0]);
            row[1] = _mm256_fmadd_pd(v, b1, row[1]);
        }
        a = a.add(a_k);
        b = b.add(NR);
    }
    acc
}

/// Writes (or, with `add`, adds) an R x 8 tile into c (row stride ldc), its first `cols`
/// columns only.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store<const R: usize>(
    acc: [[__m256d; 2]; R],
    c: *mut f64,
    ldc: usize,
    cols: usize,
    add: bool,
) {
    for (i, row) in acc.iter().enumerate() {
        let c = c.add(i * ldc);
        if cols == NR {
            let (mut lo, mut hi) = (row[0], row[1]);
            if add {
                lo = _mm256_add_pd(_mm256_loadu_pd(c), lo);
                hi = _mm256_add_pd(_mm256_loadu_pd(c.add(4)), hi);
            }
            _mm256_storeu_pd(c, lo);
            _mm256_storeu_pd(c.add(4), hi);
        } else {
            let mut t = [0.0; NR];
            _mm256_storeu_pd(t.as_mut_ptr(), row[0]);
            _mm256_storeu_pd(t.as_mut_ptr().add(4), row[1]);
            for (j, &v) in t.iter().enumerate().take(cols) {
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
unsafe fn forward_tile<const R: usize>(
    (x, n_in): (&[f64], usize),
    p: &[f64],
    (z, n_out): (Disjoint<f64>, usize),
    (r, pi): (usize, usize),
    (k0, kc): (usize, usize),
) {
    let a = x.as_ptr().add(r * n_in + k0);
    let b = p.as_ptr().add(pi * NR * n_in + k0 * NR);
    let acc = tile::<R>(kc, a, (n_in, 1), b);
    let cols = (n_out - pi * NR).min(NR);
    store::<R>(acc, z.at(r * n_out + pi * NR), n_out, cols, k0 > 0);
}

/// The forward product's panels p0..p1: for each block of inputs and of rows, each panel's
/// block is read by every row tile of the block while it is in L1.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_avx2(
    x: &[f64],
    (n, n_in): (usize, usize),
    p: &[f64],
    n_out: usize,
    z: Disjoint<f64>,
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
                    forward_tile::<MR>(xs, p, zs, (r, pi), ks);
                    r += MR;
                }
                let at = (r, pi);
                match r1 - r {
                    0 => {}
                    1 => forward_tile::<1>(xs, p, zs, at, ks),
                    2 => forward_tile::<2>(xs, p, zs, at, ks),
                    3 => forward_tile::<3>(xs, p, zs, at, ks),
                    4 => forward_tile::<4>(xs, p, zs, at, ks),
                    _ => forward_tile::<5>(xs, p, zs, at, ks),
                }
            }
            r0 = r1;
        }
        k0 += ks.1;
    }
}

/// One tile of the update: inputs k..k+R of panel p, P += s (sum over the n rows), with
/// those R columns of x copied to `cols` (n x R, row-major).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn update_tile<const R: usize>(
    (cols, n, n_in): (*const f64, usize, usize),
    d: &[f64],
    p: Disjoint<f64>,
    s: __m256d,
    (k, pi): (usize, usize),
) {
    let b = d.as_ptr().add(pi * n * NR);
    let acc = tile::<R>(n, cols, (1, R), b);
    let c = p.at(pi * NR * n_in + k * NR);
    for (i, row) in acc.iter().enumerate() {
        let c = c.add(i * NR);
        _mm256_storeu_pd(c, _mm256_fmadd_pd(s, row[0], _mm256_loadu_pd(c)));
        _mm256_storeu_pd(
            c.add(4),
            _mm256_fmadd_pd(s, row[1], _mm256_loadu_pd(c.add(4))),
        );
    }
}

/// Inputs k..k+R of panels p0..p1: the R columns of x copied together first (n x R values):
/// read in place, a tile's n steps would each fall on another row of x, another line and
/// another 4 KB page, for each of the panels; copied, the panels' tiles read them in order
/// (64 x 784 x 128: 284 instead of 292 us).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn update_inputs<const R: usize>(
    (x, n, n_in): (&[f64], usize, usize),
    k: usize,
    (d, p, s): (&[f64], Disjoint<f64>, __m256d),
    cols: &mut [f64],
    (p0, p1): (usize, usize),
) {
    for (r, dst) in cols.chunks_exact_mut(R).take(n).enumerate() {
        dst.copy_from_slice(&x[r * n_in + k..r * n_in + k + R]);
    }
    for pi in p0..p1 {
        // The next tile's lines of P, a panel (n_in x 8 values) further on: P is larger than
        // L2 in the shapes this is for, and a tile reads them only as it ends.
        let ahead = p.at(0).wrapping_add(((pi + 1) * n_in + k) * NR);
        for line in 0..R {
            // A hint only: it never faults, even past the end of P.
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line * NR).cast());
        }
        update_tile::<R>((cols.as_ptr(), n, n_in), d, p, s, (k, pi));
    }
}

/// The update of panels p0..p1, a block of MR inputs at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn update_avx2(
    x: &[f64],
    (n, n_in): (usize, usize),
    d: &[f64],
    p: Disjoint<f64>,
    s: f64,
    cols: &mut [f64],
    range: (usize, usize),
) {
    let xs = (x, n, n_in);
    let dps = (d, p, _mm256_set1_pd(s));
    let mut k = 0;
    while k + MR <= n_in {
        update_inputs::<MR>(xs, k, dps, cols, range);
        k += MR;
    }
    match n_in - k {
        0 => {}
        1 => update_inputs::<1>(xs, k, dps, cols, range),
        2 => update_inputs::<2>(xs, k, dps, cols, range),
        3 => update_inputs::<3>(xs, k, dps, cols, range),
        4 => update_inputs::<4>(xs, k, dps, cols, range),
        _ => update_inputs::<5>(xs, k, dps, cols, range),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn random(rng: &mut SplitMix64, len: usize) -> Vec<f64> {
        (0..len).map(|_| rng.uniform() * 2.0 - 1.0).collect()
    }

    /// The divergence guard replays an epoch one checked step at a time (guard.rs), and those
    /// steps must round as the fast run's did: a step that may not leave the first layer in
    /// panels still computes in them, and settles after itself.
    #[test]
    fn a_checked_step_rounds_as_a_deferred_one() {
        use crate::{Activation, Loss, MatRef, NeuralNetwork, Targets};
        let net = NeuralNetwork::<f64>::new(
            &[600, 21, 5],
            &[Activation::Relu],
            None,
            Loss::CrossEntropy,
            1,
        )
        .unwrap();
        let mut rng = SplitMix64::new(3);
        let x = random(&mut rng, 32 * 600);
        let classes: Vec<usize> = (0..32).map(|i| (i * 7) % 5).collect();
        let batch = |net: &NeuralNetwork<f64>, r: usize| {
            let xm = MatRef::new(&x[r * 600..(r + 16) * 600], 16, 600).unwrap();
            net.batch(xm, Targets::Classes(&classes[r..r + 16]))
                .unwrap()
        };
        let (mut fast, mut checked) = (net.clone(), net.clone());
        for r in [0, 16] {
            fast.sgd_batch(&batch(&fast, r), None, 0.05, true).unwrap();
            checked
                .sgd_batch(&batch(&checked, r), None, 0.05, false)
                .unwrap();
            assert!(
                !checked.work.first_t.live,
                "a checked step settles after itself"
            );
        }
        assert!(
            fast.work.first_t.live == available(),
            "a deferred step leaves its panels"
        );
        fast.settle_first_layer();
        let params = |n: &NeuralNetwork<f64>| {
            let p = n.parameters();
            p.into_iter()
                .flat_map(|(w, b)| w.into_iter().chain(b))
                .collect::<Vec<_>>()
        };
        assert!(bits(&params(&fast)) == bits(&params(&checked)));
        assert!(
            bits(&params(&fast)) != bits(&params(&net)),
            "the steps changed the weights"
        );
    }

    #[test]
    fn pack_and_unpack_are_inverse_and_pad_with_zeros() {
        let mut rng = SplitMix64::new(5);
        for (n_out, n_in) in [(1, 1), (8, 3), (10, 7), (17, 5)] {
            let w = random(&mut rng, n_out * n_in);
            let mut p = vec![f64::NAN; panels_len(n_out, n_in)];
            pack(&w, n_out, n_in, &mut p);
            let mut back = vec![0.0; w.len()];
            unpack(&p, n_out, n_in, &mut back);
            assert_eq!(back, w);
            let pad = p.len() - w.len();
            assert_eq!(
                p.iter().filter(|v| **v == 0.0).count(),
                pad,
                "{n_out}x{n_in}"
            );
        }
    }

    /// Against plain loops summing in the same order (k ascending, one fused multiply-add per
    /// term within a block, the forward's blocks of inputs added in order): equal bits on
    /// shapes with every row and column tail.
    #[test]
    fn products_equal_plain_loops_in_the_same_order() {
        if !available() {
            return; // nothing to compare: the epoch keeps W and the gemm crate here
        }
        let mut rng = SplitMix64::new(11);
        for (n, n_in, n_out) in [
            (1, 1, 1),
            (7, 13, 9),
            (64, 784, 128),
            (13, 600, 10),
            (6, 257, 16),
        ] {
            let x = random(&mut rng, n * n_in);
            let w = random(&mut rng, n_out * n_in);
            let delta = random(&mut rng, n * n_out);
            let mut p = vec![0.0; panels_len(n_out, n_in)];
            pack(&w, n_out, n_in, &mut p);
            let mut z = vec![f64::NAN; n * n_out];
            forward(&x, (n, n_in), &p, n_out, &mut z, 1);
            for parts in [2, 3] {
                let mut z_parts = vec![f64::NAN; n * n_out];
                forward(&x, (n, n_in), &p, n_out, &mut z_parts, parts);
                assert!(bits(&z_parts) == bits(&z), "z on {parts} threads");
            }
            let blocks = n_in.div_ceil(KC).max(1);
            let per = n_in.div_ceil(blocks);
            for r in 0..n {
                for o in 0..n_out {
                    let mut total = 0.0;
                    for (bi, ks) in (0..n_in).collect::<Vec<_>>().chunks(per).enumerate() {
                        let mut acc = 0.0f64;
                        for &k in ks {
                            acc = x[r * n_in + k].mul_add(w[o * n_in + k], acc);
                        }
                        total = if bi == 0 { acc } else { total + acc };
                    }
                    assert_eq!(
                        z[r * n_out + o].to_bits(),
                        total.to_bits(),
                        "z {n}x{n_in}x{n_out}"
                    );
                }
            }
            let s = -0.0625;
            let mut d = Vec::new();
            let mut p_parts = p.clone();
            add_weight_product(&x, (n, n_in), &delta, n_out, &mut p, s, &mut d, 1);
            add_weight_product(&x, (n, n_in), &delta, n_out, &mut p_parts, s, &mut d, 2);
            assert!(bits(&p_parts) == bits(&p), "W on 2 threads");
            let mut back = vec![0.0; w.len()];
            unpack(&p, n_out, n_in, &mut back);
            for o in 0..n_out {
                for k in 0..n_in {
                    let mut acc = 0.0f64;
                    for r in 0..n {
                        acc = x[r * n_in + k].mul_add(delta[r * n_out + o], acc);
                    }
                    let want = s.mul_add(acc, w[o * n_in + k]);
                    assert_eq!(
                        back[o * n_in + k].to_bits(),
                        want.to_bits(),
                        "W {n}x{n_in}x{n_out}"
                    );
                }
            }
            // The padding of the last panel stays zero.
            let padded = p.iter().filter(|v| **v == 0.0).count();
            assert!(padded >= p.len() - w.len());
        }
    }
}
