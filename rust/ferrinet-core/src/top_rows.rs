//! The layers above the first, cut between a step's threads by rows.
//!
//! In a large network's step the first layer's products are cut between the threads by
//! neurons (panels.rs, `kernels::splits_product`). The layers above it are narrow (784-128-10:
//! the 128 -> 10 layer's products are 0.33 M multiply-adds each at batch 256), too small to
//! pay for a cut by neurons, so they ran on the calling thread while the others waited: ~10%
//! of a float64 2-thread step by perf (their forward and dx products, the softmax, the loss's
//! log-sum-exp, the output delta, f'). All of that is row by row, so here each thread takes a
//! block of the batch's rows through it: forward through layers 1.., the log-sum-exp of each
//! output row (cross-entropy), the output delta, and back down to the first layer's delta.
//! What sums over rows stays with the caller, after the blocks, in the order one thread takes
//! it: the loss value (one running sum over the rows, from the stored log-sum-exps) and the
//! weight gradients (`NeuralNetwork::sgd_batch`, `backprop`).
//!
//! Same bits as one thread. Each row's values are the same operations on the same operands:
//! the products are the gemm crate's (a product of at least `SMALL` multiply-adds for a
//! block's rows as for the whole batch, `kernels::forward_is_gemm`), which sums each
//! element's depth in one register, in order, whatever the rows around it, as long as the
//! depth is one block: up to 512 for any shape (`gemm-common`'s `kernel_params` and its
//! small-shape path both take min(k, 512) when k <= 512; deeper, they may block it otherwise:
//! 187 rows of a 1477 -> 53 product cut in three differed), and as long as the product does not
//! take the crate's dot-product kernel for small outputs (`DOT_KERNEL_MAX`), which sums a
//! depth in several lanes (a 64 x 45 -> 5 forward differed in 218 of 320 values when cut in
//! two blocks of 32 rows). Layers outside these bounds are not cut.
//! tests/kernel_paths.rs and the tests below compare 1, 2 and 3 threads bit for bit, and a
//! block's products with the whole batch's on 150 random shapes within these bounds.

use crate::batch::Batch;
use crate::error::Result;
use crate::float::Real;
use crate::kernels::{self, Threads};
use crate::layer::Layer;
use crate::loss::{cross_entropy_terms, log_sum_exp, Loss};
use crate::matrix::try_resize;
use crate::network::{NeuralNetwork, Normalizer, Workspace};
use crate::team::map_parts;

/// Rows a thread's block has at least: below, a hand-off costs about what the block's work
/// saves (a section's hand-off is ~2-5 us; 32 rows of 128 -> 10 are ~10 us of work).
const MIN_ROWS: usize = 32;

/// The deepest product (k) the gemm crate sums in one block for any shape (see above).
const ONE_DEPTH_BLOCK: usize = 512;

/// The gemm crate takes a product whose rows are contiguous in both operands (the forward
/// product x W^T) with a dot-product kernel, each element's depth summed in several lanes,
/// when its output has at most this many elements: a block's forward must not go there when
/// the whole batch's does not (`gemm-common` 0.19, `gemm_basic_generic`).
const DOT_KERNEL_MAX: usize = 16 * 16;

/// The narrowest layer whose products are cut: the gemm crate has its own kernels for a depth
/// of 1 or 2 and for one output column (gevv, gemv), not checked here for the bits of a block.
const MIN_WIDTH: usize = 3;

/// One thread's block of rows: its rows of each layer's z and a above the first (index l - 1
/// for layer l), of every layer's delta, and of the output's log-sum-exps.
struct Block<'w, T> {
    rows: (usize, usize),
    z: Vec<&'w mut [T]>,
    a: Vec<&'w mut [T]>,
    delta: Vec<&'w mut [T]>,
    lse: &'w mut [T],
}

impl<T: Real> NeuralNetwork<T> {
    /// How many blocks of rows a step on n rows cuts the layers above the first into (`top_rows`),
    /// or 1 for not cut: with several threads, no dropout (its masks are drawn row-major, in
    /// one sequence), at least `MIN_ROWS` rows per block, and, for every layer above the
    /// first, products that take the same kernel for a block's rows as for the whole batch
    /// (a GEMM, not the dot-product kernel), with depths (its inputs for forward, its outputs
    /// for dx) of one block for the gemm crate.
    pub(crate) fn top_parts(&self, n: usize, dropout: bool) -> usize {
        let parts = self.threads.0.min(n / MIN_ROWS);
        let rows = n / parts.max(1); // the smallest block's
        let cuts = parts > 1
            && !dropout
            && self.layers.len() > 1
            && self.layers[1..]
                .iter()
                .all(|layer| cuts_layer(rows, layer.n_inputs(), layer.n_outputs()));
        if cuts {
            parts
        } else {
            1
        }
    }
}

