//! Every refused argument (erratum 10: shapes and values are checked, never truncated): each
//! returns Err(Error::Value), or Err(Error::Memory) for sizes that cannot be allocated, and
//! leaves the network bit for bit as it was.

mod common;

use common::param_bits;
use ferrinet_core::{
    Activation, Error, Layer, Loss, MatRef, NeuralNetwork, Result, SplitMix64, Targets,
    TrainProgress,
};
use std::time::{Duration, Instant};

fn net(loss: Loss, n_out: usize) -> NeuralNetwork {
    NeuralNetwork::<f64>::new(&[2, 4, n_out], &[Activation::Tanh], None, loss, 3).unwrap()
}

/// Runs `f`, which must fail with a Value error; the network's parameters, and what a later
/// valid call computes, are as before. Returns the message.
fn refused<T: std::fmt::Debug>(
    net: &mut NeuralNetwork,
    f: impl FnOnce(&mut NeuralNetwork) -> Result<T>,
) -> String {
    let before = param_bits(net);
    let mut twin = net.clone();
    let result = f(net);
    let msg = match result {
        Err(Error::Value(msg)) => msg,
        other => panic!("expected Err(Error::Value(..)), got {other:?}"),
    };
    assert!(!msg.is_empty());
    assert_eq!(
        param_bits(net),
        before,
        "a refused call changed the network ({msg})"
    );
    // Nothing half-done either: the next valid step is the one an untouched twin takes.
    let (x, t) = valid_data(net);
    let batch = net.batch(x.view(), t.view()).unwrap();
    let (la, ga) = net.gradients(&batch).unwrap();
    let (lb, gb) = twin.gradients(&batch).unwrap();
    assert_eq!((la.to_bits(), ga), (lb.to_bits(), gb));
    msg
}

struct OwnedX(Vec<f64>, usize);
impl OwnedX {
    fn view(&self) -> MatRef<'_> {
        MatRef::new(&self.0, self.0.len() / self.1, self.1).unwrap()
    }
}

fn valid_data(net: &NeuralNetwork) -> (OwnedX, common::OwnedTargets) {
    let mut rng = SplitMix64::new(5);
    let x = OwnedX(
        common::random_vec(&mut rng, 3 * net.n_inputs(), -1.0, 1.0),
        net.n_inputs(),
    );
    let head = match net.loss() {
        Loss::Mse => common::Head::MseIdentity,
        Loss::BinaryCrossEntropy => common::Head::Bce,
        Loss::CrossEntropy => common::Head::CeClasses,
        Loss::Poisson => common::Head::Poisson,
    };
    (
        x,
        common::random_targets(&mut rng, head, 3, net.n_outputs()),
    )
}

fn dense(data: &[f64], rows: usize, cols: usize) -> Targets<'_> {
    Targets::Dense(MatRef::new(data, rows, cols).unwrap())
}

#[test]
fn non_finite_inputs_are_refused() {
    let mut n = net(Loss::Mse, 1);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let x = [0.5, 0.5, 1.0, bad];
        let t = [0.0, 1.0];
        let msg = refused(&mut n, |n| {
            n.batch(MatRef::new(&x, 2, 2).unwrap(), dense(&t, 2, 1))
        });
        assert!(msg.contains("finite") && msg.contains("[1, 1]"), "{msg}");
        refused(&mut n, |n| n.predict(MatRef::new(&x, 2, 2).unwrap()));
    }
}

#[test]
fn wrong_number_of_input_columns_is_refused() {
    let mut n = net(Loss::Mse, 1);
    let t = [0.0];
    for cols in [1, 3] {
        let x = vec![0.5; cols];
        let msg = refused(&mut n, |n| {
            n.batch(MatRef::new(&x, 1, cols).unwrap(), dense(&t, 1, 1))
        });
        assert!(
            msg.contains('2') && msg.contains(&cols.to_string()),
            "{msg}"
        );
        refused(&mut n, |n| n.predict(MatRef::new(&x, 1, cols).unwrap()));
    }
}

#[test]
fn zero_samples_are_refused() {
    let mut n = net(Loss::Mse, 1);
    let empty = MatRef::new(&[], 0, 2).unwrap();
    refused(&mut n, |n| n.batch(empty, dense(&[], 0, 1)));
    refused(&mut n, |n| n.predict(empty));
    let mut ce = net(Loss::CrossEntropy, 3);
    refused(&mut ce, |n| n.batch(empty, Targets::Classes(&[])));
}

