//! `Optimizer::step` against the per-element formulas of docs/maths.md ("Optimizers"), written
//! out again here from the document, independently of src/optimizer.rs: 100 steps on fixed
//! gradient sequences, for every option; and the argument rules of `Optimizer::check`.
//!
//! The document fixes the operations and their order, so the results are expected to agree bit
//! for bit; the brief's bound is 1e-12 relative, and both are asserted (the relative difference
//! is what a failure message reports).

// The formulas are written as docs/maths.md writes them (`p = p - lr * g`), not `p -= lr * g`.
#![allow(clippy::assign_op_pattern)]

mod common;

use ferrinet_core::TensorState;
use ferrinet_core::{EpsPlacement, Error, Optimizer, SplitMix64, TrainingState};

const STEPS: u64 = 100;
const REL: f64 = 1e-12;

/// The gradient sequences, one per parameter: ordinary O(1) noise, tiny (1e-3) and huge (1e3)
/// gradients, a gradient that is always 0 (Adam and RMSprop then divide 0 by eps), a constant
/// one, and noise that changes sign around a drift.
fn gradients(t: u64, rng: &mut SplitMix64) -> Vec<f64> {
    let mut u = || 2.0 * rng.uniform() - 1.0;
    vec![
        u(),
        1e-3 * u(),
        1e3 * u(),
        0.0,
        0.5,
        0.1 * u() + 0.05 * (t as f64 / 10.0).sin(),
    ]
}

fn initial_params() -> Vec<f64> {
    vec![0.3, -1.2, 2.5, 0.7, -0.05, 1e-3]
}

/// A learning rate that changes every step, as a schedule would: `step` must use the one it is
/// given, not the optimizer's configured lr.
fn lr_at(lr0: f64, t: u64) -> f64 {
    lr0 * (1.0 + 0.5 * (t as f64).cos())
}

/// The state of docs/maths.md, per element, starting at zero.
#[derive(Debug, Clone)]
struct Moments {
    b: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
    vmax: Vec<f64>,
    ga: Vec<f64>,
}

impl Moments {
    fn zeros(n: usize) -> Self {
        Moments {
            b: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            vmax: vec![0.0; n],
            ga: vec![0.0; n],
        }
    }
}

/// docs/maths.md, written out: one step for every element of p.
fn documented_step(opt: &Optimizer, p: &mut [f64], grad: &[f64], s: &mut Moments, t: u64, lr: f64) {
    for k in 0..p.len() {
        let mut g = grad[k];
        match *opt {
            Optimizer::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
                ..
            } => {
                if weight_decay != 0.0 {
                    g = g + weight_decay * p[k];
                }
                if momentum != 0.0 {
                    s.b[k] = if t == 1 {
                        g
                    } else {
                        momentum * s.b[k] + (1.0 - dampening) * g
                    };
                    g = if nesterov {
                        g + momentum * s.b[k]
                    } else {
                        s.b[k]
                    };
                }
                p[k] = p[k] - lr * g;
            }
            Optimizer::RmsProp {
                alpha,
                eps,
                weight_decay,
                momentum,
                centered,
                ..
            } => {
                if weight_decay != 0.0 {
                    g = g + weight_decay * p[k];
                }
                s.v[k] = alpha * s.v[k] + (1.0 - alpha) * (g * g);
                let avg = if centered {
                    s.ga[k] = alpha * s.ga[k] + (1.0 - alpha) * g;
                    (s.v[k] - s.ga[k] * s.ga[k]).sqrt() + eps
                } else {
                    s.v[k].sqrt() + eps
                };
                if momentum > 0.0 {
                    s.b[k] = momentum * s.b[k] + g / avg;
                    p[k] = p[k] - lr * s.b[k];
                } else {
                    p[k] = p[k] - lr * (g / avg);
                }
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
                // AdamW: decay the parameter, then Adam's update with weight_decay = 0.
                let wd = if decoupled {
                    p[k] = p[k] * (1.0 - lr * weight_decay);
                    0.0
                } else {
                    weight_decay
                };
                if wd != 0.0 {
                    g = g + wd * p[k];
                }
                s.m[k] = beta1 * s.m[k] + (1.0 - beta1) * g;
                s.v[k] = beta2 * s.v[k] + (1.0 - beta2) * (g * g);
                let bc1 = 1.0 - beta1.powf(t as f64);
                let bc2 = 1.0 - beta2.powf(t as f64);
                // PyTorch: eps added to sqrt(v^); scikit-learn: to sqrt(v), the corrections
                // in its step size lr sqrt(bc2) / bc1.
                let (step_size, inv_sqrt_bc2) = match eps_placement {
                    EpsPlacement::Pytorch => (lr / bc1, 1.0 / bc2.sqrt()),
                    EpsPlacement::Sklearn => (lr * bc2.sqrt() / bc1, 1.0),
                };
                let vhat = if amsgrad {
                    s.vmax[k] = s.vmax[k].max(s.v[k]);
                    s.vmax[k]
                } else {
                    s.v[k]
                };
                p[k] = p[k] - (step_size * s.m[k]) / (vhat.sqrt() * inv_sqrt_bc2 + eps);
            }
        }
    }
}

