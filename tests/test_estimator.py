"""SparseNetRegressor: scikit-learn contract, ecosystem smoke tests, fallback, sparse export."""

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
from sparsenet.estimator import SparseNetRegressor, SparseNetwork
from sparsenet.initializers import random_init
from sparsenet.sparsify import Dense, Threshold, TopFraction
from sparsenet.train import train_iht


@parametrize_with_checks([SparseNetRegressor(random_state=0)])
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
    X, y = data
    model = quiet(SparseNetRegressor(n_hidden=4, sparsity=0.5, random_state=0)).fit(X, y)
    assert model.coef_hidden_.shape == (6, 4)
    assert model.coef_output_.shape == (4,)
    assert np.count_nonzero(model.coef_hidden_) == 12  # round(0.5 * 6 * 4)
    assert model.n_features_in_ == 6
    assert model.init_used_ == "random"
    assert model.n_iter_ == 50
    assert model.history_["train_loss"].shape == (51,)
    assert model.score(X, y) > 0.8, model.score(X, y)
    # Predictions are in the units of y (intercept far from 0).
    assert abs(model.predict(X).mean() - y.mean()) < 1.0


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
        model = SparseNetRegressor(n_hidden=4, epochs=2, random_state=0).fit(X[:30], y[:30])
    assert model.init_used_ == "random"
    with pytest.warns(UserWarning, match="Too few samples"):
        SparseNetRegressor(n_hidden=4, epochs=2, random_state=0).fit(X[:30], y[:30])


def test_same_seed_identical(data):
    X, y = data
    a = quiet(SparseNetRegressor(n_hidden=4, epochs=5, random_state=7)).fit(X, y).predict(X)
    b = quiet(SparseNetRegressor(n_hidden=4, epochs=5, random_state=7)).fit(X, y).predict(X)
    assert_array_equal(a, b)


@pytest.mark.parametrize("sparsity, keep", [(0.25, 6), (TopFraction(0.5), 12), (None, 24), (Dense(), 24)])
def test_sparsity_spec(data, sparsity, keep):
    X, y = data
    model = quiet(SparseNetRegressor(n_hidden=4, sparsity=sparsity, epochs=6, random_state=0)).fit(X, y)
    assert np.count_nonzero(model.coef_hidden_) == keep


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_hidden": 0}, r"The 'n_hidden' parameter of SparseNetRegressor must be an int in the range \[1, inf\)\. Got 0"),
        ({"sparsity": 1.5}, r"The 'sparsity' parameter of SparseNetRegressor must be a float in the range \(0, 1\]"),
        ({"sparsity": "half"}, r"The 'sparsity' parameter of SparseNetRegressor must be None, a float"),
        ({"init": "pca"}, r"The 'init' parameter of SparseNetRegressor must be a str among \{'tensor', 'random'\}\. Got 'pca'"),
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
        quiet(SparseNetRegressor(learning_rate=50.0, random_state=0)).fit(X, y)


def test_pipeline_gridsearch_cross_val(data):
    X, y = data
    make = lambda: quiet(SparseNetRegressor(n_hidden=4, sparsity=0.5, random_state=0))  # noqa: E731
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
    model = quiet(SparseNetRegressor(n_hidden=3, epochs=3, random_state=0)).fit(frame, y)
    assert_array_equal(model.feature_names_in_, [f"f{i}" for i in range(6)])
    assert model.to_sparse().feature_names is model.feature_names_in_
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame.rename(columns={"f0": "other"}))


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("activation", ["relu2", "tanh"])
def test_sparse_prediction_equals_dense(data, standardize, activation):
    X, y = data
    if not standardize:
        X, y = (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()
    model = quiet(SparseNetRegressor(n_hidden=5, sparsity=0.3, activation=activation, epochs=5,
                                     learning_rate=1e-2, standardize=standardize, random_state=0)).fit(X, y)
    net = model.to_sparse()
    assert isinstance(net, SparseNetwork)
    assert net.hidden.format == "csr" and net.hidden.shape == (6, 5)
    assert net.nnz == np.count_nonzero(model.coef_hidden_) == 9
    # Support is unchanged by folding the scaling into the weights.
    assert_array_equal(net.hidden.toarray() != 0, model.coef_hidden_ != 0)
    assert net.activation is get_activation(activation)
    assert_allclose(net.predict(X), model.predict(X), rtol=1e-10, atol=1e-10 * np.abs(y).max())
    assert_allclose(net.output, model.coef_output_)
    assert net.intercept == model.intercept_