#[test]
fn matrices_whose_data_do_not_match_their_shape_are_refused() {
    assert!(matches!(
        MatRef::new(&[1.0, 2.0, 3.0], 2, 2),
        Err(Error::Value(_))
    ));
    assert!(matches!(MatRef::new(&[1.0; 4], 1, 3), Err(Error::Value(_))));
    // rows * cols overflows usize: refused, not wrapped around.
    assert!(matches!(
        MatRef::<f64>::new(&[], usize::MAX, 2),
        Err(Error::Value(_))
    ));
    assert!(matches!(
        MatRef::<f64>::new(&[], 1 << 33, 1 << 31),
        Err(Error::Value(_))
    ));
}

#[test]
fn targets_of_the_wrong_length_or_columns_are_refused() {
    let x = [0.1, 0.2, 0.3, 0.4];
    let xs = MatRef::new(&x, 2, 2).unwrap();
    let mut mse = net(Loss::Mse, 2);
    // Rows: one too few, one too many.
    refused(&mut mse, |n| n.batch(xs, dense(&[0.0; 2], 1, 2)));
    refused(&mut mse, |n| n.batch(xs, dense(&[0.0; 6], 3, 2)));
    // Columns: the network has 2 outputs.
    refused(&mut mse, |n| n.batch(xs, dense(&[0.0; 2], 2, 1)));
    refused(&mut mse, |n| n.batch(xs, dense(&[0.0; 6], 2, 3)));
    // Class indices: one per sample.
    let mut ce = net(Loss::CrossEntropy, 3);
    refused(&mut ce, |n| n.batch(xs, Targets::Classes(&[0])));
    refused(&mut ce, |n| n.batch(xs, Targets::Classes(&[0, 1, 2])));
    refused(&mut ce, |n| n.batch(xs, dense(&[0.5; 4], 2, 2)));
}

#[test]
fn class_indices_out_of_range_or_for_another_loss_are_refused() {
    let x = [0.1, 0.2, 0.3, 0.4];
    let xs = MatRef::new(&x, 2, 2).unwrap();
    let mut ce = net(Loss::CrossEntropy, 3);
    let msg = refused(&mut ce, |n| n.batch(xs, Targets::Classes(&[0, 3])));
    assert!(msg.contains('3'), "{msg}");
    refused(&mut ce, |n| n.batch(xs, Targets::Classes(&[usize::MAX, 0])));
    // Class indices are for cross_entropy only.
    let mut mse = net(Loss::Mse, 3);
    refused(&mut mse, |n| n.batch(xs, Targets::Classes(&[0, 1])));
    let mut bce = net(Loss::BinaryCrossEntropy, 3);
    refused(&mut bce, |n| n.batch(xs, Targets::Classes(&[0, 1])));
}

#[test]
fn targets_outside_their_range_are_refused() {
    let x = [0.1, 0.2];
    let xs = MatRef::new(&x, 1, 2).unwrap();
    for loss in [Loss::BinaryCrossEntropy, Loss::CrossEntropy] {
        let mut n = net(loss, 2);
        for bad in [
            -0.1,
            1.5,
            -1e-300,
            1.0 + f64::EPSILON,
            f64::NAN,
            f64::INFINITY,
        ] {
            let t = [0.5, bad];
            refused(&mut n, |n| n.batch(xs, dense(&t, 1, 2)));
        }
        // The bounds themselves are fine.
        n.batch(xs, dense(&[0.0, 1.0], 1, 2)).unwrap();
    }
    let mut mse = net(Loss::Mse, 2);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let t = [bad, 0.0];
        refused(&mut mse, |n| n.batch(xs, dense(&t, 1, 2)));
    }
    // mse takes any finite real.
    mse.batch(xs, dense(&[-1e300, 7.5], 1, 2)).unwrap();
    // poisson: counts or rates, any finite real >= 0.
    let mut poisson = net(Loss::Poisson, 2);
    for bad in [-1.0, -1e-300, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let t = [2.0, bad];
        let msg = refused(&mut poisson, |n| n.batch(xs, dense(&t, 1, 2)));
        assert!(msg.contains(">= 0") || msg.contains("finite"), "{msg}");
    }
    poisson.batch(xs, dense(&[0.0, 1e300], 1, 2)).unwrap();
}

