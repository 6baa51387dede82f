//! The article's `Layer`: neurons that read the same inputs. Weights live in one contiguous
//! row-major (n_outputs, n_inputs) buffer; row i is neuron i (see `Layer::neuron`).

use crate::activation::Activation;
use crate::chunks;
use crate::error::{value_error, Error, Result};
use crate::float::Real;
use crate::kernels::{self, per_cpu, Threads};
use crate::matrix::{checked_len, try_resize, MatRef, Matrix};
use crate::network;
use crate::neuron::Neuron;
use crate::panels;
use crate::rng::SplitMix64;
use crate::step_bound::max_abs;

#[derive(Debug, Clone, PartialEq)]
pub struct Layer<T = f64> {
    n_inputs: usize,
    n_outputs: usize,
    weights: Vec<T>, // (n_outputs, n_inputs), row i = neuron i's weights
    biases: Vec<T>,  // (n_outputs,)
    activation: Activation,
    bound: ParameterBound,
}

/// An upper bound on max |parameter| (weights and biases) of the layer, kept by the proven
/// per-sample step (`prove_step`, `sgd_sample_proven`) so that the next step can be proven
/// finite from it without looking at the parameters; infinite when unknown. Every other method
/// that changes the parameters forgets it (they are private to this file, so none can
/// forget to). Not part of the layer's value: two layers with the same parameters are equal
/// either way.
#[derive(Debug, Clone, Copy)]
struct ParameterBound(f64);

impl ParameterBound {
    const UNKNOWN: ParameterBound = ParameterBound(f64::INFINITY);
}

impl PartialEq for ParameterBound {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A quarter of T's largest finite value, as f64: a parameter below it plus a step below it is
/// at most half of T's largest value, and rounds to a finite value.
fn step_limit<T: Real>() -> f64 {
    T::MAX_FINITE.to_f64() * 0.25
}

/// The margin a carried bound gets for the rounding of one step: a written value is
/// fl(w + fl(s x)) (or fl(w + s x) with a multiply-add), at most (|w| + |s| |x|) (1 + u)^2 plus
/// twice half the smallest subnormal, u = 2^-24 in f32. 2^-10 relative and 1e-30 absolute cover
/// both with room (the bound is recomputed when it gets too loose: `prove_step`).
const BOUND_ROUNDING: f64 = 1.0 + 1.0 / 1024.0;
const BOUND_SUBNORMAL: f64 = 1e-30;

/// dL/dW and dL/db of one layer, shaped like the layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerGradient<T = f64> {
    pub weights: Vec<T>, // (n_outputs, n_inputs)
    pub biases: Vec<T>,  // (n_outputs,)
}

impl<T> Default for LayerGradient<T> {
    fn default() -> Self {
        LayerGradient {
            weights: Vec::new(),
            biases: Vec::new(),
        }
    }
}

impl<T: Real> Layer<T> {
    /// A layer with seeded uniform weights (He or Glorot bound by the layer's own activation,
    /// `Activation::init_limit`) drawn in row-major order, and zero biases. The draws are made
    /// in f64 and rounded, so an f32 network starts from the f64 network's weights, rounded.
    pub fn new(
        n_inputs: usize,
        n_outputs: usize,
        activation: Activation,
        rng: &mut SplitMix64,
    ) -> Result<Self> {
        Self::new_until(n_inputs, n_outputs, activation, rng, &mut chunks::never)
    }

