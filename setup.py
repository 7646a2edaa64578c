"""Packaging for vpt-rl.

``envs/`` and ``policies/`` live at the repository root (as the design card asks) but are installed as the
subpackages ``vpt_rl.envs`` and ``vpt_rl.policies``; no generic top-level ``envs`` module is installed.
Install torch first (``pip install torch==2.13.0``): the range below is satisfied by it and never pulls a
CUDA build on a CPU machine.
"""
import os
import re

from setuptools import setup

# the version lives in vpt_rl/__init__.py (``vpt-rl --version`` reads it there); read, not imported: torch may
# not be installed yet when pip runs this file
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "vpt_rl", "__init__.py")) as f:
    VERSION = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def _subpackages(root: str, prefix: str) -> list:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
        if "__init__.py" in filenames:
            rel = os.path.relpath(dirpath, root)
            out.append(prefix if rel == "." else prefix + "." + rel.replace(os.sep, "."))
    return out


packages = _subpackages("vpt_rl", "vpt_rl") + _subpackages("envs", "vpt_rl.envs") + _subpackages("policies", "vpt_rl.policies")

core = [
    "torch>=2.3,<2.15",
    "numpy>=1.24",
    "gymnasium>=0.29.1",
    "opencv-python-headless>=4.8",
    "tqdm>=4.60",
    "av>=11",
    "numba>=0.58",
    "matplotlib>=3.7",
    "tensorboard>=2.14",
]
sb3 = ["stable-baselines3>=2.3"]
sf = ["sample-factory==2.1.1"]
dev = ["pytest>=7", "crafter>=1.8"]

setup(
    name="vpt-rl",
    version=VERSION,
    description="OpenAI's Video PreTraining (VPT) for everyday RL: exact networks, MineLite, IDM/BC, SB3 and Sample Factory plug-ins",
    python_requires=">=3.9",
    packages=packages,
    package_dir={"vpt_rl": "vpt_rl", "vpt_rl.envs": "envs", "vpt_rl.policies": "policies"},
    package_data={"vpt_rl": ["assets/*"], "vpt_rl.envs": ["minelite/assets/*"]},
    include_package_data=True,
    install_requires=core,
    extras_require={
        "sb3": sb3,
        "sf": sf,
        # MineRL 1.0 needs JDK 8 and downloads Minecraft at install time; never installed in CI.
        "minerl": ["minerl @ git+https://github.com/minerllabs/minerl@v1.0.2"],
        "dev": dev,
        "all": sb3 + sf + dev,
    },
    entry_points={"console_scripts": ["vpt-rl=vpt_rl.cli:main"]},
)
