"""Names that moved in the renovation are still importable from their old modules, as the same objects."""
import importlib

import pytest

from vpt_rl.actions import MOUSE_DEGREES_PER_COUNT
from vpt_rl.data.contractor import CAMERA_SCALER
from vpt_rl.envs.minelite.screens import DEG_PER_PIXEL

MOVED = [
    # (old module, name, new module)
    ("vpt_rl.train.common", "parse_args", "vpt_rl.train.args"),
    ("vpt_rl.train.common", "lr_at", "vpt_rl.train.runtime"),
    ("vpt_rl.train.common", "seed_everything", "vpt_rl.train.runtime"),
    ("vpt_rl.train.common", "dist_env", "vpt_rl.train.runtime"),
    ("vpt_rl.train.common", "prior_log_probs", "vpt_rl.train.prior"),
    ("vpt_rl.train.common", "init_head_from_prior", "vpt_rl.train.prior"),
    ("vpt_rl.train.common", "atomic_write_text", "vpt_rl.atomic"),
    ("vpt_rl.train.common", "atomic_torch_save", "vpt_rl.atomic"),
    ("vpt_rl.train.common", "write_video", "vpt_rl.data.video"),
    ("vpt_rl.train.common", "write_synthetic_segment", "vpt_rl.data.synthetic"),
    ("vpt_rl.train.label", "read_video_frames", "vpt_rl.data.video"),
    ("vpt_rl.evaluate", "MILESTONE_ORDER", "vpt_rl.envs.rewards"),
    ("vpt_rl.evaluate", "order_milestones", "vpt_rl.envs.rewards"),
    ("vpt_rl.data.contractor", "CAMERA_SCALER", None),
    ("vpt_rl.model", "POLICY_PRESETS", "vpt_rl.model_config"),
    ("vpt_rl.model", "MotionStem", "vpt_rl.motion_stem"),
    ("vpt_rl.model", "ImpalaCNN", "vpt_rl.layers"),
    ("vpt_rl.commands.record", "episode_prefix", "vpt_rl.data.record"),
    ("vpt_rl.data.recorder", "env_state", "vpt_rl.data.game_state"),
    ("vpt_rl.policies.sb3", "read_episodes_csv", "vpt_rl.policies.episodes_csv"),
    ("vpt_rl.policies.sb3", "VPTPPO", "vpt_rl.policies.sb3.ppo"),
    ("vpt_rl.policies.sb3", "VPTPolicy", "vpt_rl.policies.sb3.policy"),
    ("vpt_rl.policies.sb3", "finetune_sb3", "vpt_rl.policies.sb3.finetune"),
    ("vpt_rl.pipeline", "run_pipeline", "vpt_rl.pipeline.engine"),
    ("vpt_rl.pipeline", "PipelineConfig", "vpt_rl.pipeline.config"),
]


@pytest.mark.parametrize("old, name, new", MOVED, ids=[f"{o}.{n}" for o, n, _ in MOVED])
def test_moved_name_is_the_same_object_at_its_old_path(old, name, new):
    obj = getattr(importlib.import_module(old), name)
    if new is not None:
        assert obj is getattr(importlib.import_module(new), name)


def test_the_mouse_scale_has_one_value():
    assert CAMERA_SCALER == DEG_PER_PIXEL == MOUSE_DEGREES_PER_COUNT == 360 / 2400
