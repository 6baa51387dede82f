//! Times the panel products (src/panels.rs) against the gemm crate on the products of a
//! fused-SGD step's first layer, one thread, three rounds (best of 5 runs each), float64 then
//! float32: `cargo run --release -p ferrinet-core --features internals --example
//! panel_products [n n_in n_out]` (default 64 784 128: batch 64 into 784-128).
//!
//! forward: z (n, n_out) = x W^T;  update: W += s delta^T x. The crate gets W row-major, as
//! the epoch gives it when it does not keep the panels.
use ferrinet_core::panels;
use ferrinet_core::Real;
use std::time::Instant;

/// Best time of 5 runs of `reps` calls of f, per call, in seconds.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("n n_in n_out"))
        .collect();
    let shape = match args[..] {
        [n, n_in, n_out] => (n, n_in, n_out),
        _ => (64, 784, 128),
    };
    run::<f64>(shape);
    run::<f32>(shape);
}

fn run<T: Real>((n, n_in, n_out): (usize, usize, usize)) {
    let x: Vec<T> = (0..n * n_in)
        .map(|i| T::from_f64(((i * 7919) % 1000) as f64 / 1000.0 - 0.5))
        .collect();
    let w: Vec<T> = (0..n_out * n_in)
        .map(|i| T::from_f64(((i * 31) % 1000) as f64 / 1e5))
        .collect();
    let delta: Vec<T> = (0..n * n_out)
        .map(|i| T::from_f64(((i * 17) % 100) as f64 / 1e4))
        .collect();
    let mut p = vec![T::ZERO; panels::panels_len::<T>(n_out, n_in)];
    panels::pack(&w, n_out, n_in, &mut p);
    let (mut z, mut wc) = (vec![T::ZERO; n * n_out], w.clone());
    // About 0.15 s per run of the default shape, whatever the shape.
    let reps = (500 * 64 * 784 * 128 / (n * n_in * n_out).max(1)).max(1);
    let gflop = 2.0 * (n * n_in * n_out) as f64 / 1e9;
    let shape = (n, n_in);
    for round in 0..3 {
        let forward = best(reps, || panels::forward(&x, shape, &p, n_out, &mut z, 1));
        let update = best(reps, || {
            panels::add_weight_product((&x, shape), &delta, n_out, &mut p, T::from_f64(-1e-9), 1)
        });
        // SAFETY (both): the strides describe the row-major buffers above, of these shapes.
        let crate_forward = best(reps, || unsafe {
            gemm::gemm(
                n,
                n_out,
                n_in,
                z.as_mut_ptr(),
                1,
                n_out as isize,
                false,
                x.as_ptr(),
                1,
                n_in as isize,
                w.as_ptr(),
                n_in as isize,
                1,
                T::ZERO,
                T::ONE,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        });
        let crate_update = best(reps, || unsafe {
            gemm::gemm(
                n_out,
                n_in,
                n,
                wc.as_mut_ptr(),
                1,
                n_in as isize,
                true,
                delta.as_ptr(),
                n_out as isize,
                1,
                x.as_ptr(),
                1,
                n_in as isize,
                T::ONE,
                T::from_f64(-1e-9),
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        });
        let show = |t: f64| format!("{:.0} us ({:.1} GFLOP/s)", t * 1e6, gflop / t);
        println!(
            "{} {n} x {n_in} x {n_out}, round {round}: panels forward {}, update {};  gemm crate \
             forward {}, update {}",
            T::NAME,
            show(forward),
            show(update),
            show(crate_forward),
            show(crate_update)
        );
    }
    std::hint::black_box((&z, &wc, &p));
}
