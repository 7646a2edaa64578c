"""Safe reading and writing of OpenAI's VPT checkpoint pairs (``.model`` + ``.weights``).

* ``.model``: a pickle of plain data, ``{"model": {"args": {"net": {"args": NET_KWARGS}, "pi_head_opts":
  {"temperature": T}}}}``. It is read with :class:`PlainDataUnpickler`, which refuses every import, so a
  hostile file cannot run code: it is refused with :class:`CheckpointError` before anything executes.
* ``.weights``: a torch state dict, read with ``torch.load(..., weights_only=True)`` and loaded strictly;
  missing/unexpected keys and wrong shapes are reported by name.
* Writes are atomic (:mod:`vpt_rl.atomic`: temporary file in the same folder, then ``os.replace``).

:func:`build_policy` is the one way the project builds a :class:`~vpt_rl.model.PolicyNet`: from a ``.model``
(+ ``.weights``) pair or from a preset / config, with an optional temperature override.

Released checkpoints are not downloaded by this code; :func:`resolve_released` finds them in a folder
and says where to get them when they are missing::

    >>> from vpt_rl.checkpoint import resolve_released, load_policy  # doctest: +SKIP
    >>> net = load_policy(*resolve_released("foundation-model-1x", "~/vpt-models"))  # doctest: +SKIP
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch

from vpt_rl.atomic import atomic_output
from vpt_rl.model import POLICY_PRESETS, IDMConfig, IDMNet, PolicyConfig, PolicyNet

__all__ = [
    "CheckpointError",
    "PlainDataUnpickler",
    "read_model_file",
    "write_model_file",
    "read_weights",
    "check_state_dict",
    "load_policy",
    "load_idm",
    "policy_config",
    "build_policy",
    "weights_beside",
    "save_policy",
    "save_idm",
    "resolve_released",
    "RELEASED",
    "DOWNLOAD_URL",
]

PathLike = Union[str, os.PathLike]

DOWNLOAD_URL = "https://openaipublic.blob.core.windows.net/minecraft-rl/models/{file}"  # docs/model.md links

# released checkpoint name -> (.model file, .weights file) as listed in the official README
RELEASED: Dict[str, Tuple[str, str]] = {
    "foundation-model-1x": ("foundation-model-1x.model", "foundation-model-1x.weights"),
    "foundation-model-2x": ("2x.model", "foundation-model-2x.weights"),
    "foundation-model-3x": ("foundation-model-3x.model", "foundation-model-3x.weights"),
    "bc-early-game-2x": ("2x.model", "bc-early-game-2x.weights"),
    "bc-house-3x": ("foundation-model-3x.model", "bc-house-3x.weights"),
    "bc-early-game-3x": ("foundation-model-3x.model", "bc-early-game-3x.weights"),
    "rl-from-foundation-2x": ("2x.model", "rl-from-foundation-2x.weights"),
    "rl-from-house-2x": ("2x.model", "rl-from-house-2x.weights"),
    "rl-from-early-game-2x": ("2x.model", "rl-from-early-game-2x.weights"),
    "4x_idm": ("4x_idm.model", "4x_idm.weights"),
}
_ALIASES = {"2x": "foundation-model-2x", "1x": "foundation-model-1x", "3x": "foundation-model-3x", "4x-idm": "4x_idm"}


class CheckpointError(ValueError):
    """A checkpoint file was refused: unsafe, malformed, truncated, or not matching the network."""


# ----------------------------------------------------------------------------------------------------------
# .model files
# ----------------------------------------------------------------------------------------------------------


class PlainDataUnpickler(pickle.Unpickler):
    """Unpickler that admits only plain data (dict, list, tuple, set, str, bytes, numbers, bool, None).

    Those types are built by pickle opcodes directly; anything else needs ``find_class`` (an import), which
    is refused, so a file whose ``__reduce__`` would call e.g. ``os.system`` fails before any call is made.
    """

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle hook
        raise pickle.UnpicklingError(
            f"refusing to import {module}.{name}: a .model file may only contain plain data "
            "(dict, list, tuple, str, numbers, bool, None)"
        )

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing persistent ids: a .model file may only contain plain data")


def read_model_file(path: PathLike) -> Dict[str, Any]:
    """Read a ``.model`` pickle safely (no imports, no code) and return the raw dict.

    :raises CheckpointError: file missing, unsafe, truncated, or not a dict.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f".model file not found: {str(path)!r}")
    data = path.read_bytes()
    try:
        obj = PlainDataUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"refused {str(path)!r}: {e}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as e:
        raise CheckpointError(f"{str(path)!r} is not a readable .model pickle (truncated or corrupt): {e!r}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{str(path)!r}: expected a dict at the top of the .model pickle, got {type(obj).__name__}")
    return obj


