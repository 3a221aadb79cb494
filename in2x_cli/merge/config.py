"""The merge recipe: built from flags or from a mergekit-shaped YAML file, validated up front.

YAML (the mergekit shape; keys marked "in2x" are extensions mergekit does not have)::

    merge_method: ties            # linear | task_arithmetic | ties | dare_ties | dare_linear | dare | fisher | obim
    base_model: runs/base         # required by every method but linear / fisher
    models:
      - model: runs/sft-ja
        parameters: {weight: 1.0, density: 0.5}
        calibration: data/ja.jsonl   # in2x: fisher / obim calibration data for this model
        stats: runs/ja.fisher        # in2x: or statistics precomputed by `in2x merge fisher-stats`
      - model: runs/sft-zh
        parameters: {weight: 0.5, density: 0.5}
    parameters: {lambda: 1.0, normalize: true}
    dtype: bfloat16               # inputs are cast to this before merging (as mergekit)
    out_dtype: bfloat16           # output dtype (default: dtype, else each tensor's own)
    tokenizer_source: base        # base | a model path: config/tokenizer files are copied from it
    seed: 0                       # in2x: DARE masks (mergekit: --random-seed)
    resize_vocab: false           # in2x: allow differing vocabulary sizes (see executor)

Parameter values may be scalars, mergekit gradients (a list interpolated over the layer index:
``weight: [0.2, 0.8]``) or filtered lists (``[{filter: mlp, value: 0.9}, {value: 0.4}]``, first
match on a substring of the tensor name wins), resolved per tensor exactly as mergekit does.
A model's own ``parameters`` take precedence over the global ones, which take precedence over the
method's defaults. ``slices`` / ``modules`` (layer surgery) are not supported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from in2x_cli.core.merge import METHODS, MergeMethod, rescale_mode
from in2x_cli.errors import InputError, UserError

DTYPES = ("float32", "float16", "bfloat16", "float64")
_DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "half": "float16", "float": "float32"}
_TOP_KEYS = {
    "merge_method", "base_model", "models", "parameters", "dtype", "out_dtype", "tokenizer_source",
    "seed", "resize_vocab", "slices", "modules", "tokenizer", "chat_template",
}
_MODEL_KEYS = {"model", "parameters", "calibration", "stats"}
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass(frozen=True)
class ModelEntry:
    """One input model and its per-model settings (raw: resolved per tensor later)."""

    path: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    calibration: str | None = None
    stats: str | None = None


@dataclass(frozen=True)
class MergeConfig:
    method: str
    models: tuple[ModelEntry, ...]
    base_model: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    seed: int = 0
    resize_vocab: bool = False

    @property
    def spec(self) -> MergeMethod:
        return METHODS[self.method]

    @property
    def output_dtype(self) -> str | None:
        return self.out_dtype or self.dtype

    def copy_source(self) -> str:
        """The model whose config/tokenizer files the output gets."""
        src = self.tokenizer_source
        if src in (None, "base"):
            return self.base_model or self.models[0].path
        return src


def normalize_dtype(value: Any, where: str) -> str | None:
    if value is None:
        return None
    name = _DTYPE_ALIASES.get(str(value), str(value)).removeprefix("torch.")
    if name not in DTYPES:
        raise UserError(f"unknown dtype {value!r} (expected one of {', '.join(DTYPES)})", where)
    return name


def _check_scalar(method: str, name: str, value: Any, where: str) -> None:
    if name in ("normalize", "int8_mask"):
        ok = isinstance(value, bool)
        want = "true or false"
    elif name == "rescale":
        try:
            rescale_mode(value)
            ok = True
        except ValueError:
            ok = False
        want = "true, false, l1 or inverse_density"
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        want = "a number"
    if not ok:
        raise UserError(f"{method}: parameter {name!r} must be {want}, got {value!r}", where)
    if name == "density" and not 0 <= value <= 1:
        raise UserError(f"{method}: density must be in [0, 1], got {value}", where)


def _check_setting(method: str, name: str, setting: Any, where: str) -> None:
    """Validate a scalar, a gradient list, or a list of {filter, value} conditions."""
    if isinstance(setting, list):
        if not setting:
            raise UserError(f"{method}: parameter {name!r} is an empty list", where)
        for item in setting:
            if isinstance(item, dict):
                unknown = set(item) - {"filter", "value"}
                if unknown or "value" not in item:
                    raise UserError(f"{method}: conditional parameter {name!r} needs {{filter, value}}, got {item!r}", where)
                _check_setting(method, name, item["value"], where)
            else:
                _check_scalar(method, name, item, where)
    elif isinstance(setting, dict):
        _check_setting(method, name, [setting], where)
    else:
        _check_scalar(method, name, setting, where)


def _check_params(method: str, params: Any, allowed: Mapping[str, Any], scope: str, where: str) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise UserError(f"{scope} 'parameters' must be a mapping, got {type(params).__name__}", where)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise UserError(f"{method}: unknown {scope} parameter {unknown[0]!r} (accepted: {accepted})", where)
    for name, setting in params.items():
        _check_setting(method, name, setting, where)
    return dict(params)


def build_config(
    *,
    method: str,
    models: list[ModelEntry],
    base_model: str | None,
    parameters: dict[str, Any],
    dtype: Any = None,
    out_dtype: Any = None,
    tokenizer_source: str | None = None,
    seed: int = 0,
    resize_vocab: bool = False,
    where: str | None = None,
) -> MergeConfig:
    """Validate and freeze a merge recipe (shared by the YAML and the flag paths)."""
    if method not in METHODS:
        raise UserError(f"unknown merge method {method!r} (available: {', '.join(METHODS)})", where)
    spec = METHODS[method]
    # mergekit lists the base among `models` (usually without parameters): it is the base. For
    # methods without a base (linear, fisher) a listed base is an ordinary input, as in mergekit.
    if base_model is not None and spec.base == "required":
        models = [m for m in models if m.path != base_model]
    if spec.base == "required" and base_model is None:
        raise UserError(f"{method} needs a base model (base_model: / --base)", where)
    if not models:
        raise UserError("no models to merge", where)
    paths = [m.path for m in models]
    if len(set(paths)) != len(paths):
        raise UserError(f"model {next(p for p in paths if paths.count(p) > 1)!r} is listed twice", where)
    checked = []
    for m in models:
        mp = _check_params(method, m.parameters, spec.model_params, f"model {m.path!r}", where)
        if (m.calibration or m.stats) and spec.stats is None:
            raise UserError(f"{method} uses no calibration data (model {m.path!r}); only fisher and obim do", where)
        checked.append(ModelEntry(m.path, mp, m.calibration, m.stats))
    if spec.stats == "fisher":
        for m in checked:
            if not (m.calibration or m.stats):
                raise UserError(
                    f"fisher needs calibration data for every model: give model {m.path!r} a calibration JSONL "
                    "(--calibration / calibration:) or precomputed statistics (--stats / stats:)",
                    where,
                )
    # Global parameters may also set per-model ones for every model (mergekit does the same).
    gp = _check_params(method, parameters, {**spec.params, **spec.model_params}, "global", where)
    return MergeConfig(
        method=method,
        models=tuple(checked),
        base_model=base_model,
        parameters=gp,
        dtype=normalize_dtype(dtype, where or "dtype"),
        out_dtype=normalize_dtype(out_dtype, where or "out_dtype"),
        tokenizer_source=tokenizer_source,
        seed=seed,
        resize_vocab=resize_vocab,
    )


def _yaml_error(exc: Exception, path: str) -> UserError:
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else path
    problem = getattr(exc, "problem", None) or str(exc)
    return InputError(f"invalid YAML ({problem})", where)


def _model_ref(value: Any, where: str) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("model"), str):  # mergekit's {model: path}
        return value["model"]
    raise UserError(f"expected a model path, got {value!r}", where)


def load_yaml_config(
    path: str, *, relative_to: Path | None = None, seed: int | None = None, resize_vocab: bool | None = None
) -> MergeConfig:
    """Parse a mergekit-shaped YAML merge recipe (``yaml.safe_load``; see the module docstring).

    Relative model / data paths are resolved against the working directory (as mergekit does),
    or against the YAML file's directory when they exist only there. ``seed`` / ``resize_vocab``
    (command-line flags) override the file's values. ``-`` reads the recipe from stdin.
    """
    import yaml

    from in2x_cli.io.jsonl import read_bytes

    raw = read_bytes(path)
    display = "<stdin>" if path == "-" else path
    try:
        doc = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("the config is not UTF-8", display) from None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, display) from None
    if not isinstance(doc, dict):
        raise InputError("a merge config must be a YAML mapping with merge_method and models", display)
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r} (accepted: {', '.join(sorted(_TOP_KEYS - {'slices', 'modules', 'tokenizer', 'chat_template'}))})", display)
    for unsupported in ("slices", "modules", "tokenizer", "chat_template"):
        if doc.get(unsupported) is not None:
            raise InputError(f"{unsupported!r} is not supported by in2x merge (use models: and tokenizer_source:)", display)
    if "merge_method" not in doc:
        raise InputError("missing merge_method", display)
    base_dir = relative_to if relative_to is not None else Path(path if path != "-" else ".").absolute().parent

    def rel(p: str | None) -> str | None:
        if p is None:
            return None
        cand = base_dir / p
        return str(cand) if not Path(p).is_absolute() and not Path(p).exists() and cand.exists() else p

    models_doc = doc.get("models")
    if not isinstance(models_doc, list) or not models_doc:
        raise InputError("'models' must be a non-empty list of {model: path, parameters: {...}}", display)
    models = []
    for i, item in enumerate(models_doc):
        where = f"{display}: models[{i}]"
        if isinstance(item, str):
            item = {"model": item}
        if not isinstance(item, dict) or "model" not in item:
            raise InputError(f"models[{i}] must be a mapping with a 'model' key", display)
        extra = sorted(set(item) - _MODEL_KEYS)
        if extra:
            raise InputError(f"models[{i}]: unknown key {extra[0]!r} (accepted: {', '.join(sorted(_MODEL_KEYS))})", display)
        for key in ("calibration", "stats"):
            if item.get(key) is not None and not isinstance(item[key], str):
                raise InputError(f"models[{i}].{key} must be a path", display)
        models.append(
            ModelEntry(
                path=rel(_model_ref(item["model"], where)) or "",
                parameters=item.get("parameters") or {},
                calibration=rel(item.get("calibration")),
                stats=rel(item.get("stats")),
            )
        )
    base = doc.get("base_model")
    seed = doc.get("seed", 0) if seed is None else seed
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InputError(f"seed must be an integer, got {seed!r}", display)
    resize = doc.get("resize_vocab", False) if resize_vocab is None else resize_vocab
    if not isinstance(resize, bool):
        raise InputError(f"resize_vocab must be true or false, got {resize!r}", display)
    tok = doc.get("tokenizer_source")
    if tok == "union":
        raise InputError("tokenizer_source: union is not supported (use base or a model path)", display)
    return build_config(
        method=str(doc["merge_method"]),
        models=models,
        base_model=rel(_model_ref(base, display)) if base is not None else None,
        parameters=doc.get("parameters") or {},
        dtype=doc.get("dtype"),
        out_dtype=doc.get("out_dtype"),
        tokenizer_source=tok if tok in (None, "base") else rel(_model_ref(tok, display)),
        seed=seed,
        resize_vocab=resize,
        where=display,
    )


# --------------------------------------------------------------------------------------------
# per-tensor parameter resolution (mergekit semantics)


def layer_position(tensor_name: str, num_layers: int | None) -> float:
    """mergekit's ``t`` for gradients: layer index / (layers − 1) inside the layer stack (1 for a
    single layer), 0 for everything outside it (embeddings, final norm, head)."""
    m = _LAYER.search(tensor_name)
    if m is None or not num_layers:
        return 0.0
    if num_layers <= 1:
        return 1.0
    return int(m.group(1)) / (num_layers - 1)


def evaluate_setting(setting: Any, tensor_name: str, t: float) -> Any:
    """A scalar as is; a list of scalars interpolated at t (numbers) or indexed (bools/strings);
    a list of {filter, value}: the first whose filter is absent/'*' or a substring of the name."""
    if isinstance(setting, dict):
        setting = [setting]
    if not isinstance(setting, list):
        return setting
    if all(not isinstance(e, dict) for e in setting):
        numeric = all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in setting)
        if not numeric:
            return setting[int(t * (len(setting) - 1))]
        scaled = t * (len(setting) - 1)
        i0 = int(scaled)
        i1 = min(len(setting) - 1, i0 + 1)
        frac = scaled - i0
        return (1 - frac) * setting[i0] + frac * setting[i1]
    for cond in setting:
        flt = cond.get("filter") if isinstance(cond, dict) else None
        if flt is None or flt == "*" or (tensor_name and flt in tensor_name):
            return evaluate_setting(cond["value"] if isinstance(cond, dict) else cond, tensor_name, t)
    return None


def resolve(
    name: str, defaults: Mapping[str, Any], sources: tuple[Mapping[str, Any], ...], tensor_name: str, t: float
) -> Any:
    for scope in sources:
        if name in scope:
            value = evaluate_setting(scope[name], tensor_name, t)
            if value is not None:
                return value
    return defaults[name]


def resolve_parameters(
    config: MergeConfig, tensor_name: str, num_layers: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Global and per-model parameters for one tensor (model > global > method default)."""
    spec = config.spec
    t = layer_position(tensor_name, num_layers)
    global_params = {p: resolve(p, spec.params, (config.parameters,), tensor_name, t) for p in spec.params}
    per_model = [
        {p: resolve(p, spec.model_params, (m.parameters, config.parameters), tensor_name, t) for p in spec.model_params}
        for m in config.models
    ]
    return global_params, per_model


