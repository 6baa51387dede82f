//! Optimizers, as PyTorch documents them (torch.optim), with PyTorch's names and defaults.
//! docs/maths.md has the per-element formulas; each `step_*` below is that formula.

use serde::{Deserialize, Serialize};

use crate::error::{value_error, Result};
use crate::float::Real;
use crate::team::map_parts;

/// Where Adam adds eps: the one thing in which PyTorch's and scikit-learn's Adam differ.
/// Both follow Kingma & Ba (2015); PyTorch adds eps to the bias-corrected sqrt(v^) (the
/// paper's Algorithm 1), scikit-learn (like TensorFlow's "epsilon hat") to the uncorrected
/// sqrt(v), folding both corrections into the step size (the paper's Section 2 remark).
/// docs/maths.md has both formulas. Saved as "pytorch" / "sklearn"; a record without the
/// field (every file written before it existed) reads as PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpsPlacement {
    /// p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)   (torch.optim.Adam)
    #[default]
    Pytorch,
    /// p -= (lr sqrt(bc2) / bc1) m / (sqrt(v) + eps)     (sklearn.neural_network's AdamOptimizer)
    Sklearn,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// p -= lr * g, with optional momentum buffer b = momentum * b + (1 - dampening) * g
    /// (b = g on the first step) and Nesterov's g + momentum * b.
    Sgd {
        lr: f64,
        momentum: f64,
        dampening: f64,
        nesterov: bool,
        weight_decay: f64,
    },
    /// v = alpha v + (1 - alpha) g^2;  p -= lr g / (sqrt(v) + eps)  (centered: v - mean(g)^2).
    RmsProp {
        lr: f64,
        alpha: f64,
        eps: f64,
        weight_decay: f64,
        momentum: f64,
        centered: bool,
    },
    /// m, v moving averages of g and g^2, bias-corrected; p -= lr m^ / (sqrt(v^) + eps).
    /// `decoupled` is AdamW: p *= 1 - lr * weight_decay instead of adding it to g.
    /// `eps_placement`: PyTorch's (above) or scikit-learn's (eps added to sqrt(v)).
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        amsgrad: bool,
        decoupled: bool,
        eps_placement: EpsPlacement,
    },
}

impl Optimizer {
    /// Plain SGD with PyTorch's defaults for everything but the learning rate.
    pub fn sgd(lr: f64) -> Self {
        Optimizer::Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }

    /// Adam with PyTorch's defaults for everything but the learning rate: betas (0.9, 0.999),
    /// eps 1e-8, no weight decay, no AMSGrad.
    pub fn adam(lr: f64) -> Self {
        Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled: false,
            eps_placement: EpsPlacement::Pytorch,
        }
    }

    pub fn lr(&self) -> f64 {
        match *self {
            Optimizer::Sgd { lr, .. }
            | Optimizer::RmsProp { lr, .. }
            | Optimizer::Adam { lr, .. } => lr,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::RmsProp { .. } => "rmsprop",
            Optimizer::Adam {
                decoupled: false, ..
            } => "adam",
            Optimizer::Adam {
                decoupled: true, ..
            } => "adamw",
        }
    }

    /// The same rules PyTorch's constructors enforce, with what was given.
    pub fn check(&self) -> Result<()> {
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return value_error!("lr must be a finite number > 0, got {lr}");
        }
        let unit = |name: &str, v: f64| -> Result<()> {
            if !(0.0..1.0).contains(&v) {
                return value_error!("{name} must be in [0, 1), got {v}");
            }
            Ok(())
        };
        let non_negative = |name: &str, v: f64| -> Result<()> {
            if !(v.is_finite() && v >= 0.0) {
                return value_error!("{name} must be a finite number >= 0, got {v}");
            }
            Ok(())
        };
        let positive = |name: &str, v: f64| -> Result<()> {
            if !(v.is_finite() && v > 0.0) {
                return value_error!("{name} must be a finite number > 0, got {v}");
            }
            Ok(())
        };
        match *self {
            Optimizer::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
                ..
            } => {
                unit("momentum", momentum)?;
                if !(0.0..=1.0).contains(&dampening) {
                    return value_error!("dampening must be in [0, 1], got {dampening}");
                }
                non_negative("weight_decay", weight_decay)?;
                if nesterov && (momentum == 0.0 || dampening != 0.0) {
                    return value_error!(
                        "nesterov needs momentum > 0 and dampening 0, got momentum {momentum}, \
                         dampening {dampening}"
                    );
                }
            }
            Optimizer::RmsProp {
                alpha,
                eps,
                weight_decay,
                momentum,
                ..
            } => {
                unit("alpha", alpha)?;
                positive("eps", eps)?;
                non_negative("weight_decay", weight_decay)?;
                unit("momentum", momentum)?;
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => {
                unit("betas[0]", beta1)?;
                unit("betas[1]", beta2)?;
                positive("eps", eps)?;
                non_negative("weight_decay", weight_decay)?;
            }
        }
        Ok(())
    }
}

