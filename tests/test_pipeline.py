"""The end-to-end pipeline: orchestration (markers, skipping, resuming, inputs) with stand-in stage
functions, the split and report stages for real, and the smoke preset end to end on the real parts."""
import json
import math
import struct
from pathlib import Path

import pytest

from vpt_rl import pipeline as pl
from vpt_rl.evaluate import summarize

# ----------------------------------------------------------------------------------------------------
# Stand-in stages: they write the same layout as the real ones, from nothing but files
# ----------------------------------------------------------------------------------------------------

N_LINES = 7


def fake_record(ctx):
    ctx.recorded_dir.mkdir(parents=True, exist_ok=True)
    for e in range(ctx.cfg.episodes):
        stem = ctx.recorded_dir / f"minelite-expert-s{ctx.seed:04d}-e{e:04d}-000"
        stem.with_suffix(".mp4").write_bytes(b"fake-mp4-" + bytes([e]))
        stem.with_suffix(".jsonl").write_text("".join(json.dumps({"tick": t, "ep": e}) + "\n" for t in range(N_LINES)))
    return {"segments": ctx.cfg.episodes}


def fake_idm(ctx):
    for p in ctx.idm_paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"idm")
    return {"model": str(ctx.idm_paths[0])}


def fake_label(ctx):
    for v in pl.list_segments(ctx.unlabelled_dir, need_jsonl=False):
        truth = (ctx.truth_dir / v.name).with_suffix(".jsonl").read_text()
        v.with_suffix(".jsonl").write_text(truth)
    return {"videos": len(pl.list_segments(ctx.unlabelled_dir))}


def fake_bc(ctx):
    for p in ctx.foundation_paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"bc")
    return {}


def fake_rl(ctx):
    # pretrained: returns 1, 2, 3, ... ; random: always 0.5  (so pretrained passes random's final 0.5 at once)
    for run, rets in (("pretrained", [1.0, 2.0, 3.0, 4.0]), ("random", [0.5, 0.5, 0.5, 0.5])):
        d = ctx.rl_dir(run)
        d.mkdir(parents=True, exist_ok=True)
        for p in ctx.rl_paths(run):
            p.write_bytes(run.encode())
        # an SB3 Monitor CSV: one comment line, header r,l,t
        lines = ["#{\"t_start\": 0}", "r,l,t"] + [f"{r},{100},{i}" for i, r in enumerate(rets)]
        (d / "0.monitor.csv").write_text("\n".join(lines) + "\n")
        pl.write_json_atomic(d / "curve.json", pl.read_learning_curve(d))
        pl.write_json_atomic(d / "run.done", {"env_steps": ctx.cfg.rl_steps})
    return {"runs": 2}


def fake_eval(ctx):
    # milestone j is reached always when j < k and on even seeds when j == k
    reached = {"foundation": 1, "foundation+rl": 2, "random-init+rl": -1, "expert": 3}
    order = ["log", "crafting_table", "stone_pickaxe"]
    for agent, k in reached.items():
        recs = [{"seed": s, "return": float(max(k, 0) + s % 2), "length": 10,
                 "milestones": {m: j < k or (j == k and s % 2 == 0) for j, m in enumerate(order)}}
                for s in range(ctx.cfg.eval_episodes)]
        res = dict(summarize(recs, seconds=1.0, env_steps=10 * len(recs)), agent=agent)
        pl.write_json_atomic(ctx.eval_dir / f"{pl._safe(agent)}.json", res)
    return {}


class Counting:
    def __init__(self, fns):
        self.calls = []
        self.fns = {name: self._wrap(name, fn) for name, fn in fns.items()}

    def _wrap(self, name, fn):
        def run(ctx):
            self.calls.append(name)
            return fn(ctx)
        return run


FAKES = {"record": fake_record, "idm": fake_idm, "label": fake_label, "bc": fake_bc, "rl": fake_rl, "eval": fake_eval}
CFG = pl.PRESETS["smoke"].replace(episodes=4, n_labelled=1, eval_episodes=4, ft_steps=0)


def run(out, counting, **kw):
    return pl.run_pipeline(out, kw.pop("cfg", CFG), stage_fns=counting.fns, progress=False, **kw)


# ----------------------------------------------------------------------------------------------------
# Orchestration
# ----------------------------------------------------------------------------------------------------


def test_all_stages_run_in_order_and_write_markers(tmp_path):
    c = Counting(FAKES)
    res = run(tmp_path, c)
    assert c.calls == ["record", "idm", "label", "bc", "rl", "eval"]  # split, finetune, report are the real ones
    assert list(res) == list(pl.STAGE_ORDER)
    for s in pl.STAGE_ORDER:
        m = json.loads(pl.marker_path(tmp_path, s).read_text())
        assert m["stage"] == s and m["config"] == pl.stage_config(s, CFG, "sb3", 0)
    # no temp files left behind by the atomic writes
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_second_run_skips_every_done_stage(tmp_path):
    run(tmp_path, Counting(FAKES))
    c = Counting(FAKES)
    run(tmp_path, c)
    assert c.calls == []


