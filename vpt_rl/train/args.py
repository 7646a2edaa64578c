"""CleanRL-style command-line arguments: a dataclass whose fields, each followed by a string literal (its
help text), become ``--flags``; see :func:`parse_args` and the ``Args`` classes of ``vpt_rl.train.idm``.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
from typing import Optional, Sequence, Union, get_type_hints


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
    """torch device: auto, cpu, cuda, ..."""
    out_dir: str = dataclasses.field(default="runs/train", metadata={"aliases": ["out"]})
    """where the checkpoint, metrics.json and TensorBoard logs go"""
    name: Optional[str] = None
    """checkpoint file stem: OUT/NAME.model + OUT/NAME.weights (default: the out_dir folder's name)"""
    resume: bool = True
    """continue from OUT/train_state.pt when it exists"""
    progress: bool = True
    """show a tqdm progress bar"""


def _str2bool(v: str) -> bool:
    low = str(v).lower()
    if low in ("1", "true", "yes", "y", "on"):
        return True
    if low in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {v!r}")


def parse_args(cls, argv: Optional[Sequence[str]] = None, description: Optional[str] = None):
    """Parse ``argv`` into the dataclass ``cls``; each field becomes ``--field-name`` with its docstring.

    Booleans accept ``--flag`` / ``--no-flag`` / ``--flag true``; ``list[...]`` fields take several
    values (a field with ``metadata={"positional": True}`` takes them as positional arguments and as
    ``--name``); ``metadata={"aliases": ["other-name"]}`` adds ``--other-name`` for a field;
    ``Optional[X]`` accepts ``none``.
    """
    hints = get_type_hints(cls)
    docs = _field_docs(cls)
    parser = argparse.ArgumentParser(description=(description or (cls.__doc__ or "").strip()).replace("%", "%%"),
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
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
    return cls(**values)
