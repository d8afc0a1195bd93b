"""SparseNetRegressor, SparseNetRegressorCV, SparseNetClassifier: scikit-learn contract, the two modes,
the CV choice, ecosystem smoke tests, fallback, sparse export."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sparsenet.activations import get_activation
from sparsenet.data import make_planted
from sparsenet.estimator import SparseNetClassifier, SparseNetRegressor, SparseNetRegressorCV, SparseNetwork
from sparsenet.initializers import random_init
from sparsenet.sparsify import Dense, Threshold, TopFraction
from sparsenet.train import train_iht


@parametrize_with_checks([
    SparseNetRegressor(n_hidden=3, max_iter=50, random_state=0),
    SparseNetRegressorCV(n_hidden=(2,), sparsities=(0.5, 0.25), cv=2, max_iter=20, random_state=0),
    SparseNetClassifier(n_hidden=3, max_iter=50, random_state=0),
])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tensor initialization is unreliable.*")
        check(estimator)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 6)) * [1, 2, 3, 0.5, 10, 1] + [5, -1, 0, 2, 100, 0]
    y = 3.0 * X[:, 0] - 0.2 * X[:, 4] + rng.normal(scale=0.5, size=240) + 40.0
    return X, y


def quiet(model):
    return model.set_params(init="random")


def test_fit_attributes_and_score(data):
    """Real-data mode (the defaults): L-BFGS path, hidden biases, skip term, budget over [W | β]."""
    X, y = data
    model = SparseNetRegressor(n_hidden=4, sparsity=0.5, random_state=0).fit(X, y)
    assert model.solver_ == "lbfgs" and model.init_used_ == "random"
    assert model.coef_hidden_.shape == (6, 4) and model.hidden_bias_.shape == (4,)
    assert model.coef_output_.shape == (4,) and model.coef_skip_.shape == (6,)
    assert np.count_nonzero(model.coef_hidden_) + np.count_nonzero(model.coef_skip_) == 15  # round(0.5 * 6 * 5)
    assert np.any(model.coef_skip_ != 0) and np.any(model.hidden_bias_ != 0)
    assert model.n_features_in_ == 6
    assert_array_equal(model.history_["fraction"], [1.0, 0.5])
    assert model.n_iter_ == model.history_["n_iter"].sum() > 0
    assert model.score(X, y) > 0.8, model.score(X, y)
    # Predictions are in the units of y (intercept far from 0).
    assert abs(model.predict(X).mean() - y.mean()) < 1.0


def test_planted_mode_resolves_auto_to_the_report_setting():
    """standardize=False: every "auto" is the report's choice, so the defaults equal the explicit setting."""
    prob = make_planted(500, 5, 3, random_state=2)
    auto = SparseNetRegressor(n_hidden=3, standardize=False, epochs=3, learning_rate=1e-3, random_state=0)
    explicit = SparseNetRegressor(n_hidden=3, standardize=False, epochs=3, learning_rate=1e-3, random_state=0,
                                  init="tensor", solver="sgd", hidden_bias=False, skip=False, early_stopping=False)
    a, b = auto.fit(prob.X, prob.y), explicit.fit(prob.X, prob.y)
    assert a.solver_ == "sgd" and a.init_used_ == "tensor"
    assert_array_equal(a.coef_hidden_, b.coef_hidden_)
    assert_array_equal(a.hidden_bias_, 0.0)
    assert_array_equal(a.coef_skip_, 0.0)
    assert a.intercept_ == 0.0


def test_sgd_refuses_biases_and_skip(data):
    X, y = data
    with pytest.raises(ValueError, match="hidden_bias and skip need solver='lbfgs'"):
        SparseNetRegressor(solver="sgd", hidden_bias=True, skip=False).fit(X, y)