def test_changed_knob_reruns_its_stage_and_downstream_only(tmp_path):
    run(tmp_path, Counting(FAKES))
    c = Counting(FAKES)
    run(tmp_path, c, cfg=CFG.replace(rl_steps=CFG.rl_steps * 2))
    assert c.calls == ["rl", "eval"]
    assert json.loads(pl.marker_path(tmp_path, "report").read_text())["config"]["knobs"]["rl_steps"] == CFG.rl_steps * 2
    c = Counting(FAKES)
    run(tmp_path, c, cfg=CFG.replace(rl_steps=CFG.rl_steps * 2), backend="sf")  # backend matters from rl on
    assert c.calls == ["rl", "eval"]


def test_force_reruns_only_the_selected_stages(tmp_path):
    run(tmp_path, Counting(FAKES))
    c = Counting(FAKES)
    run(tmp_path, c, stages="idm,label", force=True)
    assert c.calls == ["idm", "label"]


def test_stage_alone_without_its_input_says_which_stage_to_run(tmp_path):
    with pytest.raises(pl.PipelineError, match="stage 'bc'"):
        run(tmp_path, Counting(FAKES), stages="rl")


def test_stage_alone_with_stale_input_refuses(tmp_path):
    run(tmp_path, Counting(FAKES))
    with pytest.raises(pl.PipelineError, match="bc_steps"):
        run(tmp_path, Counting(FAKES), stages="rl", cfg=CFG.replace(bc_steps=CFG.bc_steps + 1))


def test_failed_stage_leaves_no_marker_and_the_rerun_resumes_there(tmp_path):
    def broken_bc(ctx):
        raise RuntimeError("killed")

    c = Counting(dict(FAKES, bc=broken_bc))
    with pytest.raises(RuntimeError, match="killed"):
        run(tmp_path, c)
    assert c.calls == ["record", "idm", "label", "bc"]
    assert not pl.marker_path(tmp_path, "bc").exists()
    c = Counting(FAKES)
    run(tmp_path, c)
    assert c.calls == ["bc", "rl", "eval"]


def test_unreadable_marker_is_ignored_and_the_stage_reruns(tmp_path):
    run(tmp_path, Counting(FAKES))
    pl.marker_path(tmp_path, "eval").write_text("{not json")
    c = Counting(FAKES)
    run(tmp_path, c)
    assert c.calls == ["eval"]


def test_bad_options_raise_naming_the_value(tmp_path):
    with pytest.raises(ValueError, match="'nope'"):
        pl.parse_stages("record,nope")
    with pytest.raises(ValueError, match="rl_stepz"):
        CFG.replace(rl_stepz=3)
    with pytest.raises(ValueError, match="expected a int"):
        CFG.replace(rl_steps="many")
    with pytest.raises(ValueError, match="'gpu'"):
        pl.run_pipeline(tmp_path, "gpu", progress=False)
    with pytest.raises(ValueError, match="'jax'"):
        pl.run_pipeline(tmp_path, "smoke", backend="jax", progress=False)
    assert CFG.replace(rl_steps="512").rl_steps == 512 and CFG.replace(kl_coef="0.5").kl_coef == 0.5


def test_cli_set_overrides_a_knob(capsys):
    assert pl.main(["--preset", "smoke", "--set", "rl_steps=999", "--list-knobs"]) == 0
    assert "rl_steps = 999" in capsys.readouterr().out
    assert pl.main(["--set", "rl_steps"]) == 2


def test_presets_grow_from_smoke_to_full():
    s, m, f = (pl.PRESETS[k] for k in ("smoke", "small", "full"))
    for knob in ("episodes", "idm_steps", "bc_steps", "rl_steps", "eval_episodes", "eval_max_ticks"):
        assert getattr(s, knob) < getattr(m, knob) < getattr(f, knob), knob
    for p in (s, m, f):
        assert 1 <= p.n_labelled < p.episodes


# ----------------------------------------------------------------------------------------------------
# Real split and report stages
# ----------------------------------------------------------------------------------------------------


def test_split_keeps_labelled_part_and_strips_actions_from_the_rest(tmp_path):
    run(tmp_path, Counting(FAKES), stages="record,split")
    lab = pl.list_segments(tmp_path / "data/labelled")
    unl = sorted((tmp_path / "data/unlabelled").glob("*.mp4"))
    truth = sorted((tmp_path / "data/heldout_truth").glob("*.jsonl"))
    assert len(lab) == CFG.n_labelled and len(unl) == CFG.episodes - CFG.n_labelled
    assert not list((tmp_path / "data/unlabelled").glob("*.jsonl"))  # actions stripped
    assert [t.stem for t in truth] == [u.stem for u in unl]
    assert {p.stem for p in lab}.isdisjoint(u.stem for u in unl)
    for u in unl:  # same bytes as the recording (hard link or copy)
        assert u.read_bytes() == (tmp_path / "data/recorded" / u.name).read_bytes()
    idx = json.loads((tmp_path / "data/unlabelled/index.json").read_text())
    assert sorted(idx["relpaths"]) == [u.name for u in unl]
    summary = json.loads(pl.marker_path(tmp_path, "split").read_text())["summary"]
    assert summary["labelled_frames"] == CFG.n_labelled * N_LINES
    assert summary["unlabelled_frames"] == (CFG.episodes - CFG.n_labelled) * N_LINES


