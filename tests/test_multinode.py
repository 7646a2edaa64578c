"""What several nodes must agree on at start-up (torch.distributed over gloo, two CPU processes)."""
import os

import torch
import torch.multiprocessing as mp

from vpt_rl.train.runtime import check_ranks_agree, files_fingerprint


def _agree(rank, world, init_file, values_by_rank, out_dir):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        check_ranks_agree(values_by_rank[rank], world, hint="mount it everywhere")
        msg = "ok"
    except RuntimeError as e:
        msg = str(e)
    finally:
        torch.distributed.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
        f.write(msg)


def _run(tmp_path, values_by_rank):
    mp.spawn(_agree, args=(2, str(tmp_path / "init"), values_by_rank, str(tmp_path)), nprocs=2, join=True)
    return [(tmp_path / f"rank{r}.txt").read_text() for r in range(2)]


def test_ranks_that_see_another_checkpoint_or_data_all_stop_with_the_same_error(tmp_path):
    # rank 1 is on a node that does not see the checkpoint (starts at 0) and has one segment less
    values = [{"resume step": 40, "segments": [4, 123]}, {"resume step": 0, "segments": [3, 99]}]
    msgs = _run(tmp_path, values)
    assert msgs[0] == msgs[1]  # the same error everywhere: nobody is left waiting in a collective
    assert msgs[0] == ("the ranks disagree: rank 1 has resume step 0 where rank 0 has 40; rank 1 has segments "
                       "[3, 99] where rank 0 has [4, 123]. mount it everywhere")


def test_ranks_that_agree_go_on(tmp_path):
    values = [{"resume step": 7, "segments": [2, 5]}] * 2
    assert _run(tmp_path, values) == ["ok", "ok"]


def test_files_fingerprint_ignores_the_mount_point_but_not_names_sizes_or_order(tmp_path):
    for root in ("a", "b"):
        (tmp_path / root).mkdir()
        (tmp_path / root / "x.mp4").write_bytes(b"12345")
        (tmp_path / root / "y.mp4").write_bytes(b"1")
    a, b = [tmp_path / "a" / n for n in ("x.mp4", "y.mp4")], [tmp_path / "b" / n for n in ("x.mp4", "y.mp4")]
    assert files_fingerprint(a) == files_fingerprint(b) and files_fingerprint(a)[0] == 2
    assert files_fingerprint(a) != files_fingerprint(a[::-1])
    (tmp_path / "b" / "y.mp4").write_bytes(b"12")
    assert files_fingerprint(a) != files_fingerprint(b)
    assert files_fingerprint([]) == [0, 0]


def test_one_process_checks_nothing():
    assert not torch.distributed.is_initialized()
    assert check_ranks_agree({"resume step": 3}, 1) is None  # no process group needed, no collective