    /// `new`, with a call of `stop` before each `STOP_EVERY` weights drawn (chunks.rs): the
    /// same weights, and `Error::Interrupted` when `stop` answers true.
    pub fn new_until(
        n_inputs: usize,
        n_outputs: usize,
        activation: Activation,
        rng: &mut SplitMix64,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Self> {
        check_width(n_inputs, n_outputs)?;
        let len = checked_len(n_outputs, n_inputs)?;
        let mut weights = chunks::reserve(len)?;
        let mut biases = Vec::new();
        try_resize(&mut biases, n_outputs)?;
        let limit = activation.init_limit(n_inputs, n_outputs);
        while weights.len() < len {
            if stop() {
                return Err(Error::Interrupted);
            }
            let n = chunks::STOP_EVERY.min(len - weights.len());
            weights.extend((0..n).map(|_| T::from_f64(limit * (2.0 * rng.uniform() - 1.0))));
        }
        Ok(Layer {
            n_inputs,
            n_outputs,
            weights,
            biases,
            activation,
            bound: ParameterBound::UNKNOWN,
        })
    }

    /// A layer from given parameters; shapes and finiteness are checked.
    pub fn from_parts(
        n_inputs: usize,
        n_outputs: usize,
        weights: Vec<T>,
        biases: Vec<T>,
        activation: Activation,
    ) -> Result<Self> {
        check_parameters(n_inputs, n_outputs, &weights, &biases)?;
        Ok(Layer {
            n_inputs,
            n_outputs,
            weights,
            biases,
            activation,
            bound: ParameterBound::UNKNOWN,
        })
    }

    /// A copy of the layer, its weights copied `STOP_EVERY` values at a time with a call of
    /// `stop` before each chunk (`Error::Interrupted` when it answers true).
    pub fn copy_until(&self, stop: &mut dyn FnMut() -> bool) -> Result<Self> {
        Ok(Layer {
            weights: chunks::copy_until(&self.weights, stop)?,
            biases: self.biases.clone(),
            ..*self
        })
    }

    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// (n_outputs, n_inputs), row-major.
    pub fn weights(&self) -> &[T] {
        &self.weights
    }

    pub fn biases(&self) -> &[T] {
        &self.biases
    }

    /// Weights and biases, mutably: for optimizers, which keep shapes.
    pub(crate) fn parameters_mut(&mut self) -> (&mut [T], &mut [T]) {
        self.bound = ParameterBound::UNKNOWN;
        (&mut self.weights, &mut self.biases)
    }

    /// Neuron i: a view of row i of the weights and bias i.
    pub fn neuron(&self, i: usize) -> Neuron<'_, T> {
        Neuron {
            weights: &self.weights[i * self.n_inputs..(i + 1) * self.n_inputs],
            bias: self.biases[i],
        }
    }