def test_split_depends_on_the_seed_only_through_the_shuffle(tmp_path):
    picks = set()
    for seed in range(6):
        out = tmp_path / str(seed)
        pl.run_pipeline(out, CFG, stages="record,split", seed=0, stage_fns={"record": fake_record}, progress=False)
        picks.add(tuple(json.loads(pl.marker_path(out, "split").read_text())["summary"]["labelled_episodes"]))
    assert len(picks) == 1  # deterministic for a fixed seed
    many = {tuple(pl.stage_split(pl.StageContext(out=tmp_path / "0", cfg=CFG, seed=s))["labelled_episodes"])
            for s in range(8)}
    assert len(many) > 1  # and the seed changes it


def test_episode_key_groups_segments_of_one_episode():
    assert pl._episode_key(Path("minelite-expert-s0001-e0002-000.mp4")) == "minelite-expert-s0001-e0002"
    assert pl._episode_key(Path("minelite-expert-s0001-e0002-013.mp4")) == "minelite-expert-s0001-e0002"
    assert pl._episode_key(Path("clip.mp4")) == "clip"


def _png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_report_writes_tables_plots_and_the_comparison(tmp_path):
    run(tmp_path, Counting(FAKES))
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["agents"]) == list(pl.eval_agents(CFG))
    assert results["milestones"] == ["log", "crafting_table", "stone_pickaxe"]
    # fake_eval: foundation+rl reaches stone_pickaxe (j = k = 2) only on even seeds -> 2 of 4
    assert results["agents"]["foundation+rl"]["success"]["stone_pickaxe"] == 0.5
    assert results["agents"]["random-init+rl"]["success"]["log"] == 0.0
    assert results["agents"]["expert"]["mean_return"] == pytest.approx(3.5)
    cmp_ = results["comparison"]
    assert cmp_["pretrained_rate"] == 0.5 and cmp_["random_rate"] == 0.0 and cmp_["milestone_target_met"]
    # random's final return 0.5; pretrained's first episode (return 1 at 100 steps) beats it; budget 400
    assert cmp_["random_final_return"] == 0.5 and cmp_["pretrained_steps_to_reach"] == 100
    assert cmp_["fraction_of_budget"] == 0.25 and cmp_["speed_target_met"] is False
    md = (tmp_path / "results.md").read_text()
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and "+-" in ln]
    assert [r.split("|")[1].strip() for r in rows] == list(pl.eval_agents(CFG))
    assert "| foundation+rl | 2.500 +- " in md and "50%" in md
    for png in ("reward_curves.png", "rl_milestones.png", "milestones.png"):
        w, h = _png_size(tmp_path / "plots" / png)
        assert w > 300 and h > 200
    assert "oracle ablation" not in md
    results["config"]["bc_labels"] = "true"
    assert "**oracle ablation**" in pl.results_markdown(results)


def test_eval_stage_reuses_an_agents_result_only_for_the_same_checkpoint(tmp_path, monkeypatch):
    from vpt_rl import evaluate as ev

    calls = []
    monkeypatch.setattr(ev, "make_agent", lambda spec, weights=None, **kw: spec)
    monkeypatch.setattr(ev, "evaluate", lambda agent, **kw: calls.append(agent) or summarize(
        [{"seed": 0, "return": 1.0, "length": 3, "milestones": {"log": True}}]))
    ctx = pl.StageContext(out=tmp_path, cfg=CFG)
    for paths in (ctx.foundation_paths, ctx.rl_paths("pretrained"), ctx.rl_paths("random")):
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"w")
    pl.stage_eval(ctx)
    assert calls == [str(ctx.foundation_paths[0]), str(ctx.rl_paths("pretrained")[0]),
                     str(ctx.rl_paths("random")[0]), "expert"]
    calls.clear()
    pl.stage_eval(ctx)
    assert calls == []
    ctx.rl_paths("random")[1].write_bytes(b"new weights")  # the random-init run was re-trained
    pl.stage_eval(ctx)
    assert calls == [str(ctx.rl_paths("random")[0])]
    res = json.loads((tmp_path / "eval" / "random-init_plus_rl.json").read_text())
    assert res["agent"] == "random-init+rl" and res["success"] == {"log": 1.0}


