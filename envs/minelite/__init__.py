"""MineLite: an embedded, fast, deterministic Minecraft-like world with MineRL 1.0's spaces.

Modules: ``env`` (``MineLiteEnv``, registered as ``vpt_rl/MineLite-v0``, and its privileged-state API),
``world`` (block ids and terrain), ``items`` (item names, tools, recipes), ``inventory``, ``screens``
(GUI screens and crafting), ``render`` (numba raycaster, HUD, GUI). ``expert`` holds a scripted expert.

``MineLiteEnv`` is imported lazily so that ``world``/``items`` load without numba compiling anything.
"""

__all__ = ["MineLiteEnv"]


def __getattr__(name):
    if name == "MineLiteEnv":
        from vpt_rl.envs.minelite.env import MineLiteEnv

        return MineLiteEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
