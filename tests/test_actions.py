"""vpt_rl.actions against the official fixtures, hand-computed mu-law values and the documented quirks."""
import json
import math

import numpy as np
import pytest

from vpt_rl import actions as A


@pytest.fixture(scope="module")
def cases(fixtures_dir):
    with open(fixtures_dir / "actions.json") as f:
        return json.load(f)


def _mu_law_centre(b):
    """Hand formula of the bin centre: e = 2b - 10, v = e / 10, x = sign(v) ((1 + 10)^|v| - 1) / 10 * 10."""
    v = (2 * b - 10) / 10
    return math.copysign(1.0, v) * (11 ** abs(v) - 1) / 10 * 10 if v else 0.0


def _threshold(k):
    """Degrees where the encoded value hits the half-way point (2k + 1) between bins k and k + 1 (k >= 5)."""
    e = (2 * k + 1) - 10  # encoded value, 1, 3, 5, 7, 9
    v = e / 10
    return (11 ** v - 1) / 10 * 10


# ---------------------------------------------------------------------------------------------- constants


def test_constants_match_spec():
    assert A.N_BUTTON_CLASSES == 8641 and A.N_CAMERA_CLASSES == 121 and A.N_CAMERA_BINS == 11
    assert A.NULL_BUTTONS == 0 and A.NULL_CAMERA == 60 and A.INVENTORY_BUTTONS == 8640
    assert len(A.BUTTONS_ALL) == 20 and len(A.ENV_ACTION_KEYS) == 24
    assert list(A.ENV_ACTION_KEYS) == sorted(A.ENV_ACTION_KEYS)
    assert set(A.ENV_ACTION_KEYS) - set(A.BUTTONS_ALL) == {"ESC", "pickItem", "swapHands", "camera"}


def test_buttons_order_matches_fixture(cases):
    assert list(A.BUTTONS_ALL) == cases["buttons_order"]
    assert cases["n_buttons"] == A.N_BUTTON_CLASSES and cases["null_buttons_idx"] == A.NULL_BUTTONS


def test_noop_action_has_all_keys_and_is_fresh():
    a, b = A.noop_action(), A.noop_action()
    assert list(a) == list(A.ENV_ACTION_KEYS)
    assert all(a[k] == 0 for k in A.ENV_ACTION_KEYS if k != "camera")
    assert a["camera"].dtype == np.float32 and a["camera"].tolist() == [0.0, 0.0]
    a["camera"][0] = 5
    assert b["camera"][0] == 0


def test_action_space_is_multidiscrete_8641_121():
    space = A.action_space()
    assert space.nvec.tolist() == [8641, 121]
    assert space.contains(np.array([8640, 120]))


# ---------------------------------------------------------------------------------------------- camera


def test_bin_centres_match_hand_formula_and_spec():
    centres = A.camera_bin_centres()
    expected = [_mu_law_centre(b) for b in range(11)]
    np.testing.assert_allclose(centres, expected, rtol=0, atol=1e-12)
    spec = [-10, -5.80948, -3.21537, -1.60950, -0.61539, 0, 0.61539, 1.60950, 3.21537, 5.80948, 10]
    np.testing.assert_allclose(centres, spec, atol=1e-5)
    assert centres[5] == 0.0


def test_bin_centres_discretize_to_themselves():
    np.testing.assert_array_equal(A.discretize_camera(A.camera_bin_centres()), np.arange(11))


@pytest.mark.parametrize("k", [5, 6, 7, 8, 9])
def test_decision_thresholds(k):
    t = _threshold(k)
    assert abs(t - [0.2709, 1.0531, 2.3166, 4.3576, 7.6547][k - 5]) < 1e-4
    eps = 1e-9
    assert A.discretize_camera(t - eps) == k and A.discretize_camera(t + eps) == k + 1
    # mirror image on the negative side
    assert A.discretize_camera(-t + eps) == 10 - k and A.discretize_camera(-t - eps) == 10 - k - 1


def test_camera_clips_beyond_maxval():
    np.testing.assert_array_equal(A.discretize_camera([-180.0, -10.0, 10.0, 37.5, 180.0]), [0, 0, 10, 10, 10])


def test_round_half_to_even_at_exact_half():
    # The mu-law part maps only 0 to an exact half-way point in practice, so check the rounding rule on the
    # encoded value directly: numpy round sends 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 (Python's round agrees).
    assert np.round(np.array([0.5, 1.5, 2.5])).tolist() == [0.0, 2.0, 2.0]
    assert A.discretize_camera(0.0) == 5 and A.discretize_camera(-0.0) == 5


