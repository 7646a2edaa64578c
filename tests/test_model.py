"""VPT policy network: parity with the official code (fixtures), memory semantics, config, sampling."""
import copy
import io
import math

import pytest
import torch

from vpt_rl.checkpoint import read_model_file
from vpt_rl.model import (
    POLICY_PRESETS,
    FanInLayer,
    PolicyConfig,
    PolicyNet,
    action_log_prob,
    clipped_causal_visibility,
    entropy,
    kl_divergence,
    sample_action,
    state_cat,
    state_detach,
    state_index,
    state_reset,
    state_to,
)

ATOL = 1e-4


@pytest.fixture(scope="module")
def fixture_policy(fixtures_dir):
    args = read_model_file(fixtures_dir / "policy.model")["model"]["args"]  # safe reader, plain data only
    cfg = PolicyConfig.from_kwargs(args["net"]["args"])
    net = PolicyNet(cfg, temperature=args["pi_head_opts"]["temperature"])
    net.load_state_dict(torch.load(fixtures_dir / "policy.weights", weights_only=True), strict=True)
    return net.eval()


@pytest.fixture(scope="module")
def expected(fixtures_dir):
    return torch.load(fixtures_dir / "policy_expected.pt", weights_only=True)


_RUNS = {}


def _run(net, img, first, chunk_len):
    """Feed frames ``chunk_len`` at a time, carrying memory; returns concatenated buttons, camera, vpred.
    Memoised per (inputs, chunk_len, attention path): several tests check the same run."""
    key = (id(net), img.data_ptr(), first.tolist() if isinstance(first, torch.Tensor) else first, chunk_len,
           net.fast.sdpa)
    key = repr(key)
    if key not in _RUNS:
        _RUNS[key] = _run_uncached(net, img, first, chunk_len)
    return _RUNS[key]


def _run_uncached(net, img, first, chunk_len):
    state = net.initial_state(img.shape[0])
    outs = []
    with torch.no_grad():
        for i in range(0, img.shape[1], chunk_len):
            logp, vpred, state = net(img[:, i:i + chunk_len], first[:, i:i + chunk_len], state)
            outs.append((logp["buttons"], logp["camera"], vpred))
    return tuple(torch.cat([o[k] for o in outs], dim=1) for k in range(3))


def _max_err(a, b):
    return (a - b).abs().max().item()


@pytest.mark.parametrize("sdpa", [True, False], ids=["fused_sdpa", "reference_attention"])
def test_step_mode_matches_official_fixture(fixture_policy, expected, sdpa):
    fixture_policy.set_fast(sdpa=sdpa)
    try:
        buttons, camera, vpred = _run(fixture_policy, expected["img"], expected["first"], 1)
    finally:
        fixture_policy.set_fast()
    assert buttons.shape == (2, 14, 8641) and camera.shape == (2, 14, 121) and vpred.shape == (2, 14)
    assert _max_err(buttons, expected["step"]["buttons"][:, :, 0]) < ATOL
    assert _max_err(camera, expected["step"]["camera"][:, :, 0]) < ATOL
    assert _max_err(vpred, expected["step"]["vpred"][..., 0]) < ATOL


def test_denormalized_value_matches_official_fixture(fixture_policy, expected):
    _, _, vpred = _run(fixture_policy, expected["img"], expected["first"], 1)
    value = fixture_policy.denormalize_value(vpred)
    assert _max_err(value, expected["step"]["value"][..., 0]) < ATOL
    # the fixture's normaliser is not the identity, so this checks the formula, not a pass-through
    assert _max_err(expected["step"]["value"], expected["step"]["vpred"]) > 1e-3


def test_chunk_mode_with_chunk_start_flags_matches_official_chunk(fixture_policy, expected):
    buttons, camera, _ = _run(fixture_policy, expected["img"], expected["chunk_first"], expected["chunk_len"])
    assert _max_err(buttons, expected["chunk"]["buttons"][:, :, 0]) < ATOL
    assert _max_err(camera, expected["chunk"]["camera"][:, :, 0]) < ATOL


