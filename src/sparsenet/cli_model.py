"""``sparsenet fit`` and ``sparsenet predict``: train a sparse network regressor on a CSV file, predict with it.

``fit`` uses :class:`~sparsenet.estimator.SparseNetRegressorCV` (hidden size and kept fraction chosen by
cross-validation on the training rows); a single ``--hidden`` and ``--keep`` value fixes them.

The main CLI (``sparsenet.cli``) calls :func:`add_commands` with its subparsers; each command sets
``func`` (``args.func(args) -> int`` exit code). :func:`main` runs these two commands on their own.

CSV files are read with the standard library (no pandas at run time): a header row of column names,
then numeric rows. Bad input is reported on stderr with exit code 2 and no traceback.
"""

import argparse
import csv
import math
import os
import sys

import numpy as np

__all__ = ["add_commands", "main", "read_csv", "CSVError"]

EXIT_USAGE = 2


class CSVError(ValueError):
    """A CSV file that cannot be used; the message says which file, column and row."""


def read_csv(path):
    """Read a numeric CSV file with a header row.

    Parameters
    ----------
    path : str
        File name.

    Returns
    -------
    columns : list of str
        Header names.
    data : ndarray of shape (n_rows, n_columns)
        Values as float64.

    Raises
    ------
    CSVError
        Missing/unreadable file, empty file, no data rows, a row of the wrong length, an empty
        row, an empty or NaN cell (row and column named), a non-numeric cell (row and column named),
        or a cell too large for the model (|value| above ``sparsenet._validation.max_abs_value``).
        Row numbers are line numbers in the file (the header is line 1).
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise CSVError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CSVError(f"{path} is not a readable CSV text file ({exc})") from None
    if not rows or all(not any(cell.strip() for cell in row) for row in rows):
        raise CSVError(f"{path} is empty (expected a header row of column names, then data rows)")
    columns = [name.strip() for name in rows[0]]
    if any(not name for name in columns):
        raise CSVError(f"{path}, line 1: the header has an empty column name")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:  # columns are matched by name: a repeated one would be read from its first copy
        raise CSVError(f"{path}, line 1: the header repeats the column name(s) {', '.join(map(repr, repeated))}")
    values = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            raise CSVError(f"{path}, line {line}: empty row")
        if len(row) != len(columns):
            raise CSVError(f"{path}, line {line}: {len(row)} values, but the header has {len(columns)} columns")
        parsed = []
        for name, cell in zip(columns, row):
            text = cell.strip()
            if not text:
                raise CSVError(f"{path}, line {line}: column '{name}' is empty (missing value); remove or impute the row")
            try:
                value = float(text)
            except ValueError:
                raise CSVError(
                    f"{path}, line {line}: column '{name}' is not numeric (got {text!r}); "
                    "all columns must be numbers"
                ) from None
            if math.isnan(value):
                raise CSVError(f"{path}, line {line}: column '{name}' is NaN; remove or impute the row")
            if math.isinf(value):
                raise CSVError(f"{path}, line {line}: column '{name}' is infinite; remove the row")
            parsed.append(value)
        values.append(parsed)
    if not values:
        raise CSVError(f"{path} has a header but no data rows")
    data = np.asarray(values, dtype=np.float64)
    from sparsenet._validation import max_abs_value

    limit = max_abs_value(len(data))
    big = np.argwhere(np.abs(data) > limit)
    if len(big):  # e.g. a cell of 1e300: named here, where the line number is known
        i, j = big[0]
        raise CSVError(f"{path}, line {i + 2}: column '{columns[j]}' is {data[i, j]:g}, too large for the model "
                       f"(values beyond {limit:.2g} overflow float64 in its moments and squared loss); "
                       "rescale the column or remove the row")
    return columns, data


def _error(message):
    print(f"sparsenet: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _predict(model, X):
    """Predict from a plain array; the columns were already matched to ``feature_names_in_`` by name."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return model.predict(X)


def _metrics(model, X, y):
    """R² and RMSE, computed on values divided by the largest deviation so that targets of 1e-300
    (or 1e300) neither underflow to 0 nor overflow; R² is NaN for fewer than 2 rows or a constant y."""
    pred = _predict(model, X)
    dev = y - y.mean()
    scale = float(np.max(np.abs(dev))) if len(y) else 0.0
    if not scale > 0:
        scale = float(np.max(np.abs(y))) or 1.0
    res, dev = (pred - y) / scale, dev / scale
    rmse = scale * float(np.sqrt(np.mean(res ** 2)))
    ss_tot = float(np.sum(dev ** 2))
    r2 = 1.0 - float(np.sum(res ** 2)) / ss_tot if len(y) > 1 and ss_tot > 0 else float("nan")
    return r2, rmse


