"""The fast-path switches: one frozen FastPaths per network, replaced (never mutated) by set_fast."""
import dataclasses

import pytest

from vpt_rl.cpu_kernels import BLOCK_DEFAULTS, FastPaths
from vpt_rl.model import IDMNet, PolicyNet


def test_set_fast_replaces_the_one_frozen_switch_object():
    net = PolicyNet("micro")
    assert net.fast == FastPaths(sdpa=True, fast_pool=True, winograd=False, micro_batch=8, prepack=True)
    old = net.fast
    net.set_fast(sdpa=False, micro_batch=3)
    assert net.fast == FastPaths(sdpa=False, fast_pool=True, winograd=False, micro_batch=3, prepack=True)
    assert old.sdpa and old.micro_batch == 8  # replaced, not mutated
    # the CNN and the transformer read the same object
    assert net.net.img_process.cnn.fast is net.fast and net.net.recurrent_layer.fast is net.fast
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.fast.sdpa = True
    with pytest.raises(ValueError, match="micro_batch"):
        net.set_fast(micro_batch=-1)
    assert net.fast.micro_batch == 3  # a refused call changes nothing


def test_idm_defaults_and_bool_coercion():
    idm = IDMNet("micro_idm")
    assert idm.fast == FastPaths(sdpa=True, fast_pool=True, winograd=True, micro_batch=1, prepack=False)
    idm.set_fast(sdpa=0, fast_pool=1, winograd=None)
    assert (idm.fast.sdpa, idm.fast.fast_pool, idm.fast.winograd) == (False, True, False)
    assert BLOCK_DEFAULTS == FastPaths()  # what a building block uses on its own