def _per_model(values: list[Any], n: int, flag: str) -> list[Any]:
    """A repeated flag given once applies to every model; otherwise once per model."""
    if not values:
        return [None] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise UserError(f"{flag} given {len(values)} times for {n} models: give it once (all models) or once per --model")
    return values


# The recipe's command-line flags, by config_from_flags parameter (their order is --help's).
RECIPE_FLAGS = {
    "method": "--method", "base_model": "--base", "models": "--model", "weights": "--weight", "densities": "--density",
    "lambda_": "--lambda", "normalize": "--normalize", "rescale": "--rescale", "calibration": "--calibration",
    "stats": "--stats", "dtype": "--dtype", "tokenizer_source": "--tokenizer-source",
}  # fmt: skip


def recipe_from_options(config: str | None, flags: dict[str, Any], *, seed: int | None, resize_vocab: bool) -> MergeConfig:
    """The recipe of ``in2x merge``: a YAML file (``--config``; then no recipe flag may be given)
    or the recipe the flags spell (``flags``: ``config_from_flags``'s arguments, None/[] = not given)."""
    if config is not None:
        given = [RECIPE_FLAGS[k] for k, v in flags.items() if v not in (None, [], ())]
        if given:
            raise UserError(f"{given[0]} cannot be combined with --config: put it in the YAML recipe")
        return load_yaml_config(config, seed=seed, resize_vocab=resize_vocab or None)
    if flags["method"] is None:
        raise UserError("missing --method (or a YAML recipe with --config)")
    return config_from_flags(**flags, seed=seed or 0, resize_vocab=resize_vocab)


