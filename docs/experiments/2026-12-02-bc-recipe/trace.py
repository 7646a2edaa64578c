import sys, numpy as np, torch
torch.set_num_threads(1)
from vpt_rl.evaluate import make_agent, make_eval_env
from vpt_rl.envs.minelite import world as W
from vpt_rl.actions import agent_to_env
model = sys.argv[1]; seed = int(sys.argv[2]); T = int(sys.argv[3]); every = int(sys.argv[4])
agent = make_agent(model, weights=model.replace('.model', '.weights'), seed=0)
env = make_eval_env("vpt_rl/MineLite-v0", T); obs, _ = env.reset(seed=seed); g = env.unwrapped
agent.start(1); first = True
for t in range(T):
    a = agent.act([obs], [first], [True])[0]; first = False
    ea = agent_to_env(a[0], a[1])
    keys = [k for k, v in ea.items() if k != 'camera' and np.asarray(v).item()]
    tgt = g.target_block(); tb = None if tgt is None else int(g.world.blocks[tuple(tgt)])
    if t % every == 0:
        print(t, f"pitch {g.player.pitch:6.1f} yaw {g.player.yaw:7.1f}", 'gui' if g.gui else '   ', 'tgt', tb, keys, np.round(np.asarray(ea['camera']).reshape(-1), 1))
    obs, r, term, trunc, info = env.step(a)