/// An optimizer as one flat record: `name` ("sgd", "rmsprop", "adam", "adamw") and every
/// field of every optimizer, 0 / false ("pytorch" for `eps_placement`) where unused. The same
/// shape as the Python optimizers' `to_dict()`, and how saved files store the optimizer
/// (`io.rs`). `eps_placement` may be missing (records written before it existed): PyTorch's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    pub name: String,
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub alpha: f64,
    pub eps: f64,
    pub centered: bool,
    pub beta1: f64,
    pub beta2: f64,
    pub amsgrad: bool,
    #[serde(default)]
    pub eps_placement: EpsPlacement,
}

impl Optimizer {
    /// The flat record of this optimizer (see `OptimizerConfig`).
    pub fn config(&self) -> OptimizerConfig {
        let mut c = OptimizerConfig {
            name: self.name().to_string(),
            lr: self.lr(),
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            alpha: 0.0,
            eps: 0.0,
            centered: false,
            beta1: 0.0,
            beta2: 0.0,
            amsgrad: false,
            eps_placement: EpsPlacement::Pytorch,
        };
        match *self {
            Optimizer::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
                ..
            } => {
                (c.momentum, c.dampening, c.nesterov) = (momentum, dampening, nesterov);
                c.weight_decay = weight_decay;
            }
            Optimizer::RmsProp {
                alpha,
                eps,
                weight_decay,
                momentum,
                centered,
                ..
            } => {
                (c.alpha, c.eps, c.weight_decay) = (alpha, eps, weight_decay);
                (c.momentum, c.centered) = (momentum, centered);
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                amsgrad,
                eps_placement,
                ..
            } => {
                (c.beta1, c.beta2, c.eps) = (beta1, beta2, eps);
                (c.weight_decay, c.amsgrad) = (weight_decay, amsgrad);
                c.eps_placement = eps_placement;
            }
        }
        c
    }
}

impl OptimizerConfig {
    /// The optimizer this record describes, checked (`Optimizer::check`); the fields the named
    /// optimizer does not use are ignored.
    pub fn to_optimizer(&self) -> Result<Optimizer> {
        let c = self;
        let opt = match c.name.as_str() {
            "sgd" => Optimizer::Sgd {
                lr: c.lr,
                momentum: c.momentum,
                dampening: c.dampening,
                nesterov: c.nesterov,
                weight_decay: c.weight_decay,
            },
            "rmsprop" => Optimizer::RmsProp {
                lr: c.lr,
                alpha: c.alpha,
                eps: c.eps,
                weight_decay: c.weight_decay,
                momentum: c.momentum,
                centered: c.centered,
            },
            "adam" | "adamw" => Optimizer::Adam {
                lr: c.lr,
                beta1: c.beta1,
                beta2: c.beta2,
                eps: c.eps,
                weight_decay: c.weight_decay,
                amsgrad: c.amsgrad,
                decoupled: c.name == "adamw",
                eps_placement: c.eps_placement,
            },
            other => {
                return value_error!(
                    "unknown optimizer {other:?}: expected 'sgd', 'rmsprop', 'adam' or 'adamw'"
                )
            }
        };
        opt.check()?;
        Ok(opt)
    }
}

