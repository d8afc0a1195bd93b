"""sparsenet: learning sparse one-hidden-layer neural networks with guarantees.

Tensor-method initialization (Zhong et al., 2017) followed by iterative hard thresholding
(Jain, Tewari and Kar, 2014), as studied by Agrawal and Kar.

The public names are imported on first use (PEP 562 module ``__getattr__``): ``import sparsenet``
loads nothing but this file, the core (numpy and scipy) loads with its first function, and
scikit-learn only with :class:`SparseNetRegressor`.
"""

import importlib
import sys
import types

__version__ = "0.1.0"

# public name -> submodule that defines it
_LAZY = {
    "ACTIVATIONS": "activations",
    "Activation": "activations",
    "get_activation": "activations",
    "PlantedProblem": "data",
    "make_planted": "data",
    "SparseNetClassifier": "estimator",
    "SparseNetRegressor": "estimator",
    "SparseNetRegressorCV": "estimator",
    "random_init": "initializers",
    "align": "metrics",
    "evaluate": "metrics",
    "recovery_error": "metrics",
    "support_confusion": "metrics",
    "test_mse": "metrics",
    "RecoverResult": "recovery",
    "recover": "recovery",
    "Dense": "sparsify",
    "Sparsifier": "sparsify",
    "Threshold": "sparsify",
    "TopFraction": "sparsify",
    "get_sparsifier": "sparsify",
    "IHTResult": "train",
    "train_iht": "train",
    "train_iht_batched": "train",
    "tensor_init": "tensor_init",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sparsenet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    # Importing a submodule binds it on the package (``sparsenet.tensor_init`` the module); where a
    # public function is named like its module, keep the function, as an eager import would.
    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
