"""The configuration of a ``tfstream fit`` job: frozen dataclasses, read from YAML or TOML and
from command-line overrides, validated with one clear error naming the bad key.

A config file holds up to six sections; every key is optional but ``data.train`` (and a name,
which defaults to the config file's stem)::

    name: churn                      # run directory runs/churn, export savedmodels/churn/N
    data:
      train: [data/train/]           # paths, globs or directories (CSV, TFRecord, Parquet)
      validation: [data/valid/]      # or validation_fraction: 0.1 (holds out whole files)
      label: label
    stats: {sample: null}            # null: exact full pass; 0.01: 1% Bernoulli; 100000: reservoir
    model: {spec: "mlp:256,128", task: auto}
    train: {epochs: 3, batch_size: 4096, accumulation_steps: 4, precision: auto}
    export: {base_dir: savedmodels}

Relative paths in a file are relative to the directory of that file. Overrides use dotted keys
(``train.epochs=5``) whose values are parsed as YAML (``5`` is an int, ``[a, b]`` a list).

Example:

>>> config = load_config(overrides={"name": "x", "data.train": ["data/"]})   # doctest: +SKIP
>>> config.train.epochs
1
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

__all__ = [
    "ConfigError",
    "DataConfig",
    "ExportConfig",
    "FitConfig",
    "ModelConfig",
    "StatsConfig",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "read_config_file",
    "with_absolute_paths",
]

TASKS = ("auto", "binary", "regression")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "one_device", "mirrored")
ON_ERROR = ("raise", "skip", "quarantine")
FORMATS = ("csv", "tfrecord", "parquet")


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key or file and how to fix it."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the rows come from.

    Args:
        train: paths, globs or directories of the training data (one format).
        validation: paths of validation data, evaluated after each epoch; or None.
        validation_fraction: instead of ``validation``, hold out this fraction of the training
            *files* (at least one file, the last ones in name order; needs 2+ files).
        label: the label column.
        format: ``csv``, ``tfrecord`` or ``parquet`` (default: from the file suffixes).
        columns: read only these columns (CSV and Parquet), or None for all.
        schema: ``{column: dtype}`` declared instead of inferred (CSV).
        on_error: bad rows: ``raise``, ``skip`` or ``quarantine``.
    """

    train: list[str] = dataclasses.field(default_factory=list)
    validation: list[str] | None = None
    validation_fraction: float | None = None
    label: str = "label"
    format: str | None = None
    columns: list[str] | None = None
    schema: dict[str, str] = dataclasses.field(default_factory=dict)
    on_error: str = "raise"