    pub fn neurons(&self) -> impl Iterator<Item = Neuron<'_, T>> {
        (0..self.n_outputs).map(|i| self.neuron(i))
    }

    /// Replaces the parameters after checking their shapes and values.
    pub fn set_parameters(&mut self, weights: Vec<T>, biases: Vec<T>) -> Result<()> {
        check_parameters(self.n_inputs, self.n_outputs, &weights, &biases)?;
        self.replace_checked(weights, biases);
        Ok(())
    }

    /// `set_parameters`' checks of (weights, biases) for this layer, the finite check made
    /// `STOP_EVERY` values at a time with a call of `stop` before each chunk
    /// (`Error::Interrupted` when it answers true).
    pub(crate) fn check_parameters_until(
        &self,
        weights: &[T],
        biases: &[T],
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<()> {
        check_shapes(self.n_inputs, self.n_outputs, weights.len(), biases.len())?;
        for chunk in weights.chunks(chunks::STOP_EVERY) {
            if stop() {
                return Err(Error::Interrupted);
            }
            check_finite(chunk)?;
        }
        check_finite(biases)
    }

    /// Puts in parameters already checked (shapes and finite values).
    pub(crate) fn replace_checked(&mut self, weights: Vec<T>, biases: Vec<T>) {
        self.bound = ParameterBound::UNKNOWN;
        self.weights = weights;
        self.biases = biases;
    }

    /// z = x W^T + b alone for a batch x of shape (n, n_inputs), f not applied: what a loss
    /// that reads only z needs of the output layer (`Loss::reads_only_z`). The same bits of z
    /// as `forward`, which adds the bias in the same place and applies f after.
    pub(crate) fn forward_z(
        &self,
        x: MatRef<T>,
        z: &mut Matrix<T>,
        threads: Threads,
    ) -> Result<()> {
        self.forward_into(x, z, None, threads)
    }

    /// z = x W^T + b and a = f(z) for a batch x of shape (n, n_inputs), into reused buffers:
    /// every neuron's `forward` on every sample at once (the article's picture, batched).
    pub fn forward(
        &self,
        x: MatRef<T>,
        z: &mut Matrix<T>,
        a: &mut Matrix<T>,
        threads: Threads,
    ) -> Result<()> {
        self.forward_into(x, z, Some(a), threads)
    }

    /// `forward` (a given) or `forward_z` (a None).
    fn forward_into(
        &self,
        x: MatRef<T>,
        z: &mut Matrix<T>,
        mut a: Option<&mut Matrix<T>>,
        threads: Threads,
    ) -> Result<()> {
        let n = x.rows();
        z.resize(n, self.n_outputs)?;
        if let Some(a) = a.as_deref_mut() {
            a.resize(n, self.n_outputs)?;
        }
        if n == 1 {
            // One sample (every step of `train` and `backward`): what `linear_forward` does for
            // one row, without its setup for products, which costs more than a narrow layer's
            // own multiply-adds.
            kernels::gemv_bias(&self.weights, x.as_slice(), &self.biases, z.as_mut_slice());
            if let Some(a) = a {
                self.activation
                    .apply(z.as_slice(), a.as_mut_slice(), self.n_outputs);
            }
            return Ok(());
        }
        // z and a in one go: the bias and f are applied to each block of z as its product
        // finishes (kernels::linear_forward).
        kernels::linear_forward(
            x.as_slice(),
            n,
            &self.weights,
            &self.biases,
            z.as_mut_slice(),
            a.map(|a| (self.activation, a.as_mut_slice())),
            threads,
        );
        Ok(())
    }

    /// Given delta = dL/dz (n, n_outputs) and the input x (n, n_inputs) of the forward pass:
    ///   dW = delta^T x,  db = sum over samples of delta,  dx = delta W.
    /// dx is computed with the weights of the forward pass (nothing is updated here: erratum 3)
    /// and only when asked (the first layer's dx is never needed).
    pub fn backward(
        &self,
        x: MatRef<T>,
        delta: MatRef<T>,
        grad: &mut LayerGradient<T>,
        dx: Option<&mut Matrix<T>>,
        threads: Threads,
    ) -> Result<()> {
        let n = x.rows();
        try_resize(&mut grad.weights, self.weights.len())?;
        try_resize(&mut grad.biases, self.n_outputs)?;
        kernels::linear_weight_grad(
            delta.as_slice(),
            x.as_slice(),
            n,
            &mut grad.weights,
            &mut grad.biases,
            threads,
        );
        if let Some(dx) = dx {
            dx.resize(n, self.n_inputs)?;
            kernels::linear_input_grad(
                delta.as_slice(),
                n,
                &self.weights,
                dx.as_mut_slice(),
                threads,
            );
        }
        Ok(())
    }

    /// One plain-SGD step of this layer from its delta: W -= lr dW, b -= lr db, with dx (when
    /// asked) from the weights before the update (erratum 3). Where dW is a matrix product
    /// (`kernels::weight_grad_is_gemm`), the update is made inside that product
    /// (`kernels::sgd_through_weight_grad`: dW is never written out and read back, and rounds
    /// once instead of twice); elsewhere it is `backward` then `apply_gradient`, bit for bit.
    pub(crate) fn sgd_backward(
        &mut self,
        x: MatRef<T>,
        delta: MatRef<T>,
        grad: &mut LayerGradient<T>,
        dx: Option<&mut Matrix<T>>,
        learning_rate: T,
        threads: Threads,
    ) -> Result<()> {
        self.bound = ParameterBound::UNKNOWN;
        let n = x.rows();
        if !kernels::weight_grad_is_gemm(n, self.n_inputs, self.n_outputs) {
            self.backward(x, delta, grad, dx, threads)?;
            self.apply_gradient(grad, learning_rate);
            return Ok(());
        }
        if let Some(dx) = dx {
            dx.resize(n, self.n_inputs)?;
            let dx = dx.as_mut_slice();
            kernels::linear_input_grad(delta.as_slice(), n, &self.weights, dx, threads);
        }
        try_resize(&mut grad.biases, self.n_outputs)?;
        kernels::sgd_through_weight_grad(
            delta.as_slice(),
            x.as_slice(),
            n,
            &mut self.weights,
            &mut self.biases,
            &mut grad.biases,
            learning_rate,
            threads,
        );
        Ok(())
    }

    /// `forward` of a GEMM-sized batch (`kernels::forward_is_gemm`) from this layer's weights
    /// kept in their product layout `wt` by an epoch (`TransposedFirst`): panels of neurons
    /// (panels.rs), which round as their own kernel does; or, without AVX2, W^T (in, out), the
    /// same bits as `forward` on the weights `wt` holds.
    pub(crate) fn forward_transposed(
        &self,
        wt: &[T],
        x: MatRef<T>,
        z: &mut Matrix<T>,
        a: &mut Matrix<T>,
        threads: Threads,
    ) -> Result<()> {
        let n = x.rows();
        z.resize(n, self.n_outputs)?;
        a.resize(n, self.n_outputs)?;
        let activate = Some((self.activation, a.as_mut_slice()));
        let (x, b, z) = (x.as_slice(), &self.biases, z.as_mut_slice());
        if network::in_panels() {
            kernels::linear_forward_panels(x, n, self.n_inputs, wt, b, z, activate, threads);
        } else {
            kernels::linear_forward_transposed(x, n, wt, b, z, activate, threads);
        }
        Ok(())
    }

    /// `sgd_backward` of a GEMM-sized batch without dx (a first layer), on this layer's biases
    /// and its weights kept transposed in `wt` (`kernels::sgd_through_weight_grad_transposed`:
    /// the same bits).
    pub(crate) fn sgd_backward_transposed(
        &mut self,
        wt: &mut [T],
        x: MatRef<T>,
        delta: MatRef<T>,
        grad: &mut LayerGradient<T>,
        learning_rate: T,
        threads: Threads,
    ) -> Result<()> {
        self.bound = ParameterBound::UNKNOWN;
        try_resize(&mut grad.biases, self.n_outputs)?;
        if network::in_panels() {
            let (d, x, n) = (delta.as_slice(), x.as_slice(), x.rows());
            let (b, db) = (&mut self.biases, &mut grad.biases);
            kernels::sgd_through_weight_grad_panels(d, x, n, wt, b, db, learning_rate, threads);
            return Ok(());
        }
        kernels::sgd_through_weight_grad_transposed(
            delta.as_slice(),
            x.as_slice(),
            x.rows(),
            wt,
            &mut self.biases,
            &mut grad.biases,
            learning_rate,
            threads,
        );
        Ok(())
    }

    /// `backward` of a GEMM-sized batch without dx (a first layer) whose weights an epoch
    /// keeps in panels (`TransposedFirst`): the weight gradient into `grad.weights` in the
    /// same panels (as long as they are), for the optimizer to step them in place.
    pub(crate) fn backward_panels(
        &self,
        x: MatRef<T>,
        delta: MatRef<T>,
        grad: &mut LayerGradient<T>,
        threads: Threads,
    ) -> Result<()> {
        try_resize(
            &mut grad.weights,
            panels::panels_len::<T>(self.n_outputs, self.n_inputs),
        )?;
        try_resize(&mut grad.biases, self.n_outputs)?;
        let (d, xs, n) = (delta.as_slice(), x.as_slice(), x.rows());
        let (g, db) = (&mut grad.weights, &mut grad.biases);
        kernels::linear_weight_grad_panels(d, xs, n, g, db, threads);
        Ok(())
    }

    /// Plain SGD: W -= learning_rate dW, b -= learning_rate db.
    pub fn apply_gradient(&mut self, grad: &LayerGradient<T>, learning_rate: T) {
        self.bound = ParameterBound::UNKNOWN;
        for (w, &g) in self.weights.iter_mut().zip(&grad.weights) {
            *w -= learning_rate * g;
        }
        for (b, &g) in self.biases.iter_mut().zip(&grad.biases) {
            *b -= learning_rate * g;
        }
    }

    /// `forward` of one sample into rows z and a (n_outputs values each, sized by the caller),
    /// with the kernels of `FMA` (`kernels::per_cpu`): the bits of `forward` with n = 1.
    #[inline(always)]
    pub(crate) fn forward_row<const FMA: bool>(&self, x: &[T], z: &mut [T], a: &mut [T]) {
        per_cpu::gemv_bias::<T, FMA>(&self.weights, x, &self.biases, z);
        self.activation.apply_row(z, a);
    }

    /// `sgd_sample` with the kernels of `FMA` (`kernels::per_cpu`), for a per-sample loop that
    /// dispatches once per call.
    #[inline(always)]
    pub(crate) fn sgd_row<const FMA: bool>(
        &mut self,
        x: &[T],
        delta: &[T],
        learning_rate: T,
        dx: Option<&mut [T]>,
    ) {
        self.bound = ParameterBound::UNKNOWN;
        let (w, b) = (&mut self.weights, &mut self.biases);
        per_cpu::sgd_rank1::<T, FMA>(w, b, delta, x, learning_rate, dx);
    }

    /// One sample's fused SGD step (see `kernels::sgd_rank1`): with `dx`, also the gradient
    /// for the layer below, from the weights before the update.
    pub(crate) fn sgd_sample(
        &mut self,
        x: &[T],
        delta: &[T],
        learning_rate: T,
        dx: Option<&mut [T]>,
    ) {
        self.bound = ParameterBound::UNKNOWN;
        kernels::sgd_rank1(
            &mut self.weights,
            &mut self.biases,
            delta,
            x,
            learning_rate,
            dx,
        );
    }

    /// The previous sample's fused SGD step (`sgd_sample` without `dx`, for the sample
    /// `x_prev` with error `delta_prev`), then this sample's forward pass into rows z and a
    /// (n_outputs values each), in one pass over W (see `kernels::sgd_rank1_gemv`), with the
    /// kernels of `FMA` (`kernels::per_cpu`).
    #[inline(always)]
    pub(crate) fn sgd_then_forward<const FMA: bool>(
        &mut self,
        x_prev: &[T],
        delta_prev: &[T],
        learning_rate: T,
        x: &[T],
        z: &mut [T],
        a: &mut [T],
    ) {
        self.bound = ParameterBound::UNKNOWN;
        per_cpu::sgd_rank1_gemv::<T, FMA>(
            &mut self.weights,
            &mut self.biases,
            delta_prev,
            x_prev,
            learning_rate,
            x,
            z,
        );
        self.activation.apply_row(z, a);
    }

    /// Whether the per-sample step of `sgd_sample_proven` (input `x`, error `delta`) is sure to
    /// leave every parameter finite: with s_i = lr delta_i, a written value is w + s_i x_j (or
    /// b + s_i), at most B + G in magnitude, B = max |parameter| and G = max |s_i| max(1, |x_j|);
    /// when B and G are both below `step_limit()` that is below half the largest finite value.
    /// B is the bound carried from the last proven step, O(n_inputs + n_outputs) per step; only
    /// when it is unknown (another method changed the parameters) or too loose to prove the step
    /// is it measured (one pass over the parameters). Some(bound after the step) when proven.
    /// Always inlined: `backward`'s one-sample step compiles it into its copy for the CPU's
    /// kernels (`kernels::per_cpu`).
    #[inline(always)]
    pub(crate) fn prove_step(&mut self, x: &[T], delta: &[T], learning_rate: T) -> Option<f64> {
        let limit = step_limit::<T>();
        let (x_finite, x_max) = max_abs_from(T::ONE, x.iter().copied());
        let (s_finite, s_max) = max_abs_from(T::ZERO, delta.iter().map(|&d| learning_rate * d));
        if !(x_finite && s_finite) {
            return None;
        }
        let growth = s_max.to_f64() * x_max.to_f64();
        if growth >= limit {
            return None;
        }
        if self.bound.0 >= limit {
            let measured = max_abs(&self.weights).max(max_abs(&self.biases));
            self.bound = ParameterBound(measured);
            if measured >= limit {
                return None;
            }
        }
        Some((self.bound.0 + growth) * BOUND_ROUNDING + BOUND_SUBNORMAL)
    }

    /// The fused per-sample step of `sgd_sample` (without dx: the same bits), for a step that
    /// `prove_step` proved finite: no value is checked, and `bound` (what `prove_step` gave) is
    /// kept for the next step's proof. The kernels are those of `FMA` (`kernels::per_cpu`).
    #[inline(always)]
    pub(crate) fn sgd_sample_proven<const FMA: bool>(
        &mut self,
        x: &[T],
        delta: &[T],
        learning_rate: T,
        bound: f64,
    ) {
        let (w, b) = (&mut self.weights, &mut self.biases);
        per_cpu::sgd_rank1::<T, FMA>(w, b, delta, x, learning_rate, None);
        self.bound = ParameterBound(bound);
    }

    pub(crate) fn all_finite(&self) -> bool {
        let finite = |v: &[T]| v.iter().fold(true, |ok, &x| ok & x.is_finite());
        finite(&self.weights) & finite(&self.biases)
    }
}

