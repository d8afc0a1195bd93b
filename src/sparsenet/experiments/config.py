"""Experiment definitions: TOML file -> validated frozen dataclasses -> runs.

A file describes one figure (see ``docs/EXPERIMENT_SCHEMA.md``): a base ``[setting]``, one swept key
``x`` with its ``values``, the ``[[methods]]`` compared, the ``protocols``, the number of ``trials``,
the report's ``[[claims]]`` and per-scale overrides ``[scale.quick]`` / ``[scale.paper]``.

Every key is checked; an unknown key, a wrong type or an out-of-range value raises
:class:`ConfigError` naming the key, the file and the allowed range or set.

Expansion (:func:`expand`) turns a config into :class:`Run` objects, cartesian product of
``values x methods x protocols x trials`` (STYLE 3.13). Each run has

* a **canonical run key**: sha256 of the canonical JSON of the resolved parameters (setting + method
  fields, irrelevant keys dropped by the method), the protocol and the seed. It does not contain the file
  name, the figure or the method's label, so the same run requested by two figures is one stored row;
* a **seed** derived from a hash of the *problem setting* (the keys that define the planted problem) and
  the trial index, so that results do not depend on order or restarts and all methods and protocols of
  the same trial see the same data.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from types import MappingProxyType

# Param and ConfigError live in params.py, which methods.py imports too: imports point one way
# (params <- methods <- config), no cycle.
from sparsenet.experiments.params import ConfigError, Param

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "MethodSpec",
    "ClaimSpec",
    "Run",
    "SETTING_SPEC",
    "PROBLEM_KEYS",
    "PROTOCOLS",
    "SCALES",
    "load_config",
    "parse_config",
    "shipped_configs",
    "expand",
    "count_runs",
    "canonical_json",
    "run_key",
    "problem_seed",
]

PROTOCOLS = ("blind", "report")
SCALES = ("quick", "paper")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


# The problem setting and training hyperparameters. Defaults are the report's base values.
SETTING_SPEC = MappingProxyType(
    {
        "n": Param("int", 2, 10**8, default=6000),
        "d": Param("int", 1, 10**6, default=20),
        "k": Param("int", 1, 10**4, default=5),
        # built-in names, checked without importing numpy (``sparsenet list``); see Param.registry
        "activation": Param("choice", choices=("leaky_relu", "relu", "relu2", "sigmoid", "softplus", "tanh"),
                            default="relu2", registry="sparsenet.activations:ACTIVATIONS"),
        "kappa": Param("float", 1.0, None, default=2.0),
        "thresh_gt": Param("float", 0.0, None, default=None),
        "p_gt": Param("float", 0.0, 1.0, closed="right", default=None),
        "noise_sd": Param("float", 0.0, None, default=0.0),
        "n_test": Param("int", 1, 10**8, default=1000),
        "epochs": Param("int", 0, 10**6, default=25),
        "batch_size": Param("int_or_full", 1, 10**8, default=20),
        "learning_rate": Param("float", 0.0, None, closed="neither", default=0.001),
        "pretrain_epochs": Param("int", 0, 10**6, default=5),
        "thresh_train": Param("float", 0.0, None, default=0.15),
        "p_train": Param("float", 0.0, 1.0, closed="right", default=0.75),
        "train_v": Param("bool", default=False),
        # per-epoch train/test losses: set true by parse_config when the metrics read them
        # (EPOCH_LOSS_METRICS); otherwise absent from a run's parameters (see _resolved_points)
        "loss_history": Param("bool", default=None),
    }
)
# Keys that define the planted problem: they (and the trial index) determine the data seed.
PROBLEM_KEYS = ("n", "d", "k", "activation", "kappa", "thresh_gt", "p_gt", "noise_sd", "n_test")
# Ground-truth sparsity is given by exactly one of these; setting one (by a sweep or a method) drops the other.
_TRUTH_KEYS = ("thresh_gt", "p_gt")

METRICS = (
    "recovery_error",
    "init_recovery_error",
    "sign_failure",
    "tp",
    "tn",
    "fa",
    "md",
    "pct_true_negative",
    "pct_true_positive",
    "exact_support",
    "exact_recovery",  # derived when reading (recovery error <= its resolution and exact support)
    "test_mse",
    "test_rel_mse",
    "nnz",
)
HISTORY_METRICS = ("train_loss", "test_loss", "nnz")
#: metrics read from the per-epoch losses (a run records them only when its experiment asks for one)
EPOCH_LOSS_METRICS = frozenset({"train_loss", "test_loss"})
# Derived from stored metrics when reading (never stored): success = recovery_error < success_threshold.
# Only 2-D sweeps (``y``) use it; they are drawn as a success-probability heat map.
DERIVED_METRICS = ("success",)
RECORD_METRICS = ("wall_time",)  # top-level record fields that may be plotted like a metric
#: the kinds of report section an experiment may ask for with ``[experiment] section`` (sections.py)
SECTION_KINDS = ("sweep", "methods", "activations", "phase_transition")
#: each claim kind with the keys it requires (claims.py decides them)
CLAIM_KINDS = MappingProxyType({
    "argmin": ("metric", "method", "expect", "tolerance", "text"),
    "trend": ("metric", "method", "direction", "text"),
    "compare": ("metric", "better", "worse", "text"),
})

_EXPERIMENT_KEYS = {
    "name": Param("str"),
    "figure": Param("int", 1, 999),
    "title": Param("str"),
    "x": Param("str"),
    "values": None,  # list, checked against the swept key's spec
    "y": Param("str"),  # second swept key of a 2-D sweep (phase transition)
    "y_values": None,  # list, checked against y's spec
    "success_threshold": Param("float", 0.0, None, closed="neither"),
    "metrics": None,  # list of metric names
    "protocols": None,  # list of protocol names
    "trials": Param("int", 1, 10**4),
    "claim": Param("str"),
    "description": Param("str"),
    "xscale": Param("choice", choices=("linear", "log")),
    "yscale": Param("choice", choices=("linear", "log")),
    "reproduce": Param("bool"),  # false: shipped, but left out of `sparsenet reproduce` (cluster-sized)
    "section": None,  # the report section (SECTION_KINDS), checked in parse_config
    "resolution": None,  # table metric -> float >= 0 (claims: values closer than it are equal)
}
_CLAIM_KEYS = {
    "kind": None,  # one of CLAIM_KINDS, checked in parse_config
    "metric": Param("str"),
    "method": Param("str"),
    "better": Param("str"),
    "worse": Param("str"),
    "expect": Param("float"),
    "tolerance": Param("float", 0.0, None),
    "direction": Param("choice", choices=("decreasing", "increasing")),
    "at_epochs": None,
    "margin": Param("float", 0.0, None),
    "protocol": Param("choice", choices=PROTOCOLS),
    "source": Param("choice", choices=("report", "expected")),
    "text": Param("str"),
}


# --------------------------------------------------------------------------------------------------
# Dataclasses


@dataclass(frozen=True)
class MethodSpec:
    """One ``[[methods]]`` entry: a label, a registry name, its fields and setting overrides."""

    label: str
    method: str
    fields: tuple  # sorted (key, value) pairs of the method's own fields (init, sparsifier, ...)
    overrides: tuple  # sorted (key, value) pairs of setting keys overridden for this method


@dataclass(frozen=True)
class ClaimSpec(Mapping):
    """One ``[[claims]]`` entry: a read-only mapping of its keys (``claim["metric"]``), hashable."""

    kind: str
    items_: tuple  # sorted (key, value) pairs, "kind" included

    def __getitem__(self, key):
        return dict(self.items_)[key]

    def __iter__(self):
        return iter(dict(self.items_))

    def __len__(self):
        return len(self.items_)

    def as_dict(self):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.items_}


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment definition, with the scale's overrides already applied."""

    name: str
    path: str
    scale: str
    x: str
    values: tuple
    metrics: tuple
    protocols: tuple
    trials: int
    setting: tuple  # sorted (key, value) pairs; thresh_gt/p_gt absent when unused
    methods: tuple  # of MethodSpec
    claims: tuple  # of ClaimSpec
    figure: int | None = None
    title: str = ""
    claim: str = ""
    description: str = ""
    xscale: str = "linear"
    yscale: str = "linear"
    y: str | None = None  # 2-D sweep: second swept key, its values, and the success threshold
    y_values: tuple = ()
    success_threshold: float = 1e-2
    reproduce: bool = True
    section: str = ""  # the report section; "" = sweep (or phase_transition for a 2-D sweep)
    resolution: tuple = ()  # sorted (metric, float) pairs declared in the TOML
    source: str = field(default="", repr=False, compare=False)  # the TOML text, stored with the results

    @property
    def setting_dict(self):
        return dict(self.setting)

    @property
    def method_labels(self):
        return tuple(m.label for m in self.methods)

    @property
    def n_runs(self):
        return (max(len(self.values), 1) * max(len(self.y_values), 1) * len(self.methods) * len(self.protocols)
                * self.trials)


