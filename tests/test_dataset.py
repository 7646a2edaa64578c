"""Streaming (B, T) sequence dataset: alignment with the jsonl, lanes, sharding, workers, bad segments."""
import io
import os
import signal
import time
import warnings
from pathlib import Path

import pytest
import torch

from vpt_rl.actions import env_to_agent, env_to_factored
from vpt_rl.data.contractor import DataWarning, iter_segment, load_actions
from vpt_rl.data.dataset import SequenceDataset, StreamPositions, layout_key, make_loader, split_segments
from vpt_rl.data.synthetic import write_synthetic_segment


@pytest.fixture(scope="module")
def segments(tmp_path_factory):
    root = tmp_path_factory.mktemp("segs")
    return [write_synthetic_segment(root / f"seg{i}", 40 + 10 * i, seed=i) for i in range(4)]


def _non_null_steps(mp4):
    return [s for s in iter_segment(mp4)]


def test_one_lane_replays_segment_frames_and_joint_actions_in_order(segments):
    ds = SequenceDataset(segments[:1], batch_size=1, seq_len=16, skip_null=True, shuffle=False)
    batches = list(make_loader(ds))
    steps = _non_null_steps(segments[0])
    mask = torch.cat([b["mask"][0] for b in batches])
    assert int(mask.sum()) == len(steps)
    img = torch.cat([b["img"][0] for b in batches])[mask]
    buttons = torch.cat([b["buttons"][0] for b in batches])[mask]
    camera = torch.cat([b["camera"][0] for b in batches])[mask]
    idm_b = torch.cat([b["idm_buttons"][0] for b in batches])[mask]
    first = torch.cat([b["first"][0] for b in batches])[mask]
    for i, s in enumerate(steps):
        assert torch.equal(img[i], torch.from_numpy(s.frame))
        assert (int(buttons[i]), int(camera[i])) == env_to_agent(s.env_action)
        assert idm_b[i].tolist() == env_to_factored(s.env_action)[0].tolist()
    assert first.tolist() == [True] + [False] * (len(steps) - 1)


def test_pack_marks_segment_starts_and_keeps_all_frames(segments):
    ds = SequenceDataset(segments, batch_size=2, seq_len=8, skip_null=False, shuffle=True, seed=1)
    batches = list(make_loader(ds))
    assert all(b["img"].shape == (2, 8, 128, 128, 3) for b in batches)
    total = sum(int(b["mask"].sum()) for b in batches)
    assert total == sum(len(load_actions(s.with_suffix(".jsonl"))) for s in segments)
    assert sum(int(b["first"].sum()) for b in batches) == len(segments)
    # a chunk holds the end of one segment and the start of the next in the same row
    assert any(bool(b["first"][:, 1:].any()) for b in batches)


def test_unpacked_chunks_never_cross_a_segment(segments):
    ds = SequenceDataset(segments, batch_size=2, seq_len=16, skip_null=False, pack=False)
    for b in make_loader(ds):
        assert not bool(b["first"][:, 1:].any())
        valid = b["mask"]
        # padding only at the end of a row
        assert all(valid[r, : int(valid[r].sum())].all() for r in range(2))


def test_ranks_read_disjoint_shards_covering_every_segment(segments):
    seen = []
    for rank in range(2):
        ds = SequenceDataset(segments, batch_size=2, seq_len=8, rank=rank, world_size=2)
        lanes = ds.lane_segments(stream=rank, n_streams=2)
        seen += [s for lane in lanes for s in lane]
    assert sorted(seen) == sorted(segments)


def test_workers_give_same_frames_as_in_process(segments):
    def frames(num_workers):
        ds = SequenceDataset(segments, batch_size=1, seq_len=16, skip_null=True, shuffle=False)
        out = {}
        for b in make_loader(ds, num_workers=num_workers):
            out.setdefault(b["stream"], []).append(b["img"][0][b["mask"][0]])
        return {k: torch.cat(v) for k, v in out.items()}

    single = frames(0)
    multi = frames(2)
    assert set(multi) == {0, 1}
    assert sum(len(v) for v in multi.values()) == len(single[0])
    # stream 0 of 2 has lanes with segments 0 and 2, stream 1 segments 1 and 3; all frames identical
    n0 = len(_non_null_steps(segments[0]))
    assert torch.equal(multi[0][:n0], single[0][:n0])


