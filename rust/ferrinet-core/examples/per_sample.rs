//! Times the per-sample kernels on the 784-128-10 shapes: `cargo run --release --example per_sample`.
use ferrinet_core::kernels::{gemv_bias, sgd_rank1};
use std::time::Instant;

fn main() {
    let (n_in, n_out) = (784, 128);
    let w = vec![0.01f64; n_in * n_out];
    let b = vec![0.0f64; n_out];
    let x = vec![0.5f64; n_in];
    let mut z = vec![0.0f64; n_out];
    let reps = 20_000;
    let t = Instant::now();
    for _ in 0..reps {
        gemv_bias(&w, std::hint::black_box(&x), &b, &mut z);
    }
    println!(
        "gemv 128x784 f64: {:.2} us",
        t.elapsed().as_secs_f64() / reps as f64 * 1e6
    );
    let (mut w2, mut b2) = (w.clone(), b.clone());
    let delta = vec![1e-3f64; n_out];
    let t = Instant::now();
    for _ in 0..reps {
        sgd_rank1(
            &mut w2,
            &mut b2,
            std::hint::black_box(&delta),
            &x,
            1e-6,
            None,
        );
    }
    println!(
        "rank-1 update 128x784 f64: {:.2} us",
        t.elapsed().as_secs_f64() / reps as f64 * 1e6
    );
    println!("kernels: {}", ferrinet_core::cpu_kernels());
}
