"""CleanRL-style command-line arguments: a dataclass whose fields, each followed by a string literal (its
help text), become ``--flags``; see :func:`parse_args` and the ``Args`` classes of ``vpt_rl.train.idm``.

The ``Args`` classes check their values when they are built (:meth:`RunArgs.validate` with :func:`check_ranges`),
so a bad value fails before any data is read or any step runs; :func:`parse_args` also checks that the input
paths exist (:func:`check_paths`). On the command line either is one ``PROG: error: ...`` line and exit code 2.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union, get_type_hints

import torch

from vpt_rl.train.runtime import check_device_name, check_precision, resolve_device


def _field_docs(cls) -> dict:
    """Map field name -> the string literal that follows it in the class body (CleanRL convention); fields
    inherited from a base class take the base's text unless the subclass declares them again."""
    docs = {}
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        docs.update(_own_field_docs(klass))
    return docs


def _own_field_docs(cls) -> dict:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, nxt in zip(body, body[1:] + [None]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant) \
                    and isinstance(nxt.value.value, str):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


@dataclasses.dataclass
class RunArgs:
    """The settings every training script shares; ``vpt_rl.train.idm.Args`` and ``vpt_rl.train.bc.Args`` extend
    it (a subclass may declare a field again to change its default or help text)."""

    num_workers: int = 0
    """data decode worker processes (0: in the training process)"""
    seed: int = 1
    """random seed"""
    device: str = "auto"
    """torch device: auto (cuda when there is a GPU, else cpu), cpu, cuda or cuda:N"""
    out_dir: str = dataclasses.field(default="runs/train", metadata={"aliases": ["out"]})
    """where the checkpoint, metrics.json and TensorBoard logs go"""
    name: Optional[str] = None
    """checkpoint file stem: OUT/NAME.model + OUT/NAME.weights (default: the out_dir folder's name)"""
    resume: bool = True
    """continue from OUT/train_state.pt when it exists"""
    progress: bool = True
    """show a tqdm progress bar"""

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Refuse values out of range (run when the object is built); subclasses add their own fields' checks.

        :raises ValueError: naming the field, its value and what is expected.
        """
        check_ranges(self, non_negative=("num_workers", "seed"))
        check_device_name(self.device)  # the spelling; whether the machine has that device is checked at the start


TRAINING_INPUTS = ("data", "val_data", "init_model", "init_weights")
"""the input fields of ``vpt_rl.train.idm.Args`` and ``vpt_rl.train.bc.Args``: ``parse_args(paths=...)`` checks
that they exist"""

# kind -> (test, what is expected); see check_ranges
_RANGES = {
    "count": (lambda v: v >= 1, "an integer >= 1"),
    "non_negative": (lambda v: v >= 0, ">= 0"),
    "positive": (lambda v: v > 0, "> 0"),
    "probability": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    "fraction": (lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
}


def check_ranges(args: Any, **kinds: Iterable[str]) -> None:
    """Raise ``ValueError`` for the first named field of ``args`` outside its range (``None`` passes: the
    default); ``kinds`` maps a range (``count``, ``non_negative``, ``positive``, ``probability``, ``fraction``)
    to field names, e.g. ``check_ranges(args, count=("seq_len", "total_steps"), probability=("mirror_aug",))``.
    NaN fails every range."""
    for kind, names in kinds.items():
        test, expected = _RANGES[kind]
        for name in names:
            value = getattr(args, name)
            if value is not None and not test(value):
                raise ValueError(f"{name} must be {expected}, got {value!r}")


def check_paths(name: str, paths: Union[None, str, Sequence[str]]) -> None:
    """Raise ``ValueError`` unless every path given for field ``name`` exists and a folder among them holds at
    least one ``.mp4`` (searched recursively), so that a mistyped path fails before any work starts."""
    for path in [paths] if isinstance(paths, str) else (paths or ()):
        p = Path(path)
        if not p.exists():
            raise ValueError(f"{name}: no such file or folder: {path!r}")
        if p.is_dir() and next(p.rglob("*.mp4"), None) is None:
            raise ValueError(f"{name}: no .mp4 video under the folder {path!r}")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` only where the help text does not already say what the default is and there
    is a default to show."""

    def _get_help_string(self, action):
        help_ = action.help or ""
        if "default" in help_ or action.default in (None, [], argparse.SUPPRESS):
            return help_
        return super()._get_help_string(action)