def test_undiscretize_rejects_out_of_range_bins():
    with pytest.raises(ValueError, match="11"):
        A.undiscretize_camera([5, 11])
    with pytest.raises(ValueError, match=r"\[0, 10\]"):
        A.undiscretize_camera(-1)


def test_discretize_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        A.discretize_camera([0.0, float("nan")])


# ---------------------------------------------------------------------------------------------- fixtures


def test_env_to_agent_matches_all_official_cases(cases):
    assert len(cases["env_to_agent"]) == 300
    for case in cases["env_to_agent"]:
        env_action = case["env_action"]
        assert A.env_to_agent(env_action) == (case["buttons_idx"], case["camera_idx"]), case
        assert A.discretize_camera(env_action["camera"]).tolist() == case["camera_bins"], case
        _, bins = A.env_to_factored(env_action)
        assert bins.tolist() == case["camera_bins"]


def test_env_to_agent_batch_matches_all_official_cases(cases):
    env_actions = [c["env_action"] for c in cases["env_to_agent"]]
    b, c = A.env_to_agent_batch(env_actions)
    assert b.dtype == np.int64 and c.dtype == np.int64 and b.shape == (300,)
    np.testing.assert_array_equal(b, [x["buttons_idx"] for x in cases["env_to_agent"]])
    np.testing.assert_array_equal(c, [x["camera_idx"] for x in cases["env_to_agent"]])
    columns = {k: np.array([a[k] for a in env_actions]) for k in env_actions[0]}
    b2, c2 = A.env_to_agent_batch(columns)
    np.testing.assert_array_equal(b2, b)
    np.testing.assert_array_equal(c2, c)


def _assert_env_action_equal(got, expected):
    for key, value in expected.items():
        if key == "camera":
            assert got["camera"].dtype == np.float32 and got["camera"].shape == (2,)
            np.testing.assert_allclose(got["camera"], value, rtol=0, atol=1e-6)
        else:
            assert got[key] == value, (key, got[key], value)


def test_agent_to_env_matches_all_official_cases(cases):
    assert len(cases["agent_to_env"]) == 202
    for case in cases["agent_to_env"]:
        got = A.agent_to_env(case["buttons_idx"], case["camera_idx"])
        assert list(got) == list(A.ENV_ACTION_KEYS)
        assert got["ESC"] == got["pickItem"] == got["swapHands"] == 0
        _assert_env_action_equal(got, case["env_action"])


def test_agent_to_env_batch_matches_all_official_cases(cases):
    b = np.array([c["buttons_idx"] for c in cases["agent_to_env"]])
    c = np.array([c["camera_idx"] for c in cases["agent_to_env"]])
    listed = A.agent_to_env_batch(b, c)
    cols = A.agent_to_env_batch(b, c, columns=True)
    for i, case in enumerate(cases["agent_to_env"]):
        _assert_env_action_equal(listed[i], case["env_action"])
        _assert_env_action_equal({k: (v[i] if k == "camera" else int(v[i])) for k, v in cols.items()}, case["env_action"])
    assert cols["camera"].shape == (202, 2) and cols["ESC"].tolist() == [0] * 202


# ---------------------------------------------------------------------------------------------- quirks


def _act(**pressed):
    a = {k: 0 for k in A.BUTTONS_ALL}
    a["camera"] = pressed.pop("camera", [0.0, 0.0])
    a.update({k.replace("_", "."): v for k, v in pressed.items()})
    return a


def test_null_action_maps_to_zero_and_sixty():
    assert A.env_to_agent(_act()) == (0, 60)
    assert A.env_to_agent({}) == (0, 60)  # missing keys count as 0, as in the official env2policy


def test_joint_index_formula_by_hand():
    # hotbar.3 (3), back (2), right (2), sneak (2), use, drop, attack, jump, camera
    expected = ((((((((3 * 3 + 2) * 3 + 2) * 3 + 2) * 2 + 1) * 2 + 1) * 2 + 1) * 2 + 1) * 2 + 1)
    a = _act(hotbar_3=1, back=1, right=1, sneak=1, use=1, drop=1, attack=1, jump=1, camera=[1.0, -1.0])
    assert A.env_to_agent(a) == (expected, 6 * 11 + 4)
    assert A.env_to_agent(_act(jump=1)) == (2, 60)
    assert A.env_to_agent(_act(hotbar_9=1)) == (9 * 864, 60)


