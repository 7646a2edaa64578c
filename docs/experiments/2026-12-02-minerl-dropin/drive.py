#!/usr/bin/env python
"""Runs OpenAI's run_agent.py (only its HumanSurvival import changed) against MineLite for N steps.

    python drive.py MODEL WEIGHTS N

run_agent.py loops forever; this counts the env steps from outside (by wrapping MineRLEnv.step), prints the
shapes of the first action the official agent sent, and exits after N steps.
"""
import sys

import numpy as np
import run_agent_minelite as run_agent

from vpt_rl.envs.minelite.minerl_view import MineRLEnv

N = int(sys.argv[3])
seen = {"steps": 0, "moved": 0}
original_step = MineRLEnv.step


def counting_step(self, action):
    seen["steps"] += 1
    seen["moved"] += int(any(np.any(np.asarray(v) != 0) for v in action.values()))
    if seen["steps"] == 1:
        shapes = {k: (np.asarray(v).shape, np.asarray(v).dtype.name) for k, v in action.items()}
        print("first action from the official agent:", shapes)
    out = original_step(self, action)
    if seen["steps"] >= N:
        print(f"ran {seen['steps']} steps of the official agent on MineLite; {seen['moved']} actions pressed or "
              f"turned something; pov {out[0]['pov'].shape}")
        sys.exit(0)
    return out


MineRLEnv.step = counting_step
run_agent.main(sys.argv[1], sys.argv[2])
