"""Deterministic decoding of the joint action: the consistent decoder against the per-head argmax."""
import numpy as np
import pytest
import torch

from vpt_rl.actions import BUTTON_GROUPS, BUTTONS_ALL, N_BUTTON_CLASSES, factored_to_joint, joint_to_factored
from vpt_rl.model import consistent_argmax, sample_action


def _class(pressed, camera_bins=(5, 5)):
    flags = np.zeros(20, np.uint8)
    for name in pressed:
        flags[BUTTONS_ALL.index(name)] = 1
    b, _ = factored_to_joint(flags, np.array(camera_bins))
    return int(b)


def test_attack_split_over_classes_wins_by_its_marginal_where_the_per_head_argmax_gives_null():
    pb = torch.full((N_BUTTON_CLASSES,), 1e-7)
    pb[0] = 0.20  # the null class
    for cls in (_class(["attack"]), _class(["attack"], (5, 7)), _class(["attack", "forward"])):
        pb[cls] = 0.18
    pc = torch.full((121,), 0.004)
    pc[60], pc[5 * 11 + 7] = 0.5, 0.1
    logp = {"buttons": (pb / pb.sum()).log(), "camera": (pc / pc.sum()).log()}
    b, c = sample_action(logp, deterministic=True)
    assert (int(b), int(c)) == (0, 60)  # official: the null action
    b, c = consistent_argmax(logp)
    assert (int(b), int(c)) == (_class(["attack"]), 60)  # attack 0.54, camera off 0.56, forward 0.18


def test_consistent_decoding_takes_each_groups_marginal_and_a_camera_that_agrees_with_it():
    gen = torch.Generator().manual_seed(0)
    logp = {"buttons": torch.log_softmax(3 * torch.randn(64, N_BUTTON_CLASSES, generator=gen), -1),
            "camera": torch.log_softmax(2 * torch.randn(64, 121, generator=gen), -1)}
    logp["buttons"][:8] = torch.log_softmax(torch.randn(8, N_BUTTON_CLASSES, generator=gen), -1)  # flat rows
    b, c = consistent_argmax(logp)
    pb = logp["buttons"].exp().numpy()
    # brute force: the marginal of every group option from the factored form of every class
    flags, _ = joint_to_factored(np.arange(N_BUTTON_CLASSES - 1), np.full(N_BUTTON_CLASSES - 1, 60))
    on = np.array([joint_to_factored(k, 61)[1].tolist() != [5, 5] for k in range(N_BUTTON_CLASSES - 1)])
    got_flags, _ = joint_to_factored(b.numpy(), c.numpy())
    for row in range(64):
        for name, options in BUTTON_GROUPS:
            if name == "camera":
                marg = [pb[row, :-1][~on].sum(), pb[row, :-1][on].sum()]
                want = int(np.argmax(marg))
                assert (int(c[row]) != 60) == bool(want), row  # the camera agrees with the meta-action
                continue
            marg = [pb[row, :-1][~flags[:, [BUTTONS_ALL.index(o) for o in options[1:]]].any(1)].sum()]
            marg += [pb[row, :-1][flags[:, BUTTONS_ALL.index(o)] == 1].sum() for o in options[1:]]
            want = int(np.argmax(marg))
            got = [BUTTONS_ALL.index(o) for o in options[1:] if got_flags[row, BUTTONS_ALL.index(o)]]
            assert got == ([] if want == 0 else [BUTTONS_ALL.index(options[want])]), (row, name)
        if int(c[row]) != 60:  # the best camera pair other than "no move"
            cam = logp["camera"][row].clone()
            cam[60] = -np.inf
            assert int(c[row]) == int(cam.argmax())


def test_inventory_class_is_chosen_only_with_most_of_the_mass():
    pb = torch.full((2, N_BUTTON_CLASSES), 1e-7)
    pb[0, 8640], pb[0, 0] = 0.6, 0.4
    pb[1, 8640], pb[1, 0] = 0.45, 0.55
    pc = torch.full((2, 121), 1.0)
    pc[:, 3] = 5.0
    b, c = consistent_argmax({"buttons": (pb / pb.sum(-1, keepdim=True)).log(),
                              "camera": (pc / pc.sum(-1, keepdim=True)).log()})
    assert b.tolist() == [8640, 0] and c.tolist() == [60, 60]


def test_policy_agent_deterministic_flag_selects_the_decoder(fixtures_dir):
    from vpt_rl.evaluate import PolicyAgent

    agent = PolicyAgent(str(fixtures_dir / "policy.model"), str(fixtures_dir / "policy.weights"), deterministic=True)
    assert agent.deterministic == "consistent"
    assert PolicyAgent(str(fixtures_dir / "policy.model"), str(fixtures_dir / "policy.weights"),
                       deterministic="argmax").deterministic == "argmax"
    with pytest.raises(ValueError, match="deterministic"):
        PolicyAgent(str(fixtures_dir / "policy.model"), str(fixtures_dir / "policy.weights"), deterministic="max")
