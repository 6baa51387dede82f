//! Finite-difference check of the analytic gradients (errata 1, 2, 3, 5, 6, 7): hundreds of
//! seeded random networks, every hidden activation with every loss / output activation, and a
//! negative control showing the check does catch a 1% error in the gradient.

mod common;

use common::{kink_margin, manual_forward, random_case, Data, Head, HEADS, HIDDEN};
use ferrinet_core::{Activation, NeuralNetwork, SplitMix64};

/// Largest accepted |analytic - numeric| / max(|analytic|, |numeric|, floor).
const TOL: f64 = 1e-6;
/// relu / leaky_relu pre-activations start at least this far from the kink at 0 (inputs are
/// redrawn until they do), so that perturbations rarely cross it; a parameter whose
/// perturbation still flips a relu unit is skipped (a crossing is not a gradient error) and
/// counted.
const KINK_MARGIN: f64 = 1e-4;

/// How the numeric gradient is obtained from `compute_loss`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    /// The plain central difference (L(p + h) - L(p - h)) / 2h with h = 1e-6.
    ///
    /// Its accuracy is limited by roundoff, not by the O(h^2) truncation (~1e-12): the losses
    /// here are O(1) and each evaluation of L carries a rounding error of a few ulps, which the
    /// difference divides by 2h = 2e-6. So the numeric gradient is only known to about
    /// ulp(L) / 2h ~ 1e-10 absolute, whatever its size, and a relative test of gradients smaller
    /// than ~1e-4 measures that roundoff rather than the backward pass. Measured over these
    /// ~28,000 parameters the error reaches 6.6 * eps_mach * max(|L|, 1) / 2h (7.2e-10
    /// absolute), which a fixed floor of 1e-4 (1e-10 absolute at TOL) does not absorb: relative
    /// errors up to 2.7e-6 showed up there, all of them roundoff (the Richardson check below
    /// agrees with the same analytic gradients to 4e-12). The floor is therefore the roundoff
    /// bound with a 5x margin: 32 * eps_mach * max(|L|, 1) / 2h / TOL, about
    /// 3.6e-3 * max(|L|, 1). Worst relative error seen with it: 1.4e-7.
    Central,
    /// Richardson extrapolation of central differences, (4 D(h/2) - D(h)) / 3 with h = 1e-3:
    /// truncation O(h^4) ~ 1e-12 and roundoff ~ ulp(L) / h ~ 1e-13 (measured: at most 4e-12
    /// absolute), so it resolves the small gradients that the plain difference cannot: with the
    /// 1e-4 floor (1e-10 absolute below it), the worst relative error seen is 6.8e-9.
    Richardson,
}

const CENTRAL_H: f64 = 1e-6;
const RICHARDSON_H: f64 = 1e-3;

impl Method {
    fn floor(self, loss: f64) -> f64 {
        match self {
            Method::Central => 32.0 * f64::EPSILON * loss.abs().max(1.0) / (2.0 * CENTRAL_H) / TOL,
            Method::Richardson => 1e-4,
        }
    }
}

#[allow(dead_code)] // the fields are read through Debug, in the failure messages
#[derive(Debug, Clone, Default)]
struct Worst {
    rel: f64,
    abs: f64,
    analytic: f64,
    numeric: f64,
    floor: f64,
    layer: usize,
    what: String,
    case: String,
}

#[derive(Debug, Default)]
struct Report {
    worst: Option<Worst>,
    checked: usize,
    skipped: usize,
}

impl Report {
    fn worst_rel(&self) -> f64 {
        self.worst.as_ref().map_or(0.0, |w| w.rel)
    }

    fn merge(&mut self, other: Report) {
        if other.worst_rel() > self.worst_rel() || self.worst.is_none() {
            self.worst = other.worst.or(self.worst.take());
        }
        self.checked += other.checked;
        self.skipped += other.skipped;
    }
}

/// Signs of every relu / leaky_relu pre-activation: a perturbation that changes one crossed a
/// kink.
fn relu_signs(net: &NeuralNetwork, data: &Data) -> Vec<bool> {
    let cached = manual_forward(net, data.inputs());
    net.layers()
        .iter()
        .zip(&cached)
        .filter(|(l, _)| matches!(l.activation(), Activation::Relu | Activation::LeakyRelu))
        .flat_map(|(_, (z, _))| z.iter().map(|&v| v > 0.0))
        .collect()
}

