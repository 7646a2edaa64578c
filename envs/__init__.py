"""Gymnasium environments and wrappers for VPT (imported as ``vpt_rl.envs``).

Importing this package registers the environment ids with string entry points, so it never imports
MineRL (which is optional and needs Java).
"""
from vpt_rl.envs.registration import register_envs

register_envs()
