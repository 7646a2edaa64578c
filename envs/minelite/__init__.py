"""MineLite: an embedded, fast, deterministic Minecraft-like world with MineRL 1.0's spaces.

Modules: ``env`` (``MineLiteEnv``, registered as ``vpt_rl/MineLite-v0``, and its privileged-state API),
``world`` (block ids and terrain), ``items`` (item names, tools, recipes), ``inventory``, ``screens``
(GUI screens and crafting), ``render`` (numba raycaster), ``hud`` (HUD and GUI overlays). ``expert`` holds a
scripted expert. ``minerl_view`` gives MineRL 1.0's own interface: ``HumanSurvival(**kwargs).make()``.

Importing costs about 0.2 s; numba compiles the raycaster on the first render (cached on disk after that).
"""
from vpt_rl.envs.minelite.env import MineLiteEnv
from vpt_rl.envs.minelite.minerl_view import HumanSurvival

__all__ = ["HumanSurvival", "MineLiteEnv"]