def _str2bool(v: str) -> bool:
    low = str(v).lower()
    if low in ("1", "true", "yes", "y", "on"):
        return True
    if low in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {v!r}")


def parse_args(cls, argv: Optional[Sequence[str]] = None, description: Optional[str] = None,
               prog: Optional[str] = None, paths: Sequence[str] = ()):
    """Parse ``argv`` into the dataclass ``cls``; each field becomes ``--field-name`` with its docstring.

    Booleans accept ``--flag`` / ``--no-flag`` / ``--flag true``; ``list[...]`` fields take several
    values (a field with ``metadata={"positional": True}`` takes them as positional arguments and as
    ``--name``); ``metadata={"aliases": ["other-name"]}`` adds ``--other-name`` for a field;
    ``Optional[X]`` accepts ``none``. Every command also gets ``--threads N``: torch's intra-op threads for
    this process (default: torch's own choice), set here.

    :param prog: the command as the usage line shows it, e.g. ``"vpt-rl train-idm"``.
    :param paths: fields naming inputs that must exist (:func:`check_paths`), checked here, before any work.
        A ``device`` field is checked against this machine too (:func:`~vpt_rl.train.runtime.resolve_device`), and
        a ``precision`` field against that device (fp16 needs CUDA).

    A value ``cls`` refuses (its ``ValueError``) or a missing input exits with one ``PROG: error: ...`` line
    and code 2.
    """
    hints = get_type_hints(cls)
    docs = _field_docs(cls)
    parser = argparse.ArgumentParser(prog=prog,
                                     description=(description or (cls.__doc__ or "").strip()).replace("%", "%%"),
                                     formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads for this process (0, the default: torch's own choice)")
    positional = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore
        flags = ["--" + f.name.replace("_", "-")] + ["--" + a for a in f.metadata.get("aliases", ())]
        help_ = docs.get(f.name, "").replace("%", "%%")  # argparse formats help strings with %
        origin = getattr(hint, "__origin__", None)
        args = getattr(hint, "__args__", ())
        optional = origin is Union and type(None) in args
        if optional:
            hint = next(a for a in args if a is not type(None))
            origin = getattr(hint, "__origin__", None)
            args = getattr(hint, "__args__", ())
        if hint is bool:
            parser.add_argument(*flags, dest=f.name, type=_str2bool, nargs="?", const=True, default=default,
                                help=help_)
            parser.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false",
                                help=argparse.SUPPRESS)
        elif origin in (list, tuple):
            elem = args[0] if args else str
            if f.metadata.get("positional"):
                parser.add_argument("_pos_" + f.name, metavar=f.name.upper(), type=elem, nargs="*", default=[],
                                    help=help_)
                parser.add_argument(*flags, dest=f.name, type=elem, nargs="*", action="extend", default=None,
                                    help="same as the positional " + f.name.upper())
                positional.append((f.name, default))
            else:
                parser.add_argument(*flags, dest=f.name, type=elem, nargs="*", default=default, help=help_)
        else:
            typ = hint if hint in (int, float, str) else str
            if optional:
                base = typ

                def typ(v, base=base):  # noqa: E306
                    return None if str(v).lower() == "none" else base(v)
            parser.add_argument(*flags, dest=f.name, type=typ, default=default, help=help_)
    ns = parser.parse_args(list(argv) if argv is not None else None)
    values = vars(ns)
    for name, default in positional:
        merged = list(values.pop("_pos_" + name)) + list(values.get(name) or [])
        values[name] = merged if merged else default
    threads = values.pop("threads")
    try:
        if threads < 0:
            raise ValueError(f"threads must be >= 1 (or 0: torch's own choice), got {threads}")
        args = cls(**values)
        for name in paths:
            check_paths(name, getattr(args, name))
        if isinstance(getattr(args, "device", None), str):  # a GPU this machine lacks: one line, not a traceback
            resolve_device(args.device)
            if isinstance(getattr(args, "precision", None), str):
                check_precision(args.precision, args.device)  # fp16 needs CUDA
    except ValueError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    if threads:
        torch.set_num_threads(threads)
    return args