@dataclass(frozen=True)
class Run:
    """One training run: resolved parameters, method, protocol and trial; hashable, picklable."""

    key: str
    experiment: str
    label: str
    method: str
    protocol: str
    trial: int
    seed: int
    x: object  # swept value, None for history-only experiments
    params: tuple  # sorted (key, value) pairs: resolved setting + method fields
    y: object = None  # second swept value of a 2-D sweep

    @property
    def params_dict(self):
        return dict(self.params)


# --------------------------------------------------------------------------------------------------
# Parsing


def _setting_param(key):
    return SETTING_SPEC[key]


def _check_table(table, allowed, where, path):
    if not isinstance(table, dict):
        raise ConfigError(f"{where} in {path} must be a table. Got {table!r} instead.")
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"Unknown key '{key}' in {where} of {path}. Allowed keys: {', '.join(sorted(allowed))}."
            )


def _check_list(value, key, where, path, item_check):
    if not isinstance(value, list) or not value:
        raise ConfigError(f"The '{key}' key of {where} in {path} must be a non-empty list. Got {value!r} instead.")
    return tuple(item_check(v) for v in value)


def _check_setting(table, where, path):
    _check_table(table, SETTING_SPEC, where, path)
    return {key: _setting_param(key).check(value, key, where, path) for key, value in table.items()}


