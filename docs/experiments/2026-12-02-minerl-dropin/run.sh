#!/usr/bin/env bash
# OpenAI's agent.py + run_agent.py against MineLite's MineRL view, with only run_agent.py's HumanSurvival import
# changed. Run from the vpt-rl repository root; needs network access to the package registry (once) and ~2 GB.
set -euo pipefail
REPO=$(pwd)
WORK=${WORK:-/tmp/vpt-minerl-dropin}
mkdir -p "$WORK" && cd "$WORK"
# 1. the official code (openai/Video-Pre-Training), unmodified except for one import line in run_agent.py
[ -d official ] || git clone -q https://github.com/openai/Video-Pre-Training official
sed 's/^from minerl.herobraine.env_specs.human_survival_specs import HumanSurvival$/from vpt_rl.envs.minelite import HumanSurvival/' \
    official/run_agent.py > official/run_agent_minelite.py
diff official/run_agent.py official/run_agent_minelite.py || true
# 2. MineRL 1.0's Python side: old gym 0.23.1 and gym3 (no Java: the env is MineLite). The official
#    lib/actions.py imports minerl's item table at import time; a one-line stand-in module provides it.
python3 -m venv venv && . venv/bin/activate
pip install -q torch==2.13.0 && pip install -q "gym==0.23.1" gym3 "numpy<2" opencv-python-headless attrs \
    "gymnasium==0.29.1" numba av tqdm
mkdir -p stubs/minerl/herobraine/hero && touch stubs/minerl/__init__.py stubs/minerl/herobraine/__init__.py \
    stubs/minerl/herobraine/hero/__init__.py
echo 'MINERL_ITEM_MAP = {}' > stubs/minerl/herobraine/hero/mc.py
# 3. random weights of the 2x foundation model (agent.py always builds that network, whatever the .model says)
PYTHONPATH="$REPO" python -c "
from vpt_rl.checkpoint import build_policy, save_policy
save_policy(build_policy(preset='foundation-model-2x', temperature=2.0), 'rand2x.model', 'rand2x.weights')"
# 4. run the official agent for 20 steps (drive.py counts the steps and stops; run_agent.py loops forever)
cp "$REPO/docs/experiments/2026-12-02-minerl-dropin/drive.py" official/
cd official && PYTHONPATH="$REPO:$WORK/official:$WORK/stubs" OMP_NUM_THREADS=2 python drive.py ../rand2x.model ../rand2x.weights 20