/// 100 steps of `Optimizer::step` and of the documented formulas from the same start.
fn assert_matches_the_formulas(name: &str, opt: Optimizer) {
    opt.check().unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut rng = SplitMix64::new(71);
    let mut p = initial_params();
    let mut expected = initial_params();
    let mut state = TensorState::default();
    let mut moments = Moments::zeros(p.len());
    for t in 1..=STEPS {
        let g = gradients(t, &mut rng);
        let lr = lr_at(opt.lr(), t);
        let mut scratch = g.clone();
        opt.step(&mut p, &mut scratch, &mut state, t, lr);
        documented_step(&opt, &mut expected, &g, &mut moments, t, lr);
        for (k, (&a, &e)) in p.iter().zip(&expected).enumerate() {
            assert!(a.is_finite(), "{name}: step {t}, parameter {k} is {a}");
            let rel = common::rel_diff(a, e, f64::MIN_POSITIVE);
            assert!(
                rel <= REL,
                "{name}: step {t}, parameter {k}: {a:e} vs documented {e:e} (relative {rel:e})"
            );
            assert_eq!(
                a.to_bits(),
                e.to_bits(),
                "{name}: step {t}, parameter {k}: not the documented operations ({a:e} vs {e:e})"
            );
        }
    }
    // The parameters did move (a formula that does nothing would also "match"); parameter 3
    // has a zero gradient and moves only through weight decay.
    let decays = match opt {
        Optimizer::Sgd { weight_decay, .. }
        | Optimizer::RmsProp { weight_decay, .. }
        | Optimizer::Adam { weight_decay, .. } => weight_decay != 0.0,
    };
    for (k, (a, p0)) in p.iter().zip(initial_params()).enumerate() {
        if k != 3 || decays {
            assert_ne!(
                a.to_bits(),
                p0.to_bits(),
                "{name}: parameter {k} never moved"
            );
        } else {
            assert_eq!(a.to_bits(), p0.to_bits(), "{name}: parameter {k} moved");
        }
    }
}

fn sgd(momentum: f64, dampening: f64, nesterov: bool, weight_decay: f64) -> Optimizer {
    Optimizer::Sgd {
        lr: 0.01,
        momentum,
        dampening,
        nesterov,
        weight_decay,
    }
}

fn rmsprop(weight_decay: f64, momentum: f64, centered: bool) -> Optimizer {
    Optimizer::RmsProp {
        lr: 0.01,
        alpha: 0.99,
        eps: 1e-8,
        weight_decay,
        momentum,
        centered,
    }
}

fn adam(weight_decay: f64, amsgrad: bool, decoupled: bool) -> Optimizer {
    Optimizer::Adam {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay,
        amsgrad,
        decoupled,
        eps_placement: EpsPlacement::Pytorch,
    }
}