def _apply_truth(setting, updates):
    """Merge ``updates`` into ``setting``; setting thresh_gt drops p_gt and vice versa."""
    out = dict(setting)
    for key, value in updates.items():
        if key in _TRUTH_KEYS:
            for other in _TRUTH_KEYS:
                out.pop(other, None)
        out[key] = value
    return out


def parse_config(data, path="<string>", *, scale="paper", source=""):
    """Validate a parsed TOML document and return an :class:`ExperimentConfig`.

    Parameters
    ----------
    data : dict
        The document, as returned by ``tomllib.loads``.
    path : str, default="<string>"
        The file it came from, named in every error message.
    scale : {"quick", "paper"}, default="paper"
        Which ``[scale.<name>]`` overrides to apply; ``paper`` is the file as written unless it has a
        ``[scale.paper]`` table.
    source : str, default=""
        The TOML text, kept so that a results folder can be re-reported without the file.

    Raises
    ------
    ConfigError
        On an unknown key, a missing required key, a wrong type or an out-of-range value.
    """
    from sparsenet.experiments.methods import METHODS

    path = str(path)
    if scale not in SCALES:
        raise ConfigError(f"The scale must be one of {', '.join(SCALES)}. Got {scale!r} instead.")
    _check_table(data, ("experiment", "setting", "methods", "claims", "scale"), "the top level", path)
    for required in ("experiment", "methods"):
        if required not in data:
            raise ConfigError(f"Missing [{required}] in {path}.")

    exp = data["experiment"]
    _check_table(exp, _EXPERIMENT_KEYS, "[experiment]", path)
    for required in ("name", "x", "metrics"):
        if required not in exp:
            raise ConfigError(f"Missing required key '{required}' in [experiment] of {path}.")
    checked = {
        k: _EXPERIMENT_KEYS[k].check(v, k, "[experiment]", path)
        for k, v in exp.items()
        if _EXPERIMENT_KEYS[k] is not None
    }
    x = checked["x"]
    if x != "epoch" and x not in SETTING_SPEC:
        raise ConfigError(
            f"The 'x' key of [experiment] in {path} must be 'epoch' or a setting key "
            f"({', '.join(SETTING_SPEC)}). Got {x!r} instead."
        )

    # Base setting: defaults, then the file, then the scale's overrides.
    setting = {k: p.default for k, p in SETTING_SPEC.items() if p.default is not None}
    file_setting = _check_setting(data.get("setting", {}), "[setting]", path)
    if all(k in file_setting for k in _TRUTH_KEYS):
        raise ConfigError(
            f"[setting] in {path} sets both 'thresh_gt' and 'p_gt'; the planted truth is sparsified by one of them."
        )
    setting = _apply_truth(setting, file_setting)

    trials = checked.get("trials", 5)
    scales = data.get("scale", {})
    _check_table(scales, SCALES, "[scale]", path)
    for name, table in scales.items():
        allowed = dict.fromkeys(list(SETTING_SPEC) + ["trials"])
        _check_table(table, allowed, f"[scale.{name}]", path)
        for swept in (x, checked.get("y")):
            if swept in table:
                raise ConfigError(f"[scale.{name}] in {path} may not override the swept key '{swept}'.")
    overrides = dict(scales.get(scale, {}))
    if "trials" in overrides:
        trials = _EXPERIMENT_KEYS["trials"].check(overrides.pop("trials"), "trials", f"[scale.{scale}]", path)
    setting = _apply_truth(setting, _check_setting(overrides, f"[scale.{scale}]", path))
    if not any(k in setting for k in _TRUTH_KEYS):
        setting["thresh_gt"] = 0.15

    # Swept values, each checked against the swept key's range.
    if x == "epoch":
        if "values" in exp:
            raise ConfigError(f"[experiment] in {path} has x = 'epoch'; 'values' must be omitted.")
        values = ()
    else:
        if "values" not in exp:
            raise ConfigError(f"Missing required key 'values' in [experiment] of {path} (x = {x!r}).")
        spec = _setting_param(x)
        values = _check_list(exp["values"], "values", "[experiment]", path, lambda v: spec.check(v, x, "'values' of [experiment]", path))
        if len(set(values)) != len(values):
            raise ConfigError(f"The 'values' key of [experiment] in {path} has duplicates: {list(values)!r}.")

    y, y_values = _check_y(exp, checked, x, path)
    known_metrics = tuple(dict.fromkeys(METRICS + HISTORY_METRICS + RECORD_METRICS + DERIVED_METRICS))
    metrics = _check_list(
        exp["metrics"], "metrics", "[experiment]", path,
        lambda m: Param("choice", choices=known_metrics).check(m, "metrics", "[experiment]", path),
    )
    setting = _resolve_loss_history(setting, metrics, path)
    protocols = _check_list(
        exp.get("protocols", ["blind", "report"]), "protocols", "[experiment]", path,
        lambda p: Param("choice", choices=PROTOCOLS).check(p, "protocols", "[experiment]", path),
    )

    # Methods.
    raw_methods = data["methods"]
    if not isinstance(raw_methods, list) or not raw_methods:
        raise ConfigError(f"[[methods]] in {path} must list at least one method.")
    methods = []
    for i, entry in enumerate(raw_methods):
        where = f"[[methods]] #{i + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} in {path} must be a table.")
        name = Param("choice", choices=tuple(sorted(METHODS))).check(entry.get("method"), "method", where, path)
        registry = METHODS[name]
        allowed = {"label", "method", *registry.fields, *SETTING_SPEC}
        _check_table(entry, allowed, where, path)
        label = Param("str").check(entry.get("label"), "label", where, path)
        own = {}
        for key, spec in registry.fields.items():
            own[key] = spec.check(entry[key], key, where, path) if key in entry else spec.default
        over = _check_setting({k: v for k, v in entry.items() if k in SETTING_SPEC}, where, path)
        for swept in (x, y):
            if swept in over:
                raise ConfigError(f"{where} in {path} may not override the swept key '{swept}'.")
        if setting.get("loss_history") and over.get("loss_history") is False:
            raise ConfigError(f"{where} in {path} sets loss_history = false, but the metrics "
                              f"({', '.join(metrics)}) read the per-epoch losses.")
        methods.append(MethodSpec(label, name, tuple(sorted(own.items())), tuple(sorted(over.items()))))
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"[[methods]] labels in {path} must be unique. Got {labels!r}.")

    if y is None and "success" in metrics:
        raise ConfigError(f"The 'success' metric of [experiment] in {path} needs a 2-D sweep (a 'y' key).")
    if y is not None and data.get("claims"):
        raise ConfigError(f"[[claims]] in {path} are not supported for 2-D sweeps (a 'y' key) yet.")

    # Claims.
    claims = []
    for i, entry in enumerate(data.get("claims", [])):
        where = f"[[claims]] #{i + 1}"
        _check_table(entry, _CLAIM_KEYS, where, path)
        if "kind" not in entry:
            raise ConfigError(f"Missing required key 'kind' in {where} of {path}.")
        entry = dict(entry)
        items = {"kind": Param("choice", choices=tuple(CLAIM_KINDS)).check(entry.pop("kind"), "kind", where, path)}
        for key, value in entry.items():
            if key == "at_epochs":
                items[key] = _check_list(value, key, where, path, lambda e: Param("int", 0, None).check(e, key, where, path))
            else:
                items[key] = _CLAIM_KEYS[key].check(value, key, where, path)
        for required in CLAIM_KINDS[items["kind"]]:
            if required not in items:
                raise ConfigError(f"Missing required key '{required}' in {where} ({items['kind']}) of {path}.")
        for key in ("method", "better", "worse"):
            if key in items and items[key] not in labels:
                raise ConfigError(
                    f"The '{key}' key of {where} in {path} must be a method label "
                    f"({', '.join(map(repr, labels))}). Got {items[key]!r} instead."
                )
        if items["metric"] not in metrics:
            raise ConfigError(
                f"The 'metric' key of {where} in {path} must be one of the experiment's metrics "
                f"({', '.join(metrics)}). Got {items['metric']!r} instead."
            )
        claims.append(ClaimSpec(items["kind"], tuple(sorted(items.items()))))

    config = ExperimentConfig(
        name=checked["name"],
        path=path,
        scale=scale,
        x=x,
        values=values,
        metrics=metrics,
        protocols=protocols,
        trials=trials,
        setting=tuple(sorted(setting.items())),
        methods=tuple(methods),
        claims=tuple(claims),
        figure=checked.get("figure"),
        title=checked.get("title", checked["name"]),
        claim=checked.get("claim", ""),
        description=checked.get("description", ""),
        xscale=checked.get("xscale", "linear"),
        yscale=checked.get("yscale", "linear"),
        y=y,
        y_values=y_values,
        success_threshold=checked.get("success_threshold", 1e-2),
        reproduce=checked.get("reproduce", True),
        section=_check_section(exp, path),
        resolution=_check_resolution(exp, known_metrics, path),
        source=source,
    )
    # Resolve every grid point and method once so that cross-key problems (k > d, ...) surface at load
    # time. Protocols and trials do not change the parameters, so runs are not expanded (no hashing).
    for _, _, _, params in _resolved_points(config):
        _check_consistency(params, path)
    return config