def test_lbfgs_beats_sgd_and_biases_help_on_a_shifted_ridge():
    """y = relu(x0 - 1) (a kink away from 0) + x1: hidden biases and the skip term let the network fit it;
    the planted network (no biases, relu2 through the origin) cannot. Training R², same data, same k."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 4))
    y = np.maximum(X[:, 0] - 1.0, 0.0) * 3 + X[:, 1]
    full = SparseNetRegressor(n_hidden=4, activation="relu", sparsity=None, random_state=0).fit(X, y)
    bare = SparseNetRegressor(n_hidden=4, activation="relu", sparsity=None, hidden_bias=False, skip=False,
                              random_state=0).fit(X, y)
    assert full.score(X, y) > 0.98, full.score(X, y)
    assert full.score(X, y) > bare.score(X, y) + 0.01, (full.score(X, y), bare.score(X, y))


def test_dead_units_are_folded_into_the_intercept(data):
    """A unit whose input weights were all pruned outputs the constant φ(c)·v: v is zeroed, b absorbs it."""
    X, y = data
    model = SparseNetRegressor(n_hidden=6, sparsity=0.05, random_state=0).fit(X, y)
    dead = ~np.any(model.coef_hidden_ != 0, axis=0)
    assert dead.any()
    assert_array_equal(model.coef_output_[dead], 0.0)
    assert_array_equal(model.hidden_bias_[dead], 0.0)
    assert model.n_weights_ == (np.count_nonzero(model.coef_hidden_) + np.count_nonzero(model.coef_skip_)
                                + np.count_nonzero(model.coef_output_))


def test_wrapper_passes_arguments_to_core():
    """standardize=False, init='random': exactly random_init + train_iht with the same Generator."""
    prob = make_planted(400, 5, 3, random_state=1)
    params = dict(n_hidden=3, sparsity=Threshold(0.05), init="random", epochs=7, batch_size=16,
                  learning_rate=2e-3, pretrain_epochs=2, train_output_weights=False, standardize=False,
                  activation="tanh", random_state=3)
    model = SparseNetRegressor(**params).fit(prob.X, prob.y)
    rng = np.random.default_rng(3)
    W0, v0 = random_init(5, 3, random_state=rng)
    res = train_iht(prob.X, prob.y, W0, v0, sparsifier=Threshold(0.05), epochs=7, batch_size=16,
                    learning_rate=2e-3, pretrain_epochs=2, train_v=False, activation="tanh", random_state=rng)
    assert_array_equal(model.coef_hidden_, res.W)
    assert_array_equal(model.coef_output_, res.v)
    assert model.intercept_ == 0.0
    assert_array_equal(model.history_["train_loss"], res.history["train_loss"])


def test_tensor_init_used_on_planted_data():
    prob = make_planted(4000, 8, 3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model = SparseNetRegressor(n_hidden=3, sparsity=None, standardize=False, epochs=2,
                                   learning_rate=1e-3, random_state=0).fit(prob.X, prob.y)
    assert model.init_used_ == "tensor"


def test_fallback_warning_says_why(data):
    X, y = data  # correlated scales, 240 rows: fine after standardizing, but not Gaussian-looking y
    with pytest.warns(UserWarning, match=r"tensor initialization is unreliable on this data \(it "):
        model = SparseNetRegressor(n_hidden=4, init="tensor", max_iter=5, random_state=0).fit(X[:30], y[:30])
    assert model.init_used_ == "random"
    with pytest.warns(UserWarning, match="Too few samples"):
        SparseNetRegressor(n_hidden=4, init="tensor", max_iter=5, random_state=0).fit(X[:30], y[:30])


@pytest.mark.parametrize("make", [
    lambda: SparseNetRegressor(n_hidden=4, random_state=7),
    lambda: SparseNetRegressor(n_hidden=4, solver="sgd", hidden_bias=False, skip=False, epochs=5, random_state=7),
    lambda: SparseNetRegressorCV(n_hidden=(2, 3), cv=3, random_state=7),
    lambda: SparseNetClassifier(n_hidden=3, random_state=7),
])
def test_same_seed_identical(data, make):
    X, y = data
    if isinstance(make(), SparseNetClassifier):
        y = (y > np.median(y)).astype(int)
    a = make().fit(X, y).predict(X)
    b = make().fit(X, y).predict(X)
    assert_array_equal(a, b)


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("sparsity, keep", [(0.25, 0.25), (TopFraction(0.5), 0.5), (None, 1.0), (Dense(), 1.0)])
def test_sparsity_spec(data, sparsity, keep, skip):
    X, y = data
    model = SparseNetRegressor(n_hidden=4, sparsity=sparsity, skip=skip, max_iter=20, random_state=0).fit(X, y)
    nnz = np.count_nonzero(model.coef_hidden_) + np.count_nonzero(model.coef_skip_)
    assert nnz == round(keep * 6 * (4 + skip))
    sgd = quiet(SparseNetRegressor(n_hidden=4, sparsity=sparsity, solver="sgd", hidden_bias=False, skip=False,
                                   epochs=6, random_state=0)).fit(X, y)
    assert np.count_nonzero(sgd.coef_hidden_) == round(keep * 24)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_hidden": 0}, r"The 'n_hidden' parameter of SparseNetRegressor must be an int in the range \[1, inf\)\. Got 0"),
        ({"sparsity": 1.5}, r"The 'sparsity' parameter of SparseNetRegressor must be a float in the range \(0, 1\]"),
        ({"sparsity": "half"}, r"The 'sparsity' parameter of SparseNetRegressor must be None, a float"),
        ({"init": "pca"}, r"The 'init' parameter of SparseNetRegressor must be a str among \{'auto', 'tensor', 'random'\}\. Got 'pca'"),
        ({"solver": "adam"}, r"The 'solver' parameter of SparseNetRegressor must be a str among"),
        ({"hidden_bias": "yes"}, r"The 'hidden_bias' parameter of SparseNetRegressor must be a bool or 'auto'\. Got 'yes'"),
        ({"skip": 1}, r"The 'skip' parameter of SparseNetRegressor must be a bool or 'auto'"),
        ({"alpha": -1.0}, r"The 'alpha' parameter of SparseNetRegressor must be a float in the range \[0, inf\)"),
        ({"max_iter": 0}, r"The 'max_iter' parameter"),
        ({"validation_fraction": 1.0}, r"The 'validation_fraction' parameter of SparseNetRegressor must be a float in the range \(0, 1\)"),
        ({"n_iter_no_change": 0}, r"The 'n_iter_no_change' parameter"),
        ({"early_stopping": None}, r"The 'early_stopping' parameter"),
        ({"learning_rate": 0.0}, r"The 'learning_rate' parameter of SparseNetRegressor must be a float in the range \(0, inf\)"),
        ({"epochs": 0}, r"The 'epochs' parameter"),
        ({"batch_size": 0}, r"The 'batch_size' parameter"),
        ({"pretrain_epochs": -1}, r"The 'pretrain_epochs' parameter"),
        ({"standardize": "yes"}, r"The 'standardize' parameter of SparseNetRegressor must be a bool"),
        ({"activation": "gelu"}, r"The 'activation' parameter must be one of"),
    ],
)
def test_parameter_errors(data, params, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        SparseNetRegressor(**params).fit(X, y)


def test_divergence_suggests_smaller_learning_rate(data):
    X, y = data
    with pytest.raises(ValueError, match="learning"):
        quiet(SparseNetRegressor(learning_rate=50.0, solver="sgd", hidden_bias=False, skip=False,
                                 random_state=0)).fit(X, y)


def test_pipeline_gridsearch_cross_val(data):
    X, y = data
    make = lambda: SparseNetRegressor(n_hidden=4, sparsity=0.5, random_state=0)  # noqa: E731
    pipe = make_pipeline(StandardScaler(), make())
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.8, pipe.score(X, y)
    scores = cross_val_score(make(), X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.2) and scores.mean() > 0.5, scores
    grid = GridSearchCV(make(),
                        {"sparsity": [0.1, 0.5]}, cv=3).fit(X, y)
    assert grid.best_params_["sparsity"] in (0.1, 0.5)
    assert grid.best_estimator_.coef_hidden_.shape == (6, 4)
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))


def test_feature_names_from_dataframe(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    model = SparseNetRegressor(n_hidden=3, max_iter=5, random_state=0).fit(frame, y)
    assert_array_equal(model.feature_names_in_, [f"f{i}" for i in range(6)])
    assert model.to_sparse().feature_names is model.feature_names_in_
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame.rename(columns={"f0": "other"}))


@pytest.mark.parametrize("standardize, solver", [(True, "lbfgs"), (True, "sgd"), (False, "sgd"), (False, "lbfgs")])
@pytest.mark.parametrize("activation", ["relu2", "tanh"])
def test_sparse_prediction_equals_dense(data, standardize, solver, activation):
    X, y = data
    if not standardize:
        X, y = (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()
    extra = {"hidden_bias": False, "skip": False} if solver == "sgd" else {}
    model = quiet(SparseNetRegressor(n_hidden=5, sparsity=0.3, activation=activation, epochs=5, max_iter=20,
                                     learning_rate=1e-2, standardize=standardize, solver=solver,
                                     random_state=0, **extra)).fit(X, y)
    net = model.to_sparse()
    assert isinstance(net, SparseNetwork)
    assert net.hidden.format == "csr" and net.hidden.shape == (6, 5)
    assert net.nnz == np.count_nonzero(model.coef_hidden_) + np.count_nonzero(model.coef_skip_)
    assert net.nnz == (9 if solver == "sgd" or not standardize else 11)  # round(0.3·6·5), round(0.3·6·6)
    assert (net.skip is None) == (not np.any(model.coef_skip_))
    # Support is unchanged by folding the scaling into the weights.
    assert_array_equal(net.hidden.toarray() != 0, model.coef_hidden_ != 0)
    assert net.activation is get_activation(activation)
    assert_allclose(net.predict(X), model.predict(X), rtol=1e-10, atol=1e-10 * np.abs(y).max())
    assert_allclose(net.output, model.coef_output_)
    assert net.intercept == pytest.approx(model.intercept_ - model.x_mean_ @ (model.coef_skip_ / model.x_scale_))


# --------------------------------------------------------------------------------------------------
# SparseNetRegressorCV
# --------------------------------------------------------------------------------------------------
def test_cv_scores_are_held_out_errors_of_the_path(data):
    """Each entry of mse_path_ equals the held-out MSE of the path fitted on that fold's training rows
    (recomputed here with KFold and SparseNetRegressor directly), and the choice is its argmin."""
    from sklearn.model_selection import KFold

    X, y = data
    cv = SparseNetRegressorCV(n_hidden=(2, 3), sparsities=(0.5, 0.25), cv=3, max_iter=30, random_state=4).fit(X, y)
    assert cv.mse_path_.shape == (2, 2, 3)
    seed = int(np.random.default_rng(4).integers(2**31 - 1))
    for f, (train, test) in enumerate(KFold(3, shuffle=True, random_state=seed).split(X)):
        for i, k in enumerate((2, 3)):
            for j, p in enumerate((0.5, 0.25)):
                ref = SparseNetRegressor(n_hidden=k, sparsity=p, init="random", solver="lbfgs", max_iter=30,
                                         random_state=seed).fit(X[train], y[train])
                assert cv.mse_path_[i, j, f] == pytest.approx(np.mean((ref.predict(X[test]) - y[test]) ** 2))
    i, j = np.unravel_index(np.argmin(cv.mse_path_.mean(axis=2)), (2, 2))
    assert (cv.n_hidden_, cv.sparsity_) == ((2, 3)[i], (0.5, 0.25)[j])
    refit = SparseNetRegressor(n_hidden=cv.n_hidden_, sparsity=cv.sparsity_, init="random", solver="lbfgs",
                               max_iter=30, random_state=seed).fit(X, y)
    assert_array_equal(cv.predict(X), refit.predict(X))


def test_cv_max_weight_fraction_limits_the_candidates(data):
    X, y = data  # d = 6
    cv = SparseNetRegressorCV(n_hidden=(2, 8), sparsities=(1.0, 0.5, 0.125), cv=2, max_iter=10,
                              max_weight_fraction=0.3, random_state=0).fit(X, y)
    allowed = np.isfinite(cv.mse_path_[:, :, 0])
    # Input weights round(p·6·(k+1)) plus k output weights, against 0.3·(6k + k):
    # k = 2: 20, 11, 4 vs 4.2; k = 8: 62, 35, 15 vs 16.8.
    assert_array_equal(allowed, [[False, False, True], [False, False, True]])
    assert cv.sparsity_ == 0.125
    assert cv.estimator_.n_weights_ <= 0.3 * 7 * cv.n_hidden_
    with pytest.raises(ValueError, match="no candidate"):
        SparseNetRegressorCV(n_hidden=(2,), cv=2, max_weight_fraction=0.1).fit(X, y)


@pytest.mark.parametrize("params, match", [
    ({"n_hidden": ()}, r"The 'n_hidden' parameter of SparseNetRegressorCV must be a non-empty sequence"),
    ({"n_hidden": (4, 0)}, r"The 'n_hidden' parameter of SparseNetRegressorCV must be an int in the range \[1, inf\)\. Got 0"),
    ({"sparsities": (0.5, 1.5)}, r"The 'sparsities' parameter of SparseNetRegressorCV must be a float in the range \(0, 1\]\. Got 1.5"),
    ({"cv": 1}, r"The 'cv' parameter of SparseNetRegressorCV must be an int in the range \[2, inf\)"),
    ({"max_weight_fraction": 0.0}, r"The 'max_weight_fraction' parameter"),
])
def test_cv_parameter_errors(data, params, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        SparseNetRegressorCV(**params).fit(X, y)


def test_cv_beats_lasso_on_a_nonlinear_target():
    """y = x0² + x1 with 5 noise features: a linear model cannot fit x0²; the CV network can (held-out R²)."""
    from sklearn.linear_model import LassoCV

    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 6))
    y = X[:, 0] ** 2 + X[:, 1] + 0.1 * rng.normal(size=400)
    Xt = rng.normal(size=(400, 6))
    yt = Xt[:, 0] ** 2 + Xt[:, 1] + 0.1 * rng.normal(size=400)
    ours = SparseNetRegressorCV(n_hidden=(2, 4), cv=3, random_state=0).fit(X, y)
    lasso = LassoCV().fit(X, y)
    assert ours.score(Xt, yt) > 0.9 > lasso.score(Xt, yt) + 0.3, (ours.score(Xt, yt), lasso.score(Xt, yt))
    assert ours.estimator_.n_weights_ < 7 * 4  # sparse: fewer than the dense k = 4 network's d·k + k


# --------------------------------------------------------------------------------------------------
# SparseNetClassifier
# --------------------------------------------------------------------------------------------------
def test_classifier_probabilities_and_labels():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = SparseNetClassifier(n_hidden=4, sparsity=0.5, random_state=0).fit(X, labels)
    proba = model.predict_proba(X)
    assert proba.shape == (150, 3)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(model.predict(X), model.classes_[np.argmax(proba, axis=1)])
    assert model.score(X, labels) > 0.9
    assert model.coef_output_.shape == (4, 3) and model.coef_skip_.shape == (4, 3)


def test_classifier_learns_xor_where_a_linear_model_cannot():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(6)
    X = rng.normal(size=(600, 5))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    Xt = rng.normal(size=(600, 5))
    yt = (Xt[:, 0] * Xt[:, 1] > 0).astype(int)
    model = SparseNetClassifier(n_hidden=4, sparsity=0.25, activation="relu", random_state=0).fit(X, y)
    linear = LogisticRegression().fit(X, y)
    assert model.score(Xt, yt) > 0.9 and linear.score(Xt, yt) < 0.6, (model.score(Xt, yt), linear.score(Xt, yt))
    # Binary: one logit, probabilities its logistic transform.
    assert_allclose(model.predict_proba(Xt)[:, 1], 1 / (1 + np.exp(-model.decision_function(Xt))))


def test_classifier_refuses_one_class():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class"):
        SparseNetClassifier().fit(X, np.zeros(20))


@pytest.mark.parametrize("solver", ["grasp", "htp"])
def test_full_batch_recover_solvers_recover_the_planted_network(solver):
    """solver= a full-batch solver of sparsenet.solvers: the estimator returns what recover() returns
    (same Generator), and on the issue-12 setting (n = 500, d = 20, k = 5, noise-free) that is W*."""
    from sparsenet.metrics import recovery_error
    from sparsenet.recovery import recover

    prob = make_planted(500, 20, 5, thresh_gt=0.15, random_state=0)
    model = SparseNetRegressor(n_hidden=5, sparsity=Threshold(0.075), standardize=False, solver=solver,
                               train_output_weights=False, random_state=0).fit(prob.X, prob.y)
    res = recover(prob.X, prob.y, 5, sparsifier=Threshold(0.075), solver=solver, random_state=0)
    assert_array_equal(model.coef_hidden_, res.W)
    assert_array_equal(model.coef_output_, res.v)
    assert model.solver_ == solver and model.intercept_ == 0.0
    assert recovery_error(model.coef_hidden_, model.coef_output_, prob.W, prob.v) < 1e-6
    with pytest.raises(ValueError, match="hidden_bias and skip need solver='lbfgs'"):
        SparseNetRegressor(solver=solver, standardize=False, skip=True).fit(prob.X, prob.y)


def test_inputs_are_clipped_to_the_training_range(data):
    """Real-data mode: a row outside the training box predicts like its projection onto the box, in the
    estimator and in the sparse export; the planted mode does not clip."""
    X, y = data
    model = SparseNetRegressor(n_hidden=4, sparsity=0.5, max_iter=30, random_state=0).fit(X, y)
    assert_array_equal(model.x_min_, X.min(axis=0))
    assert_array_equal(model.x_max_, X.max(axis=0))
    far = X[:5] + 50 * X.std(axis=0)
    assert_array_equal(model.predict(far), model.predict(np.clip(far, X.min(axis=0), X.max(axis=0))))
    assert_allclose(model.to_sparse().predict(far), model.predict(far), rtol=1e-10)
    off = SparseNetRegressor(n_hidden=4, sparsity=0.5, max_iter=30, clip_inputs=False, random_state=0).fit(X, y)
    assert off.x_min_ is None and off.to_sparse().x_min is None
    assert not np.allclose(off.predict(far), off.predict(np.clip(far, X.min(axis=0), X.max(axis=0))))
    planted = SparseNetRegressor(n_hidden=3, standardize=False, init="random", epochs=2, learning_rate=1e-3,
                                 random_state=0).fit(X / X.std(0), y / y.std())
    assert planted.x_min_ is None


def test_classifier_clips_inputs_to_the_training_range():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] ** 2 + X[:, 1] > 1).astype(int)
    model = SparseNetClassifier(n_hidden=3, random_state=0).fit(X, y)
    far = X[:5] * 40
    assert_array_equal(model.decision_function(far),
                       model.decision_function(np.clip(far, X.min(axis=0), X.max(axis=0))))
    off = SparseNetClassifier(n_hidden=3, clip_inputs=False, random_state=0).fit(X, y)
    assert off.x_min_ is None


@pytest.mark.parametrize("params, match", [
    ({"n_hidden": 0}, r"The 'n_hidden' parameter of SparseNetClassifier must be an int in the range \[1, inf\)"),
    ({"clip_inputs": "yes"}, r"The 'clip_inputs' parameter of SparseNetClassifier must be a bool\. Got 'yes'"),
    ({"standardize": 1}, r"The 'standardize' parameter of SparseNetClassifier must be a bool"),
    ({"alpha": -1.0}, r"The 'alpha' parameter of SparseNetClassifier must be a float in the range \[0, inf\)"),
    ({"sparsity": 2.0}, r"The 'sparsity' parameter of SparseNetClassifier must be a float in the range \(0, 1\]"),
])
def test_classifier_parameter_errors(params, match):
    X = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(ValueError, match=match):
        SparseNetClassifier(**params).fit(X, (X[:, 0] > 0).astype(int))
