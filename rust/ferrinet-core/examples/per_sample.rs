//! Times the per-sample kernels, and the products of a block of per-sample steps, on the
//! 784-128-10 first-layer shape, f64 and f32:
//! `cargo run --release --example per_sample`.
use ferrinet_core::kernels::{
    add_rank_n_update, gemv_bias, gram, linear_forward, sgd_rank1, sgd_rank1_gemv,
};
use ferrinet_core::Real;
use ferrinet_core::Threads;
use std::hint::black_box;
use std::time::Instant;

fn time(label: &str, reps: usize, mut f: impl FnMut()) {
    f();
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    let us = t.elapsed().as_secs_f64() / reps as f64 * 1e6;
    println!("{label:<40} {us:8.2} us");
}

fn shapes<T: Real>(name: &str) {
    let (n_in, n_out) = (784, 128);
    let mut w = vec![T::from_f64(0.01); n_in * n_out];
    let mut b = vec![T::ZERO; n_out];
    let x = vec![T::from_f64(0.5); n_in];
    let x_prev = vec![T::from_f64(0.25); n_in];
    let mut z = vec![T::ZERO; n_out];
    let delta = vec![T::from_f64(1e-3); n_out];
    let lr = T::from_f64(1e-6);
    let reps = 20_000;
    time(&format!("gemv 128x784 {name}"), reps, || {
        gemv_bias(&w, black_box(&x), &b, &mut z)
    });
    time(&format!("rank-1 update 128x784 {name}"), reps, || {
        sgd_rank1(&mut w, &mut b, black_box(&delta), &x, lr, None)
    });
    time(&format!("fused update + gemv 128x784 {name}"), reps, || {
        sgd_rank1_gemv(&mut w, &mut b, black_box(&delta), &x_prev, lr, &x, &mut z)
    });
    // The three products of one block of `train` (src/per_sample/sgd_block.rs); divide by m for the
    // cost per step.
    for m in [16, 32, 64] {
        let xb = vec![T::from_f64(0.5); m * n_in];
        let s = vec![T::from_f64(1e-9); m * n_out];
        let (mut z0, mut g) = (vec![T::ZERO; m * n_out], vec![T::ZERO; m * m]);
        let per = (reps / m).max(10);
        time(&format!("block of {m}: Z0 = X W^T + b {name}"), per, || {
            linear_forward(black_box(&xb), m, &w, &b, &mut z0, None, Threads(1))
        });
        time(&format!("block of {m}: Gram X X^T {name}"), per, || {
            gram(black_box(&xb), m, &mut g, Threads(1))
        });
        time(&format!("block of {m}: W += S^T X {name}"), per, || {
            add_rank_n_update(black_box(&s), &xb, m, &mut w, &mut b, Threads(1))
        });
    }
}

fn main() {
    shapes::<f64>("f64");
    shapes::<f32>("f32");
    println!("kernels: {}", ferrinet_core::cpu_kernels());
}