@pytest.mark.parametrize("chunk_len", [1, 3, 8, 14])
def test_chunks_with_mid_chunk_episode_starts_equal_step_mode(fixture_policy, expected, chunk_len):
    # env 1 has an episode start at step 7, i.e. inside a chunk for every chunk_len except 1
    assert expected["first"][1, 7]
    buttons, camera, vpred = _run(fixture_policy, expected["img"], expected["first"], chunk_len)
    assert _max_err(buttons, expected["step"]["buttons"][:, :, 0]) < ATOL
    assert _max_err(camera, expected["step"]["camera"][:, :, 0]) < ATOL
    assert _max_err(vpred, expected["step"]["vpred"][..., 0]) < ATOL


def test_official_chunk_differs_from_step_so_the_mid_chunk_cut_is_tested(expected):
    # the official code ignores the step-7 flag inside a chunk: its outputs differ from step mode for env 1
    assert _max_err(expected["chunk"]["buttons"][1, 7:], expected["step"]["buttons"][1, 7:]) > 1e-3


def test_memory_wraps_around_beyond_maxlen(fixture_policy, expected):
    # micro config: maxlen 4; 14 steps go round the cache more than 3 times. Chunks longer than maxlen too.
    assert fixture_policy.cfg.maxlen == 4
    first = torch.zeros_like(expected["first"])
    first[:, 0] = True
    step = _run(fixture_policy, expected["img"], first, 1)
    for chunk_len in (5, 14):
        chunked = _run(fixture_policy, expected["img"], first, chunk_len)
        for a, b in zip(step, chunked):
            assert _max_err(a, b) < 1e-5


def test_clipped_causal_mask_hides_previous_episode(fixture_policy, expected):
    img = expected["img"][:1]
    fresh, _, _ = fixture_policy(img[:, 5:9], torch.tensor([[True, False, False, False]]),
                                 fixture_policy.initial_state(1))
    # same frames after 5 frames of another episode, episode start at the first of them
    first = torch.zeros(1, 9, dtype=torch.bool)
    first[0, 0] = first[0, 5] = True
    with torch.no_grad():
        logp, _, _ = fixture_policy(img[:, :9], first, fixture_policy.initial_state(1))
        logp_nocut, _, _ = fixture_policy(img[:, :9], first.clone().fill_(False), fixture_policy.initial_state(1))
    assert _max_err(logp["buttons"][:, 5:], fresh["buttons"]) < ATOL  # CNN batch sizes differ: float noise only
    # without the cut the memory of the previous frames does change the outputs
    assert _max_err(logp_nocut["buttons"][:, 5:], fresh["buttons"]) > 1e-3


def test_all_false_mask_means_empty_memory(fixture_policy, expected):
    img, first = expected["img"][:, :3], torch.zeros(2, 3, dtype=torch.bool)
    garbage = [(torch.zeros_like(m), torch.randn_like(k) * 10, torch.randn_like(v) * 10)
               for m, k, v in fixture_policy.initial_state(2)]
    with torch.no_grad():
        a, va, _ = fixture_policy(img, first, fixture_policy.initial_state(2))
        b, vb, _ = fixture_policy(img, first, garbage)
    assert _max_err(a["buttons"], b["buttons"]) == 0.0 and _max_err(va, vb) == 0.0


