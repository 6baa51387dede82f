"""PyTorch hand-off: train in ferrinet, load the file into torch.nn.Sequential, carry on there.

ferrinet saves safetensors files whose tensors are named as PyTorch names the parameters of
``nn.Sequential(nn.Linear, activation, nn.Linear, ...)``: ``0.weight`` (out, in), ``0.bias``,
``2.weight``, ... (the activations, at odd positions, have no parameters). So
``safetensors.torch.load_file`` + ``load_state_dict`` is all it takes. ferrinet's losses are
PyTorch's (``cross_entropy`` is ``nn.CrossEntropyLoss``, from the logits), so the two
frameworks then agree step for step: here 5 full-batch SGD steps in PyTorch and the same 5
steps in ferrinet (``net.backward``) give the same weights to rounding.

Needs ``pip install torch safetensors``.

Run:  python examples/pytorch_handoff.py [--out DIR]
      (the file goes to DIR, default a temporary directory removed at the end; exits with an
      error if PyTorch and ferrinet disagree)
"""

# expect: PyTorch agrees with ferrinet: outputs to \S+ \(<= 1e-12\), weights after 5 SGD steps to \S+ \(<= 1e-10\)

import argparse
import sys
import tempfile
from pathlib import Path

import ferrinet
import numpy as np
import safetensors.torch
import torch
from ferrinet import datasets
from torch import nn

STEPS, LR = 5, 0.1


def main(out: Path) -> None:
    X, y = datasets.iris()
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, y, test_size=0.25, seed=0, stratify=True
    )
    X_train, X_test = datasets.standardize(X_train, X_test)

    # 1. Train in ferrinet and save.
    net = ferrinet.NeuralNetwork([4, 16, 3], activation="relu", loss="cross_entropy", seed=0)
    net.fit(X_train, y_train, epochs=100, learning_rate=0.01, verbose=0)
    path = out / "iris.safetensors"
    net.save(path)
    print(f"ferrinet: {net}, test accuracy {net.evaluate(X_test, y_test)['accuracy']:.1%}")

    # 2. Load into PyTorch: the same layers, in float64 (the network's dtype).
    state = safetensors.torch.load_file(str(path))
    print(f"{path.name}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in sorted(state.items())))
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)).double()
    model.load_state_dict(state)  # strict: every name and shape must match
    print(f"torch:    {model}".replace("\n", "\n          "))

    # ferrinet's output is the softmax (its output activation for cross_entropy); torch's
    # Sequential ends at the logits, as nn.CrossEntropyLoss wants.
    inputs = torch.from_numpy(X_test)
    with torch.no_grad():
        torch_probabilities = torch.softmax(model(inputs), dim=1).numpy()
    output_difference = float(np.max(np.abs(torch_probabilities - net.predict(X_test))))
    print(f"\nsame test inputs: max |softmax(torch) - ferrinet| = {output_difference:.1e}")

    # 3. Continue training in PyTorch: full-batch SGD on the cross-entropy ...
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    features, targets = torch.from_numpy(X_train), torch.from_numpy(y_train)
    print(f"\n{STEPS} steps of SGD (lr {LR}), full batch of {len(X_train)}:")
    print("  step  torch loss     ferrinet loss")
    for step in range(1, STEPS + 1):
        optimizer.zero_grad()
        loss = loss_fn(model(features), targets)
        loss.backward()
        optimizer.step()
        # ... and the same step in ferrinet: backward(X, Y, lr) is one SGD step on the batch
        # and returns the loss before the step, as loss.item() is here
        ferrinet_loss = net.backward(X_train, y_train, LR)
        print(f"  {step:4d}  {loss.item():.15f}  {ferrinet_loss:.15f}")

    weight_difference = 0.0
    for (W, b), layer in zip(net.get_weights(), (model[0], model[2])):
        assert isinstance(layer, nn.Linear)
        weight_difference = max(
            weight_difference,
            float(np.max(np.abs(layer.weight.detach().numpy() - W))),
            float(np.max(np.abs(layer.bias.detach().numpy() - b))),
        )
    print(f"max |W_torch - W_ferrinet| after {STEPS} steps = {weight_difference:.1e}")

    print(
        f"\nPyTorch agrees with ferrinet: outputs to {output_difference:.1e} (<= 1e-12), "
        f"weights after {STEPS} SGD steps to {weight_difference:.1e} (<= 1e-10)"
    )
    if not (output_difference <= 1e-12 and weight_difference <= 1e-10):
        sys.exit("FAILED: PyTorch and ferrinet disagree")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the saved file in this directory")
    args = parser.parse_args()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        main(args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="ferrinet-torch-") as tmp:
            main(Path(tmp))