/// Per-element state of one parameter tensor; buffers are allocated by the first step that
/// needs them (an empty buffer is all zeros).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorState<T> {
    pub(crate) m: Vec<T>, // SGD momentum buffer b / Adam first moment m / RMSprop momentum b
    pub(crate) v: Vec<T>, // second moment (Adam, RMSprop)
    pub(crate) vmax: Vec<T>, // AMSGrad running max of v
    pub(crate) ga: Vec<T>, // centered RMSprop: mean of g
}

impl<T> TensorState<T> {
    /// Every buffer, to lay out again (an epoch keeps a first layer's state in panels).
    pub(crate) fn buffers_mut(&mut self) -> [&mut Vec<T>; 4] {
        [&mut self.m, &mut self.v, &mut self.vmax, &mut self.ga]
    }

    /// The buffers by name, in the order saved files list them: m (SGD / RMSprop momentum
    /// buffer, Adam's first moment), v (second moment), vmax (AMSGrad's running max of v),
    /// ga (centered RMSprop's mean gradient). Empty where the optimizer has not used one.
    pub fn buffers(&self) -> [(&'static str, &[T]); 4] {
        [
            ("m", &self.m),
            ("v", &self.v),
            ("vmax", &self.vmax),
            ("ga", &self.ga),
        ]
    }
}

impl<T> Default for TensorState<T> {
    fn default() -> Self {
        TensorState {
            m: Vec::new(),
            v: Vec::new(),
            vmax: Vec::new(),
            ga: Vec::new(),
        }
    }
}

fn ensure<T: Real>(buf: &mut Vec<T>, len: usize) {
    if buf.len() != len {
        buf.clear();
        buf.resize(len, T::ZERO);
    }
}

/// The per-element buffers of one step, as slices of a `TensorState` (or of a block of it):
/// empty where the optimizer does not use one.
struct Buffers<'a, T> {
    m: &'a mut [T],
    v: &'a mut [T],
    vmax: &'a mut [T],
    ga: &'a mut [T],
}

/// A buffer of the parameters' length `len` cut into blocks of `per` elements, as the
/// parameters are; any other (one this optimizer does not use) gives `count` empty blocks.
fn cut_blocks<T>(v: &mut [T], len: usize, per: usize, count: usize) -> Vec<&mut [T]> {
    if v.len() == len {
        v.chunks_mut(per).collect()
    } else {
        (0..count).map(|_| &mut [][..]).collect()
    }
}

/// `grad_row(i, p_i, g)` of `Optimizer::step_rows`: row i's gradient into g, from row i's
/// parameters p_i as they are before its update.
pub(crate) type GradRow<'a, T> = dyn Fn(usize, &[T], &mut [T]) + Sync + 'a;

/// Row r (of `cols` values) of a buffer cut into rows; an empty buffer (one the optimizer
/// does not use) stays empty.
fn row_of<T>(buffer: &mut [T], r: usize, cols: usize) -> &mut [T] {
    if buffer.is_empty() {
        buffer
    } else {
        &mut buffer[r * cols..(r + 1) * cols]
    }
}

/// Tensors with fewer elements than this are updated by one thread (the hand-off would cost
/// more than the update: an Adam step is about 1.4 ns per float64 element).
const PARALLEL_STEP_MIN: usize = 1 << 14;

impl Optimizer {
    /// One update of `params` from `grads` (consumed as scratch) at step t >= 1 with learning
    /// rate `lr` (the schedule's, which may differ from the configured one).
    pub fn step<T: Real>(
        &self,
        params: &mut [T],
        grads: &mut [T],
        state: &mut TensorState<T>,
        t: u64,
        lr: f64,
    ) {
        self.step_threads(params, grads, state, t, lr, 1);
    }