def test_visibility_mask_hand_computed():
    # maxlen 2, chunk of 3, row 0: cache [valid, invalid], flags [F, T, F]
    first = torch.tensor([[False, True, False]])
    mask = torch.tensor([[True, False]])
    visible, new_mask = clipped_causal_visibility(first, mask)
    # keys: c0 c1 x0 x1 x2; band: query i sees keys at distance 0..1
    want = torch.tensor([[
        [False, False, True, False, False],  # x0: c1 invalid, itself
        [False, False, False, True, False],  # x1: episode start cuts x0
        [False, False, False, True, True],  # x2: x1 and itself
    ]])
    assert torch.equal(visible, want)
    assert torch.equal(new_mask, torch.tensor([[True, True]]))  # x1, x2 remembered
    # an episode start at the last frame forgets everything older
    _, new_mask = clipped_causal_visibility(torch.tensor([[False, False, True]]), mask)
    assert torch.equal(new_mask, torch.tensor([[False, True]]))


def test_state_helpers_index_cat_reset(fixture_policy, expected):
    net = fixture_policy
    img, first = expected["img"][:, :4], torch.zeros(2, 4, dtype=torch.bool)
    with torch.no_grad():
        _, _, state = net(img, first, net.initial_state(2))
    rows = [state_index(state, 0), state_index(state, 1)]
    assert all(m.shape == (1, 4) for m, _, _ in rows[0])
    joined = state_cat(rows)
    for (m1, k1, v1), (m2, k2, v2) in zip(joined, state):
        assert torch.equal(m1, m2) and torch.equal(k1, k2) and torch.equal(v1, v2)
    assert state_detach(state)[0][1].requires_grad is False
    assert state_to(state, "cpu")[0][0].dtype == torch.bool
    reset = state_reset(state, torch.tensor([False, True]))
    assert reset[0][0][0].all() and not reset[0][0][1].any()
    assert torch.equal(reset[0][1][0], state[0][1][0]) and not reset[0][1][1].any()
    # a reset row behaves as a fresh memory, the other row keeps its memory
    nxt = expected["img"][:, 4:6]
    with torch.no_grad():
        a, _, _ = net(nxt, torch.zeros(2, 2, dtype=torch.bool), reset)
        fresh, _, _ = net(nxt, torch.zeros(2, 2, dtype=torch.bool), net.initial_state(2))
        kept, _, _ = net(nxt, torch.zeros(2, 2, dtype=torch.bool), state)
    assert _max_err(a["buttons"][1], fresh["buttons"][1]) < 1e-6
    assert _max_err(a["buttons"][0], kept["buttons"][0]) < 1e-6


def test_bad_inputs_raise_clear_errors(fixture_policy):
    net = fixture_policy
    state = net.initial_state(1)
    img = torch.zeros(1, 2, 128, 128, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="img must have shape"):
        net(torch.zeros(1, 2, 64, 64, 3, dtype=torch.uint8), torch.zeros(1, 2, dtype=torch.bool), state)
    with pytest.raises(TypeError, match="first must be a bool"):
        net(img, torch.zeros(1, 2, dtype=torch.long), state)
    with pytest.raises(ValueError, match="first must be a bool tensor of shape"):
        net(img, torch.zeros(1, 3, dtype=torch.bool), state)
    with pytest.raises(ValueError, match="state"):
        net(img, torch.zeros(1, 2, dtype=torch.bool), net.initial_state(2))


def test_config_rejects_unknown_keys_and_ignores_known_unused():
    kwargs = POLICY_PRESETS["foundation-model-1x"].to_kwargs()
    kwargs.update(diff_mlp_embedding=False, only_img_input=True, active_reward_monitors={"a": 1}, single_output=True)
    cfg = PolicyConfig.from_kwargs(kwargs)
    assert cfg == POLICY_PRESETS["foundation-model-1x"]
    with pytest.raises(ValueError, match="hidsze"):
        PolicyConfig.from_kwargs({**kwargs, "hidsze": 3})
    with pytest.raises(ValueError, match="recurrence_type"):
        PolicyConfig.from_kwargs({**kwargs, "recurrence_type": "lstm"})
    with pytest.raises(ValueError, match="divisible"):
        PolicyConfig(hidsize=100, attention_heads=3)
    assert POLICY_PRESETS["foundation-model-1x"].maxlen == 128 and POLICY_PRESETS["2x"].head_dim == 128


