//! Activation functions, each with its derivative beside it.
//!
//! The derivative is written with whichever of z (pre-activation) or a = f(z) is cheaper and
//! exact: relu family from z, sigmoid and tanh from a (docs/maths.md, the table).

use crate::error::{value_error, Result};
use crate::float::Real;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    Identity,
    Relu,
    LeakyRelu,
    Sigmoid,
    Tanh,
    /// Row-wise softmax; output layer only, its derivative is folded into cross-entropy.
    Softmax,
    /// exp(z): the inverse of the log link, the output of loss `poisson` (f' = f = a).
    Exp,
}

/// Slope of leaky_relu for z <= 0 (PyTorch's default `negative_slope`).
pub const LEAKY_SLOPE: f64 = 0.01;

/// `per_activation!(act, f => body)`: `body` with `f` bound to the constant variant equal to
/// `act`, one arm per variant, so that a loop in `body` calling `f.f` or `f.derivative` is
/// compiled once per activation with the match folded away (a match per element costs more than
/// a narrow layer's own arithmetic).
macro_rules! per_activation {
    ($act:expr, $f:ident => $body:expr) => {
        match $act {
            Activation::Identity => {
                let $f = Activation::Identity;
                $body
            }
            Activation::Relu => {
                let $f = Activation::Relu;
                $body
            }
            Activation::LeakyRelu => {
                let $f = Activation::LeakyRelu;
                $body
            }
            Activation::Sigmoid => {
                let $f = Activation::Sigmoid;
                $body
            }
            Activation::Tanh => {
                let $f = Activation::Tanh;
                $body
            }
            Activation::Softmax => {
                let $f = Activation::Softmax;
                $body
            }
            Activation::Exp => {
                let $f = Activation::Exp;
                $body
            }
        }
    };
}

