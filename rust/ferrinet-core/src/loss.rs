//! Losses, each defined as PyTorch defines it (mean reduction), with the seed of the chain rule
//! dL/dz of the output layer beside the value. See docs/maths.md for the operation order.

use crate::activation::Activation;
use crate::error::{value_error, Result};
use crate::matrix::{MatRef, Matrix};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Loss {
    /// Mean over batch and outputs of (a - t)^2 (PyTorch `MSELoss`).
    Mse,
    /// Sigmoid output, from logits (PyTorch `BCEWithLogitsLoss`), mean over batch and outputs.
    BinaryCrossEntropy,
    /// Softmax output, mean over the batch of -sum_c t_c log p_c (PyTorch `CrossEntropyLoss`).
    CrossEntropy,
}

/// What a batch is trained towards: one row of m values per sample, or one class per sample.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    Dense(MatRef<'a>),
    Classes(&'a [usize]),
}

impl<'a> Targets<'a> {
    pub fn len(&self) -> usize {
        match self {
            Targets::Dense(t) => t.rows(),
            Targets::Classes(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn rows_range(&self, start: usize, end: usize) -> Targets<'a> {
        match self {
            Targets::Dense(t) => Targets::Dense(t.rows_range(start, end)),
            Targets::Classes(c) => Targets::Classes(&c[start..end]),
        }
    }

    /// t[k][i], with class indices read as one-hot rows.
    #[inline]
    fn get(&self, k: usize, i: usize) -> f64 {
        match self {
            Targets::Dense(t) => t.row(k)[i],
            Targets::Classes(c) => (c[k] == i) as u8 as f64,
        }
    }
}

impl Loss {
    pub const NAMES: &'static str = "'mse', 'binary_cross_entropy', 'cross_entropy'";

    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "mse" => Loss::Mse,
            "binary_cross_entropy" => Loss::BinaryCrossEntropy,
            "cross_entropy" => Loss::CrossEntropy,
            _ => return value_error!("unknown loss {name:?}: expected one of {}", Self::NAMES),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::BinaryCrossEntropy => "binary_cross_entropy",
            Loss::CrossEntropy => "cross_entropy",
        }
    }

    /// The output activation a loss implies when none is given.
    pub fn default_output_activation(self) -> Activation {
        match self {
            Loss::Mse => Activation::Identity,
            Loss::BinaryCrossEntropy => Activation::Sigmoid,
            Loss::CrossEntropy => Activation::Softmax,
        }
    }

    /// The logit losses are defined on z with their own output activation; MSE takes any
    /// element-wise output activation.
    pub fn check_output_activation(self, output: Activation) -> Result<()> {
        let required = match self {
            Loss::Mse if output == Activation::Softmax => {
                return value_error!(
                    "loss 'mse' does not take a softmax output: use loss='cross_entropy' \
                     or another output_activation"
                )
            }
            Loss::Mse => return Ok(()),
            Loss::BinaryCrossEntropy => Activation::Sigmoid,
            Loss::CrossEntropy => Activation::Softmax,
        };
        if output != required {
            return value_error!(
                "loss {:?} needs output_activation {:?} (it is computed from the logits), got {:?}",
                self.name(),
                required.name(),
                output.name()
            );
        }
        Ok(())
    }