def _resolve_loss_history(setting, metrics, path):
    """``loss_history = true`` when a metric reads the per-epoch losses (or the file sets it), else absent.

    Absent rather than false: the run keys of experiments that do not read the losses stay what they
    were before the key existed, so their stored runs remain valid.
    """
    setting = dict(setting)
    if any(m in EPOCH_LOSS_METRICS for m in metrics):
        if setting.get("loss_history") is False:
            raise ConfigError(f"[setting] in {path} sets loss_history = false, but the metrics "
                              f"({', '.join(metrics)}) read the per-epoch losses.")
        setting["loss_history"] = True
    elif not setting.get("loss_history"):
        setting.pop("loss_history", None)
    return setting


def _check_section(exp, path):
    if "section" not in exp:
        return ""
    return Param("choice", choices=SECTION_KINDS).check(exp["section"], "section", "[experiment]", path)


def _check_resolution(exp, known_metrics, path):
    table = exp.get("resolution", {})
    _check_table(table, known_metrics, "'resolution' of [experiment]", path)
    return tuple(sorted((m, Param("float", 0.0, None).check(v, m, "'resolution' of [experiment]", path))
                        for m, v in table.items()))


def _check_y(exp, checked, x, path):
    """The second swept key of a 2-D sweep and its values: ``(None, ())`` for a 1-D sweep."""
    y = checked.get("y")
    if y is None:
        for key in ("y_values", "success_threshold"):
            if key in exp:
                raise ConfigError(f"[experiment] in {path} has '{key}' but no 'y' (the second swept key).")
        return None, ()
    if y not in SETTING_SPEC or y == x or x == "epoch":
        raise ConfigError(
            f"The 'y' key of [experiment] in {path} must be a setting key other than x = {x!r} "
            f"({', '.join(SETTING_SPEC)}), and x may not be 'epoch'. Got {y!r} instead."
        )
    if "y_values" not in exp:
        raise ConfigError(f"Missing required key 'y_values' in [experiment] of {path} (y = {y!r}).")
    spec = _setting_param(y)
    values = _check_list(exp["y_values"], "y_values", "[experiment]", path,
                         lambda v: spec.check(v, y, "'y_values' of [experiment]", path))
    if len(set(values)) != len(values):
        raise ConfigError(f"The 'y_values' key of [experiment] in {path} has duplicates: {list(values)!r}.")
    return y, values