@dataclasses.dataclass(frozen=True)
class StatsConfig:
    """How the statistics are computed (they are cached in the run directory).

    Args:
        sample: None (an exact pass over every row), a fraction in (0, 1) (a seeded Bernoulli
            sample) or an int >= 1 (a uniform reservoir sample of that many rows).
        seed: seeds the sampling.
    """

    sample: int | float | None = None
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The model after the preprocessor.

    Args:
        spec: ``linear``, ``mlp:256,128`` (hidden widths), ``wide_deep:256,128`` or
            ``module:function`` (see :mod:`tfstream.pipeline.models`).
        task: ``binary`` (0/1 label, sigmoid output, binary cross-entropy), ``regression``
            (linear output, mean squared error) or ``auto`` (from the label's statistics).
        dropout: dropout rate after each hidden layer of the built-in models.
        categorical_max_tokens: cap on each string column's vocabulary (most frequent first).
    """

    spec: str = "mlp:128,64"
    task: str = "auto"
    dropout: float = 0.0
    categorical_max_tokens: int | None = 1000


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The :class:`~tfstream.Trainer` and its ``fit``.

    Args:
        epochs: passes over the training data.
        batch_size: the global batch of one optimizer step.
        accumulation_steps: micro-batches per optimizer step and replica (exact accumulation).
        optimizer: a Keras optimizer name (``adam``, ``sgd``, ``adamw``, ``rmsprop``, ...).
        learning_rate: the optimizer's learning rate.
        precision: ``auto``, ``float32``, ``mixed_float16`` or ``mixed_bfloat16``.
        strategy: ``auto``, ``one_device`` or ``mirrored``.
        remat: activation checkpointing: None, ``full``, ``blocks``, ``larger_than`` or a list
            of layer names.
        shuffle: shuffle file order and rows each epoch.
        seed: the shuffle seed (saved in checkpoints: a resume reads the same order).
        steps_per_epoch: at most this many optimizer steps per epoch, or None.
        checkpoint_every_steps: also checkpoint every this many steps, or None.
        checkpoint_every_seconds: also checkpoint this often, or None.
        checkpoint_keep: checkpoints kept.
        deterministic: bit-reproducible training (op determinism and seeds).
        metrics: Keras metric names, or None for the task's defaults.
    """

    epochs: int = 1
    batch_size: int = 1024
    accumulation_steps: int = 1
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    precision: str = "auto"
    strategy: str = "auto"
    remat: str | list[str] | None = None
    shuffle: bool = True
    seed: int = 0
    steps_per_epoch: int | None = None
    checkpoint_every_steps: int | None = None
    checkpoint_every_seconds: float | None = 600.0
    checkpoint_keep: int = 3
    deterministic: bool = False
    metrics: list[str] | None = None


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """The SavedModel for TF Serving, written to ``base_dir/name/<version>``.

    Args:
        enabled: export at the end of training.
        base_dir: the export root.
        name: the model name under ``base_dir`` (default: the job's name).
        version: an integer version, or None for the next free one.
        keep: keep only the newest this many versions, or None for all.
    """

    enabled: bool = True
    base_dir: str = "savedmodels"
    name: str | None = None
    version: int | None = None
    keep: int | None = None


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """One ``tfstream fit`` job.

    Args:
        name: the job's name (run directory ``runs/<name>``, export ``<base_dir>/<name>``).
        run_dir: where everything of the run goes (default ``runs/<name>``).
        checkpoint_dir: the checkpoints (default ``<run_dir>/checkpoints``).
        data, stats, model, train, export: the sections.
    """

    name: str = ""
    run_dir: str | None = None
    checkpoint_dir: str | None = None
    data: DataConfig = DataConfig()
    stats: StatsConfig = StatsConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    export: ExportConfig = ExportConfig()

    @property
    def resolved_run_dir(self) -> str:
        return self.run_dir or os.path.join("runs", self.name)

    @property
    def resolved_checkpoint_dir(self) -> str:
        return self.checkpoint_dir or os.path.join(self.resolved_run_dir, "checkpoints")


#: Keys holding paths: relative ones in a file are resolved against the file's directory.
_PATH_KEYS = ("run_dir", "checkpoint_dir", "data.train", "data.validation", "export.base_dir")


# -- reading ---------------------------------------------------------------------------------


def read_config_file(path: str | os.PathLike) -> dict:
    """The raw mapping of a ``.yaml``/``.yml`` or ``.toml`` config file.

    Raises:
        ConfigError: the file is missing, has another suffix, or does not parse.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(
            f"config file {path!r} does not exist. Expected a .yaml, .yml or .toml file; check "
            "the path (relative to the current directory)."
        )
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        elif suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        else:
            raise ConfigError(
                f"config file {path!r}: expected a .yaml, .yml or .toml suffix; received "
                f"{suffix or 'none'!r}. Rename the file."
            )
    except ConfigError:
        raise
    except Exception as error:  # yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError
        detail = " ".join(str(error).split())
        raise ConfigError(f"config file {path!r} does not parse: {detail}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise ConfigError(
            f"config file {path!r}: expected a mapping of keys (name:, data:, train:, ...) at "
            f"the top; received a {type(doc).__name__}."
        )
    return _resolve_paths(dict(doc), os.path.dirname(os.path.abspath(path)))


def load_config(
    path: str | os.PathLike | None = None, *, overrides: Mapping[str, Any] | None = None
) -> FitConfig:
    """The :class:`FitConfig` of a config file (or none) with dotted-key ``overrides`` applied
    on top (``{"train.epochs": 3}``); validated.

    Raises:
        ConfigError: an unknown key (with a did-you-mean), a value of the wrong type or out of
            range, a missing file, or no training data.
    """
    doc = read_config_file(path) if path is not None else {}
    for key, value in (overrides or {}).items():
        _set_dotted(doc, key, value)
    if not doc.get("name") and path is not None:
        doc["name"] = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    config = config_from_dict(doc)
    check_config(config)
    return config


def config_from_dict(doc: Mapping[str, Any]) -> FitConfig:
    """Builds a :class:`FitConfig` from nested mappings, checking every key and type."""
    return _build(FitConfig, doc, "")


def config_to_dict(config) -> dict:
    """The config as plain nested dicts (for YAML), every key present."""
    return dataclasses.asdict(config)


def with_absolute_paths(config: FitConfig) -> FitConfig:
    """``config`` with its local relative paths made absolute (from the current directory):
    the form the run directory's ``config.yaml`` keeps, loadable from anywhere."""

    def fix(path):
        if path is None or "://" in path or os.path.isabs(path):
            return path
        return os.path.abspath(path)

    def fix_all(paths):
        return None if paths is None else [fix(p) for p in paths]

    return dataclasses.replace(
        config,
        run_dir=fix(config.resolved_run_dir),
        checkpoint_dir=fix(config.checkpoint_dir),
        data=dataclasses.replace(
            config.data,
            train=fix_all(config.data.train),
            validation=fix_all(config.data.validation),
        ),
        export=dataclasses.replace(config.export, base_dir=fix(config.export.base_dir)),
    )


def check_config(config: FitConfig) -> None:
    """Checks what the types alone do not: required keys, ranges and choices."""
    if not config.name:
        raise ConfigError("`name` is missing: give name: in the config or --name NAME.")
    if not config.data.train:
        raise ConfigError(
            "`data.train` is missing: give the training files (data: {train: [PATHS]} in the "
            "config, or PATHS on the command line)."
        )
    from tfstream.pipeline.models import parse_spec

    parse_spec(config.model.spec)
    _choice("data.format", config.data.format, (None, *FORMATS))
    _choice("data.on_error", config.data.on_error, ON_ERROR)
    _choice("model.task", config.model.task, TASKS)
    _choice("train.precision", config.train.precision, PRECISIONS)
    _choice("train.strategy", config.train.strategy, STRATEGIES)
    fraction = config.data.validation_fraction
    if fraction is not None and not 0.0 < fraction < 1.0:
        raise ConfigError(f"`data.validation_fraction` must be in (0, 1); received {fraction!r}.")
    if fraction is not None and config.data.validation:
        raise ConfigError("give `data.validation` or `data.validation_fraction`, not both.")
    sample = config.stats.sample
    if isinstance(sample, float) and not 0.0 < sample < 1.0:
        raise ConfigError(
            f"`stats.sample` must be a fraction in (0, 1) or a row count >= 1; received {sample!r}."
        )
    if isinstance(sample, int) and sample < 1:
        raise ConfigError(f"`stats.sample` as a row count must be >= 1; received {sample!r}.")
    for key in ("epochs", "batch_size", "accumulation_steps", "checkpoint_keep"):
        _positive(f"train.{key}", getattr(config.train, key))
    for key in ("steps_per_epoch", "checkpoint_every_steps"):
        value = getattr(config.train, key)
        if value is not None:
            _positive(f"train.{key}", value)
    if config.train.learning_rate <= 0:
        raise ConfigError(
            f"`train.learning_rate` must be > 0; received {config.train.learning_rate!r}."
        )
    if not 0.0 <= config.model.dropout < 1.0:
        raise ConfigError(f"`model.dropout` must be in [0, 1); received {config.model.dropout!r}.")
    if config.export.version is not None:
        _positive("export.version", config.export.version)
    if config.export.keep is not None:
        _positive("export.keep", config.export.keep)


# -- internals -------------------------------------------------------------------------------


def _build(cls, doc, prefix: str):
    if not isinstance(doc, Mapping):
        raise ConfigError(
            f"`{prefix.rstrip('.') or 'config'}` must be a mapping of keys; received "
            f"{_show(doc)} ({type(doc).__name__})."
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in doc:
        if key not in fields:
            raise ConfigError(_unknown(prefix, str(key), list(fields)))
    values = {}
    for key, value in doc.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, f"{prefix}{key}.")
        else:
            values[key] = _convert(value, hint, prefix + key)
    return cls(**values)


def _convert(value, hint, key: str):
    """``value`` as the type ``hint`` (str, int, float, bool, list[str], dict[str, str],
    unions with None)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(_wrong_type(key, _describe(hint), value))
    if origin is list:
        if isinstance(value, str):
            value = [value]  # one path or name where a list is expected
        if not isinstance(value, (list, tuple)):
            raise ConfigError(_wrong_type(key, _describe(hint), value))
        (item,) = typing.get_args(hint)
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(_wrong_type(key, _describe(hint), value))
        _, item = typing.get_args(hint)
        return {str(k): _convert(v, item, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(_wrong_type(key, "true or false", value))
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(_wrong_type(key, "an integer", value))
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(_wrong_type(key, "a number", value))
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(_wrong_type(key, "a string", value))
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # pragma: no cover


def _describe(hint) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        parts = [_describe(h) for h in typing.get_args(hint) if h is not type(None)]
        none = type(None) in typing.get_args(hint)
        return " or ".join(parts + (["null"] if none else []))
    if origin is list:
        return f"a list of {_describe(typing.get_args(hint)[0]).removeprefix('a ')}s"
    if origin is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, str(hint)
    )


def _wrong_type(key: str, expected: str, value) -> str:
    return (
        f"`{key}` must be {expected}; received {_show(value)} ({type(value).__name__}). "
        f"Fix the value of {key} in the config or its flag."
    )


def _unknown(prefix: str, key: str, known: list[str]) -> str:
    where = f"in `{prefix.rstrip('.')}`" if prefix else "at the top level"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" Did you mean `{prefix}{close[0]}`?" if close else ""
    return (
        f"unknown config key `{prefix}{key}` {where}.{hint} The keys there are: {', '.join(known)}."
    )


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _choice(key: str, value, choices) -> None:
    if value not in choices:
        shown = ", ".join(repr(c) if c is not None else "null" for c in choices)
        raise ConfigError(f"`{key}` must be one of {shown}; received {value!r}.")


def _positive(key: str, value) -> None:
    if value < 1:
        raise ConfigError(f"`{key}` must be a positive integer; received {value!r}.")


def _set_dotted(doc: dict, key: str, value) -> None:
    parts = key.split(".")
    node = doc
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set `{key}`: `{'.'.join(parts[: i + 1])}` is not a section.")
        node = child
    node[parts[-1]] = value


def _resolve_paths(doc: dict, base: str) -> dict:
    """Relative paths of a config file, made relative to the file's directory."""

    def fix(path):
        if not isinstance(path, str) or "://" in path or os.path.isabs(path):
            return path
        return os.path.normpath(os.path.join(base, os.path.expanduser(path)))

    for key in _PATH_KEYS:
        section, _, leaf = key.rpartition(".")
        node = doc.get(section) if section else doc
        if not isinstance(node, dict) or node.get(leaf) is None:
            continue
        value = node[leaf]
        node = dict(node)
        node[leaf] = [fix(v) for v in value] if isinstance(value, list) else fix(value)
        if section:
            doc[section] = node
        else:
            doc.update(node)
    return doc
