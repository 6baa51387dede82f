//! Proving an optimizer step finite before it is taken, so that an epoch's divergence guard
//! needs no copy of the weights and the optimizer state (for Adam three times the weights).
//!
//! The guard's promise: a step that would make a weight non-finite is not taken, and the
//! network and the training state stay those before it. `guarded_deferred` (guard.rs) keeps it
//! with a snapshot of everything at the start of the call. Here each tensor instead carries upper
//! bounds on max |w|, max |m| and max v (its optimizer buffers: moment or momentum buffer, and
//! second moment with AMSGrad's running max), and each step gets a bound on its gradient,
//! max |g|. The optimizer's per-element formula (optimizer.rs, kernels.rs) maps these bounds
//! to bounds after the step; when every value the formula computes stays below
//! `LIMIT` (T's largest finite value / 2^16: room for the rounding of each operation), every
//! value the step writes is finite, and the step is taken as it is, with no copy. Bounds
//! carried from step to step grow looser (Adam's W' below adds lr M' / eps each step, and
//! with weight decay or L2 grows by a factor): when they no longer prove a step they are
//! measured again (one pass over the tensor and its state). Only when the exact ones do not
//! prove it either (a run that diverges) does the step copy what it changes, check the
//! weights after it, and put the copy back when one is not finite.
//!
//! Bounds, with G the gradient bound, W, M, V the tensor's (all magnitudes, per element):
//! ```text
//! coupled weight decay     g' = g + wd w                    |g'| <= G + wd W  =: G'
//! SGD                      w' = w - lr g'                   W' = W + lr G'
//!   momentum               b' = mu b + (1 - d) g'  (t = 1: g')        B' = mu M + G'
//!   Nesterov / plain       step = g' + mu b'  /  b'         W' = W + lr (G' + mu B')
//! Adam                     m' = b1 m + (1 - b1) g'          M' = max(M, G')
//!                          v' = b2 v + (1 - b2) g'^2        V' = max(V, G'^2)   (AMSGrad too)
//!                          w' = w - (lr / bc1) m' / (sqrt(v^) / sqrt(bc2) + eps)
//!                          (scikit-learn's eps placement: a step size <= lr / bc1)
//!                                                           W' = W + (lr / bc1) M' / eps
//!   AdamW                  w *= 1 - lr wd first             W -> W max(1, |1 - lr wd|)
//! ```
//! Each new bound is multiplied by 1 + 2^-10, more than the rounding of the few operations
//! of a step (relative 2^-24 each in float32). RMSprop (centered: v - ga^2 may round below 0)
//! has no bounds here: its epochs keep the snapshot guard.

use crate::float::Real;
use crate::optimizer::{Optimizer, TensorState};

/// Upper bounds on max |w|, max |m| and max v of one tensor (f64; infinite when unknown).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bound {
    pub w: f64,
    pub m: f64,
    pub v: f64,
}

/// Margin for the rounding of one step's operations (see the module docs).
const ROUNDING: f64 = 1.0 + 1.0 / 1024.0;

/// max |v| over `values`, as f64; infinite when one is not finite.
pub(crate) fn max_abs<T: Real>(values: &[T]) -> f64 {
    let (mut max, mut finite) = (0.0f64, true);
    for &v in values {
        let a = v.to_f64().abs();
        finite &= a.is_finite();
        if a > max {
            max = a;
        }
    }
    if finite {
        max
    } else {
        f64::INFINITY
    }
}

impl Bound {
    /// The exact bounds of a tensor `w` and its optimizer state now.
    pub(crate) fn of<T: Real>(w: &[T], state: &TensorState<T>) -> Bound {
        Bound {
            w: max_abs(w),
            m: max_abs(&state.m),
            v: max_abs(&state.v).max(max_abs(&state.vmax)),
        }
    }
}

impl Optimizer {
    /// Whether `bound_step` can prove this optimizer's steps finite (not RMSprop).
    pub(crate) fn has_step_bounds(&self) -> bool {
        !matches!(self, Optimizer::RmsProp { .. })
    }

