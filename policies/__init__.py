"""RL plug-ins for VPT (imported as ``vpt_rl.policies``): ``vpt_rl.policies.sb3`` (Stable-Baselines3) and
``vpt_rl.policies.sample_factory`` (Sample Factory 2.x). Import the one you use; each needs its extra."""
