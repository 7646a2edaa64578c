"""The released configs build (on the meta device, no memory) with exactly the official state-dict layout."""
import re

import pytest
import torch

from conftest import RELEASED_KEYS
from vpt_rl.model import IDM_PRESETS, POLICY_PRESETS, IDMConfig, IDMNet, PolicyConfig, PolicyNet


def _read_keys(path):
    """-> (config kwargs from the header, [(key, shape)])."""
    import json

    lines = path.read_text().splitlines()
    kwargs = json.loads(lines[0].split(": ", 1)[1])
    rows = []
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        key, shape, dtype = line.split("\t")
        rows.append((key, tuple(int(x) for x in re.findall(r"\d+", shape))))
    return kwargs, rows


CASES = [
    ("keys_1x.txt", "foundation-model-1x", False),
    ("keys_2x.txt", "foundation-model-2x", False),
    ("keys_3x.txt", "foundation-model-3x", False),
    ("keys_idm.txt", "4x_idm", True),
]


@pytest.mark.parametrize("fname,preset,is_idm", CASES, ids=[c[1] for c in CASES])
def test_released_config_has_official_keys_order_and_shapes(fname, preset, is_idm):

    kwargs, want = _read_keys(RELEASED_KEYS / fname)
    cfg = (IDMConfig if is_idm else PolicyConfig).from_kwargs(kwargs)
    assert cfg == (IDM_PRESETS if is_idm else POLICY_PRESETS)[preset]
    with torch.device("meta"):
        net = IDMNet(cfg) if is_idm else PolicyNet(cfg)
    got = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
    assert [k for k, _ in got] == [k for k, _ in want]  # names and order
    assert got == want  # shapes
    header = (RELEASED_KEYS / fname).read_text().splitlines()[1]
    total = int(re.search(r"(\d+) elements", header).group(1))
    assert sum(v.numel() for _, v in net.state_dict().items()) == total
    # the three EWMA statistics are the only non-trainable entries
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == total - (0 if is_idm else 3)
