/* The native yardstick of bench_sgd.py: a plain per-sample SGD loop in C.
 *
 * What a competent C programmer writes for the article's training loop, and nothing more: an
 * MLP with relu hidden layers, an identity output with mse or a softmax output with
 * cross-entropy, trained one sample at a time with plain SGD. Per sample:
 *
 *   forward   z_l = W_l a_{l-1} + b_l,  a_l = relu(z_l) (hidden), a_0 = x
 *   seed      mse:            L = (1/m) sum_j (z_j - t_j)^2,       delta = (2/m) (z - t)
 *             cross-entropy:  L = log sum_j e^{z_j} - z_t,         delta = softmax(z) - onehot(t)
 *   backward  for l = last .. 1, ONE pass over the rows of W_l that does both
 *               g_k += W_l[j][k] delta_j          (the input gradient, from the weight as it
 *                                                  was in the forward pass: erratum 3)
 *               W_l[j][k] -= lr delta_j a_{l-1,k} (the update, in place)
 *             then delta_{l-1} = g * relu'(z_{l-1}); the first layer needs no g.
 *             b_l -= lr delta.
 *
 * (docs/maths.md with n = 1.) No intrinsics, no blocking of several samples, no threads: the
 * compiler vectorizes the inner loops (bench_sgd.py builds it with -O3 -march=native
 * -ffast-math, which allows the reassociation a vectorized dot product needs); the forward dot
 * products keep 16 (double) / 32 (float) partial sums in plain C (see there). It is the
 * "fused per-sample step" that ferrinet's per-call paths are measured against, on the same CPU,
 * in the same run, instead of absolute microseconds that depend on the machine (AVX2 or
 * AVX-512, cache sizes).
 *
 * REAL is double or float, set by the compiler command line (-DREAL=double / -DREAL=float);
 * the script builds one shared library per dtype. <tgmath.h> picks exp/expf and log/logf.
 * The epoch loss is summed in double in both, as a mean over the epoch's samples.
 */
#include <stdint.h>
#include <stdlib.h>
#include <tgmath.h>

#ifndef REAL
#error "compile with -DREAL=double or -DREAL=float"
#endif

enum { LOSS_MSE = 0, LOSS_CROSS_ENTROPY = 1 };

/* One SGD step on one sample; returns the loss of the forward pass before the step.
 * act[l] (l = 0..n_layers) holds the layer inputs (act[0] = x, not written), z[l] the
 * pre-activations of layer l (0-based), g a scratch vector as wide as the widest layer. */