#[test]
fn learning_rates_that_are_not_finite_and_positive_are_refused() {
    for loss in Loss::ALL {
        let mut n = net(loss, 2);
        let (x, t) = valid_data(&n);
        for lr in [0.0, -0.0, -0.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let batch = n.batch(x.view(), t.view()).unwrap();
            let msg = refused(&mut n, |n| n.backward(&batch, lr));
            assert!(msg.contains("learning_rate"), "{msg}");
            refused(&mut n, |n| n.train(&batch, 3, lr));
            // Even with nothing to do, a bad learning rate is an error.
            refused(&mut n, |n| n.train(&batch, 0, lr));
            let mut progress = TrainProgress::default();
            refused(&mut n, |n| n.train_steps(&batch, &mut progress, 5, lr));
            assert_eq!(progress.next_sample, 0);
            assert!(progress.epoch_losses.is_empty());
            assert_eq!(progress.epoch_total.to_bits(), 0);
            assert!(ferrinet_core::check_learning_rate(lr).is_err());
        }
    }
    assert!(ferrinet_core::check_learning_rate(f64::MIN_POSITIVE).is_ok());
}

fn new_err(
    sizes: &[usize],
    hidden: &[Activation],
    output: Option<Activation>,
    loss: Loss,
) -> Error {
    match NeuralNetwork::<f64>::new(sizes, hidden, output, loss, 0) {
        Ok(_) => panic!("{sizes:?} {hidden:?} {output:?} {loss:?} was accepted"),
        Err(e) => e,
    }
}

#[test]
fn bad_sizes_are_refused() {
    use Activation::*;
    for (sizes, hidden) in [
        (&[][..], &[][..]),
        (&[3], &[]),
        (&[0, 2], &[]),
        (&[2, 0], &[]),
        (&[2, 0, 1], &[Relu]),
        (&[2, 3, 1], &[]),           // one hidden layer, no activation for it
        (&[2, 3, 1], &[Relu, Relu]), // one activation too many
        (&[2, 1], &[Tanh]),          // no hidden layer
    ] {
        let e = new_err(sizes, hidden, None, Loss::Mse);
        assert!(matches!(e, Error::Value(_)), "{sizes:?}: {e:?}");
    }
}

#[test]
fn softmax_in_a_hidden_layer_is_refused() {
    use Activation::*;
    let e = new_err(&[2, 3, 3], &[Softmax], None, Loss::CrossEntropy);
    assert!(
        matches!(e, Error::Value(ref m) if m.contains("softmax")),
        "{e:?}"
    );
    let e = new_err(&[2, 3, 3, 2], &[Relu, Softmax], None, Loss::Mse);
    assert!(matches!(e, Error::Value(_)), "{e:?}");
}

#[test]
fn an_output_activation_that_does_not_fit_the_loss_is_refused() {
    use Activation::*;
    for (loss, output) in [
        (Loss::Mse, Softmax),
        (Loss::BinaryCrossEntropy, Identity),
        (Loss::BinaryCrossEntropy, Tanh),
        (Loss::BinaryCrossEntropy, Softmax),
        (Loss::BinaryCrossEntropy, Relu),
        (Loss::CrossEntropy, Sigmoid),
        (Loss::CrossEntropy, Identity),
        (Loss::CrossEntropy, Tanh),
        (Loss::CrossEntropy, Exp),
        (Loss::Poisson, Identity),
        (Loss::Poisson, Softmax),
        (Loss::Poisson, Sigmoid),
        (Loss::BinaryCrossEntropy, Exp),
    ] {
        let e = new_err(&[2, 3, 2], &[Relu], Some(output), loss);
        assert!(matches!(e, Error::Value(_)), "{loss:?} + {output:?}: {e:?}");
    }
    // mse takes any element-wise output activation.
    for output in [Identity, Relu, LeakyRelu, Sigmoid, Tanh, Exp] {
        NeuralNetwork::<f64>::new(&[2, 3, 2], &[Relu], Some(output), Loss::Mse, 0).unwrap();
    }
}

