"""scikit-learn: ferrinet's MLPClassifier in a Pipeline, tuned by GridSearchCV.

``ferrinet.sklearn.MLPClassifier`` takes scikit-learn's parameter names (hidden_layer_sizes,
alpha, learning_rate_init, max_iter, early_stopping, random_state, ...) and trains in Rust, so
it drops into a Pipeline and a grid search as scikit-learn's own MLP would. Here: standardize
the digits' pixels inside the pipeline (so each cross-validation fold scales with its own
training part), then pick the hidden layer width and the L2 strength ``alpha`` by 3-fold
cross-validation, and score the refitted best pipeline on a held-out test set.

Needs scikit-learn >= 1.6 (``pip install ferrinet[sklearn]``).

Run:  python examples/sklearn_grid_search.py     (exits with an error if test accuracy < 95%)
"""

# expect: best \{'mlp__alpha': [0-9.e-]+, 'mlp__hidden_layer_sizes': \(\d+,\)\}: cross-validation accuracy 9\d\.\d%, test accuracy 9\d\.\d%

import sys
import time

from ferrinet import datasets
from ferrinet.sklearn import MLPClassifier
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def main() -> None:
    X, y = datasets.digits()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )

    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            # Adam, mini-batches of min(200, n); stops when the training loss has not improved by
            # tol=1e-4 for 10 epochs (scikit-learn's rule)
            ("mlp", MLPClassifier(learning_rate_init=0.01, max_iter=300, random_state=0)),
        ]
    )
    grid = {
        "mlp__hidden_layer_sizes": [(16,), (64,)],
        "mlp__alpha": [1e-4, 1e-1],
    }
    search = GridSearchCV(pipeline, grid, cv=3, scoring="accuracy")
    started = time.perf_counter()
    search.fit(X_train, y_train)  # 4 candidates x 3 folds, then a refit of the best on all
    elapsed = time.perf_counter() - started

    print(f"{len(search.cv_results_['params'])} candidates x 3 folds in {elapsed:.1f} s:")
    ranked = sorted(
        zip(
            search.cv_results_["rank_test_score"],
            search.cv_results_["params"],
            search.cv_results_["mean_test_score"],
            search.cv_results_["std_test_score"],
        ),
        key=lambda row: row[0],
    )
    for rank, params, mean, std in ranked:
        print(
            f"  {rank}. hidden_layer_sizes={params['mlp__hidden_layer_sizes']!s:6} "
            f"alpha={params['mlp__alpha']:<7g} accuracy {mean:.1%} +- {std:.1%}"
        )

    best = search.best_estimator_  # the pipeline refitted on all of X_train
    mlp = best.named_steps["mlp"]
    print(f"\nthe refitted best: {mlp.n_iter_} epochs, {mlp.network_}")
    test_accuracy = best.score(X_test, y_test)
    print(
        f"\nbest {dict(sorted(search.best_params_.items()))}: cross-validation accuracy "
        f"{search.best_score_:.1%}, test accuracy {test_accuracy:.1%}"
    )
    if test_accuracy < 0.95:
        sys.exit(f"FAILED: test accuracy {test_accuracy:.1%} < 95%")


if __name__ == "__main__":
    main()
