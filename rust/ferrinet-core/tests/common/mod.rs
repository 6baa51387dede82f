//! Helpers shared by the integration tests: seeded random networks and data for every
//! (hidden activation, loss, output activation) combination, and bit-level comparisons.
//!
//! Each test file uses only some of these, hence the `allow(dead_code)`.
#![allow(dead_code)]

use ferrinet_core::{Activation, Batch, Loss, MatRef, NeuralNetwork, SplitMix64, Targets};

/// Every activation a hidden layer may use.
pub const HIDDEN: [Activation; 5] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu,
    Activation::Sigmoid,
    Activation::Tanh,
];

/// The output side of a network: a loss, its output activation and the kind of targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    MseIdentity,
    MseTanh,
    MseSigmoid,
    Bce,
    /// cross_entropy with one class index per sample
    CeClasses,
    /// cross_entropy with rows of probabilities (some rows summing to 1, some not)
    CeProbs,
    /// poisson (exp output) with counts and rates >= 0, zeros included
    Poisson,
}

pub const HEADS: [Head; 7] = [
    Head::MseIdentity,
    Head::MseTanh,
    Head::MseSigmoid,
    Head::Bce,
    Head::CeClasses,
    Head::CeProbs,
    Head::Poisson,
];

impl Head {
    pub fn loss(self) -> Loss {
        match self {
            Head::MseIdentity | Head::MseTanh | Head::MseSigmoid => Loss::Mse,
            Head::Bce => Loss::BinaryCrossEntropy,
            Head::CeClasses | Head::CeProbs => Loss::CrossEntropy,
            Head::Poisson => Loss::Poisson,
        }
    }

    pub fn output(self) -> Activation {
        match self {
            Head::MseIdentity => Activation::Identity,
            Head::MseTanh => Activation::Tanh,
            Head::MseSigmoid | Head::Bce => Activation::Sigmoid,
            Head::CeClasses | Head::CeProbs => Activation::Softmax,
            Head::Poisson => Activation::Exp,
        }
    }
}

/// Uniform in [lo, hi).
pub fn uniform_in(rng: &mut SplitMix64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.uniform()
}

/// Uniform integer in lo..=hi.
pub fn int_in(rng: &mut SplitMix64, lo: usize, hi: usize) -> usize {
    lo + (rng.next_u64() % (hi - lo + 1) as u64) as usize
}

pub fn random_vec(rng: &mut SplitMix64, len: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..len).map(|_| uniform_in(rng, lo, hi)).collect()
}

/// Targets that own their data; `view` lends them as `Targets`.
#[derive(Debug, Clone)]
pub enum OwnedTargets {
    Dense { data: Vec<f64>, cols: usize },
    Classes(Vec<usize>),
}

impl OwnedTargets {
    pub fn view(&self) -> Targets<'_> {
        match self {
            OwnedTargets::Dense { data, cols } => {
                Targets::Dense(MatRef::new(data, data.len() / cols, *cols).unwrap())
            }
            OwnedTargets::Classes(c) => Targets::Classes(c),
        }
    }
}

/// Inputs (n, n_inputs) and targets for one network.
#[derive(Debug, Clone)]
pub struct Data {
    pub x: Vec<f64>,
    pub n: usize,
    pub cols: usize,
    pub t: OwnedTargets,
}

impl Data {
    pub fn inputs(&self) -> MatRef<'_> {
        MatRef::new(&self.x, self.n, self.cols).unwrap()
    }

    /// The batch, checked against `net` (panics if it is refused).
    pub fn batch(&self, net: &NeuralNetwork) -> Batch<'_> {
        net.batch(self.inputs(), self.t.view())
            .expect("test data is valid for its network")
    }
}

/// A random network and batch: depth hidden layers of widths 1-8 with the given activation
/// (or one drawn per layer when `hidden` is None), 1-3 outputs (2-3 for cross_entropy),
/// 1-4 samples with inputs in [-1.5, 1.5) and targets valid for the head.
pub fn random_case(
    rng: &mut SplitMix64,
    hidden: Option<Activation>,
    head: Head,
    depth: usize,
) -> (NeuralNetwork, Data) {
    let n_in = int_in(rng, 1, 8);
    let n_out = match head {
        Head::CeClasses | Head::CeProbs => int_in(rng, 2, 3),
        _ => int_in(rng, 1, 3),
    };
    let mut sizes = vec![n_in];
    let mut acts = Vec::new();
    for _ in 0..depth {
        sizes.push(int_in(rng, 1, 8));
        acts.push(hidden.unwrap_or_else(|| HIDDEN[int_in(rng, 0, HIDDEN.len() - 1)]));
    }
    sizes.push(n_out);
    let seed = rng.next_u64();
    let net =
        NeuralNetwork::<f64>::new(&sizes, &acts, Some(head.output()), head.loss(), seed).unwrap();
    let n = int_in(rng, 1, 4);
    let x = random_vec(rng, n * n_in, -1.5, 1.5);
    let t = random_targets(rng, head, n, n_out);
    let data = Data {
        x,
        n,
        cols: n_in,
        t,
    };
    (net, data)
}