def _parse_model_dict(d: Mapping[str, Any], path: str) -> Tuple[Dict[str, Any], float]:
    """-> (net kwargs, temperature)."""
    try:
        args = d["model"]["args"]
        net_kwargs = args["net"]["args"]
    except (KeyError, TypeError):
        raise CheckpointError(
            f"{path!r} has no model.args.net.args; expected {{'model': {{'args': {{'net': {{'args': ...}}, "
            "'pi_head_opts': {'temperature': ...}}}}}"
        ) from None
    if not isinstance(net_kwargs, dict):
        raise CheckpointError(f"{path!r}: model.args.net.args must be a dict, got {type(net_kwargs).__name__}")
    opts = args.get("pi_head_opts", {}) if isinstance(args, dict) else {}
    if not isinstance(opts, dict):
        raise CheckpointError(f"{path!r}: model.args.pi_head_opts must be a dict, got {type(opts).__name__}")
    unknown = set(opts) - {"temperature"}
    if unknown:
        raise CheckpointError(f"{path!r}: unknown pi_head_opts keys {sorted(unknown)}; expected only 'temperature'")
    try:
        temperature = float(opts.get("temperature", 1.0))  # agent.py casts it to float
    except (TypeError, ValueError):
        raise CheckpointError(f"{path!r}: pi_head_opts.temperature must be a number, got {opts['temperature']!r}") from None
    return net_kwargs, temperature


def write_model_file(path: PathLike, net_kwargs: Mapping[str, Any], temperature: float) -> None:
    """Write an official-format ``.model`` pickle atomically."""
    d = {"model": {"args": {"net": {"args": dict(net_kwargs)}, "pi_head_opts": {"temperature": float(temperature)}}}}
    _atomic_write(Path(path), lambda f: pickle.dump(d, f, protocol=4))


# ----------------------------------------------------------------------------------------------------------
# .weights files
# ----------------------------------------------------------------------------------------------------------


