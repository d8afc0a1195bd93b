"""A small, sparse, readable nonlinear model of scikit-learn's diabetes data (nothing downloaded).

Fits ``SparseNetRegressorCV`` (hidden size and kept fraction chosen by 5-fold CV on the training rows)
and ``LassoCV`` on one 75/25 split, prints both test R² and nonzero counts, then prints the sparse
network in the original feature units: which features feed which hidden unit, and the linear skip
term. Runs in a few seconds. The comparison over 10 data sets with paired tests is
``benchmarks/bench_real_data.py`` (its tables are in ``examples/README_real_data.md``).
"""

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LassoCV
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sparsenet import SparseNetRegressorCV


def main():
    data = load_diabetes()
    X_tr, X_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=0.25, random_state=0)
    model = SparseNetRegressorCV(random_state=0).fit(X_tr, y_tr)
    lasso = make_pipeline(StandardScaler(), LassoCV()).fit(X_tr, y_tr)
    est = model.estimator_
    print(f"SparseNetRegressorCV: test R² {model.score(X_te, y_te):.3f}, {est.n_weights_} nonzero weights "
          f"(k = {model.n_hidden_}, kept fraction {model.sparsity_:g})")
    print(f"LassoCV:              test R² {lasso.score(X_te, y_te):.3f}, "
          f"{np.count_nonzero(lasso[-1].coef_)} nonzero weights")

    net = model.to_sparse()
    names = data.feature_names
    hidden = net.hidden.toarray()
    print(f"\nŷ = Σ_j v_j·{net.activation.name}(Σ_i w_ij x_i + c_j) + Σ_i β_i x_i + b,  b = {net.intercept:.4g}")
    for j in np.flatnonzero(np.any(hidden != 0, axis=0)):
        terms = " ".join(f"{hidden[i, j]:+.3g}·{names[i]}" for i in np.flatnonzero(hidden[:, j]))
        print(f"  unit {j}: v = {net.output[j]:+.4g}, input {terms} {net.hidden_bias[j]:+.3g}")
    if net.skip is not None:
        skip = net.skip.toarray().ravel()
        print("  linear: " + " ".join(f"{skip[i]:+.4g}·{names[i]}" for i in np.flatnonzero(skip)))


if __name__ == "__main__":
    main()
