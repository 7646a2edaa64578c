"""The clean-footage filter (issue 17): clean spans are cut from scores as computed by hand, every reader honours
them (no frame outside a clean span reaches label, the IDM or BC), a tiny filter trained on a tiny web-like set
separates clean from unclean frames, and bad input gives a named warning while the rest is used."""
import json
import signal
import warnings

import numpy as np
import pytest
import torch

import vpt_rl.train.label as label_mod
from vpt_rl.data.clean_spans import (
    SpansError,
    frame_scores,
    read_spans,
    scores_to_spans,
    smooth_scores,
    span_index,
    spans_mask,
    spans_path,
    write_spans,
)
from vpt_rl.data.contractor import DataWarning, iter_segment, load_actions
from vpt_rl.data.dataset import SequenceDataset, count_steps, layout_key
from vpt_rl.data.record import record_dataset
from vpt_rl.data.video import read_video_frames, write_video
from vpt_rl.data.weblike import read_sidecar, unclean_mask
from vpt_rl.interrupt import Interrupted
from vpt_rl.train import filter as filter_mod
from vpt_rl.train import train_filter as train_filter_mod
from vpt_rl.train.filter_model import build_filter, load_filter, save_filter, score_frames
from vpt_rl.train.label import label_videos

# ---------------------------------------------------------------------------------------------------
# Scores -> spans, by hand


def test_moving_average_matches_hand_values_at_the_edges_and_inside():
    s = smooth_scores(np.array([0.0, 0.0, 0.9, 0.0, 0.0, 0.0]), 3)
    np.testing.assert_allclose(s, [0.0, 0.3, 0.3, 0.3, 0.0, 0.0])
    np.testing.assert_allclose(smooth_scores(np.array([1.0, 0.0, 0.0]), 3), [0.5, 1 / 3, 0.0])
    np.testing.assert_allclose(smooth_scores(np.array([0.2, 0.7]), 1), [0.2, 0.7])


def test_spans_drop_isolated_spikes_grow_unclean_runs_and_drop_short_clean_runs():
    p = np.zeros(100)
    p[10] = 1.0  # one spike: smoothed over 9 frames it is 0.11 < 0.5, kept clean
    p[40:50] = 1.0  # a real unclean run: frames 40..49
    p[90:95] = 1.0  # near the end: the clean run 95..99 is too short
    spans = scores_to_spans(p, threshold=0.5, window=9, margin=2, min_span=20)
    # the smoothed run is 40..49 exactly (>= 0.5 where at least 5 of the 9 frames are 1), grown by 2 -> 38..51
    assert spans == [(0, 38), (52, 88)]
    assert scores_to_spans(p, window=1, margin=0, min_span=1) == [(0, 10), (11, 40), (50, 90), (95, 100)]
    assert scores_to_spans(np.ones(30)) == [] and scores_to_spans(np.zeros(30)) == [(0, 30)]


def test_frame_scores_count_both_classes():
    kept = np.array([1, 1, 1, 0, 0, 1], bool)
    truth = np.array([1, 1, 0, 0, 1, 1], bool)
    m = frame_scores(kept, truth)
    assert (m["precision"], m["recall"]) == (3 / 4, 3 / 4)
    assert (m["unclean_precision"], m["unclean_recall"]) == (1 / 2, 1 / 2)
    assert m["kept"] == 4 and m["clean_frames"] == 4 and m["unclean_frames"] == 2


def test_spans_file_round_trip_and_masks(tmp_path):
    video = tmp_path / "a.mp4"
    path = write_spans(video, [(0, 5), (8, 10)], 12, threshold=0.5)
    assert path == spans_path(video) == tmp_path / "a.spans.json"
    data = json.loads(path.read_text())
    assert data["kept_frames"] == 7 and data["filter"] == {"threshold": 0.5}
    assert read_spans(video) == [(0, 5), (8, 10)]
    assert read_spans(tmp_path / "b.mp4") is None
    assert spans_mask([(0, 5), (8, 10)], 12).tolist() == [True] * 5 + [False] * 3 + [True] * 2 + [False] * 2
    assert span_index([(0, 5), (8, 10)], 12).tolist() == [0] * 5 + [-1] * 3 + [1] * 2 + [-1] * 2
    assert span_index(None, 3).tolist() == [0, 0, 0]