static double step(int n_layers, const int *sizes, REAL **W, REAL **b, const REAL *x,
                   const REAL *target, int64_t label, REAL lr, int loss, REAL **act, REAL **z,
                   REAL *delta, REAL *g) {
    act[0] = (REAL *)x;
    for (int l = 0; l < n_layers; l++) {
        const int n_in = sizes[l], n_out = sizes[l + 1];
        const REAL *a = act[l];
        REAL *zl = z[l];
        for (int j = 0; j < n_out; j++) {
            const REAL *w = W[l] + (size_t)j * n_in;
            /* LANES partial sums, as any tuned dot product keeps: one running sum is a chain
             * of dependent adds that the vectorized loop runs at the adder's latency (gcc keeps
             * one vector accumulator even with -ffast-math); ferrinet's kernels keep 8 lanes */
            enum { LANES = 128 / sizeof(REAL) };
            REAL s = 0;
            int k = 0;
            if (n_in >= LANES) { /* a short row (2-8-1) would only pay for zeroing and adding */
                REAL part[LANES] = {0};
                for (; k + LANES <= n_in; k += LANES)
                    for (int u = 0; u < LANES; u++) part[u] += w[k + u] * a[k + u];
                for (int u = 0; u < LANES; u++) s += part[u];
            }
            for (; k < n_in; k++) s += w[k] * a[k];
            zl[j] = s + b[l][j];
        }
        if (l < n_layers - 1)
            for (int j = 0; j < n_out; j++) act[l + 1][j] = zl[j] > 0 ? zl[j] : 0;
    }

    const int m = sizes[n_layers];
    const REAL *out = z[n_layers - 1];
    double value;
    if (loss == LOSS_CROSS_ENTROPY) {
        REAL mx = out[0];
        for (int j = 1; j < m; j++) mx = out[j] > mx ? out[j] : mx;
        REAL s = 0;
        for (int j = 0; j < m; j++) {
            delta[j] = exp(out[j] - mx);
            s += delta[j];
        }
        value = (double)((mx + log(s)) - out[label]);
        for (int j = 0; j < m; j++) delta[j] /= s;
        delta[label] -= 1;
    } else {
        double total = 0;
        for (int j = 0; j < m; j++) {
            REAL d = out[j] - target[j];
            total += (double)(d * d);
            delta[j] = ((REAL)2 / (REAL)m) * d;
        }
        value = total / m;
    }

    for (int l = n_layers - 1; l >= 0; l--) {
        const int n_in = sizes[l], n_out = sizes[l + 1];
        const REAL *a = act[l];
        REAL *Wl = W[l];
        if (l > 0) {
            for (int k = 0; k < n_in; k++) g[k] = 0;
            for (int j = 0; j < n_out; j++) {
                REAL *w = Wl + (size_t)j * n_in;
                const REAL d = delta[j], step_ = lr * d;
                for (int k = 0; k < n_in; k++) {
                    g[k] += w[k] * d;
                    w[k] -= step_ * a[k];
                }
            }
        } else {
            for (int j = 0; j < n_out; j++) {
                REAL *w = Wl + (size_t)j * n_in;
                const REAL step_ = lr * delta[j];
                for (int k = 0; k < n_in; k++) w[k] -= step_ * a[k];
            }
        }
        for (int j = 0; j < n_out; j++) b[l][j] -= lr * delta[j];
        if (l > 0) {
            const REAL *zp = z[l - 1];
            for (int k = 0; k < n_in; k++) delta[k] = zp[k] > 0 ? g[k] : 0;
        }
    }
    return value;
}

/* `epochs` passes, in order, over the n samples of X (n, sizes[0]), row-major. Targets: rows of
 * Y (n, sizes[n_layers]) for mse, class indices `labels` (n,) for cross-entropy (the other
 * pointer may be NULL). W[l] is (sizes[l+1], sizes[l]) row-major, b[l] (sizes[l+1],); both are
 * updated in place. epoch_losses[e] = mean loss of epoch e. Returns 0, or -1 if out of memory. */
int yardstick_train(int n_layers, const int *sizes, REAL **W, REAL **b, const REAL *X,
                    const REAL *Y, const int64_t *labels, int64_t n, int64_t epochs, double lr,
                    int loss, double *epoch_losses) {
    int widest = 0;
    for (int l = 0; l <= n_layers; l++) widest = sizes[l] > widest ? sizes[l] : widest;
    REAL *scratch = malloc(sizeof(REAL) * (size_t)widest * (2 * (size_t)n_layers + 3));
    REAL **act = malloc(sizeof(REAL *) * (size_t)(n_layers + 1));
    REAL **z = malloc(sizeof(REAL *) * (size_t)n_layers);
    if (!scratch || !act || !z) {
        free(scratch);
        free(act);
        free(z);
        return -1;
    }
    REAL *p = scratch;
    for (int l = 0; l < n_layers; l++) {
        act[l + 1] = p;
        p += widest;
        z[l] = p;
        p += widest;
    }
    REAL *delta = p, *g = p + widest;

    const int n_in = sizes[0], m = sizes[n_layers];
    for (int64_t e = 0; e < epochs; e++) {
        double total = 0;
        for (int64_t i = 0; i < n; i++) {
            total += step(n_layers, sizes, W, b, X + i * n_in, Y ? Y + i * m : NULL,
                          labels ? labels[i] : 0, (REAL)lr, loss, act, z, delta, g);
        }
        epoch_losses[e] = total / (double)n;
    }
    free(scratch);
    free(act);
    free(z);
    return 0;
}