/// Compares `scale` * the gradients of `gradients()` with numeric derivatives of
/// `compute_loss` after `set_parameters`, for every weight and bias.
fn check(net: &mut NeuralNetwork, data: &Data, scale: f64, method: Method, case: &str) -> Report {
    let batch = data.batch(net);
    let (loss, grads) = net.gradients(&batch).unwrap();
    assert_eq!(
        loss.to_bits(),
        net.compute_loss(&batch).unwrap().to_bits(),
        "{case}: gradients() and compute_loss() disagree on the loss"
    );
    let floor = method.floor(loss);
    let params = net.parameters();
    let signs = relu_signs(net, data);
    let mut probe = net.clone();
    // The loss at parameter (l, bias?, p) moved by delta, the value actually stored there, and
    // whether a relu unit changed side.
    let mut eval = |l: usize, is_bias: bool, p: usize, delta: f64| -> (f64, f64, bool) {
        let mut moved = params.clone();
        let v = if is_bias {
            &mut moved[l].1[p]
        } else {
            &mut moved[l].0[p]
        };
        *v += delta;
        let stored = *v;
        probe.set_parameters(moved).unwrap();
        let crossed = relu_signs(&probe, data) != signs;
        (stored, probe.compute_loss(&batch).unwrap(), crossed)
    };
    // A central difference, divided by the step actually stored (p + h and p - h are rounded).
    let mut central = |l: usize, is_bias: bool, p: usize, h: f64| -> (f64, bool) {
        let (hi, l_hi, c_hi) = eval(l, is_bias, p, h);
        let (lo, l_lo, c_lo) = eval(l, is_bias, p, -h);
        ((l_hi - l_lo) / (hi - lo), c_hi || c_lo)
    };
    let mut report = Report::default();
    for (l, g) in grads.iter().enumerate() {
        assert_eq!(g.weights.len(), params[l].0.len(), "{case}: dW shape");
        assert_eq!(g.biases.len(), params[l].1.len(), "{case}: db shape");
        let all = g
            .weights
            .iter()
            .enumerate()
            .map(|(p, &v)| (false, p, v))
            .chain(g.biases.iter().enumerate().map(|(p, &v)| (true, p, v)));
        for (is_bias, p, raw) in all {
            let analytic = scale * raw;
            let (numeric, crossed) = match method {
                Method::Central => central(l, is_bias, p, CENTRAL_H),
                Method::Richardson => {
                    let (d1, c1) = central(l, is_bias, p, RICHARDSON_H);
                    let (d2, c2) = central(l, is_bias, p, RICHARDSON_H / 2.0);
                    ((4.0 * d2 - d1) / 3.0, c1 || c2)
                }
            };
            if crossed {
                report.skipped += 1;
                continue;
            }
            report.checked += 1;
            let abs = (analytic - numeric).abs();
            let rel = abs / analytic.abs().max(numeric.abs()).max(floor);
            assert!(rel.is_finite(), "{case}: non-finite gradient");
            if report.worst.as_ref().is_none_or(|w| rel > w.rel) {
                let n_in = net.layers()[l].n_inputs();
                report.worst = Some(Worst {
                    rel,
                    abs,
                    analytic,
                    numeric,
                    floor,
                    layer: l,
                    what: if is_bias {
                        format!("b[{p}]")
                    } else {
                        format!("W[{}][{}]", p / n_in, p % n_in)
                    },
                    case: case.to_string(),
                });
            }
        }
    }
    report
}

fn describe(net: &NeuralNetwork, head: Head, data: &Data) -> String {
    let acts: Vec<&str> = net.layers().iter().map(|l| l.activation().name()).collect();
    format!(
        "sizes {:?}, activations {:?}, {:?}, batch of {}",
        net.sizes(),
        acts,
        head,
        data.n
    )
}

/// A random case whose relu units keep away from their kink.
fn case_away_from_kinks(
    rng: &mut SplitMix64,
    hidden: Option<Activation>,
    head: Head,
    depth: usize,
) -> (NeuralNetwork, Data) {
    for _ in 0..1000 {
        let (net, data) = random_case(rng, hidden, head, depth);
        if kink_margin(&net, data.inputs()) >= KINK_MARGIN {
            return (net, data);
        }
    }
    panic!("no case away from the relu kinks in 1000 draws");
}