/// RMSprop with every argument given (lr 0.01).
fn rms(alpha: f64, eps: f64, weight_decay: f64, momentum: f64, centered: bool) -> Optimizer {
    Optimizer::RmsProp {
        lr: 0.01,
        alpha,
        eps,
        weight_decay,
        momentum,
        centered,
    }
}

/// Adam / AdamW with every argument given (lr 1e-3).
fn adam_with(beta1: f64, beta2: f64, eps: f64, amsgrad: bool, decoupled: bool) -> Optimizer {
    Optimizer::Adam {
        lr: 1e-3,
        beta1,
        beta2,
        eps,
        weight_decay: 0.0,
        amsgrad,
        decoupled,
        eps_placement: EpsPlacement::Pytorch,
    }
}

/// The same optimizer with another lr.
fn with_lr(opt: Optimizer, new_lr: f64) -> Optimizer {
    match opt {
        Optimizer::Sgd { .. } => Optimizer::Sgd {
            lr: new_lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        },
        Optimizer::RmsProp {
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
            ..
        } => Optimizer::RmsProp {
            lr: new_lr,
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
        },
        Optimizer::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
            decoupled,
            eps_placement,
            ..
        } => Optimizer::Adam {
            lr: new_lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
            decoupled,
            eps_placement,
        },
    }
}

#[test]
fn sgd_matches_the_documented_formulas() {
    assert_matches_the_formulas("sgd", Optimizer::sgd(0.01));
    assert_matches_the_formulas("sgd momentum", sgd(0.9, 0.0, false, 0.0));
    assert_matches_the_formulas("sgd momentum dampening", sgd(0.9, 0.3, false, 0.0));
    assert_matches_the_formulas("sgd dampening 1", sgd(0.5, 1.0, false, 0.0));
    assert_matches_the_formulas("sgd nesterov", sgd(0.9, 0.0, true, 0.0));
    assert_matches_the_formulas("sgd weight_decay", sgd(0.0, 0.0, false, 1e-2));
    assert_matches_the_formulas("sgd everything", sgd(0.8, 0.0, true, 5e-3));
    assert_matches_the_formulas("sgd momentum dampening wd", sgd(0.7, 0.1, false, 0.1));
}

#[test]
fn rmsprop_matches_the_documented_formulas() {
    assert_matches_the_formulas("rmsprop", rmsprop(0.0, 0.0, false));
    assert_matches_the_formulas("rmsprop centered", rmsprop(0.0, 0.0, true));
    assert_matches_the_formulas("rmsprop momentum", rmsprop(0.0, 0.9, false));
    assert_matches_the_formulas("rmsprop weight_decay", rmsprop(1e-2, 0.0, false));
    assert_matches_the_formulas("rmsprop everything", rmsprop(1e-2, 0.5, true));
    let fast = with_lr(rms(0.5, 1e-6, 0.0, 0.0, false), 0.1);
    assert_matches_the_formulas("rmsprop alpha 0.5", fast);
}

#[test]
fn adam_matches_the_documented_formulas() {
    assert_matches_the_formulas("adam", adam(0.0, false, false));
    assert_matches_the_formulas("adam amsgrad", adam(0.0, true, false));
    assert_matches_the_formulas("adam weight_decay", adam(1e-2, false, false));
    assert_matches_the_formulas("adam amsgrad weight_decay", adam(1e-2, true, false));
    let betas = with_lr(adam_with(0.5, 0.9, 1e-6, true, false), 0.05);
    assert_matches_the_formulas("adam other betas", betas);
    for (name, opt) in [
        ("adam sklearn eps", adam(0.0, false, false)),
        (
            "adam sklearn eps amsgrad weight_decay",
            adam(1e-2, true, false),
        ),
        ("adamw sklearn eps", adam(1e-2, false, true)),
        (
            "adam sklearn eps large",
            adam_with(0.5, 0.9, 1e-2, false, false),
        ),
    ] {
        assert_matches_the_formulas(name, sklearn_eps(opt));
    }
}