    /// `step` with a large tensor cut into `threads` blocks of elements, one per thread. Every
    /// formula is per element, so the bits are those of `step`.
    pub fn step_threads<T: Real>(
        &self,
        params: &mut [T],
        grads: &mut [T],
        state: &mut TensorState<T>,
        t: u64,
        lr: f64,
        threads: usize,
    ) {
        let len = params.len();
        assert_eq!(grads.len(), len, "one gradient per parameter");
        self.size_buffers(state, len);
        let all = Buffers {
            m: &mut state.m,
            v: &mut state.v,
            vmax: &mut state.vmax,
            ga: &mut state.ga,
        };
        if threads < 2 || len < PARALLEL_STEP_MIN {
            return self.step_buffers(params, grads, all, t, lr);
        }
        let per = len.div_ceil(threads);
        let cut = |v| cut_blocks(v, len, per, threads);
        let blocks: Vec<_> = params
            .chunks_mut(per)
            .zip(grads.chunks_mut(per))
            .zip(cut(all.m))
            .zip(cut(all.v))
            .zip(cut(all.vmax))
            .zip(cut(all.ga))
            .map(|(((((p, g), m), v), vmax), ga)| (p, g, Buffers { m, v, vmax, ga }))
            .collect();
        map_parts(blocks, |(p, g, buffers)| {
            self.step_buffers(p, g, buffers, t, lr)
        });
    }

    /// `step_threads` on a row-major tensor of rows of `cols` values whose gradient is never
    /// held whole: each block of rows (one per thread, `blocks` as (start, end), all but the
    /// last of one length) fills a scratch row with row i's gradient (`grad_row(i, p_i, g)`,
    /// given row i's parameters p_i before the update) and updates row i with it at once. Every formula is per element, so the bits are those of
    /// `step` on the whole gradient; the memory is one row per block instead of the tensor.
    pub(crate) fn step_rows<T: Real>(
        &self,
        params: &mut [T],
        cols: usize,
        state: &mut TensorState<T>,
        (t, lr): (u64, f64),
        blocks: &[(usize, usize)],
        grad_row: &GradRow<'_, T>,
    ) {
        let len = params.len();
        self.size_buffers(state, len);
        let per = (blocks[0].1 - blocks[0].0) * cols;
        let count = blocks.len();
        let cut = |v| cut_blocks(v, len, per, count);
        let parts: Vec<_> = params
            .chunks_mut(per)
            .zip(blocks)
            .zip(cut(&mut state.m))
            .zip(cut(&mut state.v))
            .zip(cut(&mut state.vmax))
            .zip(cut(&mut state.ga))
            .map(|(((((p, &b), m), v), vmax), ga)| (p, b, Buffers { m, v, vmax, ga }))
            .collect();
        map_parts(parts, |(p, (start, _), buffers)| {
            let mut g = vec![T::ZERO; cols];
            for (r, row) in p.chunks_exact_mut(cols).enumerate() {
                grad_row(start + r, row, &mut g);
                let row_buffers = Buffers {
                    m: row_of(buffers.m, r, cols),
                    v: row_of(buffers.v, r, cols),
                    vmax: row_of(buffers.vmax, r, cols),
                    ga: row_of(buffers.ga, r, cols),
                };
                self.step_buffers(row, &mut g, row_buffers, t, lr);
            }
        });
    }

    /// Allocates the buffers this optimizer uses (zeros) where they are not yet `len` long.
    fn size_buffers<T: Real>(&self, state: &mut TensorState<T>, len: usize) {
        match *self {
            Optimizer::Sgd { momentum, .. } => {
                if momentum != 0.0 {
                    ensure(&mut state.m, len);
                }
            }
            Optimizer::RmsProp {
                momentum, centered, ..
            } => {
                ensure(&mut state.v, len);
                if centered {
                    ensure(&mut state.ga, len);
                }
                if momentum > 0.0 {
                    ensure(&mut state.m, len);
                }
            }
            Optimizer::Adam { amsgrad, .. } => {
                ensure(&mut state.m, len);
                ensure(&mut state.v, len);
                if amsgrad {
                    ensure(&mut state.vmax, len);
                }
            }
        }
    }

