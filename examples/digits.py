"""Handwritten digits: fit with a validation split and early stopping, then the test accuracy.

The UCI digits (shipped with ferrinet, nothing is downloaded): 1,797 images of 8x8 pixels.
A stratified quarter is kept aside for the test; the pixels are standardized with the
statistics of the training part only. ``fit`` trains on mini-batches with Adam, holds out the
last 10% of the training images to watch the validation loss, stops when it has not improved
for 8 epochs and restores the weights of the best epoch.

Run:  python examples/digits.py       (exits with an error if the test accuracy < 95%)
"""

# expect: test accuracy 9\d\.\d% on 450 images

import sys

import ferrinet
import numpy as np
from ferrinet import datasets


def main() -> None:
    X, y = datasets.digits()  # X (1797, 64) pixels 0..16, y (1797,) digits 0..9
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, y, test_size=0.25, seed=0, stratify=True
    )
    X_train, X_test = datasets.standardize(X_train, X_test)  # training statistics only

    net = ferrinet.NeuralNetwork([64, 64, 10], activation="relu", loss="cross_entropy", seed=0)
    history = net.fit(
        X_train,
        y_train,
        epochs=300,
        batch_size=32,
        optimizer="adam",
        learning_rate=1e-3,
        validation_split=0.1,  # the LAST 10% of the training data, as Keras does
        early_stopping={"patience": 8},  # on val_loss; restores the best epoch's weights
        dropout=0.1,
        l2=1e-4,
        verbose=0,  # 1: a progress bar, 2: one line per epoch
    )
    best = history.best_epoch
    assert best is not None
    print(f"{net}")
    print(
        f"stopped after {history.epochs_completed} of 300 epochs ({history.stopped_reason}); "
        f"best epoch {best + 1}: val_loss {history.val_loss[best]:.4f}, "
        f"val_accuracy {history.metrics['val_accuracy'][best]:.1%}"
        + (" (weights restored)" if history.restored_best_weights else "")
    )

    result = net.evaluate(X_test, y_test)  # {'loss': ..., 'accuracy': ...}
    predicted = net.predict(X_test).argmax(axis=1)
    print("\ndigit  test images  right")
    for digit in range(10):
        mine = y_test == digit
        print(f"  {digit}    {int(mine.sum()):9d}  {np.mean(predicted[mine] == digit):6.1%}")
    wrong = np.flatnonzero(predicted != y_test)
    pairs = [f"{y_test[k]}->{predicted[k]}" for k in wrong]
    print(f"mistakes (true->predicted): {', '.join(pairs) or 'none'}")

    accuracy = result["accuracy"]
    print(
        f"\ntest accuracy {accuracy:.1%} on {len(y_test)} images (test loss {result['loss']:.4f})"
    )
    if accuracy < 0.95:
        sys.exit(f"FAILED: test accuracy {accuracy:.1%} < 95%")


if __name__ == "__main__":
    main()