def read_weights(path: PathLike, device: Any = "cpu") -> Dict[str, torch.Tensor]:
    """Read a ``.weights`` state dict with ``torch.load(weights_only=True)``.

    :raises CheckpointError: file missing, truncated/corrupt, refused by ``weights_only``, or not a
        ``str -> Tensor`` mapping.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f".weights file not found: {str(path)!r}")
    try:
        sd = torch.load(str(path), map_location=device, weights_only=True)
    except Exception as e:  # torch raises RuntimeError / UnpicklingError / EOFError depending on the damage
        raise CheckpointError(
            f"cannot read {str(path)!r} as a torch state dict (truncated, corrupt or unsafe): {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}"
        ) from None
    if not isinstance(sd, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise CheckpointError(f"{str(path)!r}: expected a state dict (str -> Tensor), got {type(sd).__name__}")
    return dict(sd)


def check_state_dict(module: torch.nn.Module, sd: Mapping[str, torch.Tensor], source: str = "state dict") -> None:
    """Raise :class:`CheckpointError` naming every missing key, unexpected key and shape mismatch."""
    want = module.state_dict()
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    shapes = [f"{k}: file {tuple(sd[k].shape)} vs net {tuple(want[k].shape)}"
              for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if shapes:
            parts.append(f"wrong shapes ({len(shapes)}): {'; '.join(shapes)}")
        raise CheckpointError(f"{source} does not match the network built from the .model config: " + " | ".join(parts))


def _load_into(net: torch.nn.Module, weights_path: PathLike, device: Any) -> None:
    sd = read_weights(weights_path, device="cpu")
    check_state_dict(net, sd, source=repr(str(weights_path)))
    net.load_state_dict(sd, strict=True)
    net.to(device)


# ----------------------------------------------------------------------------------------------------------
# policy / IDM pairs
# ----------------------------------------------------------------------------------------------------------


def load_policy(model_path: PathLike, weights_path: Optional[PathLike] = None, device: Any = "cpu") -> PolicyNet:
    """Build a :class:`~vpt_rl.model.PolicyNet` from a ``.model`` file and load ``.weights`` strictly.

    :param model_path: official ``.model`` pickle (config and ``pi_head_opts.temperature``).
    :param weights_path: official ``.weights`` state dict; ``None`` keeps the official random init.
    :param device: where the network is put.
    """
    net_kwargs, temperature = _parse_model_dict(read_model_file(model_path), str(model_path))
    if "conv3d_params" in net_kwargs:
        raise CheckpointError(f"{str(model_path)!r} is an IDM checkpoint (it has conv3d_params); use load_idm")
    try:
        cfg = PolicyConfig.from_kwargs(net_kwargs)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{str(model_path)!r}: {e}") from None
    net = PolicyNet(cfg, temperature=temperature)
    if weights_path is not None:
        _load_into(net, weights_path, device)
    return net.to(device)


def load_idm(model_path: PathLike, weights_path: Optional[PathLike] = None, device: Any = "cpu") -> IDMNet:
    """Build an :class:`~vpt_rl.model.IDMNet` from a ``.model`` file and load ``.weights`` strictly."""
    net_kwargs, temperature = _parse_model_dict(read_model_file(model_path), str(model_path))
    if "conv3d_params" not in net_kwargs:
        raise CheckpointError(f"{str(model_path)!r} is not an IDM checkpoint (no conv3d_params); use load_policy")
    try:
        cfg = IDMConfig.from_kwargs(net_kwargs)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{str(model_path)!r}: {e}") from None
    net = IDMNet(cfg, temperature=temperature)
    if weights_path is not None:
        _load_into(net, weights_path, device)
    return net.to(device)


def policy_config(preset: Any) -> Tuple[PolicyConfig, Optional[float]]:
    """Resolve ``preset`` into ``(PolicyConfig, temperature)`` without building a network.

    :param preset: a name of :data:`vpt_rl.model.POLICY_PRESETS`, the path of an official ``.model`` file,
        a :class:`~vpt_rl.model.PolicyConfig` or a dict of its fields.
    :return: the config and the ``.model`` file's temperature (``None`` for the other kinds).
    :raises ValueError: an unknown name (the message names it and lists the presets); :class:`CheckpointError`
        for a malformed ``.model`` file.
    """
    if isinstance(preset, PolicyConfig):
        return preset, None
    if isinstance(preset, dict):
        return PolicyConfig.from_kwargs(dict(preset)), None
    if isinstance(preset, (str, os.PathLike)):
        name = str(preset)
        if name in POLICY_PRESETS:
            return POLICY_PRESETS[name], None
        if os.path.isfile(name):
            net_kwargs, temperature = _parse_model_dict(read_model_file(name), name)
            try:
                return PolicyConfig.from_kwargs(dict(net_kwargs)), temperature
            except (ValueError, TypeError) as e:
                raise CheckpointError(f"{name!r}: {e}") from None
        raise ValueError(f"unknown policy preset {name!r}: neither a preset ({', '.join(sorted(POLICY_PRESETS))}) "
                         "nor an existing .model file")
    raise TypeError(f"preset must be a preset name, a .model path, a PolicyConfig or a dict, got {type(preset).__name__}")


def build_policy(model: Optional[PathLike] = None, weights: Optional[PathLike] = None, preset: Any = None,
                 temperature: Optional[float] = None, device: Any = "cpu", *, config: Any = None) -> PolicyNet:
    """Build a :class:`~vpt_rl.model.PolicyNet`: the one way the project makes a policy network.

    * ``model``: an official ``.model`` file (config and temperature), loaded with :func:`load_policy`;
      ``weights`` are then loaded strictly. Without ``weights``, the ``.weights`` beside the ``.model`` (same
      stem) is loaded, as ``label`` and ``train-bc`` do (:func:`weights_beside`); there is no silent random
      init: ask for one with ``preset=<the .model path>``.
    * ``preset``: instead of ``model``, anything :func:`policy_config` takes (preset name, ``.model`` path,
      ``PolicyConfig``, dict); the net is randomly initialised (official init) unless ``weights`` is given,
      which is read with ``torch.load(weights_only=True)`` and loaded strictly, mismatches named.

    :param temperature: overrides the pi-head temperature (default: the ``.model`` file's, else 1.0).
    :param device: where the network is put.
    :param config: the old name of ``preset`` (still accepted).
    :raises ValueError: both or neither of ``model`` and ``preset`` given, or an unknown preset.
    :raises CheckpointError: a file is missing, unsafe, malformed or does not match the network.
    """
    if config is not None:
        if preset is not None and preset != config:
            raise ValueError(f"config={config!r} is the old name of preset={preset!r}; give one of them")
        preset = config
    if model is not None and preset is not None:
        raise ValueError(f"give either model={str(model)!r} (a .model file) or preset={preset!r}, not both")
    if model is None and preset is None:
        raise ValueError("a policy needs model=<.model file> (with weights=<.weights>) or preset=<preset name>")
    if model is not None:
        net = load_policy(model, weights_beside(model) if weights is None else weights, device=device)
    else:
        cfg, file_temperature = policy_config(preset)
        if temperature is None:
            temperature = file_temperature
        net = PolicyNet(cfg, temperature=1.0 if temperature is None else float(temperature))
        if weights is not None:
            _load_into(net, weights, device)
        net = net.to(device)
    if temperature is not None and float(temperature) != net.temperature:
        net.temperature = _checked_temperature(temperature)
    return net


def weights_beside(model: PathLike) -> str:
    """The ``.weights`` file beside a ``.model`` file (same folder, same stem), which must exist.

    Used wherever a ``.model`` is given without its weights, so that a pretrained start never silently
    becomes a randomly initialised network.

    :raises CheckpointError: no such file; the message names both paths and how to ask for a random init.
    """
    weights = Path(model).expanduser().with_suffix(".weights")
    if not weights.is_file():
        raise CheckpointError(
            f"model {str(model)!r} was given without weights and there is no {str(weights)!r} beside it; "
            f"pass the weights explicitly (weights= / --weights), or ask for a randomly initialised net of that "
            f"architecture with preset={str(model)!r} (--preset)"
        )
    return str(weights)


def _checked_temperature(temperature: Any) -> float:
    # the same check PolicyNet.__init__ makes: a temperature divides the logits
    t = float(temperature)
    if not t > 0 or t == float("inf"):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    return t


def save_policy(net: PolicyNet, model_path: PathLike, weights_path: PathLike) -> None:
    """Write ``net`` as an official ``.model`` / ``.weights`` pair (atomic writes)."""
    if not isinstance(net, PolicyNet):
        raise TypeError(f"net must be a vpt_rl.model.PolicyNet, got {type(net).__name__}")
    _save_pair(net, model_path, weights_path)


def save_idm(net: IDMNet, model_path: PathLike, weights_path: PathLike) -> None:
    """Write ``net`` as an official ``.model`` / ``.weights`` pair (atomic writes)."""
    if not isinstance(net, IDMNet):
        raise TypeError(f"net must be a vpt_rl.model.IDMNet, got {type(net).__name__}")
    _save_pair(net, model_path, weights_path)


def _save_pair(net, model_path: PathLike, weights_path: PathLike) -> None:
    sd = {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}
    _atomic_write(Path(weights_path), lambda f: torch.save(sd, f))
    write_model_file(model_path, net.cfg.to_kwargs(), net.temperature)


def _atomic_write(path: Path, write) -> None:
    with atomic_output(path.expanduser()) as tmp:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())


# ----------------------------------------------------------------------------------------------------------
# released checkpoints
# ----------------------------------------------------------------------------------------------------------


def resolve_released(name: str, folder: PathLike) -> Tuple[str, str]:
    """Paths of a released checkpoint pair in ``folder`` (nothing is downloaded).

    :param name: one of :data:`RELEASED` (``foundation-model-1x``, ``foundation-model-2x``/``2x``,
        ``foundation-model-3x``, ``bc-*``, ``rl-*``, ``4x_idm``).
    :param folder: where the downloaded files are.
    :return: ``(model_path, weights_path)``. A ``<name>.model`` next to the weights is preferred over the
        shared model file of that width.
    :raises CheckpointError: unknown name, or files absent (the message gives the download URLs).
    """
    key = _ALIASES.get(name, name)
    if key not in RELEASED:
        raise CheckpointError(f"unknown released checkpoint {name!r}; expected one of {', '.join(RELEASED)}")
    folder = Path(folder).expanduser()
    model_file, weights_file = RELEASED[key]
    own_model = folder / f"{key}.model"
    model_path = own_model if own_model.is_file() else folder / model_file
    weights_path = folder / weights_file
    absent = [p for p in (model_path, weights_path) if not p.is_file()]
    if absent:
        urls = "\n".join(f"  {DOWNLOAD_URL.format(file=p.name)}  ->  {p}" for p in absent)
        raise CheckpointError(
            f"released checkpoint {key!r} not found in {str(folder)!r}. Download (vpt-rl never downloads):\n{urls}\n"
            f"(URL pattern: {DOWNLOAD_URL.format(file='<name>.model')} / .weights, from the "
            "openai/Video-Pre-Training README)"
        )
    return str(model_path), str(weights_path)