    /// The update of `step` on buffers sized by `size_buffers`: one function per optimizer,
    /// each the formula of docs/maths.md ("Optimizers") and of `_sgd`, `_rmsprop`, `_adam` in
    /// python/ferrinet/reference.py.
    fn step_buffers<T: Real>(
        &self,
        params: &mut [T],
        grads: &mut [T],
        state: Buffers<T>,
        t: u64,
        lr: f64,
    ) {
        match *self {
            Optimizer::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
                ..
            } => {
                let options = (momentum, dampening, nesterov, weight_decay);
                sgd_step(params, grads, state.m, (t, lr), options);
            }
            Optimizer::RmsProp {
                alpha,
                eps,
                weight_decay,
                momentum,
                centered,
                ..
            } => {
                let options = (alpha, eps, weight_decay, momentum, centered);
                rmsprop_step(params, grads, state, lr, options);
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                amsgrad,
                decoupled,
                eps_placement,
                ..
            } => {
                let options = (beta1, beta2, eps, weight_decay, amsgrad, decoupled);
                adam_step(params, grads, state, (t, lr, eps_placement), options);
            }
        }
    }
}

/// SGD, docs/maths.md ("Optimizers", SGD): b is the momentum buffer (empty without momentum).
fn sgd_step<T: Real>(
    params: &mut [T],
    grads: &mut [T],
    b: &mut [T],
    (t, lr): (u64, f64),
    (momentum, dampening, nesterov, weight_decay): (f64, f64, bool, f64),
) {
    let lr_t = T::from_f64(lr);
    let (wd, mu) = (T::from_f64(weight_decay), T::from_f64(momentum));
    let keep = T::ONE - T::from_f64(dampening);
    if momentum == 0.0 {
        // Plain SGD (with coupled weight decay), vectorised; same operations.
        crate::kernels::sgd_update(params, grads, lr_t, wd);
        return;
    }
    for (k, (p, g)) in params.iter_mut().zip(grads.iter_mut()).enumerate() {
        let mut g_k = *g;
        if weight_decay != 0.0 {
            g_k += wd * *p;
        }
        let b = &mut b[k];
        *b = if t == 1 { g_k } else { mu * *b + keep * g_k };
        g_k = if nesterov { g_k + mu * *b } else { *b };
        *p -= lr_t * g_k;
    }
}

/// RMSprop, docs/maths.md ("Optimizers", RMSprop): v the running mean of g^2, ga that of g
/// (centered), m the momentum buffer b.
fn rmsprop_step<T: Real>(
    params: &mut [T],
    grads: &mut [T],
    state: Buffers<T>,
    lr: f64,
    (alpha, eps, weight_decay, momentum, centered): (f64, f64, f64, f64, bool),
) {
    let lr_t = T::from_f64(lr);
    let (a, wd, mu, eps) = (
        T::from_f64(alpha),
        T::from_f64(weight_decay),
        T::from_f64(momentum),
        T::from_f64(eps),
    );
    let one_minus_a = T::ONE - a;
    for (k, (p, g)) in params.iter_mut().zip(grads.iter_mut()).enumerate() {
        let mut g_k = *g;
        if weight_decay != 0.0 {
            g_k += wd * *p;
        }
        let v = &mut state.v[k];
        *v = a * *v + one_minus_a * (g_k * g_k);
        let avg = if centered {
            let ga = &mut state.ga[k];
            *ga = a * *ga + one_minus_a * g_k;
            (*v - *ga * *ga).sqrt() + eps
        } else {
            v.sqrt() + eps
        };
        if momentum > 0.0 {
            let b = &mut state.m[k];
            *b = mu * *b + g_k / avg;
            *p -= lr_t * *b;
        } else {
            *p -= lr_t * (g_k / avg);
        }
    }
}

