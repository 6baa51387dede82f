//! Seeded initialisation (erratum 9): one seed gives one network, He-uniform bounds for the
//! relu family and Glorot-uniform otherwise, drawn from SplitMix64 layer by layer in row-major
//! order, zero biases; and the article's picture of a layer: neuron i is row i.

mod common;

use common::{bits, param_bits, random_case, HEADS, HIDDEN};
use ferrinet_core::{Activation, Loss, NeuralNetwork, SplitMix64};

fn limit(act: Activation, n_in: usize, n_out: usize) -> f64 {
    match act {
        Activation::Relu | Activation::LeakyRelu => (6.0 / n_in as f64).sqrt(),
        _ => (6.0 / (n_in + n_out) as f64).sqrt(),
    }
}

#[test]
fn same_seed_gives_the_same_parameters() {
    for seed in [0, 1, 42, u64::MAX] {
        let sizes = [3, 7, 5, 2];
        let acts = [Activation::Relu, Activation::Tanh];
        let a = NeuralNetwork::<f64>::new(&sizes, &acts, None, Loss::Mse, seed).unwrap();
        let b = NeuralNetwork::<f64>::new(&sizes, &acts, None, Loss::Mse, seed).unwrap();
        assert_eq!(param_bits(&a), param_bits(&b), "seed {seed}");
        assert_eq!(param_bits(&a), param_bits(&a.clone()), "clone, seed {seed}");
    }
}

#[test]
fn different_seeds_give_different_weights_in_every_layer() {
    let sizes = [4, 6, 6, 3];
    let acts = [Activation::Sigmoid, Activation::LeakyRelu];
    let nets: Vec<NeuralNetwork> = (0..20)
        .map(|seed| {
            NeuralNetwork::<f64>::new(&sizes, &acts, None, Loss::CrossEntropy, seed).unwrap()
        })
        .collect();
    for (i, a) in nets.iter().enumerate() {
        for b in &nets[i + 1..] {
            for (la, lb) in a.layers().iter().zip(b.layers()) {
                assert_ne!(bits(la.weights()), bits(lb.weights()));
            }
        }
    }
}

/// The whole contract of docs/maths.md, bit for bit: one SplitMix64 seeded once, layers in
/// order, W[i][j] = limit * (2 u - 1) in row-major order, limit from the layer's own
/// activation (He for relu / leaky_relu, Glorot otherwise, the output layer included), b = 0.
#[test]
fn weights_are_the_documented_splitmix64_draws() {
    let mut cases = SplitMix64::new(7);
    for i in 0..60 {
        let head = HEADS[i % HEADS.len()];
        let (net, _) = random_case(&mut cases, None, head, i % 5);
        // The random case gives the architecture; rebuild it with a seed known here.
        let acts: Vec<Activation> = net.layers()[..net.layers().len() - 1]
            .iter()
            .map(|l| l.activation())
            .collect();
        let seed = 1000 + i as u64;
        let net =
            NeuralNetwork::<f64>::new(&net.sizes(), &acts, Some(head.output()), head.loss(), seed)
                .unwrap();
        let mut rng = SplitMix64::new(seed);
        for (l, layer) in net.layers().iter().enumerate() {
            let lim = limit(layer.activation(), layer.n_inputs(), layer.n_outputs());
            let expected: Vec<f64> = (0..layer.weights().len())
                .map(|_| lim * (2.0 * rng.uniform() - 1.0))
                .collect();
            assert_eq!(bits(layer.weights()), bits(&expected), "case {i} layer {l}");
            assert!(
                layer.biases().iter().all(|&b| b.to_bits() == 0),
                "biases are +0.0"
            );
        }
    }
}