@pytest.mark.parametrize("content, fault", [
    ("{not json", "unreadable"),
    ('{"version": 7, "n_frames": 4, "clean_spans": []}', "version 1"),
    ('{"version": 1, "n_frames": 4, "clean_spans": [[0, 9]]}', "within 0..4"),
    ('{"version": 1, "n_frames": 9, "clean_spans": [[4, 6], [0, 2]]}', "sorted"),
    ('{"version": 1, "n_frames": -1, "clean_spans": []}', "n_frames"),
])
def test_corrupt_spans_files_are_refused_naming_the_file(tmp_path, content, fault):
    spans_path(tmp_path / "a.mp4").write_text(content)
    with pytest.raises(SpansError, match=fault) as e:
        read_spans(tmp_path / "a.mp4")
    assert "a.spans.json" in str(e.value)


# ---------------------------------------------------------------------------------------------------
# Readers honour the spans


@pytest.fixture(scope="module")
def weblike(tmp_path_factory):
    """A tiny web-like recording: 4 episodes of 240 ticks, every one with unclean spans."""
    out = tmp_path_factory.mktemp("weblike")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record_dataset(out, 4, seed=300, max_ticks=240, unclean_rate=1.0, imitable=True, progress=False)
    return out


def _segment(folder, tmp_path, name="seg"):
    """A copy of the first segment of ``folder`` (mp4 + jsonl) in ``tmp_path``, to put spans beside."""
    mp4 = sorted(folder.glob("*.mp4"))[0]
    for suffix in (".mp4", ".jsonl"):
        (tmp_path / f"{name}{suffix}").write_bytes(mp4.with_suffix(suffix).read_bytes())
    return tmp_path / f"{name}.mp4"


def test_segment_reader_yields_only_frames_inside_clean_spans_with_their_span(weblike, tmp_path):
    seg = _segment(weblike, tmp_path)
    n = len(load_actions(seg.with_suffix(".jsonl")))
    write_spans(seg, [(5, 60), (100, 180)], n)
    steps = list(iter_segment(seg, skip_null=False))
    assert [s.index for s in steps] == list(range(5, 60)) + list(range(100, 180))
    assert [s.span for s in steps] == [0] * 55 + [1] * 80
    whole = list(iter_segment(seg, skip_null=False, spans=None))
    assert len(whole) == n
    np.testing.assert_array_equal(steps[0].frame, whole[5].frame)
    assert count_steps([seg]) == 135


def test_bc_batches_hold_no_frame_outside_a_span_and_restart_memory_at_each_span(weblike, tmp_path):
    seg = _segment(weblike, tmp_path)
    n = len(load_actions(seg.with_suffix(".jsonl")))
    write_spans(seg, [(0, 20), (150, 170)], n)
    ds = SequenceDataset([seg], batch_size=1, seq_len=8, skip_null=False, pack=True, shuffle=False)
    batches = list(ds)
    img = torch.cat([b["img"][0][b["mask"][0]] for b in batches])
    first = torch.cat([b["first"][0][b["mask"][0]] for b in batches])
    frames = read_video_frames(seg)
    assert len(img) == 40
    np.testing.assert_array_equal(img[:20].numpy(), frames[:20])
    np.testing.assert_array_equal(img[20:].numpy(), frames[150:170])
    assert torch.nonzero(first).flatten().tolist() == [0, 20]  # the memory restarts where footage was cut


