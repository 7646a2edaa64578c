"""Atomic writes: one file mode for every writer, and the temporaries of killed writes cleaned on start."""
import os
import stat
import tempfile

import numpy as np
import pytest
import torch

from conftest import FIXTURES
from vpt_rl.atomic import (
    atomic_output,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    remove_stale_temporaries,
)
from vpt_rl.checkpoint import save_idm, save_policy
from vpt_rl.data.record import record_dataset
from vpt_rl.data.video import write_video
from vpt_rl.model import IDM_PRESETS, POLICY_PRESETS, IDMNet, PolicyNet
from vpt_rl.train.label import label_videos


@pytest.fixture
def umask():
    """Set the process umask for one test and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _write_everything(folder):
    atomic_write_text(folder / "a.txt", "hi")
    atomic_write_bytes(folder / "b.bin", b"\x00\x01")
    atomic_write_json(folder / "c.json", {"x": 1})
    atomic_torch_save({"step": 3, "optimizer": {}}, folder / "train_state.pt")
    save_policy(PolicyNet(POLICY_PRESETS["micro"]), folder / "bc.model", folder / "bc.weights")
    save_idm(IDMNet(IDM_PRESETS["tiny_idm"]), folder / "idm.model", folder / "idm.weights")
    with atomic_output(folder / "d.png", suffix=".png") as tmp:
        tmp.write_bytes(b"png")
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_every_atomic_writer_gives_the_mode_a_plain_open_gives(tmp_path, umask, mask, mode):
    umask(mask)
    names = _write_everything(tmp_path)
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    assert names == ["a.txt", "b.bin", "bc.model", "bc.weights", "c.json", "d.png", "idm.model", "idm.weights",
                     "train_state.pt"]  # no temporaries left
    assert {n: oct(_mode(tmp_path / n)) for n in names} == {n: oct(mode) for n in names}
    assert _mode(tmp_path / "plain.txt") == mode


def test_stale_temporaries_of_our_own_pattern_are_removed_and_nothing_else(tmp_path):
    keep = ["bc.weights", "train_state.pt", ".hidden", "notes.tmp", ".x.tmp", "seg0.mp4.partial", ".keep.abc.tmp"]
    for name in keep:
        (tmp_path / name).write_bytes(b"k")
    stale = []
    for target, suffix in [("train_state.pt", ""), ("bc.weights", ""), ("seg0.mp4", ".mp4"), ("plot.png", ".png")]:
        fd, name = tempfile.mkstemp(dir=tmp_path, prefix=f".{target}.", suffix=".tmp" + suffix)  # as atomic_output
        os.write(fd, b"half a file")
        os.close(fd)
        stale.append(os.path.basename(name))
    sub = tmp_path / "tb"
    sub.mkdir()
    (sub / ".events.abcdefgh.tmp").write_bytes(b"other folder")

    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep + ["tb"])
    assert (sub / ".events.abcdefgh.tmp").is_file()  # only the folder itself is cleaned
    assert remove_stale_temporaries(tmp_path) == []
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_a_write_that_fails_leaves_no_temporary_and_the_old_file(tmp_path):
    atomic_torch_save({"step": 1}, tmp_path / "s.pt")
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "s.pt") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["s.pt"]
    assert torch.load(tmp_path / "s.pt", weights_only=True) == {"step": 1}


def test_record_and_label_clear_stale_temporaries_of_their_output_folder(tmp_path):
    # what a kill during an atomic write leaves: one of our temporaries, and a user's file that looks similar
    def plant(folder):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".index.json.ab12cd34.tmp").write_text("half")
        (folder / "notes.tmp").write_text("the user's")
        return folder

    rec = plant(tmp_path / "rec")
    record_dataset(rec, 0, progress=False)
    assert sorted(p.name for p in rec.iterdir() if "tmp" in p.name) == ["notes.tmp"]

    vids = plant(tmp_path / "vids")
    write_video(vids / "a.mp4", [np.full((128, 128, 3), 90, np.uint8)] * 4)
    done = label_videos([vids], FIXTURES / "idm.model", FIXTURES / "idm.weights", device="cpu", progress=False)
    assert len(done) == 1 and done[0].is_file()
    assert sorted(p.name for p in vids.iterdir() if "tmp" in p.name) == ["notes.tmp"]