/// (whether every value is finite, max(start, max |v|)): one compare per value (not `max`,
/// whose NaN rule costs more), and a separate finite test that sees NaN as well as infinity.
#[inline(always)]
fn max_abs_from<T: Real>(start: T, values: impl Iterator<Item = T>) -> (bool, T) {
    values.fold((true, start), |(ok, m), v| {
        let a = v.abs();
        (ok & a.is_finite(), if a > m { a } else { m })
    })
}

fn check_width(n_inputs: usize, n_outputs: usize) -> Result<()> {
    if n_inputs == 0 || n_outputs == 0 {
        return value_error!(
            "a layer needs at least one input and one output, got ({n_outputs}, {n_inputs})"
        );
    }
    Ok(())
}

fn check_parameters<T: Real>(
    n_inputs: usize,
    n_outputs: usize,
    weights: &[T],
    biases: &[T],
) -> Result<()> {
    check_shapes(n_inputs, n_outputs, weights.len(), biases.len())?;
    check_finite(weights)?;
    check_finite(biases)
}

/// The shapes part of `check_parameters`, from the lengths of weights and biases.
fn check_shapes(
    n_inputs: usize,
    n_outputs: usize,
    n_weights: usize,
    n_biases: usize,
) -> Result<()> {
    check_width(n_inputs, n_outputs)?;
    if n_weights as u128 != n_inputs as u128 * n_outputs as u128 {
        return value_error!(
            "weights must have shape ({n_outputs}, {n_inputs}) = {} values, got {}",
            n_inputs as u128 * n_outputs as u128,
            n_weights
        );
    }
    if n_biases != n_outputs {
        return value_error!("biases must have shape ({n_outputs},), got {n_biases} values");
    }
    Ok(())
}

