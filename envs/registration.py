"""Gymnasium ids of vpt-rl, registered with string entry points (no heavy imports)."""
import gymnasium as gym

MINELITE_ID = "vpt_rl/MineLite-v0"
# MineRL 1.0 ids (vpt_rl.envs.minerl); making one imports MineRL, registering them does not.
MINERL_HUMAN_SURVIVAL_ID = "vpt_rl/MineRL-HumanSurvival-v0"
MINERL_BASALT_IDS = {
    task: f"vpt_rl/MineRL-Basalt{task}-v0"
    for task in ("FindCave", "MakeWaterfall", "CreateVillageAnimalPen", "BuildVillageHouse")
}


def _register(env_id: str, entry_point: str, **kwargs) -> None:
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=entry_point, **kwargs)


def register_envs() -> None:
    """Register every vpt-rl id; safe to call more than once."""
    _register(MINELITE_ID, "vpt_rl.envs.minelite.env:MineLiteEnv")
    # Step limits live in the MineRL adapter (truncation), not in a gymnasium TimeLimit.
    _register(MINERL_HUMAN_SURVIVAL_ID, "vpt_rl.envs.minerl:make_human_survival")
    for task, env_id in MINERL_BASALT_IDS.items():
        _register(env_id, "vpt_rl.envs.minerl:make_basalt", kwargs={"task": task})
