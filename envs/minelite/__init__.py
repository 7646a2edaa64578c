"""MineLite: an embedded, fast, deterministic Minecraft-like world with MineRL 1.0's spaces.

Modules: ``env`` (``MineLiteEnv``, registered as ``vpt_rl/MineLite-v0``, and its privileged-state API),
``world`` (block ids and terrain), ``items`` (item names, tools, recipes), ``inventory``, ``screens``
(GUI screens and crafting), ``render`` (numba raycaster), ``hud`` (HUD and GUI overlays). ``expert`` holds a
scripted expert.

Importing costs about 0.2 s; numba compiles the raycaster on the first render (cached on disk after that).
"""
from vpt_rl.envs.minelite.env import MineLiteEnv

__all__ = ["MineLiteEnv"]