#[test]
fn from_layers_checks_chaining_softmax_and_loss() {
    let mut rng = SplitMix64::new(1);
    let layer = |i, o, a, rng: &mut SplitMix64| Layer::<f64>::new(i, o, a, rng).unwrap();
    assert!(matches!(
        NeuralNetwork::<f64>::from_layers(vec![], Loss::Mse),
        Err(Error::Value(_))
    ));
    let chained = vec![
        layer(2, 3, Activation::Tanh, &mut rng),
        layer(4, 1, Activation::Identity, &mut rng),
    ];
    assert!(matches!(
        NeuralNetwork::from_layers(chained, Loss::Mse),
        Err(Error::Value(_))
    ));
    let softmax_first = vec![
        layer(2, 3, Activation::Softmax, &mut rng),
        layer(3, 3, Activation::Softmax, &mut rng),
    ];
    assert!(matches!(
        NeuralNetwork::from_layers(softmax_first, Loss::CrossEntropy),
        Err(Error::Value(_))
    ));
    let wrong_loss = vec![layer(2, 1, Activation::Tanh, &mut rng)];
    assert!(matches!(
        NeuralNetwork::from_layers(wrong_loss, Loss::BinaryCrossEntropy),
        Err(Error::Value(_))
    ));
    assert!(matches!(
        Layer::from_parts(2, 2, vec![0.0; 3], vec![0.0; 2], Activation::Tanh),
        Err(Error::Value(_))
    ));
    assert!(matches!(
        Layer::from_parts(2, 2, vec![0.0; 4], vec![f64::NAN, 0.0], Activation::Tanh),
        Err(Error::Value(_))
    ));
}

/// (W, b) per layer, as `parameters()` gives them.
type Params = Vec<(Vec<f64>, Vec<f64>)>;

#[test]
fn set_parameters_is_all_or_nothing() {
    let mut n = net(Loss::Mse, 2); // [2, 4, 2]
    let good = n.parameters();
    let changed = |f: &dyn Fn(&mut Params)| {
        // Layer 0 is always replaced by a valid, different one: it must not be applied either.
        let mut p = good.clone();
        p[0].0.iter_mut().for_each(|w| *w += 1.0);
        f(&mut p);
        p
    };
    let bad_params: Vec<Params> = vec![
        changed(&|p| {
            p.pop();
        }),
        changed(&|p| p.push((vec![0.0; 4], vec![0.0; 2]))),
        changed(&|p| p[1].0.push(0.0)),
        changed(&|p| {
            p[1].0.pop();
        }),
        changed(&|p| p[1].1.push(0.0)),
        changed(&|p| p[1].1.clear()),
        changed(&|p| p[1].0[3] = f64::NAN),
        changed(&|p| p[1].1[1] = f64::INFINITY),
        changed(&|p| p[1].0[0] = f64::NEG_INFINITY),
        vec![],
    ];
    for params in bad_params {
        refused(&mut n, |n| n.set_parameters(params));
    }
    // And a valid replacement is applied whole.
    let ok = changed(&|_| {});
    n.set_parameters(ok.clone()).unwrap();
    assert_eq!(n.parameters(), ok);
}

/// Sizes whose parameters cannot exist are a Memory error, returned at once: no abort, no
/// attempt to allocate or initialise them.
#[test]
fn huge_networks_are_refused_quickly_with_a_memory_error() {
    let start = Instant::now();
    for sizes in [
        vec![1usize << 40, 1 << 40],
        vec![1 << 40, 1 << 40, 1],
        vec![2, 1 << 40, 1 << 40, 2],
        vec![usize::MAX, 2],
        vec![2, usize::MAX],
        // 2^56 weights (2^59 bytes) pass the address-space arithmetic but no allocator can
        // provide them: the failed allocation is reported, not aborted on.
        vec![1 << 28, 1 << 28],
    ] {
        let hidden = vec![Activation::Relu; sizes.len() - 2];
        let e = new_err(&sizes, &hidden, None, Loss::Mse);
        assert!(matches!(e, Error::Memory(_)), "{sizes:?}: {e:?}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn errors_display_their_message() {
    let e = new_err(&[3], &[], None, Loss::Mse);
    let Error::Value(msg) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(e.to_string(), *msg);
    assert!(msg.contains("[3]"), "{msg}");
}