def test_corrupt_segment_is_skipped_with_warning_and_rest_used(segments, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"garbage" * 100)
    bad.with_suffix(".jsonl").write_text('{"keyboard": {"keys": ["key.keyboard.w"]}}\n')
    ds = SequenceDataset([bad] + segments[:2], batch_size=1, seq_len=16, shuffle=False)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        n = sum(int(b["mask"].sum()) for b in make_loader(ds))
    assert any(issubclass(w.category, DataWarning) and "broken.mp4" in str(w.message) for w in rec)
    assert n == len(_non_null_steps(segments[0])) + len(_non_null_steps(segments[1]))


def test_finite_pass_reads_each_segment_once_even_with_more_lanes_than_segments(segments):
    ds = SequenceDataset(segments[:2], batch_size=3, seq_len=16, skip_null=False, epochs=1)
    n = sum(int(b["mask"].sum()) for b in make_loader(ds, num_workers=2))
    assert n == sum(len(load_actions(s.with_suffix(".jsonl"))) for s in segments[:2])
    forever = SequenceDataset(segments[:2], batch_size=3, seq_len=16, epochs=None)
    assert all(len(lane) == 1 for lane in forever.lane_segments(stream=1, n_streams=2))


def test_forever_mode_keeps_streaming_past_one_epoch(segments):
    ds = SequenceDataset(segments[:1], batch_size=1, seq_len=16, epochs=None)
    it = iter(make_loader(ds))
    n = sum(int(next(it)["mask"].sum()) for _ in range(10))
    assert n == 160  # never padded


def test_split_and_bad_arguments(segments):
    train, val = split_segments(segments, 0.25, seed=0)
    assert len(val) == 1 and sorted(train + val) == sorted(segments)
    with pytest.raises(ValueError, match="seq_len"):
        SequenceDataset(segments, batch_size=1, seq_len=0)
    with pytest.raises(ValueError, match="empty"):
        SequenceDataset([], batch_size=1, seq_len=4)


def test_min_confidence_drops_exactly_the_pseudo_labels_below_the_threshold(tmp_path):
    import json as _json

    from vpt_rl.data.synthetic import write_synthetic_segment

    mp4 = write_synthetic_segment(tmp_path / "seg", 12, seed=4, press_prob=0.5)
    jsonl = mp4.with_suffix(".jsonl")
    lines = [_json.loads(s) for s in jsonl.read_text().splitlines()]
    conf = [0.9, 0.2, 0.5, 0.49, 1.0, 0.0, 0.75, 0.5, 0.3, 0.99, 0.51, 0.6]
    for line, c in zip(lines, conf):
        line["idm_confidence"] = c
    jsonl.write_text("".join(_json.dumps(line) + "\n" for line in lines))

    def kept(threshold):
        ds = SequenceDataset([mp4], batch_size=1, seq_len=12, skip_null=False, pack=True, epochs=1,
                             shuffle=False, min_confidence=threshold)
        batch = next(iter(make_loader(ds)))
        return int(batch["mask"].sum()), batch["img"][0][batch["mask"][0]]

    n_all, img_all = kept(0.0)
    n_half, img_half = kept(0.5)
    assert n_all == 12 and n_half == sum(c >= 0.5 for c in conf) == 8
    keep = torch.tensor([c >= 0.5 for c in conf])
    assert len({bytes(f.numpy()) for f in img_all}) == 12  # every frame differs, so the check below is exact
    assert torch.equal(img_half, img_all[keep])  # exactly the frames at or above the threshold, in order
    with pytest.raises(ValueError, match="min_confidence"):
        SequenceDataset([mp4], batch_size=1, seq_len=4, min_confidence=1.5)