def _grid(text, option, kind):
    """Comma-separated values of ``option`` (e.g. '4,8,16'), or None with the error message."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        return None, f"{option} must be a comma-separated list of {kind.__name__}s; got {text!r}"
    if not values:
        return None, f"{option} must name at least one value; got {text!r}"
    return values, None


def _seed(text):
    """argparse type of --seed: a non-negative int (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer. Got {text!r} instead.")
    return value


def _check_out(path):
    """Why ``path`` cannot be written as the model file, or None (checked before training)."""
    out = os.path.abspath(path)
    folder = os.path.dirname(out)
    if os.path.isdir(out):
        return f"cannot write {path}: it is a folder (give a file name, e.g. {os.path.join(path, 'model.npz')})"
    if not os.path.isdir(folder):
        return f"cannot write {path}: the folder {folder} does not exist"
    if not os.access(folder, os.W_OK) or (os.path.exists(out) and not os.access(out, os.W_OK)):
        return f"cannot write {path}: permission denied"
    return None


MIN_ROWS = 10


def _cmd_fit(args):
    import warnings

    from sparsenet.estimator import SparseNetRegressorCV

    try:
        columns, data = read_csv(args.data)
    except CSVError as exc:
        return _error(str(exc))
    if args.target not in columns:
        return _error(f"target column '{args.target}' not found in {args.data}; available columns: "
                      + ", ".join(columns))
    if len(columns) < 2:
        return _error(f"{args.data} has only the target column '{args.target}'; no feature columns to fit on")
    t = columns.index(args.target)
    features = [c for i, c in enumerate(columns) if i != t]
    X = np.delete(data, t, axis=1)
    y = data[:, t]
    if not 0.0 <= args.validation < 1.0:
        return _error(f"--validation must be in [0, 1); got {args.validation}")
    hidden, problem = _grid(args.hidden, "--hidden", int)
    if problem:
        return _error(problem)
    keep, problem = _grid(args.keep, "--keep", float)
    if problem:
        return _error(problem)
    if any(h < 1 for h in hidden):
        return _error(f"--hidden values must be positive integers; got {args.hidden}")
    if any(not 0.0 < p <= 1.0 for p in keep):
        return _error(f"--keep values must be in (0, 1]; got {args.keep}")
    if args.cv < 2 or args.max_iter < 1:
        return _error(f"--cv must be at least 2 and --max-iter at least 1; got {args.cv} and {args.max_iter}")
    problem = _check_out(args.out)  # say so before training, not after
    if problem:
        return _error(problem)
    n = len(y)
    if n < MIN_ROWS:
        return _error(f"{args.data} has {n} data row{'s' * (n != 1)}; sparsenet fit needs at least {MIN_ROWS}")
    if np.all(y == y[0]):
        return _error(f"target column '{args.target}' is constant (every value is {float(y[0])!r}): nothing to learn")
    constant = [name for j, name in enumerate(features) if np.all(X[:, j] == X[0, j])]
    if len(constant) == len(features):
        return _error(f"every feature column of {args.data} is constant: nothing to learn from")

    rng = np.random.default_rng(args.seed)
    n_val = int(round(args.validation * n))
    order = rng.permutation(n)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    if len(train_idx) < max(args.cv, MIN_ROWS // 2):
        return _error(f"{args.data} has {n} rows: {len(train_idx)} left for training after holding out "
                      f"{n_val} for validation; lower --validation")
    model = SparseNetRegressorCV(n_hidden=hidden, sparsities=keep, cv=args.cv, max_iter=args.max_iter,
                                 random_state=args.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X[train_idx], y[train_idx])
        except ValueError as exc:
            return _error(f"fit failed: {exc}")
    for w in caught:
        print(f"sparsenet: warning: {w.message}", file=sys.stderr)
    est = model.estimator_
    est.feature_names_in_ = np.asarray(features, dtype=object)

    nnz = int(np.count_nonzero(est.coef_hidden_) + np.count_nonzero(est.coef_skip_))
    total = est.coef_hidden_.size + est.coef_skip_.size
    rows = [("train", len(train_idx), *_metrics(est, X[train_idx], y[train_idx]))]
    if n_val:
        rows.append(("validation", n_val, *_metrics(est, X[val_idx], y[val_idx])))
    chosen = "chosen by CV" if len(hidden) * len(keep) > 1 else "fixed"
    print(f"SparseNetRegressorCV: target '{args.target}', {len(features)} features; {chosen}: "
          f"{model.n_hidden_} hidden units, keep {model.sparsity_:g} ({args.cv}-fold CV on the training rows)")
    print(f"| {'split':<10} | {'rows':>6} | {'R²':>8} | {'RMSE':>12} | {'nonzeros':>8} | {'kept':>6} |")
    print(f"|{'-' * 12}|{'-' * 8}|{'-' * 10}|{'-' * 14}|{'-' * 10}|{'-' * 8}|")
    for name, count, r2, rmse in rows:
        r2_text = f"{r2:>8.4f}" if np.isfinite(r2) else f"{'n/a':>8}"
        print(f"| {name:<10} | {count:>6d} | {r2_text} | {rmse:>12.6g} | {nnz:>8d} | {nnz / total:>6.3f} |")
    try:
        est.save(args.out)
    except OSError as exc:
        return _error(f"cannot write {args.out}: {exc.strerror or exc}")
    print(f"model written to {args.out}")
    return 0


def _cmd_predict(args):
    from sparsenet.estimator import load_model

    try:
        model = load_model(args.model)
    except FileNotFoundError:
        return _error(f"model file {args.model} not found")
    except ValueError as exc:
        return _error(str(exc))
    try:
        columns, data = read_csv(args.data)
    except CSVError as exc:
        return _error(str(exc))
    names = list(getattr(model, "feature_names_in_", []))
    if names:
        missing = [c for c in names if c not in columns]
        if missing:
            return _error(f"{args.data} lacks the model's feature columns {missing}; available columns: "
                          + ", ".join(columns))
        X = data[:, [columns.index(c) for c in names]]
    else:
        if data.shape[1] != model.n_features_in_:
            return _error(f"{args.data} has {data.shape[1]} columns; the model expects {model.n_features_in_}")
        X = data
    pred = _predict(model, X)
    try:
        sys.stdout.write("prediction\n")
        sys.stdout.write("".join(f"{float(value)!r}\n" for value in pred))
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stdout = open(os.devnull, "w")
    return 0


def add_commands(subparsers):
    """Add the ``fit`` and ``predict`` commands to an argparse subparsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``. Each command sets ``func``: call ``args.func(args)``,
        which returns the exit code.
    """
    fit = subparsers.add_parser(
        "fit",
        help="fit a sparse network regressor on a CSV file and save it",
        description="Fit a sparse one-hidden-layer network (hidden biases, a linear skip term, full-batch "
        "L-BFGS along a pruning path) on a numeric CSV file (header row required), with the hidden size "
        "and the kept fraction chosen by cross-validation on the training rows (SparseNetRegressorCV); "
        "print a train/validation summary and write the model (.npz).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    fit.add_argument("data", help="CSV file with a header row; all columns numeric")
    fit.add_argument("--target", required=True, help="name of the column to predict")
    fit.add_argument("--hidden", default="4,8,16",
                     help="candidate numbers of hidden units, comma-separated (one value fixes it)")
    fit.add_argument("--keep", default="0.5,0.25,0.125,0.0625",
                     help="candidate fractions of input weights kept, comma-separated, each in (0, 1] (1 = dense)")
    fit.add_argument("--cv", type=int, default=5, help="cross-validation folds for the choice")
    fit.add_argument("--max-iter", type=int, default=200, help="L-BFGS iterations per pruning stage (cap)")
    fit.add_argument("--validation", type=float, default=0.2, help="fraction of rows held out for validation")
    fit.add_argument("--seed", type=_seed, default=0, help="random seed (validation split, CV folds, initialization)")
    fit.add_argument("--out", default="model.npz", help="where to write the model")
    fit.set_defaults(func=_cmd_fit)

    predict = subparsers.add_parser(
        "predict",
        help="predict with a saved model; writes CSV to stdout",
        description="Predict with a model written by 'sparsenet fit'. Feature columns are matched by "
        "name (extra columns, such as the target, are ignored); output is a CSV with one "
        "'prediction' column on stdout.",
    )
    predict.add_argument("model", help="model file written by 'sparsenet fit'")
    predict.add_argument("data", help="CSV file with a header row holding the model's feature columns")
    predict.set_defaults(func=_cmd_predict)
    return subparsers


def main(argv=None):
    """Run ``fit`` or ``predict`` on their own (the full CLI is ``sparsenet.cli``).

    Parameters
    ----------
    argv : list of str or None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    code : int
        Exit status: 0 on success, 2 on bad input.
    """
    parser = argparse.ArgumentParser(prog="sparsenet")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