def _check_consistency(p, path):
    if p["k"] > p["d"]:
        raise ConfigError(f"{path}: k = {p['k']} exceeds d = {p['d']}; the planted network needs k <= d.")
    if p["batch_size"] != "full" and p["batch_size"] > p["n"]:
        raise ConfigError(f"{path}: batch_size = {p['batch_size']} exceeds n = {p['n']}.")
    need, have = run_memory_bytes(p), machine_memory_bytes()
    if have is not None and need > have:
        raise ConfigError(
            f"{path}: a run with n = {p['n']}, n_test = {p['n_test']}, d = {p['d']} needs about "
            f"{need / 2**30:.3g} GiB of memory (two float64 copies of its (n + n_test) x (d + 1) data), more than "
            f"this machine's {have / 2**30:.3g} GiB; lower n, n_test or d."
        )


def run_memory_bytes(params):
    """Memory one run needs, estimated before anything is allocated (bytes).

    The planted data (X, y, X_test, y_test: (n + n_test) x (d + 1) float64) twice: a task stacks
    its problems for batched training and the tensor initialization works on a second copy.
    """
    return 2 * 8 * (int(params["n"]) + int(params["n_test"])) * (int(params["d"]) + 1)


@functools.lru_cache(maxsize=1)
def machine_memory_bytes():
    """Physical memory of this machine (bytes), capped by a cgroup limit; None when unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            total = min(total, int(Path(limit).read_text().strip()))
        except (OSError, ValueError):  # absent, or "max"
            continue
    return total


def load_config(path, *, scale="paper"):
    """Read and validate a TOML experiment definition (see :func:`parse_config`)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Cannot read the experiment file {path}: {exc.strerror or exc}.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} is not UTF-8 text (a TOML file must be): byte {raw[exc.start]:#04x} at line "
                          f"{line} (offset {exc.start}); save the file as UTF-8.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, path, scale=scale, source=text)


def shipped_configs(*, reproduce_only=False):
    """Paths of the experiment definitions shipped with the package, sorted by name.

    Parameters
    ----------
    reproduce_only : bool, default=False
        Leave out the experiments marked ``reproduce = false`` (cluster-sized sweeps such as the
        phase transitions, run on their own with ``sparsenet run``).
    """
    paths = sorted(CONFIG_DIR.glob("*.toml"))
    if reproduce_only:
        paths = [p for p in paths if tomllib.loads(p.read_text()).get("experiment", {}).get("reproduce", True)]
    return paths


# --------------------------------------------------------------------------------------------------
# Expansion, run keys, seeds


def canonical_json(obj):
    """Deterministic JSON: sorted keys, no whitespace, floats by repr."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _sha(obj):
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def problem_seed(params, trial):
    """Seed of the planted problem of ``trial``: a hash of the problem keys and the trial index.

    Methods and protocols are not hashed, so they all see the same data in the same trial.
    """
    problem = {k: params.get(k) for k in PROBLEM_KEYS}
    return int(_sha({"problem": problem, "trial": int(trial)})[:15], 16)  # < 2**60: fits SQLite INTEGER


def run_key(params, protocol, seed):
    """Canonical run key: sha256 of the resolved parameters, the protocol and the seed."""
    return _sha({"params": dict(params), "protocol": protocol, "seed": int(seed)})


def _resolved_points(config):
    """Yield ``(value, w, spec, params)`` for every grid point and method, in the order of :func:`expand`."""
    from sparsenet.experiments.methods import METHODS

    base = config.setting_dict
    values = config.values if config.values else (None,)
    grid = [(value, None) for value in values]
    if config.y is not None:  # 2-D sweep: x-major cartesian product
        grid = [(value, w) for value in values for w in config.y_values]
    for value, w in grid:
        point = base if value is None else _apply_truth(base, {config.x: value})
        if w is not None:
            point = _apply_truth(point, {config.y: w})
        for spec in config.methods:
            setting = _apply_truth(point, dict(spec.overrides))
            params = METHODS[spec.method].resolve(setting, dict(spec.fields))
            params.pop("loss_history", None)
            if setting.get("loss_history"):  # recorded only when asked for; absent (not false) otherwise
                params["loss_history"] = True
            params["method"] = spec.method
            yield value, w, spec, params


def count_runs(config):
    """Number of distinct runs of an experiment (``len({r.key for r in expand(config)})``), without hashing.

    Two methods (or grid points) that resolve to the same parameters share their runs: a run key is a
    hash of the parameters, the protocol and a seed derived from the parameters and the trial.
    """
    distinct = {tuple(sorted(params.items())) for _, _, _, params in _resolved_points(config)}
    return len(distinct) * len(config.protocols) * config.trials


def expand(config):
    """All runs of an experiment: values x methods x protocols x trials, in a stable order."""
    runs = []
    for value, w, spec, params in _resolved_points(config):
        for protocol in config.protocols:
            for trial in range(config.trials):
                seed = problem_seed(params, trial)
                runs.append(
                    Run(
                        key=run_key(params, protocol, seed),
                        experiment=config.name,
                        label=spec.label,
                        method=spec.method,
                        protocol=protocol,
                        trial=trial,
                        seed=seed,
                        x=value,
                        params=tuple(sorted(params.items())),
                        y=w,
                    )
                )
    return runs
