"""vpt-rl: OpenAI's Video PreTraining (VPT) for everyday RL work.

Subpackages: :mod:`vpt_rl.model` (policy and IDM networks, weight-compatible with the released files),
:mod:`vpt_rl.actions` (the 8641 x 121 joint action space), :mod:`vpt_rl.checkpoint` (safe `.model` /
`.weights` I/O), :mod:`vpt_rl.envs` (MineLite, MineRL adapter, VPT wrappers), :mod:`vpt_rl.policies`
(Stable-Baselines3 and Sample Factory plug-ins), :mod:`vpt_rl.data` / :mod:`vpt_rl.train` (contractor data,
IDM labelling, behavioural cloning).
"""
import os as _os

__version__ = "0.1.0"

# In a source checkout that is imported without installing (e.g. ``python -m pytest`` from the repo root
# puts the root first on sys.path), ``envs/`` and ``policies/`` sit beside this folder rather than in it.
# Make ``vpt_rl.envs`` / ``vpt_rl.policies`` resolve there too, exactly as setup.py's package_dir does.
_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "envs")) and _os.path.isfile(_os.path.join(_root, "setup.py")):
    for _sub in ("envs", "policies"):
        if _os.path.isfile(_os.path.join(_root, _sub, "__init__.py")):
            __path__.append(_root)  # type: ignore[name-defined]  # noqa: F821
            break