/// Whether a layer of n_in -> n_out may be cut into blocks of at least `rows` rows: its
/// forward (x W^T) and dx (delta W) products then take, for a block, the kernel the whole
/// batch's take, with the depth in one block (see the module's doc).
fn cuts_layer(rows: usize, n_in: usize, n_out: usize) -> bool {
    let width = MIN_WIDTH..=ONE_DEPTH_BLOCK;
    width.contains(&n_in)
        && width.contains(&n_out)
        && rows * n_out > DOT_KERNEL_MAX
        && kernels::forward_is_gemm(rows, n_in, n_out)
}

/// After the first layer's forward pass into `work.z[0]` and `work.a[0]`: the forward pass of
/// every layer above it into `work.z` and `work.a`, the output delta (normalised by `norm`),
/// and the delta of every layer below the output (each layer's dx times f' of the one below),
/// in `parts` blocks of rows (`NeuralNetwork::top_parts`), one per thread. Returns the
/// batch's loss, the bits of `Loss::value` on the whole batch. The weight gradients are left
/// to the caller.
pub(crate) fn top_rows<T: Real>(
    layers: &[Layer<T>],
    loss: Loss,
    batch: &Batch<T>,
    norm: Normalizer<T>,
    work: &mut Workspace<T>,
    parts: usize,
) -> Result<T> {
    let n = batch.len();
    let last = layers.len() - 1;
    for (l, layer) in layers.iter().enumerate() {
        if l > 0 {
            work.z[l].resize(n, layer.n_outputs())?;
            work.a[l].resize(n, layer.n_outputs())?;
        }
        work.delta[l].resize(n, layer.n_outputs())?;
    }
    let ce = loss == Loss::CrossEntropy;
    try_resize(&mut work.lse, if ce { n } else { 0 })?;
    let bounds: Vec<(usize, usize)> = (0..parts)
        .map(|i| (i * n / parts, (i + 1) * n / parts))
        .collect();
    let mut blocks: Vec<Block<T>> = bounds
        .iter()
        .map(|&rows| Block {
            rows,
            z: Vec::with_capacity(last),
            a: Vec::with_capacity(last),
            delta: Vec::with_capacity(last + 1),
            lse: &mut [],
        })
        .collect();
    let (z0, z_top) = work.z.split_at_mut(1);
    let (a0, a_top) = work.a.split_at_mut(1);
    let (z0, a0) = (&z0[0], &a0[0]);
    for (z, a) in z_top.iter_mut().zip(a_top.iter_mut()) {
        let cols = z.cols();
        let z = row_blocks(z.as_mut_slice(), cols, &bounds);
        let a = row_blocks(a.as_mut_slice(), cols, &bounds);
        for ((block, z), a) in blocks.iter_mut().zip(z).zip(a) {
            block.z.push(z);
            block.a.push(a);
        }
    }
    for d in work.delta.iter_mut() {
        let cols = d.cols();
        for (block, d) in blocks
            .iter_mut()
            .zip(row_blocks(d.as_mut_slice(), cols, &bounds))
        {
            block.delta.push(d);
        }
    }
    if ce {
        for (block, lse) in blocks.iter_mut().zip(row_blocks(&mut work.lse, 1, &bounds)) {
            block.lse = lse;
        }
    }
    map_parts(blocks, |block| {
        block_rows(
            layers,
            loss,
            batch,
            norm,
            (z0.as_slice(), a0.as_slice()),
            block,
        )
    });
    let (z, a) = (work.z[last].view(), work.a[last].view());
    if !ce {
        return Ok(loss.value(z, a, &batch.t, batch.weights));
    }
    // Cross-entropy's value from the log-sum-exps of the blocks: the running sum `value`
    // makes, term for term.
    let lse = &work.lse;
    let add = |k: usize, sum: T| cross_entropy_terms(z.row(k), lse[k], &batch.t, k, sum);
    let sums = loss.block_sums_by((n, z.cols()), batch.weights, add);
    Ok(loss.finish_value(sums, batch.weights.is_some(), n, z.cols()))
}