/// Adam and AdamW (`decoupled`), docs/maths.md ("Optimizers", Adam): the per-step constants
/// here, the per-element update in the vectorised `kernels::adam_update`, whose last line is
/// p -= (step_size m) / (sqrt(vhat) inv + eps). PyTorch's placement: step_size = lr / bc1,
/// inv = 1 / sqrt(bc2). scikit-learn's: step_size = (lr sqrt(bc2)) / bc1 (its learning_rate),
/// inv = 1 (sqrt(v) * 1 is sqrt(v) exactly), so eps is added to the uncorrected sqrt(v).
fn adam_step<T: Real>(
    params: &mut [T],
    grads: &mut [T],
    state: Buffers<T>,
    (t, lr, eps_placement): (u64, f64, EpsPlacement),
    (beta1, beta2, eps, weight_decay, amsgrad, decoupled): (f64, f64, f64, f64, bool, bool),
) {
    let lr_t = T::from_f64(lr);
    let one = T::ONE;
    let (b1, b2, eps, wd) = (
        T::from_f64(beta1),
        T::from_f64(beta2),
        T::from_f64(eps),
        T::from_f64(weight_decay),
    );
    let (one_minus_b1, one_minus_b2) = (one - b1, one - b2);
    let tf = T::from_f64(t as f64);
    let bc1 = one - b1.powf(tf);
    let bc2 = one - b2.powf(tf);
    let decay = one - lr_t * wd;
    let (step_size, inv_sqrt_correction2) = match eps_placement {
        EpsPlacement::Pytorch => (lr_t / bc1, one / bc2.sqrt()),
        EpsPlacement::Sklearn => ((lr_t * bc2.sqrt()) / bc1, one),
    };
    let step = crate::kernels::AdamStep {
        beta1: b1,
        one_minus_beta1: one_minus_b1,
        beta2: b2,
        one_minus_beta2: one_minus_b2,
        step_size,
        inv_sqrt_correction2,
        eps,
        weight_decay: wd,
        decay,
        decoupled,
    };
    let vmax = amsgrad.then_some(state.vmax);
    crate::kernels::adam_update(params, grads, state.m, state.v, vmax, step);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_first_step_moves_each_weight_by_about_lr() {
        // With bias correction, step 1 gives m^ = g and v^ = g^2: p -= lr * g / (|g| + eps).
        let opt = Optimizer::adam(0.1);
        let (mut p, mut g) = (vec![1.0, -2.0], vec![0.5, -3.0]);
        opt.step(&mut p, &mut g, &mut TensorState::default(), 1, 0.1);
        assert!(
            (p[0] - 0.9).abs() < 1e-7 && (p[1] + 1.9).abs() < 1e-7,
            "{p:?}"
        );
    }

    #[test]
    fn sgd_with_momentum_matches_the_recurrence() {
        let opt = Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        };
        let mut state = TensorState::default();
        let mut p = vec![0.0];
        let (mut b, mut expected) = (0.0f64, 0.0f64);
        for t in 1..=5u64 {
            let g = t as f64;
            b = if t == 1 { g } else { 0.9 * b + g };
            expected -= 0.1 * b;
            opt.step(&mut p, &mut [g], &mut state, t, 0.1);
        }
        assert!((p[0] - expected).abs() < 1e-12);
    }

    #[test]
    fn config_round_trips_every_optimizer() {
        let all = [
            Optimizer::Sgd {
                lr: 0.1,
                momentum: 0.9,
                dampening: 0.1,
                nesterov: false,
                weight_decay: 1e-4,
            },
            Optimizer::RmsProp {
                lr: 0.01,
                alpha: 0.9,
                eps: 1e-7,
                weight_decay: 0.0,
                momentum: 0.5,
                centered: true,
            },
            Optimizer::Adam {
                lr: 1e-3,
                beta1: 0.8,
                beta2: 0.99,
                eps: 1e-8,
                weight_decay: 0.01,
                amsgrad: true,
                decoupled: true,
                eps_placement: EpsPlacement::Pytorch,
            },
            Optimizer::Adam {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
                amsgrad: false,
                decoupled: false,
                eps_placement: EpsPlacement::Sklearn,
            },
        ];
        for opt in all {
            assert_eq!(opt.config().to_optimizer(), Ok(opt));
        }
        let mut bad = Optimizer::sgd(0.1).config();
        bad.name = "lion".into();
        assert!(bad.to_optimizer().is_err());
    }

    #[test]
    fn pytorch_rules_are_enforced() {
        assert!(Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 0.0
        }
        .check()
        .is_err());
        assert!(Optimizer::sgd(0.0).check().is_err());
        assert!(Optimizer::Adam {
            lr: 1e-3,
            beta1: 1.0,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled: false,
            eps_placement: EpsPlacement::Pytorch,
        }
        .check()
        .is_err());
    }

    #[test]
    fn sklearn_eps_placement_is_sklearns_formula() {
        // scikit-learn's AdamOptimizer._get_updates, two steps on one parameter:
        // lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); p += -lr_t m / (sqrt(v) + eps).
        let mut opt = Optimizer::adam(0.1);
        if let Optimizer::Adam {
            ref mut eps_placement,
            ref mut eps,
            ..
        } = opt
        {
            *eps_placement = EpsPlacement::Sklearn;
            *eps = 1e-3; // large, so that where it is added shows
        }
        let (mut p, mut state) = (vec![1.0f64], TensorState::default());
        let (mut expected, mut m, mut v) = (1.0f64, 0.0f64, 0.0f64);
        for (t, g) in [(1u64, 0.5f64), (2, -0.25)] {
            m = 0.9 * m + (1.0 - 0.9) * g;
            v = 0.999 * v + (1.0 - 0.999) * (g * g);
            let lr_t = 0.1 * (1.0 - 0.999f64.powf(t as f64)).sqrt() / (1.0 - 0.9f64.powf(t as f64));
            expected += -lr_t * m / (v.sqrt() + 1e-3);
            opt.step(&mut p, &mut [g], &mut state, t, 0.1);
            assert_eq!(
                p[0].to_bits(),
                expected.to_bits(),
                "step {t}: {} vs {expected}",
                p[0]
            );
        }
        // PyTorch's placement adds eps to sqrt(v / bc2): a different step.
        let mut pytorch = opt;
        if let Optimizer::Adam {
            ref mut eps_placement,
            ..
        } = pytorch
        {
            *eps_placement = EpsPlacement::Pytorch;
        }
        let mut q = vec![1.0f64];
        pytorch.step(&mut q, &mut [0.5], &mut TensorState::default(), 1, 0.1);
        let sklearn_first = 1.0 - 0.1 * (0.001f64.sqrt() / 0.1) * 0.05 / (0.0005f64.sqrt() + 1e-3);
        assert!(
            (q[0] - sklearn_first).abs() > 1e-4,
            "{} vs {sklearn_first}",
            q[0]
        );
    }

    #[test]
    fn a_record_without_eps_placement_reads_as_pytorchs() {
        let json = r#"{"name": "adam", "lr": 0.01, "momentum": 0.0, "dampening": 0.0,
            "nesterov": false, "weight_decay": 0.0, "alpha": 0.0, "eps": 1e-8,
            "centered": false, "beta1": 0.9, "beta2": 0.999, "amsgrad": false}"#;
        let config: OptimizerConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.eps_placement, EpsPlacement::Pytorch);
        assert_eq!(config.to_optimizer(), Ok(Optimizer::adam(0.01)));
        let mut sk = Optimizer::adam(0.01).config();
        sk.eps_placement = EpsPlacement::Sklearn;
        let text = serde_json::to_string(&sk).unwrap();
        assert!(text.contains(r#""eps_placement":"sklearn""#), "{text}");
        let back: OptimizerConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, sk);
        let bad = text.replace("sklearn", "keras");
        assert!(serde_json::from_str::<OptimizerConfig>(&bad).is_err());
    }
}