def config_from_flags(
    *,
    method: str,
    models: list[str],
    base_model: str | None,
    weights: list[float],
    densities: list[float],
    lambda_: float | None,
    normalize: bool | None,
    rescale: str | None,
    calibration: list[str],
    stats: list[str],
    dtype: str | None,
    tokenizer_source: str | None,
    seed: int,
    resize_vocab: bool,
) -> MergeConfig:
    """The flag form of a recipe: ``--model`` repeated, per-model flags aligned with it."""
    if not models:
        raise UserError("give the models to merge with --model (repeated), or a YAML recipe with --config")
    n = len(models)
    if stats and len(stats) != n:
        raise UserError(f"--stats given {len(stats)} times for {n} models: give it once per --model")
    w = _per_model(weights, n, "--weight")
    d = _per_model(densities, n, "--density")
    if n > 1 and calibration == ["-"]:
        raise UserError("--calibration - (stdin) can be read only once: give one calibration file per --model")
    c = _per_model(calibration, n, "--calibration")
    s = stats or [None] * n
    entries = []
    for i, path in enumerate(models):
        params: dict[str, Any] = {}
        if w[i] is not None:
            params["weight"] = w[i]
        if d[i] is not None:
            params["density"] = d[i]
        entries.append(ModelEntry(path, params, c[i], s[i]))
    global_params: dict[str, Any] = {}
    if lambda_ is not None:
        global_params["lambda"] = lambda_
    if normalize is not None:
        global_params["normalize"] = normalize
    if rescale is not None:
        low = rescale.lower()
        global_params["rescale"] = {"true": True, "false": False}.get(low, low)
    return build_config(
        method=method,
        models=entries,
        base_model=base_model,
        parameters=global_params,
        dtype=dtype,
        tokenizer_source=tokenizer_source,
        seed=seed,
        resize_vocab=resize_vocab,
    )