/// Bounds, independently of the formula above: every weight in [-limit, limit), and a wide
/// layer's weights fill that interval (so the limit is not smaller than documented either).
#[test]
fn he_bound_for_relu_family_and_glorot_bound_otherwise() {
    let (n_in, n_hidden, n_out) = (50, 80, 30);
    for act in HIDDEN {
        for (out_act, loss) in [
            (Activation::Identity, Loss::Mse),
            (Activation::Relu, Loss::Mse),
            (Activation::Sigmoid, Loss::BinaryCrossEntropy),
            (Activation::Softmax, Loss::CrossEntropy),
        ] {
            let net =
                NeuralNetwork::<f64>::new(&[n_in, n_hidden, n_out], &[act], Some(out_act), loss, 3)
                    .unwrap();
            for (layer, a) in net.layers().iter().zip([act, out_act]) {
                assert_eq!(layer.activation(), a);
                let lim = limit(a, layer.n_inputs(), layer.n_outputs());
                let max = layer.weights().iter().fold(0.0f64, |m, w| m.max(w.abs()));
                assert!(
                    layer.weights().iter().all(|w| (-lim..lim).contains(w)),
                    "{a:?}: a weight is outside [-{lim}, {lim})"
                );
                // 1500+ uniform draws: the largest |w| is within 1% of the bound.
                assert!(max > 0.99 * lim, "{a:?}: max |w| = {max}, bound {lim}");
                assert!(layer.biases().iter().all(|&b| b == 0.0));
            }
        }
    }
    // The two bounds differ, so the check above does tell them apart.
    assert!(
        limit(Activation::Relu, n_in, n_hidden) > 1.2 * limit(Activation::Tanh, n_in, n_hidden)
    );
}

#[test]
fn output_activation_defaults_to_the_one_of_the_loss() {
    for (loss, act) in [
        (Loss::Mse, Activation::Identity),
        (Loss::BinaryCrossEntropy, Activation::Sigmoid),
        (Loss::CrossEntropy, Activation::Softmax),
    ] {
        let net =
            NeuralNetwork::<f64>::new(&[2, 3, 2], &[Activation::Relu], None, loss, 0).unwrap();
        assert_eq!(net.layers()[1].activation(), act, "{loss:?}");
        assert_eq!(net.layers()[0].activation(), Activation::Relu);
        assert_eq!(net.loss(), loss);
        assert_eq!(net.sizes(), vec![2, 3, 2]);
        assert_eq!(net.n_parameters(), 2 * 3 + 3 + 3 * 2 + 2);
    }
}

/// The article's picture: a layer is its neurons, neuron i is row i of W and bias i.
#[test]
fn neuron_i_is_row_i_of_the_weights() {
    let mut rng = SplitMix64::new(11);
    for i in 0..30 {
        let (net, _) = random_case(&mut rng, None, HEADS[i % HEADS.len()], i % 5);
        for layer in net.layers() {
            let n_in = layer.n_inputs();
            assert_eq!(layer.weights().len(), layer.n_outputs() * n_in);
            assert_eq!(layer.neurons().count(), layer.n_outputs());
            for (r, neuron) in layer.neurons().enumerate() {
                let row = &layer.weights()[r * n_in..(r + 1) * n_in];
                assert_eq!(bits(neuron.weights), bits(row));
                assert_eq!(neuron.bias.to_bits(), layer.biases()[r].to_bits());
                let same = layer.neuron(r);
                assert_eq!(bits(same.weights), bits(row));
                assert_eq!(same.bias.to_bits(), neuron.bias.to_bits());
            }
        }
        // parameters() hands out the same (W, b), in layer order.
        for (layer, (w, b)) in net.layers().iter().zip(net.parameters()) {
            assert_eq!(bits(layer.weights()), bits(&w));
            assert_eq!(bits(layer.biases()), bits(&b));
        }
    }
}

/// Neuron::forward is w . x + b summed from 0.0 left to right, exactly.
#[test]
fn neuron_forward_sums_left_to_right_then_adds_the_bias() {
    let net = NeuralNetwork::<f64>::new(&[3, 2], &[], None, Loss::Mse, 5).unwrap();
    let x = [0.1, -2.5, 7.25];
    for neuron in net.layers()[0].neurons() {
        let mut s = 0.0;
        for (w, v) in neuron.weights.iter().zip(&x) {
            s += w * v;
        }
        assert_eq!(neuron.forward(&x).to_bits(), (s + neuron.bias).to_bits());
    }
}

#[test]
#[should_panic(expected = "neuron input length")]
fn neuron_forward_refuses_a_wrong_input_length_instead_of_truncating() {
    // Erratum 10: the article's zip silently truncated.
    let net = NeuralNetwork::<f64>::new(&[3, 2], &[], None, Loss::Mse, 5).unwrap();
    net.layers()[0].neuron(0).forward(&[1.0, 2.0]);
}
