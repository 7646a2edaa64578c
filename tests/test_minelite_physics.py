"""MineLite movement: speeds relative to yaw, gravity, jumps, collisions, fall damage, sneaking at edges."""
import math

import numpy as np
import pytest

from vpt_rl.envs.minelite import world as W
from vpt_rl.envs.minelite.env import MineLiteEnv

GROUND = 10  # flat world: grass at y = 10, the player's feet at y = 11


@pytest.fixture()
def env():
    e = MineLiteEnv(world_size=(32, 32, 32), max_steps=None)
    e.reset(seed=0, options={"flat": True, "ground": GROUND, "yaw": 0.0})
    return e


def _walk(env, ticks, **keys):
    for _ in range(ticks):
        env.step(dict(keys))


def test_standing_player_rests_on_the_ground(env):
    _walk(env, 10)
    assert env.player.pos[1] == GROUND + 1 and env.player.on_ground


@pytest.mark.parametrize("keys, speed", [({"forward": 1}, 4.317), ({"forward": 1, "sprint": 1}, 5.612),
                                         ({"forward": 1, "sneak": 1}, 1.31), ({"back": 1, "sprint": 1}, 4.317)])
def test_walking_speeds_match_minecraft(env, keys, speed):
    z0 = env.player.pos[2]
    _walk(env, 20, **keys)  # one second
    dist = abs(env.player.pos[2] - z0)
    assert dist == pytest.approx(speed, abs=1e-6)


def test_movement_is_relative_to_yaw(env):
    env.player.yaw = 90.0  # facing -x
    p0 = env.player.pos.copy()
    _walk(env, 10, forward=1)
    d = env.player.pos - p0
    assert d[0] == pytest.approx(-10 * 4.317 / 20) and abs(d[2]) < 1e-9
    p0 = env.player.pos.copy()
    _walk(env, 10, right=1)  # right of -x is -z
    d = env.player.pos - p0
    assert d[2] == pytest.approx(-10 * 4.317 / 20) and abs(d[0]) < 1e-9
    p0 = env.player.pos.copy()
    _walk(env, 10, forward=1, left=1)  # diagonal: same speed, not faster
    assert np.linalg.norm((env.player.pos - p0)[[0, 2]]) == pytest.approx(10 * 4.317 / 20)


def _mc_fall_ticks(height):
    """Hand-rolled Minecraft free fall: ticks until the feet have dropped ``height`` blocks."""
    y, vy, t = 0.0, 0.0, 0
    while y > -height:
        y += vy
        vy = (vy - 0.08) * 0.98
        t += 1
    return t


def test_falling_follows_minecraft_gravity_and_hurts(env):
    env.player.pos[1] = GROUND + 1 + 6.0
    env.player.on_ground = False
    ticks = 0
    while not env.player.on_ground:
        env.step({})
        ticks += 1
        assert ticks < 100
    assert env.player.pos[1] == GROUND + 1
    assert ticks == _mc_fall_ticks(6.0)
    assert env.player.life == 20 - math.ceil(6.0 - 3.0)


def test_short_fall_does_no_damage(env):
    env.player.pos[1] = GROUND + 1 + 3.0
    _walk(env, 30)
    assert env.player.pos[1] == GROUND + 1 and env.player.life == 20


def test_jump_reaches_minecraft_apex(env):
    y0 = env.player.pos[1]
    env.step({"jump": 1})
    top = y0
    for _ in range(20):
        env.step({})
        top = max(top, env.player.pos[1])
    assert top - y0 == pytest.approx(1.2522, abs=2e-3)  # Minecraft's 1.2522 blocks
    assert env.player.pos[1] == y0


def test_cannot_walk_through_blocks(env):
    x, z = int(env.player.pos[0]), int(env.player.pos[2])
    env.world.blocks[:, GROUND + 1: GROUND + 3, z + 3] = W.STONE  # a 2-high wall ahead (+z)
    _walk(env, 40, forward=1, sprint=1)
    assert env.player.pos[2] == pytest.approx(z + 3 - 0.3, abs=1e-5)
    assert env.player.pos[2] < z + 3 - 0.3
    _walk(env, 20, forward=1, jump=1)  # two blocks are too high to jump
    _walk(env, 20)
    assert env.player.pos[1] == GROUND + 1 and env.player.pos[2] < z + 3 - 0.3


def test_jumping_climbs_exactly_one_block(env):
    z = int(env.player.pos[2])
    env.world.blocks[:, GROUND + 1, z + 2:] = W.DIRT  # a one-block step ahead
    _walk(env, 10, forward=1)
    assert env.player.pos[1] == GROUND + 1  # blocked by the step
    _walk(env, 20, forward=1, jump=1)
    _walk(env, 10, forward=1)
    assert env.player.pos[1] == GROUND + 2 and env.player.pos[2] > z + 2.3


def test_world_border_stops_the_player(env):
    _walk(env, 200, forward=1, sprint=1)
    assert env.player.pos[2] == pytest.approx(32 - 0.3, abs=1e-5)


def test_sneaking_does_not_walk_off_edges(env):
    z = int(env.player.pos[2])
    env.world.blocks[:, 1: GROUND + 1, z + 2:] = W.AIR  # a pit starting two blocks ahead
    _walk(env, 60, forward=1, sneak=1)
    assert env.player.pos[1] == GROUND + 1
    assert env.player.pos[2] < z + 2 + 0.3
    _walk(env, 30, forward=1)  # walking on: falls into the pit
    assert env.player.pos[1] < GROUND


def test_cannot_move_while_a_screen_is_open(env):
    env.step({"inventory": 1})
    p0 = env.player.pos.copy()
    yaw0 = env.player.yaw
    _walk(env, 10, forward=1, jump=1)
    env.step({"camera": np.array([5.0, 5.0], dtype=np.float32)})
    assert np.array_equal(env.player.pos, p0) and env.player.yaw == yaw0


def test_death_terminates_or_respawns():
    for respawn in (False, True):
        env = MineLiteEnv(world_size=(32, 48, 32), respawn=respawn)
        env.reset(seed=0, options={"flat": True, "ground": 5})
        env.inventory.add("dirt", 5)
        env.player.pos[1] = 5 + 1 + 30.0  # fall 30 blocks: 27 damage
        term = False
        for _ in range(80):
            obs, _, term, trunc, _ = env.step({})
            if term:
                break
        if respawn:
            assert not term and env.player.life == 20 and env.inventory_counts()["dirt"] == 0
            assert np.allclose(env.player.pos, env.world.spawn)
        else:
            assert term and not bool(obs["life_stats"]["is_alive"]) and float(obs["life_stats"]["life"]) == 0.0