def test_stage_folder_is_kept_for_resume_only_with_the_same_config(tmp_path):
    d = tmp_path / "idm"
    d.mkdir()
    (d / "train_state.pt").write_bytes(b"old run of unknown config")
    ctx = pl.StageContext(out=tmp_path, cfg=CFG)
    pl._prepare_dir(ctx, "idm", d)
    assert not (d / "train_state.pt").exists()  # no stamp: unknown provenance, start over
    (d / "train_state.pt").write_bytes(b"interrupted")
    pl._prepare_dir(ctx, "idm", d)
    assert (d / "train_state.pt").exists()  # same config: the trainer resumes from it
    pl._prepare_dir(pl.StageContext(out=tmp_path, cfg=CFG.replace(idm_steps=CFG.idm_steps + 1)), "idm", d)
    assert not (d / "train_state.pt").exists()  # another IDM config: never resume across configs
    (d / "train_state.pt").write_bytes(b"x")
    pl._prepare_dir(pl.StageContext(out=tmp_path, cfg=CFG.replace(idm_steps=CFG.idm_steps + 1), force=True), "idm", d)
    assert not (d / "train_state.pt").exists()


def test_learning_curve_from_monitor_csvs_of_several_envs_in_time_order(tmp_path):
    (tmp_path / "0.monitor.csv").write_text('#{"t_start": 0}\nr,l,t\n1.0,10,0.5\n3.0,30,2.5\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "1.monitor.csv").write_text('#{"t_start": 0}\nr,l,t\n2.0,20,1.5\n')
    curve = pl.read_learning_curve(tmp_path)
    assert curve["returns"] == [1.0, 2.0, 3.0]
    assert curve["steps"] == [10, 30, 60]
    assert pl.read_learning_curve(tmp_path / "sub" / "missing")["steps"] == []


def test_compare_runs_on_hand_made_curves():
    agents = {"foundation+rl": {"success": {"stone_pickaxe": 0.6}}, "random-init+rl": {"success": {"stone_pickaxe": 0.0}}}
    rl = {"pretrained": {"curve": {"steps": list(range(100, 2001, 100)), "returns": [0.0] + [5.0] * 19}},
          "random": {"curve": {"steps": list(range(100, 2001, 100)), "returns": [0.0] * 18 + [1.0, 1.0]}}}
    c = pl.compare_runs(agents, rl)
    # random's last 10% (2 episodes) average 1.0; pretrained's trailing mean (window 1) reaches it at 200
    assert c["random_final_return"] == 1.0 and c["pretrained_steps_to_reach"] == 200
    assert c["fraction_of_budget"] == pytest.approx(0.1) and c["speed_target_met"] and c["milestone_target_met"]
    # random init never earning reward makes the speed target vacuous: reported as not shown, never as met
    rl["random"]["curve"]["returns"] = [0.0] * 20
    c = pl.compare_runs(agents, rl)
    assert c["random_init_learned"] is False and c["speed_target_met"] is None


# ----------------------------------------------------------------------------------------------------
# The smoke preset end to end on the real parts
# ----------------------------------------------------------------------------------------------------


def _real_parts_missing():
    root = Path(pl.__file__).resolve().parents[2]  # vpt_rl/pipeline/__init__.py -> the repository root
    need = ["vpt_rl/model.py", "vpt_rl/checkpoint.py", "vpt_rl/data/recorder.py", "vpt_rl/commands/record.py",
            "envs/minelite/env.py", "envs/minelite/expert.py", "envs/wrappers.py", "vpt_rl/train/idm.py",
            "vpt_rl/train/label.py", "vpt_rl/train/bc.py", "policies/sb3/__init__.py"]
    return [n for n in need if not (root / n).exists()]


def test_rl_runs_share_env_and_algorithm_seeds_and_world_size_reaches_every_env(tmp_path, monkeypatch):
    """Pretrained and random init differ only in init and coefficients: same seed (envs seed+1000+i, algorithm
    seed+1000), same world size; the record stage passes the world size to the recorder."""
    import vpt_rl.data.record as recording
    import vpt_rl.policies.sb3 as sb3

    calls, recorded = [], []

    def fake_finetune(env_id, total_steps, **kw):
        calls.append(kw)
        out = Path(kw["out_dir"])
        for name in ("policy.model", "policy.weights", "final.zip"):
            (out / name).write_bytes(b"x")
        (out / kw["episodes_csv"]).write_text("steps,return,length\n4,1.5,2\n")
        return str(out / "final.zip")

    monkeypatch.setattr(sb3, "finetune_sb3", fake_finetune)
    monkeypatch.setattr(recording, "record_dataset",
                        lambda out_dir, episodes, **kw: recorded.append(kw) or recording.DatasetRecording())
    cfg = CFG.replace(world_size=24)
    ctx = pl.StageContext(out=tmp_path, cfg=cfg, seed=5)
    ctx.foundation_paths[0].parent.mkdir(parents=True)
    summary = pl.stage_rl(ctx)
    assert [c["seed"] for c in calls] == [1005, 1005]
    assert [c["world_size"] for c in calls] == [24, 24] and [c["max_steps"] for c in calls] == [cfg.rl_max_ticks] * 2
    assert calls[0]["weights"] is not None and calls[1]["weights"] is None and calls[1]["preset"] == cfg.policy_preset
    assert summary["random"]["episodes"] == 1
    assert json.loads((tmp_path / "rl/random/curve.json").read_text())["returns"] == [1.5]
    with pytest.raises(pl.PipelineError):  # the stand-in record wrote no segments
        pl.stage_record(ctx)
    assert [kw["world_size"] for kw in recorded] == [24, 24]  # the labelled and the video split
    assert pl.stage_config("record", cfg, "sb3", 0) != pl.stage_config("record", CFG, "sb3", 0)
    with pytest.raises(ValueError, match="world_size=8"):
        CFG.replace(world_size=8)


@pytest.mark.parametrize("labels,folder", [("idm", "unlabelled"), ("true", "heldout_truth")])
def test_bc_stage_clones_the_pseudo_labels_or_in_the_oracle_ablation_the_true_actions(tmp_path, monkeypatch,
                                                                                      labels, folder):
    import vpt_rl.train.bc as bc_train

    seen = []

    def fake_train_bc(args):
        seen.append(args.data)
        out = Path(args.out_dir)
        for suffix in (".model", ".weights"):
            (out / f"{args.name}{suffix}").write_bytes(b"x")

    monkeypatch.setattr(bc_train, "train_bc", fake_train_bc)
    cfg = CFG.replace(bc_labels=labels)
    summary = pl.stage_bc(pl.StageContext(out=tmp_path, cfg=cfg, seed=0))
    assert seen == [[str(tmp_path / "data" / folder)]]
    assert summary["labels"] == labels and summary["data"] == str(tmp_path / "data" / folder)
    # the knob belongs to the bc stage: changing it re-runs bc and what follows, not the IDM
    assert pl.stage_config("bc", cfg, "sb3", 0) != pl.stage_config("bc", CFG.replace(bc_labels="idm" if labels == "true" else "true"), "sb3", 0)
    assert pl.stage_config("idm", cfg, "sb3", 0) == pl.stage_config("idm", CFG, "sb3", 0)
    with pytest.raises(ValueError, match="bc_labels='oracle'"):
        CFG.replace(bc_labels="oracle")


@pytest.mark.slow
def test_smoke_preset_end_to_end_produces_every_artefact(tmp_path):
    missing = _real_parts_missing()
    if missing:
        pytest.fail(f"the pipeline's parts are missing: {missing}")
    from vpt_rl.checkpoint import load_idm, load_policy

    out = tmp_path / "smoke"
    res = pl.run_pipeline(out, "smoke", progress=False)
    assert list(res) == list(pl.STAGE_ORDER)
    cfg = pl.PRESETS["smoke"]
    # record + split
    assert len(pl.list_segments(out / "data/recorded")) >= cfg.episodes
    assert pl.list_segments(out / "data/labelled")
    assert sorted(p.stem for p in (out / "data/unlabelled").glob("*.mp4")) == \
        sorted(p.stem for p in (out / "data/heldout_truth").glob("*.jsonl"))
    # idm + label: checkpoints load, every unlabelled video got labels, accuracy is a number in [0, 1]
    load_idm(str(out / "idm/idm.model"), str(out / "idm/idm.weights"))
    for v in (out / "data/unlabelled").glob("*.mp4"):
        assert v.with_suffix(".jsonl").is_file()
    acc = res["label"]["summary"]["accuracy"]
    assert 0.0 <= acc["keypress_accuracy"] <= 1.0
    # bc + rl: every policy checkpoint loads
    for run_dir in ("foundation/foundation", "finetuned/finetuned", "rl/pretrained/policy", "rl/random/policy"):
        load_policy(str(out / f"{run_dir}.model"), str(out / f"{run_dir}.weights"))
    assert list((out / "rl").rglob("events.out.tfevents.*")), "no TensorBoard logs"
    for run in ("pretrained", "random"):
        curve = json.loads((out / "rl" / run / "curve.json").read_text())
        # 2 envs x 128 steps with 128-tick episodes: each env ends one episode, at env step 256
        assert curve["source"] == "episodes.csv" and curve["steps"] == [cfg.rl_steps] * (cfg.rl_steps // cfg.rl_max_ticks)
        assert all(math.isfinite(r) and r >= 0 for r in curve["returns"])
    # eval + report
    results = json.loads((out / "results.json").read_text())
    assert list(results["agents"]) == list(pl.eval_agents(cfg)) and "foundation+bc" in results["agents"]
    for agent, r in results["agents"].items():
        assert r["episodes"] == cfg.eval_episodes, agent
        assert math.isfinite(r["mean_return"]) and all(0.0 <= v <= 1.0 for v in r["success"].values())
    assert results["agents"]["expert"]["success"]["log"] > 0.0  # the expert gets wood in 96 ticks
    md = (out / "results.md").read_text()
    assert all(f"| {a} |" in md for a in pl.eval_agents(cfg))
    for png in ("reward_curves.png", "rl_milestones.png", "milestones.png"):
        _png_size(out / "plots" / png)
    # a second run is a no-op
    again = pl.run_pipeline(out, "smoke", progress=False)
    assert all(again[s]["finished"] == res[s]["finished"] for s in pl.STAGE_ORDER)


# ----------------------------------------------------------------------------------------------------
# vpt-rl bench-summary
# ----------------------------------------------------------------------------------------------------


def test_bench_summary_lists_missing_and_unreadable_results(tmp_path):
    from vpt_rl.commands import bench_summary as bs

    bench = tmp_path / "benchmarks"
    (bench / "results").mkdir(parents=True)
    for name in ("actions", "rl_comparison", "idm_data_efficiency", "sb3"):
        (bench / f"bench_{name}.py").write_text("")
    (bench / "bench_sb3.sh").write_text("")
    (bench / "results" / "bench_actions.json").write_text(json.dumps(
        {"benchmark": "actions", "args": {"n": 5}, "results": {"env_to_agent_us_per_step": 4.5}}))
    (bench / "results" / "rl_comparison.json").write_text(json.dumps(
        {"benchmark": "rl_comparison", "date": "2026-11-25", "headline": {"speed_target_met": False,
                                                                         "stone_pickaxe_foundation_rl": 0.25},
         "agents": {"expert": {"mean_return": 9.0}}}))
    (bench / "results" / "idm_data_efficiency.json").write_text("{broken")
    (bench / "results" / "rl_comparison.partial.json").write_text("{}")  # still being written: ignored
    (bench / "results" / "orphan.json").write_text(json.dumps({"x": {"y": 2}}))
    assert bs.main(["--bench-dir", str(bench)]) == 0
    md = (bench / "SUMMARY.md").read_text()
    assert "| bench_sb3 | Speed | not run |" in md
    assert "- bench_sb3: run `python benchmarks/bench_sb3.py` (or `benchmarks/bench_sb3.sh`)" in md
    assert "| bench_actions | Speed | `bench_actions.json` |" in md and "| env_to_agent_us_per_step | 4.5 |" in md
    assert "| bench_idm_data_efficiency | Data efficiency | `idm_data_efficiency.json` (unreadable) |" in md
    assert "Could not read it: JSONDecodeError" in md
    # headline wins over the rest of the file; booleans read yes/no
    assert "| speed_target_met | no |" in md and "| stone_pickaxe_foundation_rl | 0.25 |" in md
    assert "mean_return" not in md
    assert "### orphan (`orphan.json`)" in md and "| x.y | 2 |" in md
    assert "partial" not in md
    assert md.index("## Speed") < md.index("## Data efficiency") < md.index("## RL") < md.index("## Other")


def test_bench_summary_without_results_folder_says_nothing_was_run(tmp_path, capsys):
    from vpt_rl.commands import bench_summary as bs

    (tmp_path / "bench_x.py").write_text("")
    assert bs.main(["--bench-dir", str(tmp_path), "--out", str(tmp_path / "S.md")]) == 0
    assert "| bench_x | Other | not run |" in (tmp_path / "S.md").read_text()
    assert "1 benchmark(s) not run yet" in capsys.readouterr().out
    assert bs.main(["--bench-dir", str(tmp_path / "nope")]) == 2


def test_labelled_split_is_recorded_contractor_like_and_the_video_split_with_its_own_camera_noise(tmp_path):
    cfg = CFG.replace(episodes=3, n_labelled=1, episode_ticks=40, label_camera_noise=0.5, video_camera_noise=0.2,
                      imitable=True)
    ctx = pl.StageContext(out=tmp_path, cfg=cfg, seed=3)
    pl.stage_record(ctx)
    names = sorted(p.stem for p in pl.list_segments(ctx.recorded_dir))
    assert names == ["minelite-contractor-s0003-e0000-000", "minelite-expert-s0004-e0000-000",
                     "minelite-expert-s0005-e0001-000"]
    metas = {n: json.loads((ctx.recorded_dir / f"{n}-options.json").read_text()) for n in names}
    assert [metas[n]["camera_noise"] for n in names] == [0.5, 0.2, 0.2]
    assert all(metas[n]["imitable"] is True for n in names)
    summary = pl.stage_split(ctx)
    assert summary["labelled_episodes"] == ["minelite-contractor-s0003-e0000"]
    assert summary["unlabelled_episodes"] == ["minelite-expert-s0004-e0000", "minelite-expert-s0005-e0001"]
    # the splits' knobs are the recording's: changing either noise or the expert re-records
    for change in (dict(label_camera_noise=0.0), dict(video_camera_noise=0.0), dict(imitable=False)):
        assert pl.stage_config("record", cfg, "sb3", 0) != pl.stage_config("record", cfg.replace(**change), "sb3", 0)


def test_boolean_knobs_parse_from_text_and_refuse_anything_else():
    assert CFG.replace(imitable="false").imitable is False and CFG.replace(imitable="True").imitable is True
    with pytest.raises(ValueError, match="imitable='maybe': expected true or false"):
        CFG.replace(imitable="maybe")
    with pytest.raises(ValueError, match="video_camera_noise=1.5"):
        CFG.replace(video_camera_noise=1.5)


def test_finetune_stage_trains_from_the_foundation_on_the_early_game_and_rl_starts_from_it(tmp_path, monkeypatch):
    import vpt_rl.train.bc as bc_train

    seen = []

    def fake_train_bc(args):
        seen.append(args)
        for suffix in (".model", ".weights"):
            (Path(args.out_dir) / f"{args.name}{suffix}").write_bytes(b"x")

    monkeypatch.setattr(bc_train, "train_bc", fake_train_bc)
    off = pl.StageContext(out=tmp_path, cfg=CFG)
    assert pl.stage_finetune(off) == {"skipped": True, "reason": "ft_steps = 0"} and not seen
    assert off.rl_start_paths == off.foundation_paths and "foundation+bc" not in pl.eval_agents(CFG)
    cfg = CFG.replace(ft_steps=7, ft_frames=50, ft_lr=2e-5)
    ctx = pl.StageContext(out=tmp_path, cfg=cfg)
    for p in ctx.foundation_paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"f")
    summary = pl.stage_finetune(ctx)
    (args,) = seen
    assert args.init_model == str(ctx.foundation_paths[0]) and args.init_weights == str(ctx.foundation_paths[1])
    assert (args.total_steps, args.max_segment_frames, args.lr) == (7, 50, 2e-5)
    assert args.data == [str(ctx.unlabelled_dir)]
    assert summary["model"] == str(ctx.finetuned_paths[0]) and ctx.rl_start_paths == ctx.finetuned_paths
    assert pl.eval_agents(cfg) == ("foundation", "foundation+bc", "foundation+rl", "random-init+rl", "expert")
    # its knobs re-run it, RL and evaluation, but nothing upstream
    other = cfg.replace(ft_frames=60)
    for stage, changes in (("finetune", True), ("rl", True), ("eval", True), ("bc", False)):
        assert (pl.stage_config(stage, cfg, "sb3", 0) != pl.stage_config(stage, other, "sb3", 0)) is changes, stage


def test_recipe_checks_judge_each_target_on_the_agents_present():
    def agent(ret, **rates):
        return {"mean_return": ret, "success": {"log": 0.0, "planks": 0.0, "crafting_table": 0.0, **rates}}

    agents = {"foundation": agent(0.5, log=0.8, planks=0.49, crafting_table=0.2),
              "foundation+rl": agent(0.4, log=0.9, crafting_table=0.4),
              "random-init+rl": agent(0.1, log=0.1)}
    checks = {c["check"].split(" (")[0]: (c["measured"], c["met"]) for c in pl.recipe_checks(agents)}
    assert checks == {
        "zero-shot foundation: log": ("80%", True), "zero-shot foundation: planks": ("49%", False),
        "zero-shot foundation: crafting_table": ("20%", True), "foundation+RL mean return": ("0.400", False),
        "foundation+RL: crafting_table": ("40%", True), "random-init+RL: log": ("10%", True),
        "random-init+RL mean return": ("0.100", True)}
    only = pl.recipe_checks({"random-init+rl": agent(0.2, log=0.3)})
    assert [(c["check"], c["met"]) for c in only] == [("random-init+RL: log", False),
                                                       ("random-init+RL mean return", False)]


def test_stage_table_is_one_record_per_stage_in_dependency_order():
    import dataclasses

    knobs = {k for s in pl.STAGE_TABLE for k in s.knobs}
    assert knobs == {f.name for f in dataclasses.fields(pl.PipelineConfig)} - {"name"}  # every knob has a stage
    seen = set()
    for s in pl.STAGE_TABLE:
        assert set(s.inputs) <= seen, s.name  # a stage reads only from stages before it
        assert pl.STAGES[s.name] is s.fn and s.produces
        seen.add(s.name)
    assert pl.STAGE_ORDER == tuple(s.name for s in pl.STAGE_TABLE)


def test_python_dash_m_runs_the_pipeline_cli():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "vpt_rl.pipeline", "--preset", "smoke", "--set", "rl_steps=77",
                          "--list-knobs"], check=True, capture_output=True, text=True)
    assert "rl_steps = 77" in res.stdout


