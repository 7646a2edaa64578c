"""Gymnasium ids of vpt-rl, registered with string entry points (no heavy imports)."""
import gymnasium as gym

MINELITE_ID = "vpt_rl/MineLite-v0"


def _register(env_id: str, entry_point: str, **kwargs) -> None:
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=entry_point, **kwargs)


def register_envs() -> None:
    """Register every vpt-rl id; safe to call more than once."""
    _register(MINELITE_ID, "vpt_rl.envs.minelite.env:MineLiteEnv")