def test_max_segment_frames_keeps_exactly_the_first_frames_of_each_segment(tmp_path):
    from vpt_rl.data.synthetic import write_synthetic_segment

    mp4 = write_synthetic_segment(tmp_path / "seg", 12, seed=5, press_prob=0.5)

    def frames(limit):
        ds = SequenceDataset([mp4], batch_size=1, seq_len=12, skip_null=False, pack=True, epochs=1,
                             shuffle=False, max_segment_frames=limit)
        batch = next(iter(make_loader(ds)))
        return batch["img"][0][batch["mask"][0]], batch["first"][0]

    all_img, _ = frames(None)
    first5, first = frames(5)
    assert len(all_img) == 12 and len({bytes(f.numpy()) for f in all_img}) == 12
    assert torch.equal(first5, all_img[:5])  # the first 5 lines' frames, in order, and nothing after
    assert bool(first[0]) and not bool(first[1:5].any())
    assert torch.equal(frames(100)[0], all_img)  # a limit past the end reads the whole segment
    with pytest.raises(ValueError, match="max_segment_frames"):
        SequenceDataset([mp4], batch_size=1, seq_len=4, max_segment_frames=0)


@pytest.mark.parametrize("pack", [True, False])
def test_a_stream_restarted_from_a_saved_position_yields_the_batches_an_uninterrupted_one_would(segments, pack):
    # 2 lanes of 2 segments each, read for several epochs (reshuffled every epoch): a restart can land mid-segment,
    # at a segment end and in a later epoch
    kw = dict(batch_size=2, seq_len=16, skip_null=False, pack=pack, epochs=None, shuffle=True, seed=7)
    stream = iter(make_loader(SequenceDataset(segments, **kw)))
    full = [next(stream) for _ in range(24)]
    assert int(full[-1]["position"][:, 0].max()) >= 2  # the last batches are in the third epoch or later
    for k in (1, 5, 11, 18):
        positions = StreamPositions(layout_key(segments, 2, 1), seed=7)
        positions.update(full[k - 1])
        saved = torch.load(_round_trip(positions.state_dict()), weights_only=True)
        start = StreamPositions(layout_key(segments, 2, 1)).resume_from(saved)
        resumed = iter(make_loader(SequenceDataset(segments, start=start, **kw)))
        for want in full[k:k + 4]:
            got = next(resumed)
            for name in ("img", "mask", "idm_buttons", "camera_deg", "position"):
                assert torch.equal(got[name], want[name]), (k, name)


def test_saved_positions_of_another_layout_are_not_applied(segments):
    positions = StreamPositions(layout_key(segments, 2, 1), seed=7)
    positions.update(next(iter(make_loader(SequenceDataset(segments, batch_size=2, seq_len=8)))))
    saved = positions.state_dict()
    assert StreamPositions(layout_key(segments, 4, 1)).resume_from(saved) is None  # other batch size
    assert StreamPositions(layout_key(segments, 2, 2)).resume_from(saved) is None  # other worker count
    assert StreamPositions(layout_key(segments[:3], 2, 1)).resume_from(saved) is None  # other data
    assert StreamPositions(layout_key(segments, 2, 1)).resume_from(None) is None


def _round_trip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_decode_workers_ignore_the_ctrl_c_meant_for_their_trainer(segments, signum):
    # the terminal sends Ctrl-C to the whole process group (and timeout, Slurm or systemd send SIGTERM to all
    # of it): a worker that died of it failed the trainer's next fetch ("DataLoader worker exited
    # unexpectedly") while the trainer was saving its checkpoint
    ds = SequenceDataset(segments, batch_size=1, seq_len=8, skip_null=False, epochs=None)
    it = iter(make_loader(ds, num_workers=1))
    next(it)
    os.kill(it._workers[0].pid, signum)
    time.sleep(0.5)
    assert all(next(it)["mask"].any() for _ in range(6))
    assert it._workers[0].is_alive()
    del it


def test_layout_key_sees_through_path_spellings_and_changes_with_the_frame_filters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    relative = [Path("data") / "a.mp4", Path("data") / "b.mp4"]
    spelled = [Path("./data/../data/a.mp4"), tmp_path / "data" / "b.mp4"]
    assert layout_key(relative, 4, 1, seq_len=16) == layout_key(spelled, 4, 1, seq_len=16)
    # a step count means other frames under another filter: a saved position must not apply there
    assert layout_key(relative, 4, 1, seq_len=16) != layout_key(relative, 4, 1, seq_len=32)
    assert layout_key(relative, 4, 1, min_confidence=0.0) != layout_key(relative, 4, 1, min_confidence=0.5)
    assert layout_key(relative, 4, 1) != layout_key(relative, 8, 1) != layout_key(relative, 4, 2)