# ----------------------------------------------------------------------------------------------------
# --device
# ----------------------------------------------------------------------------------------------------


def test_device_reaches_the_stages_and_is_not_part_of_their_configuration(tmp_path):
    seen = {}

    def spy(name, fn):
        def run_stage(ctx):
            seen[name] = ctx.device
            return fn(ctx)
        return run_stage

    pl.run_pipeline(tmp_path, CFG, stage_fns={n: spy(n, f) for n, f in FAKES.items()}, progress=False, device="cpu")
    assert seen == {name: "cpu" for name in FAKES}
    assert all("device" not in json.dumps(pl.stage_config(s, CFG, "sb3", 0)) for s in pl.STAGE_ORDER)
    c = Counting(FAKES)
    run(tmp_path, c, device="auto")  # the same run on another device: every stage is done already
    assert c.calls == []


def test_model_stages_pass_the_device_to_training_labelling_rl_and_evaluation(tmp_path, monkeypatch):
    import vpt_rl.policies.sb3 as sb3
    import vpt_rl.train.bc as bc_train
    import vpt_rl.train.idm as idm_train
    import vpt_rl.train.label as label_mod
    from vpt_rl import evaluate as ev

    seen = []

    def fake_train(args):
        seen.append(("train", args.device))
        for suffix in (".model", ".weights"):
            (Path(args.out_dir) / f"{args.name}{suffix}").write_bytes(b"x")

    def fake_finetune(env_id, total_steps, **kw):
        seen.append(("rl", kw["device"]))
        out = Path(kw["out_dir"])
        for name in ("policy.model", "policy.weights", "final.zip"):
            (out / name).write_bytes(b"x")
        (out / kw["episodes_csv"]).write_text("steps,return,length\n4,1.5,2\n")
        return str(out / "final.zip")

    monkeypatch.setattr(idm_train, "train_idm", fake_train)
    monkeypatch.setattr(bc_train, "train_bc", fake_train)
    monkeypatch.setattr(sb3, "finetune_sb3", fake_finetune)
    monkeypatch.setattr(label_mod, "label_videos", lambda *a, **kw: seen.append(("label", kw["device"])) or [])
    monkeypatch.setattr(ev, "make_agent", lambda spec, weights=None, **kw: seen.append(("eval", kw.get("device"))))
    monkeypatch.setattr(ev, "evaluate", lambda agent, **kw: summarize(
        [{"seed": 0, "return": 1.0, "length": 3, "milestones": {"log": True}}]))
    ctx = pl.StageContext(out=tmp_path, cfg=CFG, device="cpu")
    pl.stage_idm(ctx)
    ctx.unlabelled_dir.mkdir(parents=True)
    ctx.truth_dir.mkdir(parents=True)
    pl.stage_label(ctx)
    pl.stage_bc(ctx)
    pl.stage_rl(ctx)
    pl.stage_eval(ctx)
    assert seen == [("train", "cpu"), ("label", "cpu"), ("train", "cpu"), ("rl", "cpu"), ("rl", "cpu")] + \
        [("eval", "cpu")] * 4  # the expert too (it ignores it)