def test_official_init_rescales_rows_and_freezes_normalizer():
    torch.manual_seed(0)
    net = PolicyNet("micro")
    # firstconv of stack 0 has no norm: bias present and zeroed, rows at norm 1
    fc = net.net.img_process.cnn.stacks[0].firstconv
    assert fc.norm is None and torch.equal(fc.layer.bias, torch.zeros_like(fc.layer.bias))
    assert torch.allclose(fc.layer.weight.flatten(1).norm(dim=1), torch.ones(4))
    dense = net.net.img_process.cnn.dense
    assert dense.layer.bias is None and torch.allclose(dense.layer.weight.norm(dim=1), torch.full((256,), 1.4))
    blk = net.net.recurrent_layer.blocks[0]
    s = 2 ** -0.5 * 2 ** -0.5  # 2 blocks
    assert torch.allclose(blk.mlp1.layer.weight.norm(dim=1), torch.full((32,), s))
    attn = blk.r.orc_block
    assert torch.allclose(attn.q_layer.weight.norm(dim=1), torch.full((32,), 0.1))
    assert torch.allclose(attn.k_layer.weight.norm(dim=1), torch.full((32,), 0.2))
    assert torch.allclose(attn.v_layer.weight.norm(dim=1), torch.full((32,), math.sqrt(s)))
    block_conv = net.net.img_process.cnn.stacks[1].blocks[0].conv0.layer.weight
    assert torch.allclose(block_conv.flatten(1).norm(dim=1), torch.full((8,), 1.5 ** 0.25))
    normalizer = net.value_head.normalizer
    assert not any(p.requires_grad for p in normalizer.parameters())
    assert all(float(p.sum()) == 0.0 for p in normalizer.parameters())
    assert isinstance(fc, FanInLayer)


def test_update_value_normalizer_matches_hand_computed_ewma():
    net = PolicyNet("micro")
    x1, x2 = torch.tensor([1.0, 3.0]), torch.tensor([[10.0]])
    net.update_value_normalizer(x1)
    net.update_value_normalizer(x2)
    b = 0.99999
    rm = (1 - b) * 2.0 * b + (1 - b) * 10.0
    rmsq = (1 - b) * 5.0 * b + (1 - b) * 100.0
    debias = (1 - b) * b + (1 - b)
    n = net.value_head.normalizer
    assert n.running_mean.item() == pytest.approx(rm, rel=1e-4)
    assert n.running_mean_sq.item() == pytest.approx(rmsq, rel=1e-4)
    assert n.debiasing_term.item() == pytest.approx(debias, rel=1e-4)
    mean, var = rm / debias, rmsq / debias - (rm / debias) ** 2
    v = torch.tensor([0.5])
    assert net.denormalize_value(v).item() == pytest.approx(0.5 * math.sqrt(var) + mean, rel=1e-4)
    assert net.normalize_value(net.denormalize_value(v)).item() == pytest.approx(0.5, rel=1e-4)
    # fresh normaliser: mean 0, variance clamped to 1e-2
    assert PolicyNet("micro").denormalize_value(torch.tensor([2.0])).item() == pytest.approx(0.2, rel=1e-6)


def _toy_logp():
    lb = torch.log_softmax(torch.tensor([[[2.0, 0.0, -1.0, 0.5]]]), -1)
    lc = torch.log_softmax(torch.tensor([[[0.0, 1.0, 3.0]]]), -1)
    return {"buttons": lb, "camera": lc}


