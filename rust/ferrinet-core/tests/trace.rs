//! `NeuralNetwork::trace`: one sample's forward and backward pass with every intermediate kept.
//! It must agree bit for bit with `gradients` / `compute_loss` / `predict` on the one-sample
//! batch (it runs the same pieces), its intermediates must follow docs/maths.md, and the seed
//! delta of the output layer must be the derivative of the loss (checked by finite differences).

mod common;

use common::{
    assert_close, assert_close_scaled, bits, manual_forward, param_bits, random_case, Head, HEADS,
    HIDDEN, KERNEL_REL,
};
use ferrinet_core::{Activation, Error, Loss, MatRef, NeuralNetwork, SplitMix64, Targets};

/// Every hidden activation x every head x 0-3 hidden layers, a few random networks each:
/// (network, sample, its target as one-sample `Targets` data).
fn for_each_case(mut check: impl FnMut(&NeuralNetwork, &[f64], Targets<'_>, Head)) {
    let mut rng = SplitMix64::new(0x7ace);
    for hidden in HIDDEN {
        for head in HEADS {
            for depth in 0..=3 {
                for _ in 0..3 {
                    let (net, data) = random_case(&mut rng, Some(hidden), head, depth);
                    let t = data.t.view().rows_range(0, 1);
                    check(&net, data.inputs().row(0), t, head);
                }
            }
        }
    }
}

#[test]
fn gradients_loss_and_output_equal_those_of_the_one_sample_batch_bit_for_bit() {
    let mut cases = 0;
    for_each_case(|net, x, t, _| {
        let trace = net.trace(x, t).unwrap();
        let xm = MatRef::new(x, 1, x.len()).unwrap();
        let batch = net.batch(xm, t).unwrap();
        let (loss, grads) = net.clone().gradients(&batch).unwrap();
        assert_eq!(trace.loss.to_bits(), loss.to_bits(), "loss");
        assert_eq!(
            trace.loss.to_bits(),
            net.compute_loss(&batch).unwrap().to_bits()
        );
        assert_eq!(trace.layers.len(), grads.len());
        for (l, (lt, g)) in trace.layers.iter().zip(&grads).enumerate() {
            assert_eq!(bits(&lt.grad_weights), bits(&g.weights), "dW of layer {l}");
            assert_eq!(bits(&lt.grad_biases), bits(&g.biases), "db of layer {l}");
        }
        let out = net.predict(xm).unwrap();
        assert_eq!(bits(trace.output()), bits(out.as_slice()), "output");
        cases += 1;
    });
    assert_eq!(cases, HIDDEN.len() * HEADS.len() * 4 * 3);
}

#[test]
fn intermediates_follow_the_formulas() {
    for_each_case(|net, x, t, _| {
        let trace = net.trace(x, t).unwrap();
        let manual = manual_forward(net, MatRef::new(x, 1, x.len()).unwrap());
        let m = net.n_outputs();
        let expected_target: Vec<f64> = (0..m).map(|i| t.get(0, i)).collect();
        assert_eq!(bits(&trace.target), bits(&expected_target), "target row");
        for (l, (lt, layer)) in trace.layers.iter().zip(net.layers()).enumerate() {
            let what = |s: &str| format!("layer {l} ({:?}): {s}", lt.activation);
            assert_eq!(lt.activation, layer.activation());
            assert_eq!(
                (lt.n_inputs, lt.n_outputs),
                (layer.n_inputs(), layer.n_outputs())
            );
            assert_eq!(bits(&lt.weights), bits(layer.weights()), "{}", what("W"));
            assert_eq!(bits(&lt.biases), bits(layer.biases()), "{}", what("b"));
            // The input of layer 0 is the sample; of layer l + 1, the a of layer l.
            let input: &[f64] = if l == 0 { x } else { &trace.layers[l - 1].a };
            assert_eq!(bits(&lt.input), bits(input), "{}", what("input"));
            // z = W x + b, against the article's Neuron::forward (left-to-right sums).
            assert_close_scaled(&lt.z, &manual[l].0, KERNEL_REL, &what("z = W x + b"));
            // a = f(z), exactly the activation of the traced z.
            let mut a = vec![0.0; lt.n_outputs];
            lt.activation.apply_row(&lt.z, &mut a);
            assert_eq!(bits(&lt.a), bits(&a), "{}", what("a = f(z)"));
            // dW = delta x^T, db = delta: for one sample each entry is one product (or one
            // value), so exact; compared as numbers, since a zero's sign depends on whether the
            // kernel adds the product to 0.0 or stores it.
            for i in 0..lt.n_outputs {
                for j in 0..lt.n_inputs {
                    let expected = lt.delta[i] * lt.input[j];
                    let got = lt.grad_weights[i * lt.n_inputs + j];
                    assert!(
                        got == expected,
                        "{}: {got:e} vs {expected:e}",
                        what("dW[i][j]")
                    );
                }
            }
            assert_eq!(lt.grad_biases, lt.delta, "{}", what("db = delta"));
            // dx = W^T delta, summed left to right here.
            let dx: Vec<f64> = (0..lt.n_inputs)
                .map(|j| {
                    (0..lt.n_outputs).fold(0.0, |s, i| {
                        s + lt.delta[i] * lt.weights[i * lt.n_inputs + j]
                    })
                })
                .collect();
            assert_close_scaled(&lt.grad_input, &dx, KERNEL_REL, &what("dx = W^T delta"));
            // delta of the layer below = dx * f'(z) of the layer below.
            if l > 0 {
                let below = &trace.layers[l - 1];
                let expected: Vec<f64> = (0..below.n_outputs)
                    .map(|j| lt.grad_input[j] * below.activation.derivative(below.z[j], below.a[j]))
                    .collect();
                assert_eq!(
                    bits(&below.delta),
                    bits(&expected),
                    "{}",
                    what("delta below")
                );
            }
        }
    });
}

/// The seed delta of the output layer is dL/dz: central differences of `Loss::value` in each
/// output z_i (a recomputed from z), h = 1e-6. Every head's output activation is smooth. The
/// numeric value is known to ~ulp(L) / 2h, so values are compared relative to
/// max(|value|, 32 eps max(|L|, 1) / 2h / TOL) as in gradient_check.rs.
#[test]
fn output_delta_is_the_derivative_of_the_loss() {
    const H: f64 = 1e-6;
    const TOL: f64 = 1e-6;
    let mut worst = 0.0f64;
    for_each_case(|net, x, t, _| {
        let trace = net.trace(x, t).unwrap();
        let out = &trace.layers[trace.layers.len() - 1];
        let loss_at = |z: &[f64]| {
            let mut a = vec![0.0; z.len()];
            out.activation.apply_row(z, &mut a);
            let zm = MatRef::new(z, 1, z.len()).unwrap();
            let am = MatRef::new(&a, 1, a.len()).unwrap();
            net.loss().value(zm, am, &t, None)
        };
        let numeric: Vec<f64> = (0..out.n_outputs)
            .map(|i| {
                let (mut up, mut down) = (out.z.clone(), out.z.clone());
                up[i] += H;
                down[i] -= H;
                (loss_at(&up) - loss_at(&down)) / (2.0 * H)
            })
            .collect();
        let floor = 32.0 * f64::EPSILON * trace.loss.abs().max(1.0) / (2.0 * H) / TOL;
        worst = worst.max(assert_close(
            &out.delta,
            &numeric,
            TOL,
            floor,
            "output delta",
        ));
    });
    assert!(worst > 0.0, "the comparison ran");
}

#[test]
fn bad_input_is_refused_and_the_network_is_unchanged() {
    let net =
        NeuralNetwork::<f64>::new(&[3, 4, 2], &[Activation::Tanh], None, Loss::CrossEntropy, 7)
            .unwrap();
    let before = param_bits(&net);
    let x = [0.1, -0.2, 0.3];
    let rows = [0.5, 0.5, 0.2, 0.8];
    let cases: Vec<(&[f64], Targets, &str)> = vec![
        (
            &x[..2],
            Targets::Classes(&[0]),
            "one sample of 3 inputs, got 2",
        ),
        (&[0.1, f64::NAN, 0.3], Targets::Classes(&[0]), "finite"),
        (&x, Targets::Classes(&[0, 1]), "target of 1 sample, got 2"),
        (&x, Targets::Classes(&[2]), "out of range"),
        (
            &x,
            Targets::Dense(MatRef::new(&rows[..3], 1, 3).unwrap()),
            "3 columns",
        ),
        (
            &x,
            Targets::Dense(MatRef::new(&rows, 2, 2).unwrap()),
            "target of 1 sample, got 2",
        ),
    ];
    for (xs, t, needle) in cases {
        match net.trace(xs, t) {
            Err(Error::Value(msg)) => assert!(msg.contains(needle), "{msg:?} lacks {needle:?}"),
            other => panic!("expected a value error containing {needle:?}, got {other:?}"),
        }
    }
    let mse = NeuralNetwork::<f64>::new(&[2, 1], &[], None, Loss::Mse, 1).unwrap();
    assert!(matches!(
        mse.trace(&[0.0, 1.0], Targets::Classes(&[0])),
        Err(Error::Value(_))
    ));
    assert_eq!(param_bits(&net), before);
    // A valid trace afterwards works and still changes nothing.
    let trace = net.trace(&x, Targets::Classes(&[1])).unwrap();
    assert_eq!(trace.target, vec![0.0, 1.0]);
    assert_eq!(param_bits(&net), before);
}

#[test]
fn float32_trace_equals_float32_gradients() {
    let net = NeuralNetwork::<f32>::new(
        &[4, 5, 3, 2],
        &[Activation::LeakyRelu, Activation::Sigmoid],
        None,
        Loss::BinaryCrossEntropy,
        3,
    )
    .unwrap();
    let x = [0.5f32, -1.25, 0.75, 2.0];
    let t = [1.0f32, 0.25];
    let targets = Targets::Dense(MatRef::new(&t, 1, 2).unwrap());
    let trace = net.trace(&x, targets).unwrap();
    let batch = net.batch(MatRef::new(&x, 1, 4).unwrap(), targets).unwrap();
    let (loss, grads) = net.clone().gradients(&batch).unwrap();
    assert_eq!(trace.loss.to_bits(), loss.to_bits());
    for (lt, g) in trace.layers.iter().zip(&grads) {
        assert_eq!(lt.grad_weights, g.weights);
        assert_eq!(lt.grad_biases, g.biases);
    }
    assert_eq!(trace.output().len(), 2);
    assert_eq!(trace.layers[1].input, trace.layers[0].a);
}