/// One block's rows through the layers above the first and back down (`top_rows`); z0 and a0
/// are the whole batch's first-layer outputs.
fn block_rows<T: Real>(
    layers: &[Layer<T>],
    loss: Loss,
    batch: &Batch<T>,
    norm: Normalizer<T>,
    (z0, a0): (&[T], &[T]),
    block: Block<T>,
) {
    let Block {
        rows: (start, end),
        mut z,
        mut a,
        mut delta,
        lse,
    } = block;
    let rows = end - start;
    let width0 = layers[0].n_outputs();
    let (z0, a0) = (
        &z0[start * width0..end * width0],
        &a0[start * width0..end * width0],
    );
    let last = layers.len() - 1;
    // Forward: layer l reads the a of layer l - 1 (the first layer's from the whole batch's).
    for (l, layer) in layers.iter().enumerate().skip(1) {
        let (below, here) = a.split_at_mut(l - 1);
        let input: &[T] = if l == 1 { a0 } else { below[l - 2] };
        let (w, b, f) = (layer.weights(), layer.biases(), layer.activation());
        kernels::linear_forward(input, rows, w, b, z[l - 1], Some((f, here[0])), Threads(1));
    }
    let m = layers[last].n_outputs();
    let (z_out, a_out) = (&*z[last - 1], &*a[last - 1]);
    for (lk, zk) in lse.iter_mut().zip(z_out.chunks_exact(m)) {
        *lk = log_sum_exp(zk);
    }
    let t = batch.t.rows_range(start, end);
    let weights = batch.weights.map(|w| &w[start..end]);
    let normal = (&t, weights, norm.n, norm.total_weight);
    let output = layers[last].activation();
    loss.seed_rows(z_out, a_out, m, normal, output, delta[last]);
    // Backward: dx of layer l (with its weights of the forward pass) into the delta below,
    // then times f' of the layer below (`network::delta_below`).
    for l in (1..=last).rev() {
        let (below, here) = delta.split_at_mut(l);
        let w = layers[l].weights();
        kernels::linear_input_grad(here[0], rows, w, below[l - 1], Threads(1));
        let (zb, ab): (&[T], &[T]) = if l == 1 {
            (z0, a0)
        } else {
            (z[l - 2], a[l - 2])
        };
        layers[l - 1]
            .activation()
            .scale_by_derivative(below[l - 1], zb, ab);
    }
}

