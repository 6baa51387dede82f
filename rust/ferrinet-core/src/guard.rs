//! Divergence guards: a training call runs its steps fast, checks the weights once at the
//! end, and only when a weight went non-finite replays the call from a snapshot one checked
//! step at a time, so the network ends on the last step that kept every weight finite.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::float::Real;
use crate::layer::Layer;
use crate::network::NeuralNetwork;

impl<T: Real> NeuralNetwork<T> {
    /// Runs `steps` calls of `step`, which must not change anything when it fails with a
    /// non-finite loss. If the run ends with a non-finite weight, it is replayed from a snapshot
    /// with a check after every step and stopped before the step that broke it.
    ///
    /// `step(net, state, i, checked)` may leave work undone when `checked` is false (the fast
    /// run); `finish` completes it after the fast run, before the weights are checked.
    pub(crate) fn guarded_deferred<S: Clone>(
        &mut self,
        state: &mut S,
        steps: usize,
        mut step: impl FnMut(&mut Self, &mut S, usize, bool) -> Result<()>,
        finish: impl FnMut(&mut Self, &mut S),
    ) -> Result<()> {
        let run = |net: &mut Self, state: &mut S, range: Range<usize>, checked: bool| {
            range
                .into_iter()
                .try_for_each(|i| step(net, state, i, checked))
        };
        self.guarded_runs(state, steps, run, finish)
    }

    /// `guarded_deferred` with the steps taken by `run(net, state, range, checked)`, which takes
    /// steps `range` in order (and stops at the first that fails): the fast run is one call for
    /// all of them, each checked step one call of its own. For a loop of steps that dispatches
    /// on the CPU's kernels once per call rather than once per step (per_sample.rs).
    pub(crate) fn guarded_runs<S: Clone>(
        &mut self,
        state: &mut S,
        steps: usize,
        mut run: impl FnMut(&mut Self, &mut S, Range<usize>, bool) -> Result<()>,
        mut finish: impl FnMut(&mut Self, &mut S),
    ) -> Result<()> {
        let snapshot = (self.layers.clone(), state.clone());
        let fast = run(self, state, 0..steps, false);
        finish(self, state);
        let finite = self.all_finite();
        match fast {
            Ok(()) if finite => return Ok(()),
            Err(Error::NonFinite(msg)) if finite => return Err(Error::NonFinite(msg)),
            Err(e @ Error::Interrupted) => return Err(e),
            // A refused input (`epoch_batch` checks rows as it goes) or a failed allocation:
            // the call fails as a whole, so it leaves everything as it was.
            Err(e @ (Error::Value(_) | Error::Memory(_))) => {
                self.layers = snapshot.0;
                *state = snapshot.1;
                return Err(e);
            }
            _ => {}
        }
        self.layers = snapshot.0;
        *state = snapshot.1;
        for i in 0..steps {
            let before = (self.layers.clone(), state.clone());
            let result = run(self, state, i..i + 1, true);
            if result.is_err() || !self.all_finite() {
                self.layers = before.0;
                *state = before.1;
                return Err(match result {
                    Err(e) => e,
                    Ok(()) => diverged_at(i),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn all_finite(&self) -> bool {
        self.layers.iter().all(Layer::all_finite)
    }
}

/// The error of a step `i` (of this call) that made a weight non-finite and was undone.
pub(crate) fn diverged_at(i: usize) -> Error {
    Error::NonFinite(format!(
        "training diverged at step {i} of this call: a weight became non-finite; the weights \
         are those before that step (try a smaller learning_rate)"
    ))
}