impl Activation {
    /// Every activation, in the order error messages and the binding's `ACTIVATIONS` list
    /// them: the one list of activations (`from_name` and `names` go through it).
    pub const ALL: [Activation; 7] = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
        Activation::Exp,
    ];

    /// Other names `from_name` accepts, with the activation each stands for.
    pub const ALIASES: [(&'static str, Activation); 1] = [("linear", Activation::Identity)];

    /// Every name `from_name` accepts, each alias right after the name it stands for.
    pub fn names() -> Vec<&'static str> {
        let mut names = Vec::new();
        for act in Self::ALL {
            names.push(act.name());
            let aliases = Self::ALIASES.iter().filter(|(_, a)| *a == act);
            names.extend(aliases.map(|(alias, _)| *alias));
        }
        names
    }

    /// The accepted names for an error message: 'identity' (alias 'linear'), 'relu', ...
    fn names_text() -> String {
        let quoted = Self::ALL.map(|act| {
            let mut text = format!("'{}'", act.name());
            for (alias, _) in Self::ALIASES.iter().filter(|(_, a)| *a == act) {
                text += &format!(" (alias '{alias}')");
            }
            text
        });
        quoted.join(", ")
    }

    pub fn from_name(name: &str) -> Result<Self> {
        let alias = Self::ALIASES.iter().find(|(alias, _)| *alias == name);
        match Self::ALL.into_iter().find(|act| act.name() == name) {
            Some(act) => Ok(act),
            None => match alias {
                Some(&(_, act)) => Ok(act),
                None => value_error!(
                    "unknown activation {name:?}: expected one of {}",
                    Self::names_text()
                ),
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::Exp => "exp",
        }
    }

    /// a = f(z) for the element-wise activations. Softmax is applied per row by `apply_row`.
    #[inline]
    pub fn f<T: Real>(self, z: T) -> T {
        match self {
            Activation::Identity => z,
            Activation::Relu => {
                if z > T::ZERO {
                    z
                } else {
                    T::ZERO
                }
            }
            Activation::LeakyRelu => {
                if z > T::ZERO {
                    z
                } else {
                    T::from_f64(LEAKY_SLOPE) * z
                }
            }
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => z.tanh(),
            Activation::Softmax => unreachable!("softmax is applied per row"),
            Activation::Exp => z.exp(),
        }
    }

    /// f'(z), given z and a = f(z). Softmax never reaches here: cross-entropy seeds dL/dz.
    #[inline]
    pub fn derivative<T: Real>(self, z: T, a: T) -> T {
        match self {
            Activation::Identity => T::ONE,
            // 0 at z = 0, as PyTorch's relu backward.
            Activation::Relu => {
                if z > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Activation::LeakyRelu => {
                if z > T::ZERO {
                    T::ONE
                } else {
                    T::from_f64(LEAKY_SLOPE)
                }
            }
            Activation::Sigmoid => a * (T::ONE - a),
            Activation::Tanh => T::ONE - a * a,
            Activation::Softmax => unreachable!("softmax derivative is folded into cross_entropy"),
            // d/dz exp(z) = exp(z) = a, exactly the value of the forward pass.
            Activation::Exp => a,
        }
    }

    /// Applies the activation to a batch (n rows of `cols`), row by row for softmax.
    #[inline]
    pub fn apply<T: Real>(self, z: &[T], a: &mut [T], cols: usize) {
        match self {
            Activation::Softmax => {
                for (zk, ak) in z.chunks_exact(cols).zip(a.chunks_exact_mut(cols)) {
                    softmax(zk, ak);
                }
            }
            _ => self.map_f(z, a),
        }
    }

    /// a[i] = f(z[i]), with the match on the activation made once for the row rather than per
    /// element (`per_activation!`): the same operations.
    #[inline(always)]
    fn map_f<T: Real>(self, z: &[T], a: &mut [T]) {
        #[inline(always)]
        fn each<T: Real>(f: Activation, z: &[T], a: &mut [T]) {
            for (ai, &zi) in a.iter_mut().zip(z) {
                *ai = f.f(zi);
            }
        }
        per_activation!(self, f => each(f, z, a))
    }

    /// d[i] *= f'(z[i]) given a[i] = f(z[i]): the chain rule through this activation for one
    /// row of deltas (the layer below's delta from its input gradient), with the match on the
    /// activation made once for the row rather than per element: the same operations. Always
    /// inlined: the per-sample steps compile it into their loop (`kernels::per_cpu`).
    #[inline(always)]
    pub fn scale_by_derivative<T: Real>(self, d: &mut [T], z: &[T], a: &[T]) {
        #[inline(always)]
        fn each<T: Real>(f: Activation, d: &mut [T], z: &[T], a: &[T]) {
            for ((dv, &zv), &av) in d.iter_mut().zip(z).zip(a) {
                *dv *= f.derivative(zv, av);
            }
        }
        per_activation!(self, f => each(f, d, z, a))
    }

    /// Applies the activation to one row of pre-activations: `a[i] = f(z[i])`, or the softmax
    /// (the bits of `apply` on that row). Always inlined: the per-sample steps compile it into
    /// their loop (`kernels::per_cpu`).
    #[inline(always)]
    pub fn apply_row<T: Real>(self, z: &[T], a: &mut [T]) {
        if self == Activation::Softmax {
            softmax(z, a);
        } else {
            self.map_f(z, a);
        }
    }

    /// He-uniform for the relu family (He et al. 2015), Glorot-uniform otherwise
    /// (Glorot & Bengio 2010): the bound of U(-limit, limit).
    pub fn init_limit(self, n_inputs: usize, n_outputs: usize) -> f64 {
        match self {
            Activation::Relu | Activation::LeakyRelu => (6.0 / n_inputs as f64).sqrt(),
            _ => (6.0 / (n_inputs + n_outputs) as f64).sqrt(),
        }
    }
}

/// The logistic function, split at 0 so that exp never overflows.
#[inline]
pub fn sigmoid<T: Real>(z: T) -> T {
    if z >= T::ZERO {
        T::ONE / (T::ONE + (-z).exp())
    } else {
        let e = z.exp();
        e / (T::ONE + e)
    }
}

/// softmax(z)_i = exp(z_i - max z) / sum_j exp(z_j - max z); subtracting the max keeps exp <= 1.
pub fn softmax<T: Real>(z: &[T], a: &mut [T]) {
    softmax_parts(z, a);
}

/// `softmax`, returning log-sum-exp(z) = max z + ln(sum_j exp(z_j - max z)) from its own max
/// and sum: the operations of `loss::log_sum_exp`, in its order, so the same bits, for one
/// exp per output where the two separately take two (`evaluate` of a cross-entropy network).
pub(crate) fn softmax_lse<T: Real>(z: &[T], a: &mut [T]) -> T {
    let (mx, s) = softmax_parts(z, a);
    mx + s.ln()
}

/// `softmax` into `a`; returns its max and sum of exponentials.
#[inline]
fn softmax_parts<T: Real>(z: &[T], a: &mut [T]) -> (T, T) {
    let mx = z.iter().copied().fold(z[0], T::max);
    let mut s = T::ZERO;
    for (ai, &zi) in a.iter_mut().zip(z) {
        *ai = (zi - mx).exp();
        s += *ai;
    }
    for ai in a.iter_mut() {
        *ai /= s;
    }
    (mx, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names the error message lists are those `from_name` takes (the text of the
    /// hand-written list this replaced, which the Python tests also match).
    #[test]
    fn every_listed_name_parses_back() {
        assert_eq!(
            Activation::names_text(),
            "'identity' (alias 'linear'), 'relu', 'leaky_relu', 'sigmoid', 'tanh', 'softmax', \
             'exp'"
        );
        let names = Activation::names();
        assert_eq!(
            names.len(),
            Activation::ALL.len() + Activation::ALIASES.len()
        );
        for name in names {
            assert_eq!(
                Activation::from_name(name).unwrap().name(),
                match name {
                    "linear" => "identity",
                    other => other,
                }
            );
        }
        assert!(Activation::from_name("gelu").is_err());
    }

    #[test]
    fn derivatives_match_central_differences() {
        let eps = 1e-6;
        // Softmax has no element-wise derivative (it is folded into cross_entropy).
        for act in Activation::ALL
            .into_iter()
            .filter(|&a| a != Activation::Softmax)
        {
            for &z in &[-2.5, -0.3, 0.4, 1.7] {
                let numeric = (act.f(z + eps) - act.f(z - eps)) / (2.0 * eps);
                let analytic = act.derivative(z, act.f(z));
                let _: f64 = analytic;
                assert!((numeric - analytic).abs() < 1e-8, "{act:?} at {z}");
            }
        }
    }

    #[test]
    fn relu_derivative_is_zero_at_zero() {
        assert_eq!(Activation::Relu.derivative(0.0, 0.0), 0.0f64);
        assert_eq!(Activation::LeakyRelu.derivative(0.0, 0.0), LEAKY_SLOPE);
    }

    #[test]
    fn sigmoid_and_softmax_survive_huge_inputs() {
        assert_eq!(sigmoid(1e4), 1.0f64);
        assert_eq!(sigmoid(-1e4), 0.0f64);
        assert_eq!(sigmoid(-1e4f32), 0.0f32);
        let mut a = [0.0f64; 3];
        softmax(&[1e4, 0.0, -1e4], &mut a);
        assert_eq!(a, [1.0, 0.0, 0.0]);
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = Activation::from_name("gelu").unwrap_err().to_string();
        assert!(err.contains("gelu") && err.contains("leaky_relu"), "{err}");
        assert_eq!(Activation::from_name("linear"), Ok(Activation::Identity));
    }
}