    /// The bounds of a tensor after step t (learning rate lr) from bounds `b` with gradients
    /// |g| <= `g`, or None unless every value the step computes is proven finite in T.
    pub(crate) fn bound_step<T: Real>(&self, b: Bound, g: f64, t: u64, lr: f64) -> Option<Bound> {
        let limit = T::MAX_FINITE.to_f64() / 65536.0;
        let below = |x: f64| x.is_finite() && x < limit;
        let next = match *self {
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
                ..
            } => {
                let g = (g + weight_decay * b.w) * ROUNDING;
                if momentum == 0.0 {
                    Bound {
                        w: (b.w + lr * g) * ROUNDING,
                        ..b
                    }
                } else {
                    let m = (momentum * b.m + g) * ROUNDING;
                    let step = if nesterov {
                        (g + momentum * m) * ROUNDING
                    } else {
                        m
                    };
                    Bound {
                        w: (b.w + lr * step) * ROUNDING,
                        m,
                        v: b.v,
                    }
                }
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled,
                ..
            } => {
                // The per-step constants as adam_step computes them in T; scikit-learn's eps
                // placement steps by lr sqrt(bc2) / bc1 <= lr / bc1, with inv = 1.
                let tf = T::from_f64(t as f64);
                let bc1 = (T::ONE - T::from_f64(beta1).powf(tf)).to_f64();
                let bc2 = (T::ONE - T::from_f64(beta2).powf(tf)).to_f64();
                let eps = T::from_f64(eps).to_f64();
                if !(bc1 > 0.0 && bc2 > 0.0 && eps > 0.0 && below(1.0 / bc2.sqrt())) {
                    return None;
                }
                let (w, g) = if decoupled {
                    (b.w * (1.0 - lr * weight_decay).abs().max(1.0), g)
                } else {
                    (b.w, g + weight_decay * b.w)
                };
                let g = g * ROUNDING;
                let m = b.m.max(g) * ROUNDING;
                let v = b.v.max(g * g) * ROUNDING;
                let step_size = lr / bc1 * ROUNDING;
                if !below(step_size * m) {
                    return None;
                }
                Bound {
                    w: (w + step_size * m / eps) * ROUNDING,
                    m,
                    v,
                }
            }
            Optimizer::RmsProp { .. } => return None,
        };
        (below(next.w) && below(next.m) && below(next.v) && below(g)).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::EpsPlacement;

    /// One optimizer of each kind `bound_step` bounds, with their options on.
    fn bounded_optimizers() -> [Optimizer; 6] {
        [
            Optimizer::sgd(0.5),
            Optimizer::Sgd {
                lr: 0.3,
                momentum: 0.9,
                dampening: 0.1,
                nesterov: false,
                weight_decay: 0.01,
            },
            Optimizer::Sgd {
                lr: 0.3,
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
                weight_decay: 0.0,
            },
            Optimizer::adam(0.1),
            Optimizer::Adam {
                lr: 0.1,
                beta1: 0.8,
                beta2: 0.9,
                eps: 1e-6,
                weight_decay: 0.5,
                amsgrad: true,
                decoupled: false,
                eps_placement: EpsPlacement::Sklearn,
            },
            Optimizer::Adam {
                lr: 0.1,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.1,
                amsgrad: false,
                decoupled: true,
                eps_placement: EpsPlacement::Pytorch,
            },
        ]
    }

    /// Random steps of every bounded optimizer keep every value within the bounds carried
    /// along; a bound that would pass float32's range refuses the proof.
    #[test]
    fn bounds_hold_over_many_steps_and_refuse_near_overflow() {
        let optimizers = bounded_optimizers();
        let mut rng = crate::rng::SplitMix64::new(5);
        for opt in optimizers {
            let mut w: Vec<f32> = (0..64).map(|_| rng.uniform() as f32 - 0.5).collect();
            let mut state = TensorState::default();
            let mut bound = Bound::of(&w, &state);
            for t in 1..=200u64 {
                let scale = if t % 7 == 0 { 100.0 } else { 1.0 };
                let mut g: Vec<f32> = (0..64)
                    .map(|_| ((rng.uniform() - 0.5) * scale) as f32)
                    .collect();
                let g_max = max_abs(&g);
                // Bounds carried along grow looser step by step (coupled weight decay with
                // Adam: by ~lr wd / eps each): measured again when they no longer prove.
                let next = opt
                    .bound_step::<f32>(bound, g_max, t, opt.lr())
                    .or_else(|| opt.bound_step::<f32>(Bound::of(&w, &state), g_max, t, opt.lr()))
                    .unwrap();
                opt.step(&mut w, &mut g, &mut state, t, opt.lr());
                let now = Bound::of(&w, &state);
                assert!(
                    now.w <= next.w && now.m <= next.m && now.v <= next.v,
                    "{opt:?} {t}"
                );
                bound = next;
            }
        }
        let near = Bound {
            w: 1e38,
            m: 0.0,
            v: 0.0,
        };
        assert!(Optimizer::sgd(1.0)
            .bound_step::<f32>(near, 1.0, 1, 1.0)
            .is_none());
        assert!(Optimizer::sgd(1.0)
            .bound_step::<f64>(near, 1.0, 1, 1.0)
            .is_some());
        let huge_g = Bound {
            w: 1.0,
            m: 0.0,
            v: 0.0,
        };
        assert!(Optimizer::adam(1e-3)
            .bound_step::<f32>(huge_g, 1e20, 1, 1e-3)
            .is_none());
        assert!(Optimizer::adam(1e-3)
            .bound_step::<f64>(huge_g, f64::NAN, 1, 1e-3)
            .is_none());
    }
}
