//! Times one epoch of 60,000 x 784-128-10 mini-batch SGD (batch 256) on 1 and 2 threads:
//! `cargo run --release --example epoch` (best of 5 per thread count, alternating).
use ferrinet_core::{
    Activation, EpochOptions, Loss, MatRef, NeuralNetwork, Optimizer, Real, Targets, TrainingState,
};
use std::time::Instant;

fn run<T: Real>(name: &str) {
    let (n, n_in) = (60_000, 784);
    let x: Vec<T> = (0..n * n_in)
        .map(|i| T::from_f64(((i * 7919) % 1000) as f64 / 1000.0 - 0.5))
        .collect();
    let classes: Vec<usize> = (0..n).map(|i| (i * 104_729) % 10).collect();
    let net0 = NeuralNetwork::<T>::new(
        &[n_in, 128, 10],
        &[Activation::Relu],
        None,
        Loss::CrossEntropy,
        0,
    )
    .unwrap();
    let sgd = Optimizer::Sgd {
        lr: 0.01,
        momentum: 0.0,
        dampening: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    };
    let options = EpochOptions::new(256);
    let mut best = [f64::INFINITY; 2];
    for _ in 0..5 {
        for (i, threads) in [1, 2].into_iter().enumerate() {
            let mut net = net0.clone();
            net.set_n_threads(threads).unwrap();
            let xm = MatRef::new(&x, n, n_in).unwrap();
            let batch = net.batch(xm, Targets::Classes(&classes)).unwrap();
            let mut state = TrainingState::new(sgd, 0, 2).unwrap();
            let t = Instant::now();
            net.train_epoch(&batch, &options, &mut state).unwrap();
            best[i] = best[i].min(t.elapsed().as_secs_f64());
        }
    }
    println!(
        "epoch b256 {name}: 1 thread {:.0} ms, 2 threads {:.0} ms, speed-up {:.2}x",
        best[0] * 1e3,
        best[1] * 1e3,
        best[0] / best[1]
    );
}

fn main() {
    run::<f64>("f64");
    run::<f32>("f32");
}
