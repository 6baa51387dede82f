//! The article's `Neuron`: a row of weights and a bias.
//!
//! In ferrinet a neuron does not own its weights: it is a view of row i of its layer's
//! (n_outputs, n_inputs) weight matrix, so the article's picture holds while the layer keeps one
//! contiguous buffer (erratum 11).

use crate::float::Real;

#[derive(Debug, Clone, Copy)]
pub struct Neuron<'a, T = f64> {
    pub weights: &'a [T], // (n_inputs,)
    pub bias: T,
}

impl<T: Real> Neuron<'_, T> {
    /// Pre-activation z = w . x + b. This is the article's neuron, summed left to right for
    /// reading; layers compute all their neurons at once with the kernels (`Layer::forward`),
    /// which agree with it to a few ulps. A length mismatch panics rather than truncating as
    /// the article's `zip` did (erratum 10).
    pub fn forward(&self, inputs: &[T]) -> T {
        assert_eq!(inputs.len(), self.weights.len(), "neuron input length");
        let mut sum = T::ZERO;
        for (&w, &x) in self.weights.iter().zip(inputs) {
            sum += w * x;
        }
        sum + self.bias
    }
}
