"""`vpt-rl label` split over processes: torchrun ranks (gloo, 2 CPU processes) and SLURM array tasks each take a
disjoint shard of the sorted video list; together they write exactly the one-process labels, and resume."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from vpt_rl.data.contractor import DataWarning
from vpt_rl.data.video import write_video
from vpt_rl.train.label import (
    LabelledVideos,
    _remove_stale_label_temporaries,
    label_videos,
    parse_shard,
    rank_device,
    resolve_shard,
    slurm_array_shard,
)

from conftest import REPO

LENGTHS = [12, 9, 20, 10, 5]  # 5 videos over 2 ranks: shards of 3 and 2


def _videos(folder, lengths, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_video(folder / f"v{i}.mp4", rng.integers(0, 256, size=(n, 128, 128, 3), dtype=np.uint8))
            for i, n in enumerate(lengths)]


def _cli(args, nproc, extra_env=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra_env or {}),
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"):
        if k not in (extra_env or {}):
            env.pop(k, None)
    launcher = [] if nproc == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    res = subprocess.run([sys.executable, *launcher, "-m", "vpt_rl.train.label", *args], env=env,
                         capture_output=True, text=True, timeout=300)
    return res


def test_two_torchrun_ranks_label_each_video_once_and_match_one_process(tmp_path, fixtures_dir):
    videos = _videos(tmp_path / "videos", LENGTHS)
    common = ["--idm-model", str(fixtures_dir / "idm.model"), "--batch-size", "2", "--device", "auto", "--no-progress"]
    one = _cli([str(tmp_path / "videos"), "--out-dir", str(tmp_path / "one"), *common], nproc=1)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _cli([str(tmp_path / "videos"), "--out-dir", str(tmp_path / "two"), *common], nproc=2)
    assert two.returncode == 0, two.stderr[-3000:]
    # one summary (rank 0) for both ranks
    assert two.stdout.count("labelled 5 video(s), skipped 0 already labelled (2 shards)") == 1, two.stdout
    for v in videos:
        a, b = (tmp_path / "one" / v.name).with_suffix(".jsonl"), (tmp_path / "two" / v.name).with_suffix(".jsonl")
        assert b.read_bytes() == a.read_bytes() and a.stat().st_size > 0
    markers = {json.loads(p.read_text())["video"]: json.loads(p.read_text())["n_frames"]
               for p in (tmp_path / "two").glob("*.label.json")}
    assert markers == {str(v.resolve()): n for v, n in zip(videos, LENGTHS)}  # each video once, whole
    # resume: a rerun with the same shards skips everything; a lost marker is redone by its own rank
    (tmp_path / "two" / "v3.label.json").unlink()
    again = _cli([str(tmp_path / "videos"), "--out-dir", str(tmp_path / "two"), *common], nproc=2)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "labelled 1 video(s), skipped 4 already labelled (2 shards)" in again.stdout, again.stdout
    assert (tmp_path / "two" / "v3.jsonl").read_bytes() == (tmp_path / "one" / "v3.jsonl").read_bytes()


def test_explicit_shards_cover_the_list_and_a_rerun_with_other_shards_skips(tmp_path, fixtures_dir):
    _videos(tmp_path, LENGTHS[:4])
    kw = dict(batch_size=2, device="cpu", progress=False)
    idm = fixtures_dir / "idm.model"
    parts = [label_videos([tmp_path], idm, shard=(i, 3), **kw) for i in range(3)]
    assert [sorted(p.name for p in part) for part in parts] == [["v0.jsonl", "v3.jsonl"], ["v1.jsonl"], ["v2.jsonl"]]
    merged = parts[0].merge(parts[1:])
    assert (merged.labelled, merged.skipped, merged.shards) == (4, 0, 3)
    assert merged == sorted(tmp_path / f"v{i}.jsonl" for i in range(4))
    again = label_videos([tmp_path], idm, shard=(0, 2), **kw)  # another split: all already labelled
    assert (again.labelled, again.skipped) == (0, 2)
    with pytest.raises(ValueError, match=r"shard must be \(index, count\)"):
        label_videos([tmp_path], idm, shard=(2, 2), **kw)


def test_refusals_of_all_shards_reach_the_summary(tmp_path, fixtures_dir):
    _videos(tmp_path, [6, 6])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        write_video(tmp_path / "v2.mp4", np.zeros((6, 128, 128, 3), np.uint8), fps=30)
        parts = [label_videos([tmp_path], fixtures_dir / "idm.model", shard=(i, 2), batch_size=2, device="cpu",
                              progress=False) for i in range(2)]
    merged = parts[1].merge(parts[:1])
    assert (merged.labelled, len(merged.refused), merged.shards) == (2, 1, 2)
    assert merged.summary() == "labelled 2 video(s), skipped 0 already labelled (2 shards), refused 1: v2.mp4 (30 fps, not 20)"


def test_stale_temporaries_of_other_shards_are_left_alone(tmp_path):
    mine, theirs = tmp_path / "v0.jsonl", tmp_path / "v1.jsonl"
    stale = [tmp_path / ".v0.jsonl.ab12cd34.tmp", tmp_path / ".v0.label.json.zz99yy88.tmp"]
    other = [tmp_path / ".v1.jsonl.ab12cd34.tmp", tmp_path / ".v0.jsonl.notours.tmp"]
    for p in stale + other:
        p.write_text("half")
    removed = _remove_stale_label_temporaries([mine, tmp_path / "v0.label.json", theirs.with_name("v9.jsonl")])
    assert sorted(removed) == sorted(stale)
    assert all(p.exists() for p in other) and not any(p.exists() for p in stale)


def test_shard_from_torchrun_and_slurm_array_variables():
    assert resolve_shard("auto", {}) == (0, 1)
    assert resolve_shard("auto", {"RANK": "3", "WORLD_SIZE": "4"}) == (3, 4)
    # --array=0-15, --array=1-16, --array=0-30:2: task k of 16 in each
    assert slurm_array_shard({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "16",
                              "SLURM_ARRAY_TASK_MIN": "0"}) == (5, 16)
    assert slurm_array_shard({"SLURM_ARRAY_TASK_ID": "16", "SLURM_ARRAY_TASK_COUNT": "16",
                              "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_STEP": "1"}) == (15, 16)
    assert slurm_array_shard({"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "16",
                              "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2"}) == (3, 16)
    assert slurm_array_shard({"SLURM_JOB_ID": "7"}) is None
    # an array of torchrun jobs: array shard a of A, rank r of W -> a * W + r of A * W
    env = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "0",
           "RANK": "1", "WORLD_SIZE": "4"}
    assert resolve_shard("auto", env) == (9, 12)
    assert resolve_shard("none", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"}) == (0, 1)
    with pytest.raises(ValueError, match="WORLD_SIZE=4"):
        resolve_shard("none", env)
    assert resolve_shard("1/5", {}) == (1, 5) and resolve_shard("1/5", {"RANK": "1", "WORLD_SIZE": "2"}) == (3, 10)
    # every video exactly once over all (array task, rank) pairs
    videos, seen = list(range(29)), []
    for a in range(3):
        for r in range(4):
            i, n = resolve_shard("auto", {**env, "SLURM_ARRAY_TASK_ID": str(a), "RANK": str(r)})
            seen += videos[i::n]
    assert sorted(seen) == videos


def test_bad_shard_values_are_refused_naming_them():
    with pytest.raises(ValueError, match="'3/3'"):
        parse_shard("3/3")
    with pytest.raises(ValueError, match=r"I/N.*'half'"):
        parse_shard("half")
    with pytest.raises(ValueError, match="task 5 .*step 3"):
        slurm_array_shard({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1",
                           "SLURM_ARRAY_TASK_STEP": "3"})
    with pytest.raises(ValueError, match="task 9 .*count 3"):
        slurm_array_shard({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "0"})
    from vpt_rl.train.label import Args

    with pytest.raises(ValueError, match="'0/0'"):
        Args(videos=["x"], idm_model="m", shard="0/0")


def test_cli_refuses_an_array_task_that_names_no_shard(tmp_path, fixtures_dir, capsys, monkeypatch):
    from vpt_rl.train.label import main

    _videos(tmp_path, [4])
    for k, v in {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "0"}.items():
        monkeypatch.setenv(k, v)
    assert main([str(tmp_path), "--idm-model", str(fixtures_dir / "idm.model"), "--device", "cpu"]) == 2
    assert "SLURM array task 5 (min 0, step 1, count 3)" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.jsonl"))
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")  # task 2 of 0..2: shard 2 of 3, which holds no video
    assert main([str(tmp_path), "--idm-model", str(fixtures_dir / "idm.model"), "--device", "cpu",
                 "--no-progress"]) == 0
    assert capsys.readouterr().out == "shard 2/3: labelled 0 video(s), skipped 0 already labelled\n"
    assert not list(tmp_path.glob("*.jsonl"))


def test_rank_device_is_cuda_local_rank_under_torchrun_only_when_cuda_is_there(monkeypatch):
    env = {"WORLD_SIZE": "8", "LOCAL_RANK": "3"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    assert rank_device("auto", env) == torch.device("cuda", 3)
    assert rank_device("cuda", env) == torch.device("cuda", 3)
    assert rank_device("cuda:1", env) == torch.device("cuda", 1) and rank_device("cpu", env) == torch.device("cpu")
    assert rank_device("auto", {}) == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert rank_device("auto", env) == torch.device("cpu")


def test_merge_of_one_shard_is_itself():
    a = LabelledVideos()
    a.labelled = 2
    assert a.merge([]).summary() == "labelled 2 video(s), skipped 0 already labelled"