def test_a_device_this_machine_lacks_stops_the_run_before_any_stage(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device 'gpu': expected auto, cpu, cuda or cuda:N"):
        run(tmp_path, Counting(FAKES), device="gpu")
    assert pl.main(["--preset", "smoke", "--out", str(tmp_path), "--device", "cuda:1"]) == 2
    assert "vpt-rl pipeline: device 'cuda:1': CUDA is not available on this machine" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------------
# The filter stage (issue 17): between split and label, on web-like footage only
# ----------------------------------------------------------------------------------------------------


def test_filter_stage_cuts_the_unlabelled_web_like_videos_and_reports_what_it_removed(tmp_path):
    from vpt_rl.data.clean_spans import read_spans
    from vpt_rl.data.weblike import read_sidecar

    cfg = pl.PRESETS["smoke"].replace(web_like_rate=1.0, filter_steps=30)
    res = pl.run_pipeline(tmp_path, cfg, stages="record,split,filter", progress=False)
    summary = res["filter"]["summary"]
    videos = sorted((tmp_path / "data" / "unlabelled").glob("*.mp4"))
    assert summary["filtered"] and summary["videos"] == len(videos) == 2
    assert summary["hand_labelled_episodes"] == [pl.files.episode_key(videos[0])]  # first of the sorted episodes
    spans = {v.name: read_spans(v) for v in videos}
    assert all(s is not None for s in spans.values())
    assert summary["kept_frames"] == sum(e - s for sp in spans.values() for s, e in sp)
    truth = [read_sidecar(tmp_path / "data" / "heldout_truth" / v.name) for v in videos]
    assert summary["frames"] == sum(t["n_frames"] for t in truth)
    assert summary["removed"]["unclean_frames"] == sum(e - s for t in truth for s, e, _ in t["unclean_spans"]) > 0
    lines = "\n".join(pl.report.filter_lines(summary))
    assert f"kept {summary['kept_frames']} of {summary['frames']}" in lines and "precision" in lines
    # filter=off: the spans are gone and the videos are labelled whole
    off = pl.run_pipeline(tmp_path, cfg.replace(filter="off"), stages="filter", progress=False)
    assert off["filter"]["summary"] == {"filtered": False, "why": "filter=off",
                                        "unclean_frames_in_truth": summary["removed"]["unclean_frames"]}
    assert not list((tmp_path / "data" / "unlabelled").glob("*.spans.json"))
    assert pl.report.filter_lines(off["filter"]["summary"]) == ["- clean-footage filter: not run (filter=off)"]


def test_filter_auto_is_a_no_op_on_clean_footage_and_label_waits_for_it():
    assert pl.STAGE_ORDER.index("split") < pl.STAGE_ORDER.index("filter") < pl.STAGE_ORDER.index("label")
    assert "filter" in pl.STAGE_INPUTS["label"]
    assert pl.PRESETS["small"].web_like_rate > 0 and pl.PRESETS["small"].filter == "auto"
    with pytest.raises(ValueError, match="filter='sometimes'"):
        pl.PRESETS["smoke"].replace(filter="sometimes")