def test_sampling_deterministic_is_argmax_and_stochastic_follows_probabilities():
    logp = _toy_logp()
    b, c = sample_action(logp, deterministic=True)
    assert b.item() == 0 and c.item() == 2
    big = {k: v.expand(1, 20000, v.shape[-1]) for k, v in logp.items()}
    g = torch.Generator().manual_seed(0)
    b, c = sample_action(big, generator=g)
    freq = torch.bincount(b.flatten(), minlength=4).float() / b.numel()
    assert torch.allclose(freq, logp["buttons"].exp().flatten(), atol=0.015)
    b2, c2 = sample_action(big, generator=torch.Generator().manual_seed(0))
    assert torch.equal(b, b2) and torch.equal(c, c2)  # generator makes it reproducible


def test_log_prob_entropy_kl_hand_computed():
    logp = _toy_logp()
    lp = action_log_prob(logp, torch.tensor([[2]]), torch.tensor([[1]]))
    assert lp.item() == pytest.approx(logp["buttons"][0, 0, 2].item() + logp["camera"][0, 0, 1].item())
    pb, pc = logp["buttons"].exp().flatten(), logp["camera"].exp().flatten()
    h = -(pb * pb.log()).sum() - (pc * pc.log()).sum()
    assert entropy(logp).item() == pytest.approx(h.item(), rel=1e-5)
    assert kl_divergence(logp, logp).abs().item() < 1e-7
    uniform = {"buttons": torch.full((1, 1, 4), -math.log(4)), "camera": torch.full((1, 1, 3), -math.log(3))}
    # KL(p || uniform) = log n - H(p), per head
    assert kl_divergence(logp, uniform).item() == pytest.approx(math.log(4) + math.log(3) - h.item(), rel=1e-5)


def test_forward_is_differentiable_for_training():
    net = PolicyNet("micro")
    img = torch.randint(0, 255, (1, 3, 128, 128, 3), dtype=torch.uint8)
    first = torch.tensor([[True, False, False]])  # later frames attend to earlier ones: q gets a gradient
    logp, vpred, _ = net(img, first, net.initial_state(1))
    (logp["buttons"][..., 0].sum() + vpred.sum()).backward()
    assert net.net.recurrent_layer.blocks[0].r.orc_block.q_layer.weight.grad.abs().sum() > 0
    assert net.value_head.normalizer.running_mean.grad is None


def test_act_returns_sampled_action_and_denormalized_value(fixture_policy, expected):
    img, first = expected["img"][:, :1], expected["first"][:, :1]
    b, c, lp, value, state = fixture_policy.act(img, first, fixture_policy.initial_state(2), deterministic=True)
    assert b.shape == (2, 1) and c.shape == (2, 1)
    assert torch.equal(b[:, 0], expected["step"]["buttons"][:, 0, 0].argmax(-1))
    assert _max_err(value, expected["step"]["value"][:, :1, 0]) < ATOL
    want = expected["step"]["buttons"][:, 0, 0].max(-1).values + expected["step"]["camera"][:, 0, 0].max(-1).values
    assert _max_err(lp[:, 0], want) < ATOL


def test_opt_in_winograd_batch1_path_keeps_fixture_parity(fixture_policy, expected):
    # single-image steps take the NNPACK path; GroupNorm statistics stay on channels-last memory (parity)
    fixture_policy.set_fast(winograd=True)
    try:
        for row in (0, 1):
            out = _run_uncached(fixture_policy, expected["img"][row:row + 1], expected["first"][row:row + 1], 1)
            assert _max_err(out[0], expected["step"]["buttons"][row:row + 1, :, 0]) < ATOL
            assert _max_err(out[1], expected["step"]["camera"][row:row + 1, :, 0]) < ATOL
    finally:
        fixture_policy.set_fast()
    with pytest.raises(ValueError, match="micro_batch"):
        fixture_policy.set_fast(micro_batch=-1)


def test_act_with_bf16_autocast_stays_close(fixture_policy, expected):
    img, first = expected["img"][:, :2], expected["first"][:, :2]
    b32, c32, lp32, v32, _ = fixture_policy.act(img, first, fixture_policy.initial_state(2), deterministic=True)
    b16, c16, lp16, v16, st = fixture_policy.act(img, first, fixture_policy.initial_state(2), deterministic=True,
                                                 bf16=True)
    assert lp16.dtype == torch.float32 and st[0][1].dtype == torch.float32
    assert _max_err(lp16, lp32) < 0.5 and _max_err(v16, v32) < 0.5  # bf16 keeps ~3 significant digits


