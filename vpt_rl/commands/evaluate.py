"""`vpt-rl evaluate`: milestone success rates and mean tech-tree return of an agent on MineLite.

    vpt-rl evaluate --agent expert --episodes 20 --max-ticks 2000
    vpt-rl evaluate --agent random --episodes 20
    vpt-rl evaluate --agent foundation.model --weights foundation.weights --episodes 32 --out eval.json

Prints a Markdown table row per agent; ``--out`` also writes the full result (per-episode records) as JSON.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from vpt_rl import evaluate as ev
from vpt_rl.atomic import atomic_write_json
from vpt_rl.train.runtime import PRECISIONS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vpt-rl evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--agent", required=True, help="'expert', 'random' or a policy .model file")
    p.add_argument("--weights", default=None, help="the .weights file of a policy agent")
    p.add_argument("--episodes", type=int, default=16, help="episodes (one seed each; default 16)")
    p.add_argument("--max-ticks", type=int, default=1000, help="ticks per episode (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="first episode seed (default 0)")
    p.add_argument("--batch", type=int, default=8, help="envs run at once through the policy (default 8)")
    p.add_argument("--env", default=ev.MINELITE_ID, help=f"gymnasium id (default {ev.MINELITE_ID})")
    p.add_argument("--epsilon", type=float, default=0.0, help="expert: random-action probability")
    p.add_argument("--deterministic", nargs="?", const="consistent", default=False,
                   choices=["consistent", "argmax"],
                   help="policy: no sampling; 'consistent' (the default of the flag) decodes each button group "
                        "by its marginal probability with a camera that agrees with it, 'argmax' is the "
                        "official per-head argmax")
    p.add_argument("--device", default="auto",
                   help="policy: torch device, auto (cuda when there is a GPU, else cpu), cpu, cuda or cuda:N "
                        "(default auto)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="policy: fp32, or bf16 / fp16 (GPU only) autocast of the forward pass (default fp32)")
    p.add_argument("--out", default=None, help="write the result JSON here")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``vpt-rl evaluate``."""
    args = build_parser().parse_args(argv)
    if args.agent.endswith(".model") and args.weights is None:
        print("vpt-rl evaluate: a policy agent needs --weights (the .weights file)", file=sys.stderr)
        return 2
    try:
        agent = ev.make_agent(args.agent, weights=args.weights, seed=args.seed, epsilon=args.epsilon,
                              deterministic=args.deterministic, device=args.device, precision=args.precision)
        res = ev.evaluate(agent, args.episodes, args.max_ticks, seed=args.seed, env_id=args.env,
                          batch_size=args.batch)
    except ValueError as e:
        print(f"vpt-rl evaluate: {e}", file=sys.stderr)
        return 2
    res["agent"] = args.agent
    print(ev.format_table({args.agent: res}))
    print(f"{res['env_steps']} env steps in {res['seconds']:.1f} s ({res.get('steps_per_s', 0):.0f} steps/s)")
    if args.out:
        atomic_write_json(args.out, res)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
