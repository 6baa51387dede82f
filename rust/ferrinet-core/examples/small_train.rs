//! Per-sample `train` on the article's 2-8-1 network: `cargo run --release --example small_train`.
use ferrinet_core::{Activation, Loss, MatRef, NeuralNetwork, Targets};
use std::time::Instant;

fn main() {
    let n = 2_000_000;
    let x: Vec<f64> = (0..2 * n)
        .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
        .collect();
    let y: Vec<f64> = (0..n)
        .map(|i| ((i * 104729) % 1000) as f64 / 1000.0)
        .collect();
    let mut net =
        NeuralNetwork::<f64>::new(&[2, 8, 1], &[Activation::Relu], None, Loss::Mse, 0).unwrap();
    let xm = MatRef::new(&x, n, 2).unwrap();
    let t = Targets::Dense(MatRef::new(&y, n, 1).unwrap());
    let batch = net.batch(xm, t).unwrap();
    let start = Instant::now();
    let losses = net.train(&batch, 1, 0.01).unwrap();
    let dt = start.elapsed().as_secs_f64();
    println!(
        "2-8-1 train: {:.3} us/step (loss {:.4})",
        dt / n as f64 * 1e6,
        losses[0]
    );
}
