//! Runs per-sample steps on a network, for instruction counts under callgrind:
//! `cargo build --release --example count_steps`, then
//! `valgrind --tool=callgrind target/release/examples/count_steps train f64 2-8-1 25600`.
//! `what` is `train` (one `train` call of the given number of steps) or `backward` (that many
//! one-sample `backward` calls, each on a batch built for it as the binding builds one); mse on 2-8-style data, cross-entropy when the output is wider.
use ferrinet_core::{Activation, Loss, MatRef, NeuralNetwork, Real, SplitMix64, Targets};

fn run<T: Real>(what: &str, sizes: &[usize], steps: usize) {
    let (n_in, n_out, m) = (sizes[0], *sizes.last().unwrap(), 256);
    let mut rng = SplitMix64::new(0);
    let x: Vec<T> = (0..m * n_in)
        .map(|_| T::from_f64(2.0 * rng.uniform() - 1.0))
        .collect();
    let classes: Vec<usize> = (0..m).map(|k| k % n_out).collect();
    let dense: Vec<T> = (0..m)
        .map(|k| T::from_f64((3.0 * x[k * n_in].to_f64()).sin()))
        .collect();
    let (loss, t) = if n_out == 1 {
        (
            Loss::Mse,
            Targets::Dense(MatRef::new(&dense, m, 1).unwrap()),
        )
    } else {
        (Loss::CrossEntropy, Targets::Classes(&classes))
    };
    let hidden = vec![Activation::Relu; sizes.len() - 2];
    let mut net = NeuralNetwork::<T>::new(sizes, &hidden, None, loss, 0).unwrap();
    net.set_n_threads(1).unwrap();
    let xm = MatRef::new(&x, m, n_in).unwrap();
    let lr = 0.01;
    if what == "train" {
        let batch = net.batch(xm, t).unwrap();
        net.train_steps(&batch, &mut Default::default(), steps, lr)
            .unwrap();
        println!("{}", digest(&net));
    } else {
        // as the binding does per call: the sample's batch (its checks), then the step
        let mut net2 = net.clone();
        for i in 0..steps {
            let k = i % m;
            let batch = net2
                .batch(xm.rows_range(k, k + 1), t.rows_range(k, k + 1))
                .unwrap();
            net2.backward(&batch, lr).unwrap();
        }
        println!("{}", digest(&net2));
    }
    std::hint::black_box(&net);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = args[3].split('-').map(|s| s.parse().unwrap()).collect();
    let steps = args[4].parse().unwrap();
    match args[2].as_str() {
        "f32" => run::<f32>(&args[1], &sizes, steps),
        _ => run::<f64>(&args[1], &sizes, steps),
    }
}

/// FNV-1a over every parameter's bits: equal digests, equal networks.
fn digest<T: Real>(net: &NeuralNetwork<T>) -> u64 {
    let mut h = 0xcbf29ce484222325u64;
    for (w, b) in net.parameters() {
        for v in w.iter().chain(&b) {
            h = (h ^ v.to_f64().to_bits()).wrapping_mul(0x100000001b3);
        }
    }
    h
}