/// Both checks on one case; panics with the worst parameter when either fails.
fn check_both(net: &mut NeuralNetwork, data: &Data, case: &str, totals: &mut [Report; 2]) {
    for (method, total) in [Method::Central, Method::Richardson]
        .into_iter()
        .zip(totals)
    {
        let report = check(net, data, 1.0, method, case);
        assert!(
            report.worst_rel() <= TOL,
            "{method:?} gradient check failed: relative error {:e} > {TOL:e}; worst parameter: \
             {:#?}",
            report.worst_rel(),
            report.worst
        );
        total.merge(report);
    }
}

fn summarise(name: &str, networks: usize, totals: &[Report; 2]) {
    for (method, total) in [Method::Central, Method::Richardson].iter().zip(totals) {
        eprintln!(
            "{name}: {networks} networks, {method:?}: {} parameters checked, {} skipped at a relu \
             kink, worst {:?}",
            total.checked, total.skipped, total.worst
        );
        // Perturbations that cross a kink are rare (the inputs keep away from them).
        assert!(
            total.skipped * 100 <= total.checked,
            "{name}: too many skipped"
        );
    }
}

/// 50 networks for one loss head: hidden activation i % 5 and depth (i / 5) % 5, so every
/// (hidden activation, depth 0-4) pair appears twice.
fn assert_head_passes(head: Head, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let mut totals = [Report::default(), Report::default()];
    let networks = 50;
    for i in 0..networks {
        let hidden = HIDDEN[i % HIDDEN.len()];
        let depth = (i / HIDDEN.len()) % 5;
        let (mut net, data) = case_away_from_kinks(&mut rng, Some(hidden), head, depth);
        let case = format!("case {i}: {}", describe(&net, head, &data));
        check_both(&mut net, &data, &case, &mut totals);
    }
    summarise(&format!("{head:?}"), networks, &totals);
}

#[test]
fn mse_identity_output_matches_finite_differences() {
    assert_head_passes(Head::MseIdentity, 101);
}

#[test]
fn mse_tanh_output_matches_finite_differences() {
    assert_head_passes(Head::MseTanh, 102);
}

#[test]
fn mse_sigmoid_output_matches_finite_differences() {
    assert_head_passes(Head::MseSigmoid, 103);
}

#[test]
fn binary_cross_entropy_matches_finite_differences() {
    assert_head_passes(Head::Bce, 104);
}

#[test]
fn cross_entropy_with_class_indices_matches_finite_differences() {
    assert_head_passes(Head::CeClasses, 105);
}

#[test]
fn cross_entropy_with_probability_rows_matches_finite_differences() {
    assert_head_passes(Head::CeProbs, 106);
}

#[test]
fn poisson_matches_finite_differences() {
    assert_head_passes(Head::Poisson, 120);
}

/// Networks whose hidden layers each draw their own activation (relu feeding sigmoid, tanh
/// feeding leaky_relu, ...), with every head.
#[test]
fn mixed_hidden_activations_match_finite_differences() {
    let mut rng = SplitMix64::new(107);
    let mut totals = [Report::default(), Report::default()];
    let networks = 60;
    for i in 0..networks {
        let head = HEADS[i % HEADS.len()];
        let depth = 2 + i % 3;
        let (mut net, data) = case_away_from_kinks(&mut rng, None, head, depth);
        let case = format!("mixed case {i}: {}", describe(&net, head, &data));
        check_both(&mut net, &data, &case, &mut totals);
    }
    summarise("mixed", networks, &totals);
}

/// The check has teeth: a gradient 1% too large fails it, on every network and with either
/// numeric method, while the unscaled gradient passes on the same networks.
#[test]
fn negative_control_gradient_scaled_by_1_01_fails_the_check() {
    let mut rng = SplitMix64::new(108);
    for i in 0..60 {
        let head = HEADS[i % HEADS.len()];
        let hidden = HIDDEN[(i / HEADS.len()) % HIDDEN.len()];
        let depth = i % 5;
        let (mut net, data) = case_away_from_kinks(&mut rng, Some(hidden), head, depth);
        let case = format!("control case {i}: {}", describe(&net, head, &data));
        for method in [Method::Central, Method::Richardson] {
            let honest = check(&mut net, &data, 1.0, method, &case);
            assert!(
                honest.worst_rel() <= TOL,
                "{method:?}: the unscaled check should pass: {:#?}",
                honest.worst
            );
            let scaled = check(&mut net, &data, 1.01, method, &case);
            assert!(
                scaled.worst_rel() > TOL,
                "{method:?}: the check missed a gradient scaled by 1.01: {:#?}",
                scaled.worst
            );
        }
    }
}