    /// Checks targets for a batch of n samples and m outputs: counts, finiteness and ranges.
    pub fn check_targets(self, t: &Targets, n: usize, m: usize) -> Result<()> {
        if t.len() != n {
            return value_error!("got {n} samples but {} targets", t.len());
        }
        match t {
            Targets::Classes(classes) => {
                if self != Loss::CrossEntropy {
                    return value_error!(
                        "class-index targets are for loss 'cross_entropy'; loss {:?} needs \
                         targets of shape (n, {m})",
                        self.name()
                    );
                }
                if let Some((k, &c)) = classes.iter().enumerate().find(|(_, &c)| c >= m) {
                    return value_error!(
                        "class index {c} (sample {k}) is out of range for {m} outputs: \
                         expected 0 <= class < {m}"
                    );
                }
            }
            Targets::Dense(t) => {
                if t.cols() != m {
                    return value_error!(
                        "targets have {} columns, the network has {m} outputs",
                        t.cols()
                    );
                }
                if let Some(pos) = t.as_slice().iter().position(|v| !v.is_finite()) {
                    let (k, i) = (pos / m, pos % m);
                    return value_error!(
                        "targets must be finite, got {} at [{k}, {i}]",
                        t.as_slice()[pos]
                    );
                }
                if self != Loss::Mse {
                    if let Some(pos) = t.as_slice().iter().position(|v| !(0.0..=1.0).contains(v)) {
                        let (k, i) = (pos / m, pos % m);
                        return value_error!(
                            "loss {:?} needs targets in [0, 1], got {} at [{k}, {i}]",
                            self.name(),
                            t.as_slice()[pos]
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// L, the mean loss of a batch, from the output layer's z and a.
    pub fn value(self, z: MatRef, a: MatRef, t: &Targets) -> f64 {
        let (n, m) = (z.rows(), z.cols());
        let mut sum = 0.0;
        match self {
            Loss::Mse => {
                for k in 0..n {
                    for (i, &ai) in a.row(k).iter().enumerate() {
                        let d = ai - t.get(k, i);
                        sum += d * d;
                    }
                }
                sum / (n * m) as f64
            }
            Loss::BinaryCrossEntropy => {
                // max(z,0) - z t + log(1 + exp(-|z|)): never exponentiates a positive number.
                for k in 0..n {
                    for (i, &zi) in z.row(k).iter().enumerate() {
                        sum += (zi.max(0.0) - zi * t.get(k, i)) + (-zi.abs()).exp().ln_1p();
                    }
                }
                sum / (n * m) as f64
            }
            Loss::CrossEntropy => {
                for k in 0..n {
                    let zk = z.row(k);
                    let lse = log_sum_exp(zk);
                    sum += match t {
                        Targets::Classes(c) => 0.0 + (lse - zk[c[k]]),
                        Targets::Dense(_) => {
                            let mut l = 0.0;
                            for (i, &zi) in zk.iter().enumerate() {
                                let ti = t.get(k, i);
                                if ti != 0.0 {
                                    l += ti * (lse - zi);
                                }
                            }
                            l
                        }
                    };
                }
                sum / n as f64
            }
        }
    }

    /// delta = dL/dz of the output layer. The 1/(n m) (or 1/n) of the mean is here: the factor
    /// the article dropped (erratum 7).
    pub fn seed(self, z: MatRef, a: MatRef, t: &Targets, output: Activation, delta: &mut Matrix) {
        let (n, m) = (z.rows(), z.cols());
        match self {
            Loss::Mse => {
                // d/da (a - t)^2 / (n m) = 2 (a - t) / (n m), then times f'(z).
                let c = 2.0 / (n * m) as f64;
                for k in 0..n {
                    let (zk, ak, dk) = (z.row(k), a.row(k), delta.row_mut(k));
                    for i in 0..m {
                        dk[i] = (c * (ak[i] - t.get(k, i))) * output.derivative(zk[i], ak[i]);
                    }
                }
            }
            Loss::BinaryCrossEntropy => {
                // d/dz of the logit form is sigmoid(z) - t.
                let c = 1.0 / (n * m) as f64;
                for k in 0..n {
                    let (ak, dk) = (a.row(k), delta.row_mut(k));
                    for i in 0..m {
                        dk[i] = c * (ak[i] - t.get(k, i));
                    }
                }
            }
            Loss::CrossEntropy => {
                // d/dz_i of -sum_c t_c log softmax(z)_c = softmax(z)_i * sum_c t_c - t_i.
                let c = 1.0 / n as f64;
                for k in 0..n {
                    let total = match t {
                        Targets::Classes(_) => 1.0,
                        Targets::Dense(tt) => tt.row(k).iter().fold(0.0, |s, &v| s + v),
                    };
                    let (ak, dk) = (a.row(k), delta.row_mut(k));
                    for i in 0..m {
                        dk[i] = c * (ak[i] * total - t.get(k, i));
                    }
                }
            }
        }
    }
}

/// log sum_i exp(z_i), computed as max + log sum exp(z_i - max) so nothing overflows.
pub fn log_sum_exp(z: &[f64]) -> f64 {
    let mx = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut s = 0.0;
    for &zi in z {
        s += (zi - mx).exp();
    }
    mx + s.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::sigmoid;

    fn one(z: &[f64]) -> MatRef<'_> {
        MatRef::new(z, 1, z.len()).unwrap()
    }

    #[test]
    fn bce_from_logits_is_finite_at_huge_logits() {
        let z = [1e4, -1e4];
        let a = [sigmoid(1e4), sigmoid(-1e4)];
        let t = [0.0, 1.0];
        let l = Loss::BinaryCrossEntropy.value(one(&z), one(&a), &Targets::Dense(one(&t)));
        // Both samples are wrong by a logit of 1e4: the loss is 1e4 each, mean 1e4.
        assert_eq!(l, 1e4);
    }

    #[test]
    fn cross_entropy_matches_minus_log_softmax() {
        let z = [1.0, 2.0, 3.0];
        let mut a = [0.0; 3];
        crate::activation::softmax(&z, &mut a);
        let l = Loss::CrossEntropy.value(one(&z), one(&a), &Targets::Classes(&[0]));
        assert!((l - (-a[0].ln())).abs() < 1e-15);
        let huge = [1e4, 0.0, 0.0];
        let l =
            Loss::CrossEntropy.value(one(&huge), one(&[1.0, 0.0, 0.0]), &Targets::Classes(&[1]));
        assert_eq!(l, 1e4);
    }

    #[test]
    fn output_activation_rules() {
        assert!(Loss::Mse.check_output_activation(Activation::Tanh).is_ok());
        assert!(Loss::Mse
            .check_output_activation(Activation::Softmax)
            .is_err());
        assert!(Loss::CrossEntropy
            .check_output_activation(Activation::Sigmoid)
            .is_err());
        assert!(Loss::BinaryCrossEntropy
            .check_output_activation(Activation::Sigmoid)
            .is_ok());
    }
}