def test_later_button_in_group_wins():
    assert A.env_to_agent(_act(hotbar_1=1, hotbar_3=1)) == A.env_to_agent(_act(hotbar_3=1))
    assert A.env_to_agent(_act(sprint=1, sneak=1)) == A.env_to_agent(_act(sneak=1))


def test_opposite_directions_cancel():
    assert A.env_to_agent(_act(forward=1, back=1)) == (0, 60)
    assert A.env_to_agent(_act(left=1, right=1, attack=1)) == A.env_to_agent(_act(attack=1))


def test_inventory_overrides_buttons_and_nulls_camera_env_to_agent():
    assert A.env_to_agent(_act(inventory=1, forward=1, attack=1, camera=[7.0, -3.0])) == (8640, 60)


def test_inventory_keeps_sampled_camera_agent_to_env():
    a = A.agent_to_env(8640, 0)
    assert a["inventory"] == 1 and sum(a[k] for k in A.BUTTONS_ALL) == 1
    np.testing.assert_allclose(a["camera"], [-10.0, -10.0])


def test_camera_meta_off_forces_null_camera():
    # joint index 0 has camera meta "none": the camera class is ignored
    assert A.agent_to_env(0, 0)["camera"].tolist() == [0.0, 0.0]
    assert A.agent_to_env(1, 0)["camera"].tolist() == [-10.0, -10.0]


def test_unmodelled_keys_are_ignored_env_to_agent():
    a = _act(attack=1)
    a.update(ESC=1, pickItem=1, swapHands=1)
    assert A.env_to_agent(a) == A.env_to_agent(_act(attack=1))


def test_numpy_values_accepted():
    a = {"forward": np.array([1]), "attack": np.int64(1), "camera": np.array([[0.0, 3.0]], dtype=np.float32)}
    assert A.env_to_agent(a) == A.env_to_agent({"forward": 1, "attack": 1, "camera": [0.0, 3.0]})
    out = A.agent_to_env(np.array([293]), np.int32(63))
    assert out["forward"] == 1


# ---------------------------------------------------------------------------------------------- round trips


def test_round_trip_every_button_class_agent_env_agent():
    """agent -> env -> agent is the identity for every class whose camera is consistent with its meta."""
    rng = np.random.default_rng(0)
    buttons = np.arange(A.N_BUTTON_CLASSES)
    non_null = rng.integers(0, 120, size=buttons.size)
    non_null[non_null >= 60] += 1  # any camera class but 60
    camera = np.where(A._JOINT_CAMERA_ON & (buttons != A.INVENTORY_BUTTONS), non_null, 60)
    env_actions = A.agent_to_env_batch(buttons, camera)
    b2, c2 = A.env_to_agent_batch(env_actions)
    np.testing.assert_array_equal(b2, buttons)
    expected_cam = np.where(buttons == A.INVENTORY_BUTTONS, 60, camera)
    np.testing.assert_array_equal(c2, expected_cam)


def test_round_trip_camera_classes():
    for c in range(121):
        assert A.env_to_agent(A.agent_to_env(1, c)) == ((1 if c != 60 else 0), c)


def test_tables_are_a_bijection_over_combinations():
    rows = {tuple(r) + (bool(on),) for r, on in zip(A._JOINT_BUTTONS[:-1].tolist(), A._JOINT_CAMERA_ON[:-1])}
    assert len(rows) == 8640


def test_scalar_and_batch_agree_on_random_actions():
    rng = np.random.default_rng(1)
    n = 2000
    acts = []
    for _ in range(n):
        a = {k: int(rng.random() < 0.15) for k in A.BUTTONS_ALL}
        # camera mostly near thresholds and bin centres, some far out
        a["camera"] = (rng.standard_normal(2) * rng.choice([0.5, 3.0, 20.0])).tolist()
        acts.append(a)
    b, c = A.env_to_agent_batch(acts)
    assert [A.env_to_agent(a) for a in acts] == list(zip(b.tolist(), c.tolist()))
    bi = rng.integers(0, 8641, n)
    ci = rng.integers(0, 121, n)
    listed = A.agent_to_env_batch(bi, ci)
    for i in range(0, n, 7):
        single = A.agent_to_env(int(bi[i]), int(ci[i]))
        assert {k: v for k, v in single.items() if k != "camera"} == {k: v for k, v in listed[i].items() if k != "camera"}
        np.testing.assert_array_equal(single["camera"], listed[i]["camera"])


