"""``python -m vpt_rl.pipeline``: the same as ``vpt-rl pipeline``."""
import sys

from vpt_rl.pipeline.cli import main

sys.exit(main())
