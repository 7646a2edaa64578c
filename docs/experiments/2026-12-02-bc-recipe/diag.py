"""Roll a BC policy on a few held-out seeds; report what it does (attack when facing a log, pitch, GUI)."""
import sys, numpy as np, torch, collections
torch.set_num_threads(1)
from vpt_rl.evaluate import make_agent, make_eval_env
from vpt_rl.envs.minelite import world as W
from vpt_rl.actions import agent_to_env
model = sys.argv[1]; seeds = [int(s) for s in sys.argv[2].split(',')]; T = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
agent = make_agent(model, weights=model.replace('.model', '.weights'), seed=0)
for seed in seeds:
    env = make_eval_env("vpt_rl/MineLite-v0", T)
    obs, info = env.reset(seed=seed); g = env.unwrapped
    agent.start(1); first = True
    st = collections.Counter(); streaks = []; cur = 0; pitches = []
    for t in range(T):
        a = agent.act([obs], [first], [True])[0]; first = False
        ea = agent_to_env(a[0], a[1])
        tgt = g.target_block()
        facing = tgt is not None and g.world.blocks[tuple(tgt)] == W.LOG
        atk = int(np.asarray(ea['attack']).item())
        st['facing_log'] += facing; st['attack'] += atk; st['attack_facing'] += int(atk and facing)
        st['gui'] += g.gui is not None; st['fwd'] += int(np.asarray(ea['forward']).item())
        if facing and atk: cur += 1
        elif cur: streaks.append(cur); cur = 0
        pitches.append(g.player.pitch)
        obs, r, term, trunc, info = env.step(a)
        if term or trunc: break
    p = np.array(pitches)
    print(seed, dict(st), 'logs', g.inventory.count('oak_log'), 'up>40:', round(float((p < -40).mean()), 2), 'down>40:', round(float((p > 40).mean()), 2),
          'max streak', max(streaks or [0]), 'n streaks>=20', sum(s >= 20 for s in streaks), 'mean streak', round(float(np.mean(streaks or [0])), 1), flush=True)