/// The same Adam with scikit-learn's placement of eps.
fn sklearn_eps(opt: Optimizer) -> Optimizer {
    match opt {
        Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
            decoupled,
            ..
        } => Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
            decoupled,
            eps_placement: EpsPlacement::Sklearn,
        },
        other => other,
    }
}

#[test]
fn adamw_matches_the_documented_formulas() {
    assert_matches_the_formulas("adamw", adam(1e-2, false, true));
    assert_matches_the_formulas("adamw amsgrad", adam(0.1, true, true));
    // AdamW with weight_decay 0 is Adam.
    assert_matches_the_formulas("adamw no decay", adam(0.0, false, true));
}

/// The first SGD-momentum step takes b = g whatever the buffer holds (t == 1), as PyTorch's
/// fresh buffer; AdamW decays even a parameter whose gradient is 0.
#[test]
fn first_steps_and_zero_gradients() {
    let opt = sgd(0.9, 0.5, false, 0.0);
    let mut state = TensorState::default();
    let mut p = vec![1.0];
    opt.step(&mut p, &mut [2.0], &mut state, 1, 0.1);
    assert_eq!(p, vec![1.0 - 0.1 * 2.0]);
    opt.step(&mut p, &mut [2.0], &mut state, 2, 0.1);
    assert_eq!(p, vec![(1.0 - 0.1 * 2.0) - 0.1 * (0.9 * 2.0 + 0.5 * 2.0)]);

    let opt = adam(0.1, false, true);
    let mut p = vec![2.0];
    opt.step(&mut p, &mut [0.0], &mut TensorState::default(), 1, 0.5);
    assert_eq!(p, vec![2.0 * (1.0 - 0.5 * 0.1)]);
}

fn refused(opt: Optimizer) -> String {
    match opt.check() {
        Err(Error::Value(msg)) => {
            // TrainingState refuses it too, with the same message.
            match TrainingState::<f64>::new(opt, 0, 2) {
                Err(Error::Value(m)) => assert_eq!(m, msg),
                other => panic!("TrainingState::new accepted {opt:?}: {other:?}"),
            }
            msg
        }
        other => panic!("{opt:?} was accepted: {other:?}"),
    }
}

#[test]
fn check_refuses_what_pytorch_refuses() {
    let nan = f64::NAN;
    for lr in [0.0, -0.0, -1e-3, nan, f64::INFINITY] {
        let msg = refused(Optimizer::sgd(lr));
        assert!(msg.contains("lr"), "{msg}");
        refused(with_lr(rmsprop(0.0, 0.0, false), lr));
        refused(with_lr(adam(0.0, false, false), lr));
        refused(with_lr(adam(0.0, false, true), lr));
    }
    // SGD: nesterov needs momentum and no dampening; ranges of each argument.
    let msg = refused(sgd(0.0, 0.0, true, 0.0));
    assert!(msg.contains("nesterov"), "{msg}");
    refused(sgd(0.9, 0.1, true, 0.0));
    for momentum in [-0.1, nan] {
        refused(sgd(momentum, 0.0, false, 0.0));
    }
    for dampening in [-0.1, 1.5, nan] {
        refused(sgd(0.9, dampening, false, 0.0));
    }
    for wd in [-1e-3, nan, f64::INFINITY] {
        refused(sgd(0.0, 0.0, false, wd));
        refused(rmsprop(wd, 0.0, false));
        refused(adam(wd, false, false));
        refused(adam(wd, false, true));
    }
    // RMSprop: alpha, eps, momentum.
    for alpha in [-0.1, nan] {
        refused(rms(alpha, 1e-8, 0.0, 0.0, false));
    }
    for eps in [-1e-8, nan, f64::INFINITY] {
        refused(rms(0.99, eps, 0.0, 0.0, false));
        refused(adam_with(0.9, 0.999, eps, false, false));
    }
    refused(rmsprop(0.0, -0.5, false));
    // Adam: betas in [0, 1).
    for beta in [1.0, -0.1, 1.5, nan] {
        let msg = refused(adam_with(beta, 0.999, 1e-8, false, false));
        assert!(msg.contains("betas[0]"), "{msg}");
        let msg = refused(adam_with(0.9, beta, 1e-8, true, true));
        assert!(msg.contains("betas[1]"), "{msg}");
    }
}