def test_joint_and_factored_helpers_agree_with_to_factored_rules():
    f_buttons, f_bins = A.joint_to_factored(np.array([0, 1, 8640]), np.array([0, 0, 0]))
    assert f_buttons.shape == (3, 20) and f_bins.tolist() == [[5, 5], [0, 0], [0, 0]]
    assert f_buttons[2].tolist() == [int(k == "inventory") for k in A.BUTTONS_ALL]
    jb, jc = A.factored_to_joint(f_buttons, f_bins)
    assert jb.tolist() == [0, 1, 8640] and jc.tolist() == [60, 0, 60]


def test_factored_to_env_keeps_every_pressed_button():
    buttons = np.zeros(20, dtype=np.int64)
    buttons[[A.BUTTONS_ALL.index("forward"), A.BUTTONS_ALL.index("back"), A.BUTTONS_ALL.index("inventory")]] = 1
    out = A.factored_to_env(buttons, [0, 10])
    assert out["forward"] == out["back"] == out["inventory"] == 1 and out["attack"] == 0
    assert out["ESC"] == out["pickItem"] == out["swapHands"] == 0 and set(out) == set(A.ENV_ACTION_KEYS)
    np.testing.assert_allclose(out["camera"], [-10.0, 10.0])
    batch = A.factored_to_env(np.stack([buttons, np.zeros(20, int)]), [[0, 10], [5, 6]])
    assert batch["forward"].tolist() == [1, 0]
    np.testing.assert_allclose(batch["camera"], [[-10, 10], [0, 0.6153943]], atol=1e-6)


# ---------------------------------------------------------------------------------------------- errors


def test_unknown_key_error_names_the_key():
    with pytest.raises(ValueError, match="'jumpp'"):
        A.env_to_agent({"jumpp": 1})
    with pytest.raises(ValueError, match="'craft'"):
        A.env_to_agent_batch([{"attack": 1}, {"craft": 1}])


def test_nan_camera_error():
    with pytest.raises(ValueError, match="nan"):
        A.env_to_agent({"camera": [float("nan"), 0.0]})
    with pytest.raises(ValueError, match="finite"):
        A.env_to_agent_batch({"camera": np.array([[0.0, np.inf]])})


def test_bad_camera_shape_and_button_value():
    with pytest.raises(ValueError, match="2 values"):
        A.env_to_agent({"camera": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="'attack'.*got 2"):
        A.env_to_agent({"attack": 2})


@pytest.mark.parametrize("convert", [A.env_to_agent, A.env_to_factored, lambda a: A.env_to_agent_batch([a])])
def test_none_values_are_refused_not_read_as_no_move_or_no_press(convert):
    with pytest.raises(ValueError, match=r"'camera' must hold 2 values \[pitch, yaw\] in degrees, got None"):
        convert({"camera": None})
    with pytest.raises(ValueError, match="'jump' must be 0 or 1, got None"):
        convert({"jump": None})


@pytest.mark.parametrize("b,c,match", [(8641, 0, "8641"), (-1, 0, "-1"), (0, 121, "121"), (0, -5, "-5")])
def test_out_of_range_indices_name_the_value(b, c, match):
    with pytest.raises(ValueError, match=match):
        A.agent_to_env(b, c)
    with pytest.raises(ValueError, match=match):
        A.agent_to_env_batch(np.array([0, b]), np.array([60, c]))


def test_non_integer_index_is_type_error():
    with pytest.raises(TypeError, match="1.5"):
        A.agent_to_env(1.5, 60)
    with pytest.raises(TypeError, match="float"):
        A.agent_to_env_batch(np.array([1.0]), np.array([60]))


def test_per_step_camera_path_equals_numpy_at_bin_edges():
    edges = np.array(A._BIN_EDGES)
    xs = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf), [0.0, -0.0, 10, -10, 1e9]])
    for x in xs:
        got = A.env_to_agent({"camera": [float(x), 0.0]})[1] // 11
        assert got == int(A.discretize_camera(x)), x


def test_module_docstring_example_runs():
    import doctest

    assert doctest.testmod(A, raise_on_error=False).failed == 0


def test_factored_to_env_matches_official_idm_fixture(fixtures_dir):
    torch = pytest.importorskip("torch")
    ref = torch.load(fixtures_dir / "idm_expected.pt", weights_only=True)
    out = A.factored_to_env(ref["argmax"]["buttons"].numpy(), ref["argmax"]["camera"].numpy())
    assert set(ref["env_action"]) <= set(out)
    for key, value in ref["env_action"].items():
        value = np.asarray(value, dtype=np.float64)
        np.testing.assert_allclose(np.asarray(out[key], dtype=np.float64), value, rtol=0, atol=1e-5, err_msg=key)
