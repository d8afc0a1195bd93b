"""sparsenet: learning sparse one-hidden-layer neural networks with guarantees.

Tensor-method initialization (Zhong et al., 2017) followed by iterative hard thresholding
(Jain, Tewari and Kar, 2014), as studied by Agrawal and Kar.
"""

from .activations import ACTIVATIONS, Activation, get_activation
from .data import PlantedProblem, make_planted
from .estimator import SparseNetClassifier, SparseNetRegressor, SparseNetRegressorCV
from .initializers import random_init
from .metrics import align, evaluate, recovery_error, support_confusion, test_mse
from .recover import RecoverResult, recover
from .sparsify import Dense, Sparsifier, Threshold, TopFraction, get_sparsifier
from .train import IHTResult, train_iht, train_iht_batched

from .tensor_init import tensor_init

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Dense",
    "IHTResult",
    "PlantedProblem",
    "RecoverResult",
    "SparseNetClassifier",
    "SparseNetRegressor",
    "SparseNetRegressorCV",
    "Sparsifier",
    "Threshold",
    "TopFraction",
    "align",
    "evaluate",
    "get_activation",
    "get_sparsifier",
    "make_planted",
    "random_init",
    "recover",
    "recovery_error",
    "support_confusion",
    "tensor_init",
    "test_mse",
    "train_iht",
    "train_iht_batched",
]