/// Ferrinet is stricter than PyTorch on a few arguments (PyTorch only asks momentum >= 0,
/// RMSprop's alpha >= 0 and eps >= 0, Adam's eps >= 0): momentum >= 1, alpha >= 1 and eps = 0
/// are refused here.
/// Pinned so that a change is deliberate.
#[test]
fn check_is_stricter_than_pytorch_on_momentum_alpha_and_eps() {
    refused(sgd(1.0, 0.0, false, 0.0));
    refused(rmsprop(0.0, 1.0, false));
    refused(rms(1.0, 1e-8, 0.0, 0.0, false));
    refused(rms(0.99, 0.0, 0.0, 0.0, false));
    refused(adam_with(0.9, 0.999, 0.0, false, false));
}

#[test]
fn check_accepts_the_edges_of_each_range() {
    for opt in [
        Optimizer::sgd(f64::MIN_POSITIVE),
        sgd(0.0, 1.0, false, 0.0),
        sgd(0.999, 0.0, true, 0.0),
        sgd(0.5, 1.0, false, 0.0),
        rms(0.0, 1e-8, 0.0, 0.0, true),
        adam_with(0.0, 0.0, 1e-8, true, false),
    ] {
        opt.check().unwrap_or_else(|e| panic!("{opt:?}: {e}"));
        TrainingState::<f64>::new(opt, 0, 1).unwrap();
    }
}

#[test]
fn names_and_learning_rates() {
    assert_eq!(Optimizer::sgd(0.1).name(), "sgd");
    assert_eq!(rmsprop(0.0, 0.0, false).name(), "rmsprop");
    assert_eq!(adam(0.0, false, false).name(), "adam");
    assert_eq!(adam(0.0, false, true).name(), "adamw");
    assert_eq!(adam(0.0, false, true).lr(), 1e-3);
    let state = TrainingState::<f64>::new(rmsprop(0.0, 0.0, false), 5, 3).unwrap();
    assert_eq!(
        (
            state.learning_rate(),
            state.seed(),
            state.steps(),
            state.epochs()
        ),
        (0.01, 5, 0, 0)
    );
}

/// `step_threads` cuts a large tensor into blocks, one per thread: every optimizer's formulas
/// are per element, so 2 and 3 threads must give `step`'s bits, for the parameters and every
/// buffer, over steps that start from fresh (empty) buffers. 40,001 elements: above the
/// one-thread limit, and not a multiple of either count.
#[test]
fn threaded_steps_are_the_one_thread_bits() {
    let len = 40_001;
    let all = [
        Optimizer::sgd(0.01),
        sgd(0.9, 0.1, false, 1e-2),
        sgd(0.8, 0.0, true, 0.0),
        rmsprop(1e-2, 0.5, true),
        rmsprop(0.0, 0.0, false),
        adam(1e-2, true, false),
        adam(0.1, false, true),
    ];
    for opt in all {
        let mut rng = SplitMix64::new(5);
        let start: Vec<f64> = (0..len).map(|_| 2.0 * rng.uniform() - 1.0).collect();
        let grads: Vec<Vec<f64>> = (0..4)
            .map(|_| (0..len).map(|_| 2.0 * rng.uniform() - 1.0).collect())
            .collect();
        let run = |threads: usize| {
            let (mut p, mut state) = (start.clone(), TensorState::default());
            for (t, g) in grads.iter().enumerate() {
                let mut g = g.clone();
                opt.step_threads(&mut p, &mut g, &mut state, t as u64 + 1, 0.01, threads);
            }
            let buffers: Vec<Vec<u64>> = state
                .buffers()
                .iter()
                .map(|(_, b)| b.iter().map(|v| v.to_bits()).collect())
                .collect();
            (p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), buffers)
        };
        let one = run(1);
        assert_ne!(one.0, start.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        for threads in [2, 3] {
            assert!(run(threads) == one, "{} on {threads} threads", opt.name());
        }
    }
}