/// The finite part of `check_parameters`.
fn check_finite<T: Real>(values: &[T]) -> Result<()> {
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return value_error!("weights and biases must be finite, got {v}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random one-sample steps, with inputs and errors from subnormal to large: the bound a
    /// proven step carries is never below the largest parameter it leaves, in either type.
    fn carried_bound_holds<T: Real>() {
        let mut rng = SplitMix64::new(7);
        for case in 0..40 {
            let (n_in, n_out) = (1 + case % 9, 1 + (case * 7) % 13);
            let mut layer = Layer::<T>::new(n_in, n_out, Activation::Relu, &mut rng).unwrap();
            for step in 0..200 {
                // magnitudes 10^-40 .. 10^6: subnormal in f32 at the low end
                let mut draw = |lo: f64, hi: f64| {
                    let e = lo + (hi - lo) * rng.uniform();
                    T::from_f64((2.0 * rng.uniform() - 1.0) * 10f64.powf(e))
                };
                let x: Vec<T> = (0..n_in).map(|_| draw(-40.0, 3.0)).collect();
                let delta: Vec<T> = (0..n_out).map(|_| draw(-40.0, 3.0)).collect();
                let lr = T::from_f64(10f64.powi(-(step % 5)));
                let bound = layer
                    .prove_step(&x, &delta, lr)
                    .expect("a small step is proven");
                layer.sgd_sample_proven::<false>(&x, &delta, lr, bound);
                let actual = max_abs(&layer.weights).max(max_abs(&layer.biases));
                assert!(actual <= layer.bound.0, "case {case} step {step}");
            }
        }
    }

    #[test]
    fn the_carried_bound_is_an_upper_bound() {
        carried_bound_holds::<f32>();
        carried_bound_holds::<f64>();
    }

    /// A carried bound too loose to prove a step is measured again instead of refusing it;
    /// every other change of the parameters forgets it; a step too large is refused.
    #[test]
    fn a_loose_or_forgotten_bound_is_measured_again() {
        let mut rng = SplitMix64::new(8);
        let mut layer = Layer::<f32>::new(3, 2, Activation::Tanh, &mut rng).unwrap();
        let (x, delta) = ([0.5f32, -1.0, 2.0], [0.25f32, -0.5]);
        layer.bound = ParameterBound(step_limit::<f32>() * 3.0);
        let bound = layer
            .prove_step(&x, &delta, 0.1)
            .expect("measured, then proven");
        assert!(bound < 10.0, "the bound was measured: {bound}");
        layer.sgd_sample_proven::<false>(&x, &delta, 0.1, bound);
        layer.apply_gradient(
            &LayerGradient {
                weights: vec![0.0; 6],
                biases: vec![0.0; 2],
            },
            1.0,
        );
        assert_eq!(layer.bound.0, f64::INFINITY);
        assert!(layer.prove_step(&x, &delta, 0.1).is_some());
        assert_eq!(layer.prove_step(&x, &delta, f32::MAX), None);
        let mut huge = layer.clone();
        let (mut w, b) = (huge.weights.clone(), huge.biases.clone());
        w[0] = f32::MAX * 0.5;
        huge.set_parameters(w, b).unwrap();
        assert_eq!(huge.prove_step(&x, &delta, 0.1), None);
    }

    /// A NaN input (a hidden activation can be NaN while the loss is finite, e.g. leaky_relu of
    /// inf - inf under a relu output) or a NaN error is not proven: the step would write NaN.
    #[test]
    fn a_nan_input_or_error_is_not_proven() {
        let mut rng = SplitMix64::new(9);
        let mut layer = Layer::<f64>::new(3, 2, Activation::Relu, &mut rng).unwrap();
        let ok = ([0.5, -1.0, 2.0], [0.25, -0.5]);
        assert!(layer.prove_step(&ok.0, &ok.1, 0.1).is_some());
        for bad in [f64::NAN, f64::INFINITY] {
            assert_eq!(layer.prove_step(&[0.5, bad, 2.0], &ok.1, 0.1), None);
            assert_eq!(layer.prove_step(&[bad, -1.0, 2.0], &ok.1, 0.1), None);
            assert_eq!(layer.prove_step(&ok.0, &[0.25, bad], 0.1), None);
        }
    }
}