def test_a_corrupt_spans_file_leaves_its_segment_out_with_a_warning_and_the_rest_is_used(weblike, tmp_path):
    bad, good = _segment(weblike, tmp_path, "bad"), _segment(weblike, tmp_path, "good")
    spans_path(bad).write_text('{"version": 1, "n_frames": 3')
    n = len(load_actions(good.with_suffix(".jsonl")))
    write_spans(good, [(0, 16)], n)
    ds = SequenceDataset([bad, good], batch_size=1, seq_len=16, skip_null=False, shuffle=False)
    with pytest.warns(DataWarning, match="bad.spans.json"):
        batches = list(ds)
    assert sum(int(b["mask"].sum()) for b in batches) == 16
    assert count_steps([bad, good]) == 16
    assert layout_key([good], 1, 1) != layout_key([_segment(weblike, tmp_path, "plain")], 1, 1)


def test_label_runs_the_idm_only_on_clean_spans_and_writes_filtered_null_lines(tmp_path, fixtures_dir, monkeypatch):
    rng = np.random.default_rng(0)
    write_video(tmp_path / "v.mp4", rng.integers(0, 256, size=(40, 128, 128, 3), dtype=np.uint8))
    write_spans(tmp_path / "v.mp4", [(3, 15), (22, 40)], 40)
    frames = read_video_frames(tmp_path / "v.mp4")
    seen = []
    real = label_mod.predict_video
    monkeypatch.setattr(label_mod, "predict_video",
                        lambda idm, f, *a, **k: seen.append(np.array(f)) or real(idm, f, *a, **k))
    kw = dict(batch_size=2, device="cpu", progress=False)
    out = label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", **kw)
    assert out.filtered_frames == 10 and "10 frame(s) outside clean spans" in out.summary()
    np.testing.assert_array_equal(np.concatenate(seen), np.concatenate([frames[3:15], frames[22:40]]))
    lines = [json.loads(s) for s in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert len(lines) == 40
    outside = [i for i, line in enumerate(lines) if line.get("filtered")]
    assert outside == [0, 1, 2] + list(range(15, 22))
    assert all(null for i, (_, null) in enumerate(load_actions(tmp_path / "v.jsonl")) if i in outside)
    assert list(iter_segment(tmp_path / "v.mp4", skip_null=False))[0].index == 3  # and BC reads none of them
    seen.clear()
    label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", **kw)
    assert seen == []  # same spans: skipped
    write_spans(tmp_path / "v.mp4", [(0, 40)], 40)
    label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", **kw)
    assert [len(f) for f in seen] == [40]  # new spans: labelled again
    spans_path(tmp_path / "v.mp4").write_text("[]")
    with pytest.warns(DataWarning, match="v.spans.json"):
        out = label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", **kw)
    assert [p.name for p, _ in out.refused] == ["v.mp4"]


# ---------------------------------------------------------------------------------------------------
# Training and applying a filter


def test_tiny_filter_trained_on_a_tiny_set_separates_clean_from_unclean(weblike, tmp_path):
    videos = sorted(weblike.glob("*.mp4"))
    args = train_filter_mod.Args(data=[str(v) for v in videos[:3]], val_data=[str(videos[3])], frames=480,
                                 width=8, batch_size=32, total_steps=150, lr=3e-3, eval_every=0, save_every=0,
                                 out_dir=str(tmp_path / "f"), progress=False, device="cpu", seed=0)
    path = train_filter_mod.train_filter(args)
    final = torch.load(path, weights_only=True)["info"]["final"]
    truth = unclean_mask(read_sidecar(videos[3]))
    assert 0.05 < truth.mean() < 0.6  # both classes are there
    p = score_frames(load_filter(path), read_video_frames(videos[3])[: len(truth)])
    balanced = 0.5 * ((p[truth] >= 0.5).mean() + (p[~truth] < 0.5).mean())
    assert balanced >= 0.8, balanced  # chance is 0.5
    assert final["frame_accuracy"] == pytest.approx(((p >= 0.5) == truth).mean())


def test_training_resumes_to_the_weights_of_an_uninterrupted_run(weblike, tmp_path):
    videos = [str(v) for v in sorted(weblike.glob("*.mp4"))[:2]]
    common = dict(data=videos, val_fraction=0.0, frames=64, width=4, batch_size=16, lr=3e-3, eval_every=0,
                  save_every=0, progress=False, device="cpu", seed=0)
    whole = train_filter_mod.train_filter(train_filter_mod.Args(total_steps=12, out_dir=str(tmp_path / "a"), **common))

    class StopAtStep5:  # the stop flag a Ctrl-C sets, raised before step 6
        signum = signal.SIGINT
        checks = 0

        def __bool__(self):
            self.checks += 1
            return self.checks > 5

    args = train_filter_mod.Args(total_steps=12, out_dir=str(tmp_path / "b"), **common)
    with pytest.raises(Interrupted, match="stopped at step 5"):
        train_filter_mod._train_filter(args, StopAtStep5())
    assert torch.load(tmp_path / "b" / "train_state.pt", weights_only=True)["step"] == 5
    resumed = train_filter_mod.train_filter(args)
    a, b = load_filter(whole).state_dict(), load_filter(resumed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_round_trip_gives_the_same_scores_and_foreign_files_are_refused(tmp_path):
    torch.manual_seed(0)
    filt = build_filter("cnn", width=4)
    frames = np.random.default_rng(0).integers(0, 256, (10, 128, 128, 3), dtype=np.uint8)
    save_filter(filt, tmp_path / "f.pt", {"note": "x"})
    loaded = load_filter(tmp_path / "f.pt")
    np.testing.assert_array_equal(score_frames(filt, frames, 3), score_frames(loaded, frames, 10))
    assert loaded.info == {"note": "x"}
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not a frame-filter checkpoint"):
        load_filter(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="backbone 'resnet'"):
        build_filter("resnet")


def test_vpt_backbone_is_a_frozen_encoder_with_a_linear_probe(tmp_path, fixtures_dir):
    filt = build_filter("vpt", vpt_model=fixtures_dir / "policy.model", vpt_weights=fixtures_dir / "policy.weights")
    trainable = [n for n, p in filt.named_parameters() if p.requires_grad]
    assert trainable == ["backbone.probe.weight", "backbone.probe.bias"]
    frames = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8))
    feats = filt.backbone.features(frames)
    np.testing.assert_allclose(feats.numpy(), filt.backbone.encoder.encode(frames[:, None]).squeeze(1).numpy())
    save_filter(filt, tmp_path / "probe.pt")
    assert not any(k.startswith("backbone.encoder") for k in torch.load(tmp_path / "probe.pt")["state_dict"])
    np.testing.assert_allclose(load_filter(tmp_path / "probe.pt")(frames).detach().numpy(),
                               filt(frames).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_filter_writes_spans_skips_done_videos_and_names_bad_input(tmp_path):
    torch.manual_seed(0)
    save_filter(build_filter("cnn", width=4), tmp_path / "f.pt")
    rng = np.random.default_rng(0)
    for name, n in (("a", 30), ("b", 25)):
        write_video(tmp_path / "v" / f"{name}.mp4", rng.integers(0, 256, (n, 128, 128, 3), dtype=np.uint8))
    (tmp_path / "v" / "empty.mp4").write_bytes(b"")
    kw = dict(device="cpu", progress=False, min_span=1, window=1)
    with pytest.warns(DataWarning, match="empty.mp4: no frames"):
        out = filter_mod.filter_videos([tmp_path / "v"], tmp_path / "f.pt", **kw)
    assert (out.scored, out.skipped, out.frames) == (2, 0, 55)
    assert [p.name for p, _ in out.refused] == ["empty.mp4"]
    p = score_frames(load_filter(tmp_path / "f.pt"), read_video_frames(tmp_path / "v" / "a.mp4"))
    assert read_spans(tmp_path / "v" / "a.mp4") == scores_to_spans(p, window=1, margin=2, min_span=1)
    assert out.kept_frames == sum(e - s for v in ("a", "b") for s, e in read_spans(tmp_path / "v" / f"{v}.mp4"))
    (tmp_path / "v" / "empty.mp4").unlink()
    spans_path(tmp_path / "v" / "b.mp4").write_text("garbage")
    with pytest.warns(DataWarning, match="b.spans.json"):
        again = filter_mod.filter_videos([tmp_path / "v"], tmp_path / "f.pt", **kw)
    assert (again.scored, again.skipped, again.frames, again.kept_frames) == (1, 1, 55, out.kept_frames)
    third = filter_mod.filter_videos([tmp_path / "v"], tmp_path / "f.pt", **{**kw, "threshold": 0.9})
    assert third.scored == 2  # other settings: scored again
    assert "kept" in third.summary() and "%" in third.summary()


def test_filter_command_refuses_bad_settings_and_a_missing_checkpoint(tmp_path, capsys):
    (tmp_path / "v").mkdir()
    write_video(tmp_path / "v" / "a.mp4", np.zeros((3, 128, 128, 3), np.uint8))
    with pytest.raises(SystemExit) as e:
        filter_mod.main([str(tmp_path / "v"), "--filter", str(tmp_path / "nope.pt")])
    assert e.value.code == 2 and "nope.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        filter_mod.main([str(tmp_path / "v"), "--filter", str(tmp_path / "v" / "a.mp4"), "--threshold", "1.5"])
    assert "threshold must be in (0, 1), got 1.5" in capsys.readouterr().err
    with pytest.raises(ValueError, match="a.mp4: not a readable filter checkpoint"):
        filter_mod.filter_videos([tmp_path / "v"], tmp_path / "v" / "a.mp4", device="cpu")
    with pytest.raises(ValueError, match="backbone vpt needs --vpt-model"):
        train_filter_mod.Args(data=["x"], backbone="vpt")


def test_label_priors_and_the_idm_motion_cache_read_only_clean_spans(weblike, tmp_path):
    from vpt_rl.train.bc import bc_label_counts
    from vpt_rl.train.idm import MotionCache, idm_label_counts

    seg = _segment(weblike, tmp_path)
    n = len(load_actions(seg.with_suffix(".jsonl")))
    whole_idm = idm_label_counts([seg])[0].sum(1)  # per button: every line counted once
    assert (whole_idm == n).all()
    write_spans(seg, [(10, 50), (60, 100)], n)
    assert (idm_label_counts([seg])[0].sum(1) == 80).all()
    inside = [a for i, a in enumerate(load_actions(seg.with_suffix(".jsonl"))) if 10 <= i < 50 or 60 <= i < 100]
    assert bc_label_counts([seg])[0].sum() <= sum(1 for _, null in inside if not null)
    cache = MotionCache([seg], max_frames=n)
    valid = cache.valid.numpy()
    allowed = np.zeros(n - 1, bool)
    allowed[10:49] = allowed[60:99] = True  # pair (t, t+1) with both frames in one span
    assert not (valid & ~allowed).any() and valid.any()


def test_removal_scores_count_each_kind_against_the_ground_truth():
    from vpt_rl.data.weblike import frame_kinds, removal_scores

    kinds = frame_kinds({"n_frames": 10, "unclean_spans": [[2, 4, "logo"], [6, 9, "pause"]]})
    assert kinds.tolist() == ["clean"] * 2 + ["logo"] * 2 + ["clean"] * 2 + ["pause"] * 3 + ["clean"]
    kept = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 1], bool)  # keeps half the logo, drops one clean frame
    m = removal_scores(kept, kinds)
    assert m["removed_by_kind"] == {"clean": 0.2, "logo": 0.5, "pause": 1.0}
    assert (m["precision"], m["recall"], m["unclean_recall"]) == (4 / 5, 4 / 5, 4 / 5)
