"""vpt-rl: OpenAI's Video PreTraining (VPT) for everyday RL work.

Subpackages: :mod:`vpt_rl.model` (policy and IDM networks, weight-compatible with the released files),
:mod:`vpt_rl.actions` (the 8641 x 121 joint action space), :mod:`vpt_rl.checkpoint` (safe `.model` /
`.weights` I/O), :mod:`vpt_rl.envs` (MineLite, MineRL adapter, VPT wrappers), :mod:`vpt_rl.policies`
(Stable-Baselines3 and Sample Factory plug-ins), :mod:`vpt_rl.data` / :mod:`vpt_rl.train` (contractor data,
IDM labelling, behavioural cloning).
"""
import importlib.abc as _abc
import importlib.util as _util
import os as _os
import sys as _sys

__version__ = "0.1.0"


class _SourceTreeFinder(_abc.MetaPathFinder):
    """Resolves exactly ``vpt_rl.envs`` and ``vpt_rl.policies`` to the repository's ``envs/`` and ``policies/``.

    Those two folders sit beside ``vpt_rl/`` in the repository and are installed as its subpackages
    (setup.py's ``package_dir``). When ``vpt_rl`` is imported straight from a checkout (``python -m pytest``
    from the root puts the root first on ``sys.path``), this finder gives them the same names, from the same
    tree as this ``vpt_rl``; nothing else in the repository root becomes importable as ``vpt_rl.*``.
    """

    def __init__(self, dirs: dict):
        self.dirs = dirs

    def find_spec(self, fullname, path=None, target=None):
        folder = self.dirs.get(fullname)
        if folder is None:
            return None
        return _util.spec_from_file_location(fullname, _os.path.join(folder, "__init__.py"),
                                             submodule_search_locations=[folder])


_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "envs")) and _os.path.isfile(_os.path.join(_root, "setup.py")):
    _dirs = {f"{__name__}.{sub}": _os.path.join(_root, sub) for sub in ("envs", "policies")
             if _os.path.isfile(_os.path.join(_root, sub, "__init__.py"))}
    if _dirs and not any(isinstance(f, _SourceTreeFinder) and f.dirs == _dirs for f in _sys.meta_path):
        _sys.meta_path.insert(0, _SourceTreeFinder(_dirs))