pub fn random_targets(rng: &mut SplitMix64, head: Head, n: usize, m: usize) -> OwnedTargets {
    let dense = |data| OwnedTargets::Dense { data, cols: m };
    match head {
        Head::MseIdentity => dense(random_vec(rng, n * m, -1.0, 1.0)),
        Head::MseTanh => dense(random_vec(rng, n * m, -0.9, 0.9)),
        Head::MseSigmoid => dense(random_vec(rng, n * m, 0.05, 0.95)),
        Head::Bce => dense(
            (0..n * m)
                .map(|_| match int_in(rng, 0, 3) {
                    0 => 0.0,
                    1 => 1.0,
                    _ => rng.uniform(),
                })
                .collect(),
        ),
        Head::Poisson => dense(
            (0..n * m)
                .map(|_| match int_in(rng, 0, 2) {
                    0 => 0.0,                        // exercises 0 ln 0 = 0
                    1 => int_in(rng, 1, 5) as f64,   // counts
                    _ => uniform_in(rng, 0.05, 3.0), // rates
                })
                .collect(),
        ),
        Head::CeClasses => OwnedTargets::Classes((0..n).map(|_| int_in(rng, 0, m - 1)).collect()),
        Head::CeProbs => {
            let mut data = Vec::with_capacity(n * m);
            for _ in 0..n {
                let mut row = random_vec(rng, m, 0.0, 1.0);
                if int_in(rng, 0, 2) == 0 {
                    row[int_in(rng, 0, m - 1)] = 0.0; // exercises the t == 0 skip
                }
                if int_in(rng, 0, 1) == 0 {
                    // A distribution; otherwise the row's sum T_k is not 1.
                    let s: f64 = row.iter().sum();
                    if s > 0.0 {
                        row.iter_mut().for_each(|v| *v /= s);
                    }
                }
                data.extend(row);
            }
            dense(data)
        }
    }
}

/// Every parameter's bits, layer by layer, W then b.
pub fn param_bits(net: &NeuralNetwork) -> Vec<u64> {
    net.parameters()
        .into_iter()
        .flat_map(|(w, b)| w.into_iter().chain(b))
        .map(f64::to_bits)
        .collect()
}

pub fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The forward pass written out with the article's objects: for each sample, each layer's
/// neuron i gives z_i = `Neuron::forward`, then the layer's activation is applied to the row.
/// Returns, per layer, (z, a) as (n, n_out) row-major buffers.
pub fn manual_forward(net: &NeuralNetwork, x: MatRef) -> Vec<(Vec<f64>, Vec<f64>)> {
    let mut out: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    for (l, layer) in net.layers().iter().enumerate() {
        let (mut zs, mut as_) = (Vec::new(), Vec::new());
        for k in 0..x.rows() {
            let input: &[f64] = if l == 0 {
                x.row(k)
            } else {
                let prev = &out[l - 1].1;
                let w = layer.n_inputs();
                &prev[k * w..(k + 1) * w]
            };
            let z: Vec<f64> = layer.neurons().map(|nr| nr.forward(input)).collect();
            let mut a = vec![0.0; z.len()];
            layer.activation().apply_row(&z, &mut a);
            zs.extend_from_slice(&z);
            as_.extend(a);
        }
        out.push((zs, as_));
    }
    out
}

/// The smallest |z| over the relu / leaky_relu units of the network on x: finite differences
/// across a kink measure neither one-sided derivative, so the gradient check keeps away.
pub fn kink_margin(net: &NeuralNetwork, x: MatRef) -> f64 {
    let cached = manual_forward(net, x);
    net.layers()
        .iter()
        .zip(&cached)
        .filter(|(layer, _)| matches!(layer.activation(), Activation::Relu | Activation::LeakyRelu))
        .flat_map(|(_, (z, _))| z.iter().map(|v| v.abs()))
        .fold(f64::INFINITY, f64::min)
}

/// Agreement the fast kernels promise with the documented left-to-right sums in f64: they sum
/// each dot product in 8 interleaved lanes with FMA (src/kernels.rs; batches in the `gemm`
/// crate's own order), so results differ from a plain `s += w * x` loop, and from each other,
/// by a few ulps of the terms' magnitude. 1e-12 relative is ~4500 ulps: far above that
/// rounding (measured worst 2.7e-14 on the tests' shapes, 2.3e-13 with 784-term sums), far
/// below any real error.
pub const KERNEL_REL: f64 = 1e-12;

/// |a - b| / max(|a|, |b|, floor): relative, except for values below `floor` in magnitude,
/// which are compared absolutely at the scale of `floor` (a sum that cancels to near 0 keeps
/// the absolute rounding error of its terms, not one relative to its own size).
pub fn rel_diff(a: f64, b: f64, floor: f64) -> f64 {
    if a.to_bits() == b.to_bits() {
        return 0.0;
    }
    (a - b).abs() / a.abs().max(b.abs()).max(floor)
}

/// Asserts that `got` and `expected` have the same length and agree to `rel` (see `rel_diff`);
/// returns the worst relative difference seen.
#[track_caller]
pub fn assert_close(got: &[f64], expected: &[f64], rel: f64, floor: f64, what: &str) -> f64 {
    assert_eq!(got.len(), expected.len(), "{what}: lengths differ");
    let mut worst = 0.0f64;
    for (i, (&a, &b)) in got.iter().zip(expected).enumerate() {
        let d = rel_diff(a, b, floor);
        assert!(
            d <= rel,
            "{what}: element {i}: {a:e} vs {b:e}, relative difference {d:e} > {rel:e}"
        );
        worst = worst.max(d);
    }
    worst
}

/// Every parameter, layer by layer, W then b.
pub fn flat_params(net: &NeuralNetwork) -> Vec<f64> {
    net.parameters()
        .into_iter()
        .flat_map(|(w, b)| w.into_iter().chain(b))
        .collect()
}

/// `assert_close` with the largest |value| of `expected` as the floor: for a tensor of sums (a
/// gradient, a layer's output), the rounding error of each entry is relative to the size of
/// the terms it sums, not to the entry itself, which may cancel to near 0; the tensor's
/// largest entry is the stand-in for that size.
#[track_caller]
pub fn assert_close_scaled(got: &[f64], expected: &[f64], rel: f64, what: &str) -> f64 {
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_close(got, expected, rel, scale.max(f64::MIN_POSITIVE), what)
}