def test_default_fast_path_matches_official_order_within_1e5(fixture_policy, expected):
    # the inference defaults (fused SDPA, channels-last pooling, micro-batched CNN, prepacked batch-1 convs,
    # inference_mode)
    # against the official computation order under no_grad, on identical inputs: step mode (batch 2 and
    # batch 1) and one 14-frame chunk (28 frames > micro_batch, so the CNN really runs in micro-batches)
    img, first = expected["img"], expected["first"]

    def run(exact, imgs, firsts, chunk_len):
        if exact:
            fixture_policy.set_fast(sdpa=False, fast_pool=False, winograd=False, micro_batch=0, prepack=False)
        try:
            ctx = torch.no_grad() if exact else torch.inference_mode()
            with ctx:
                return _run_uncached(fixture_policy, imgs, firsts, chunk_len)
        finally:
            fixture_policy.set_fast()

    for imgs, firsts, chunk_len in ((img, first, 1), (img[:1], first[:1], 1), (img, first, img.shape[1])):
        ref = run(True, imgs, firsts, chunk_len)
        fast = run(False, imgs, firsts, chunk_len)
        assert ref[0].shape == fast[0].shape == (imgs.shape[0], imgs.shape[1], 8641)
        for a, b in zip(fast, ref):
            assert _max_err(a, b) < 1e-5
    fixture_policy.set_fast(micro_batch=3)
    try:
        with torch.inference_mode():
            mb3 = _run_uncached(fixture_policy, img, first, img.shape[1])
    finally:
        fixture_policy.set_fast()
    assert _max_err(mb3[0], ref[0]) < 1e-5 and _max_err(mb3[2], ref[2]) < 1e-5


def test_prepacked_batch1_convs_match_plain_convs_and_follow_weight_changes(fixture_policy, expected):
    img, first = expected["img"][:1, :4], expected["first"][:1, :4]
    conv = fixture_policy.net.img_process.cnn.stacks[1].blocks[0].conv0

    def run(prepack):
        fixture_policy.set_fast(prepack=prepack)
        with torch.inference_mode():
            return _run_uncached(fixture_policy, img, first, 1)

    try:
        plain = run(False)
        assert conv._packed.weight is None
        packed = run(True)
        assert conv._packed.weight is not None  # the batch-1 steps really took the prepacked path
        # the cached weight is an opaque oneDNN tensor: copies and pickles must still work, with an empty cache
        clone = copy.deepcopy(fixture_policy)
        assert clone.net.img_process.cnn.stacks[1].blocks[0].conv0._packed.weight is None
        buf = io.BytesIO()
        torch.save(fixture_policy, buf)
        with torch.inference_mode():
            cloned = _run_uncached(clone, img, first, 1)
        assert _max_err(cloned[0], packed[0]) == 0.0
        for a, b in zip(packed, plain):
            assert _max_err(a, b) < 1e-5  # bit-identical on the 1x shapes; oneDNN's kernel choice for 4-8 channels differs
        assert _max_err(packed[0], expected["step"]["buttons"][:1, :4, 0]) < ATOL
        # an in-place weight update (optimiser step, load_state_dict) must invalidate the cached weight
        with torch.no_grad():
            conv.layer.weight.mul_(-1.0)
        try:
            changed = run(True)
            changed_plain = run(False)
        finally:
            with torch.no_grad():
                conv.layer.weight.mul_(-1.0)
        assert _max_err(changed[0], packed[0]) > 1e-3
        assert _max_err(changed[0], changed_plain[0]) < 1e-5
    finally:
        fixture_policy.set_fast()