/// buffer (rows of `cols` values) cut into the row ranges of `bounds`, which follow each
/// other from row 0.
fn row_blocks<'b, T>(
    mut buffer: &'b mut [T],
    cols: usize,
    bounds: &[(usize, usize)],
) -> Vec<&'b mut [T]> {
    bounds
        .iter()
        .map(|&(start, end)| {
            let (head, tail) = std::mem::take(&mut buffer).split_at_mut((end - start) * cols);
            buffer = tail;
            head
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::activation::Activation::{self, *};
    use crate::loss::{Loss, Targets};
    use crate::matrix::MatRef;
    use crate::network::NeuralNetwork;
    use crate::optimizer::Optimizer;
    use crate::rng::SplitMix64;
    use crate::training::{EpochOptions, TrainingState};
    use crate::Real;

    /// A network whose first layer is cut by neurons between 2 threads (so the batch is not
    /// split by rows as a small network's is), with the layers above it as given.
    struct Case {
        sizes: &'static [usize],
        hidden: &'static [Activation],
        loss: Loss,
        dense: bool,    // targets as a matrix (class probabilities for cross-entropy)
        weighted: bool, // sample weights
        batch: usize,
    }

    const CASES: [Case; 7] = [
        Case {
            sizes: &[120, 64, 10],
            hidden: &[Relu],
            loss: Loss::CrossEntropy,
            dense: false,
            weighted: false,
            batch: 100,
        },
        Case {
            sizes: &[150, 48, 32, 12],
            hidden: &[Tanh, Sigmoid],
            loss: Loss::CrossEntropy,
            dense: true,
            weighted: true,
            batch: 96,
        },
        Case {
            sizes: &[200, 40, 20],
            hidden: &[LeakyRelu],
            loss: Loss::Mse,
            dense: true,
            weighted: true,
            batch: 96,
        },
        Case {
            sizes: &[200, 50, 12],
            hidden: &[Relu],
            loss: Loss::BinaryCrossEntropy,
            dense: true,
            weighted: false,
            batch: 96,
        },
        Case {
            sizes: &[200, 50, 16],
            hidden: &[Tanh],
            loss: Loss::Poisson,
            dense: true,
            weighted: true,
            batch: 96,
        },
        Case {
            sizes: &[150, 48, 32, 12],
            hidden: &[Relu, Relu],
            loss: Loss::CrossEntropy,
            dense: false,
            weighted: true,
            batch: 100,
        },
        Case {
            // 52 rows x 5 outputs per block on 2 threads: just above `DOT_KERNEL_MAX` (on 3
            // threads, 34 x 5 is below it: not cut)
            sizes: &[200, 45, 5],
            hidden: &[Relu],
            loss: Loss::CrossEntropy,
            dense: false,
            weighted: false,
            batch: 104,
        },
    ];

    /// The parameters' bits and the epoch losses' after two epochs of `opt` on 300 rows, and
    /// the bits of a whole-batch gradient, on `threads` threads.
    fn run<T: Real>(case: &Case, opt: Optimizer, threads: usize) -> (Vec<u64>, Vec<u64>) {
        let (n, n_in, n_out) = (300, case.sizes[0], *case.sizes.last().unwrap());
        let mut rng = SplitMix64::new(17);
        let x: Vec<T> = (0..n * n_in)
            .map(|_| T::from_f64(2.0 * rng.uniform() - 1.0))
            .collect();
        let classes: Vec<usize> = (0..n)
            .map(|_| (rng.uniform() * n_out as f64) as usize % n_out)
            .collect();
        let dense: Vec<T> = (0..n * n_out)
            .map(|i| match case.loss {
                Loss::CrossEntropy => T::from_f64(if i % n_out == classes[i / n_out] {
                    0.75
                } else {
                    0.25 / (n_out - 1) as f64
                }),
                Loss::BinaryCrossEntropy => T::from_f64((rng.uniform() < 0.4) as u8 as f64),
                Loss::Poisson => T::from_f64((rng.uniform() * 4.0).floor()),
                Loss::Mse => T::from_f64(rng.uniform()),
            })
            .collect();
        let weights: Vec<T> = (0..n).map(|_| T::from_f64(0.5 + rng.uniform())).collect();
        let mut net = NeuralNetwork::<T>::new(case.sizes, case.hidden, None, case.loss, 5).unwrap();
        net.set_n_threads(threads).unwrap();
        let xm = MatRef::new(&x, n, n_in).unwrap();
        let t = if case.dense {
            Targets::Dense(MatRef::new(&dense, n, n_out).unwrap())
        } else {
            Targets::Classes(&classes)
        };
        let batch = if case.weighted {
            net.weighted_batch(xm, t, &weights).unwrap()
        } else {
            net.batch(xm, t).unwrap()
        };
        if threads == 2 {
            // the path under test: the first layer cut by neurons, the top by rows
            assert!(
                !net.splits(case.batch, false),
                "{:?}: split by rows",
                case.sizes
            );
            assert_eq!(net.top_parts(case.batch, false), 2, "{:?}", case.sizes);
        }
        let mut state = TrainingState::new(opt, 3, case.sizes.len() - 1).unwrap();
        let mut losses = Vec::new();
        for _ in 0..2 {
            let epoch = net.train_epoch(&batch, &EpochOptions::new(case.batch), &mut state);
            losses.push(epoch.unwrap().to_bits());
        }
        let sub = batch.rows_range(0, case.batch);
        let (loss, grads) = net.gradients(&sub).unwrap();
        losses.push(loss.to_bits());
        let mut bits: Vec<u64> = net
            .parameters()
            .into_iter()
            .flat_map(|(w, b)| w.into_iter().chain(b))
            .map(|v| v.to_f64().to_bits())
            .collect();
        for g in grads {
            bits.extend(
                g.weights
                    .iter()
                    .chain(&g.biases)
                    .map(|v| v.to_f64().to_bits()),
            );
        }
        (bits, losses)
    }

    #[test]
    fn rows_cut_between_threads_give_one_threads_bits() {
        for case in &CASES {
            for opt in [Optimizer::sgd(0.05), Optimizer::adam(1e-3)] {
                let one64 = run::<f64>(case, opt, 1);
                let one32 = run::<f32>(case, opt, 1);
                for threads in [2, 3] {
                    let what = format!(
                        "{:?} {:?} {} on {threads} threads",
                        case.sizes,
                        case.loss,
                        opt.name()
                    );
                    assert!(run::<f64>(case, opt, threads) == one64, "float64 {what}");
                    assert!(run::<f32>(case, opt, threads) == one32, "float32 {what}");
                }
            }
        }
    }

    /// The products a block makes, on random shapes that `cuts_layer` admits (rows of 32 to
    /// 300, widths of 3 to 512, cut in 2 to 4 blocks), give the whole batch's bits: the
    /// forward product with its bias and softmax, and dx. What the bits of a cut rest on,
    /// checked on the kernels themselves (a newer gemm crate that blocks otherwise fails here).
    #[test]
    fn a_blocks_products_are_the_whole_batchs_bits() {
        use crate::kernels::{linear_forward, linear_input_grad, Threads};
        let mut rng = SplitMix64::new(41);
        let mut draw = |lo: usize, hi: usize| lo + (rng.uniform() * (hi - lo + 1) as f64) as usize;
        let mut checked = 0;
        while checked < 150 {
            let (parts, n_in) = (draw(2, 4), draw(3, 512));
            let n_out = if checked % 3 == 0 {
                draw(3, 16)
            } else {
                draw(3, 512)
            };
            let n = draw(32 * parts, 300.max(32 * parts));
            if !super::cuts_layer(n / parts, n_in, n_out) {
                continue;
            }
            checked += 1;
            let x: Vec<f64> = (0..n * n_in)
                .map(|_| draw(0, 2000) as f64 / 1000.0 - 1.0)
                .collect();
            let w: Vec<f64> = (0..n_in * n_out)
                .map(|_| draw(0, 2000) as f64 / 997.0 - 1.0)
                .collect();
            let b: Vec<f64> = (0..n_out).map(|_| draw(0, 100) as f64 / 50.0).collect();
            let d: Vec<f64> = (0..n * n_out)
                .map(|_| draw(0, 2000) as f64 / 1009.0 - 1.0)
                .collect();
            let whole = |rows: (usize, usize)| {
                let m = rows.1 - rows.0;
                let (mut z, mut a, mut dx) = (
                    vec![0.0; m * n_out],
                    vec![0.0; m * n_out],
                    vec![0.0; m * n_in],
                );
                let xs = &x[rows.0 * n_in..rows.1 * n_in];
                linear_forward(xs, m, &w, &b, &mut z, Some((Softmax, &mut a)), Threads(1));
                let ds = &d[rows.0 * n_out..rows.1 * n_out];
                linear_input_grad(ds, m, &w, &mut dx, Threads(1));
                [z, a, dx].map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>())
            };
            let all = whole((0, n));
            let mut cut: [Vec<u64>; 3] = Default::default();
            for i in 0..parts {
                for (c, block) in cut
                    .iter_mut()
                    .zip(whole((i * n / parts, (i + 1) * n / parts)))
                {
                    c.extend(block);
                }
            }
            assert!(cut == all, "{n} rows in {parts} blocks, {n_in} -> {n_out}");
        }
    }

    #[test]
    fn a_top_the_gemm_crate_would_sum_otherwise_is_not_cut() {
        let mut net =
            NeuralNetwork::<f64>::new(&[200, 45, 5], &[Relu], None, Loss::CrossEntropy, 1).unwrap();
        net.set_n_threads(2).unwrap();
        // 32 rows x 5 outputs: the dot-product kernel for a block, not for the whole batch
        assert_eq!(net.top_parts(64, false), 1);
        assert_eq!(net.top_parts(104, false), 2); // 52 x 5 > 256
        assert_eq!(net.top_parts(104, true), 1); // dropout: masks in one sequence
        for (sizes, n) in [
            (&[200, 600, 10][..], 256),
            (&[200, 64, 2][..], 256),
            (&[200, 64, 1][..], 512),
        ] {
            let mut net = NeuralNetwork::<f64>::new(sizes, &[Relu], None, Loss::Mse, 1).unwrap();
            net.set_n_threads(2).unwrap();
            assert_eq!(net.top_parts(n, false), 1, "{sizes:?}");
        }
    }
}
