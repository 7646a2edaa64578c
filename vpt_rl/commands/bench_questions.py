"""The questions ``vpt-rl bench-summary`` answers: one Markdown table each, built from the benchmark results
files that answer it (:data:`QUESTIONS`, :func:`question_sections`)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Sequence, Tuple

from vpt_rl.envs.rewards import MILESTONES


def fmt_value(v: Any) -> str:
    """A number or flag as a table cell: 4 significant digits, yes/no, n/a for None."""
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.4g}"
    return str(v)


# ----------------------------------------------------------------------------------------------------------
# The questions: one table each, built from the results files that answer it
# ----------------------------------------------------------------------------------------------------------

Files = List[Tuple[str, Any]]  # [(results file name, its parsed JSON)]


@dataclass
class Table:
    """One question's answer: a Markdown table (cells already formatted) and sentences under it."""

    header: Sequence[str]
    rows: List[Sequence[str]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class Question:
    """A question the benchmarks answer.

    :param title: the question, as the page's heading.
    :param benches: benchmark names whose results files answer it: ``<name>.json``, ``bench_<name>.json``,
        ``<name>_*.json``, ``bench_<name>_*.json``, or a file whose ``"benchmark"`` field is ``<name>``.
    :param compares: one sentence: what is compared with what, and how it is measured.
    :param build: ``files -> Table``; a file that lacks a field the table reads is named in the notes.
    """

    title: str
    benches: Tuple[str, ...]
    compares: str
    build: Callable[[Files], Table]


_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def _per_file(files: Files, table: Table, fn: Callable[[str, Any, Table], None]) -> Table:
    for name, data in files:
        try:
            fn(name, data, table)
        except _ERRORS as e:
            table.notes.append(f"`{name}` is left out of this table: it lacks a field the table reads "
                               f"({type(e).__name__}: {e}).")
    return table


def _num(v: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant digits (whole numbers as integers, thousands separated from 10,000)."""
    if v is None:
        return "n/a"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return fmt_value(v)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if float(v).is_integer() or abs(v) >= 10 ** (digits - 1):
        n = int(round(v))
        return f"{n:,}" if abs(n) >= 10000 else str(n)
    return f"{v:.{digits}g}"


def _fixed(v: Any, decimals: int) -> str:
    return f"{v:.{decimals}f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "n/a"


def _pct(v: Any, ci: Any = None) -> str:
    """A rate in [0, 1] as a percentage, with its 95% interval when given."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "n/a"
    s = f"{100 * v:.0f}%"
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        s += f" ({100 * ci[0]:.0f}-{100 * ci[1]:.0f})"
    return s


def _pair(a: Any, b: Any, decimals: int = 2) -> str:
    return f"{_fixed(a, decimals)} / {_fixed(b, decimals)}"


def _res(v: Any) -> str:
    return "x".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


def _yes_no(v: Any) -> str:
    return "n/a" if v is None else ("yes" if v else "no")


# -- How fast is inference vs the official code? ------------------------------------------------------------

_INFER_CASES = {"step1": "1x policy, one frame per call, batch 1", "step8": "1x policy, one frame per call, batch 8",
                "chunk": "1x policy, {frames}-frame chunk", "idm": "4x IDM, {frames}-frame window"}
_INFER_IMPLS = {"fast": "vpt-rl (default)", "winograd": "vpt-rl + Winograd convs (opt-in)",
                "exact": "vpt-rl, IDM exact mode"}


def _inference(files: Files) -> Table:
    t = Table(["case", "vpt-rl path", "official order (ms/frame, CPU)", "vpt-rl (ms/frame, CPU)",
               "speed-up (CPU time)", "peak memory, official order → vpt-rl (MB)", "max \\|Δ log p\\|", "file"])
    ref: Dict[str, Any] = {}

    def one(name: str, data: Any, t: Table) -> None:
        rows = data["rows"]
        base = {r["case"]: r for r in rows if r["impl"] == "baseline"}
        for r in rows:
            if r["impl"] == "baseline":
                continue
            b = base.get(r["case"], {})
            label = _INFER_CASES.get(r["case"], r["case"]).format(frames=r.get("frames", "?"))
            t.rows.append([label, _INFER_IMPLS.get(r["impl"], r["impl"]), _num(b.get("ms_per_frame_cpu")),
                           _num(r["ms_per_frame_cpu"]), f"{_fixed(r.get('speedup_vs_baseline_cpu'), 2)}x",
                           f"{_num(b.get('peak_rss_delta_mb'))} → {_num(r.get('peak_rss_delta_mb'))}",
                           f"{r['max_abs_dlogp_vs_baseline']:.1e}" if isinstance(r.get("max_abs_dlogp_vs_baseline"), float)
                           else "n/a", f"`{name}`"])
        if not ref and isinstance(data.get("official_reference"), dict):
            ref.update(data["official_reference"])

    _per_file(files, t, one)
    o = ref
    if o:
        parts = []
        if isinstance(o.get("step1"), dict) and "ms_per_frame_cpu" in o["step1"]:
            parts.append(f"{_num(o['step1']['ms_per_frame_cpu'])} ms CPU per 1x step")
        if isinstance(o.get("chunk"), dict) and "seconds_128_frames" in o["chunk"]:
            parts.append(f"{_num(o['chunk']['seconds_128_frames'])} s per 128-frame 1x chunk (wall)")
        if isinstance(o.get("idm"), dict) and "seconds_128_frames" in o["idm"]:
            parts.append(f"{_num(o['idm']['seconds_128_frames'])} s"
                         + (f" and {_num(o['idm'].get('peak_gb'))} GB" if "peak_gb" in o["idm"] else "")
                         + " per 128-frame 4x IDM window (wall)")
        if parts:
            t.notes.append("The official code itself, as measured by the spec's authors on the same machine: "
                           + "; ".join(parts) + ".")
    return t


# -- How fast is MineLite vs MineRL/Crafter? ----------------------------------------------------------------


def _minelite(files: Files) -> Table:
    t = Table(["env", "resolution", "policy", "steps/s (CPU time)", "steps/s (wall clock)", "vs Crafter (CPU time)",
               "file"])

    def one(name: str, data: Any, t: Table) -> None:
        rows = data["rows"]
        crafter = next((r["steps_per_s_cpu"] for r in rows if str(r.get("env", "")).lower().startswith("crafter")), None)
        for r in rows:
            ratio = f"{r['steps_per_s_cpu'] / crafter:.2f}x" if crafter else "n/a"
            t.rows.append([str(r["env"]), _res(r.get("resolution", "?")), str(r.get("policy", "?")),
                           _num(r["steps_per_s_cpu"], 4), _num(r.get("steps_per_s_wall"), 4), ratio, f"`{name}`"])
        reset = data.get("minelite_reset_ms_cpu", (data.get("headline") or {}).get("minelite_reset_ms_cpu"))
        if reset is not None:
            t.notes.append(f"A MineLite reset (a new world) costs {_num(reset)} ms of CPU time (`{name}`).")

    _per_file(files, t, one)
    t.notes.append("MineRL 1.0 runs at about 20-60 steps/s (published figure, not measured here).")
    return t


# -- Does pretraining help RL? --------------------------------------------------------------------------------

_AGENTS = {"foundation": "foundation (zero-shot)", "foundation+bc": "foundation + early-game BC",
           "foundation+rl": "foundation + RL (KL to it)", "random-init+rl": "random init + RL (entropy bonus)",
           "expert": "scripted expert"}
_RL_MILESTONES = MILESTONES[:6]  # the tech tree up to the stone pickaxe


def _rl(files: Files) -> Table:
    t = Table(["file", "agent", "episodes x ticks", "mean return (± s.e.)"]
              + [f"{m.replace('_', ' ')} (95% CI)" for m in _RL_MILESTONES])

    def one(name: str, data: Any, t: Table) -> None:
        for agent, r in data["agents"].items():
            ret = _fixed(r.get("mean_return"), 3)
            if isinstance(r.get("sem_return"), (int, float)):
                ret += f" ± {_fixed(r['sem_return'], 3)}"
            succ, ci = r.get("success", {}), r.get("success_ci", {})
            t.rows.append([f"`{name}`", _AGENTS.get(agent, agent), f"{r.get('episodes', '?')} x {r.get('max_ticks', '?')}",
                           ret] + [_pct(succ.get(m), ci.get(m)) for m in _RL_MILESTONES])
        c = data.get("comparison")
        if isinstance(c, dict) and c.get("milestone"):
            m = str(c["milestone"]).replace("_", " ")
            t.notes.append(f"`{name}`: {m} {_pct(c.get('pretrained_rate'))} from the foundation model against "
                           f"{_pct(c.get('random_rate'))} from random init, {_num(c.get('budget_steps'))} env steps "
                           f"of RL each; milestone target met: {_yes_no(c.get('milestone_target_met'))}; random init "
                           f"learned anything: {_yes_no(c.get('random_init_learned'))}.")

    return _per_file(files, t, one)


# -- How much data does BC need? ------------------------------------------------------------------------------

_BC_MILESTONES = MILESTONES[:3]  # log, planks, crafting table


def _bc_data(files: Files) -> Table:
    t = Table(["pseudo-labelled videos (episodes)", "frames"]
              + [f"zero-shot: {m.replace('_', ' ')}" for m in _BC_MILESTONES]
              + [f"fine-tuned: {m.replace('_', ' ')}" for m in _BC_MILESTONES]
              + ["mean return, zero-shot / fine-tuned", "eval episodes", "file"])

    def one(name: str, data: Any, t: Table) -> None:
        for r in data["rows"]:
            zs, ft = r.get("zero_shot") or {}, r.get("finetuned") or {}
            t.rows.append([str(r["episodes"]), _num(r.get("frames"))]
                          + [_pct((zs.get("success") or {}).get(m)) for m in _BC_MILESTONES]
                          + [_pct((ft.get("success") or {}).get(m)) for m in _BC_MILESTONES]
                          + [_pair(zs.get("mean_return"), ft.get("mean_return"), 3), str(zs.get("episodes", "?")),
                             f"`{name}`"])

    return _per_file(files, t, one)


# -- How much labelled data does the IDM need, against BC? ------------------------------------------------------


def _idm_data(files: Files) -> Table:
    t = Table(["labelled data (minutes)", "episodes", "IDM keypress accuracy", "IDM camera R² pitch / yaw (posterior mean)",
               "IDM joint accuracy", "BC joint accuracy", "majority action joint accuracy", "train time IDM / BC (s)",
               "file"])

    def one(name: str, data: Any, t: Table) -> None:
        maj = (data.get("majority_baseline") or {}).get("joint_accuracy")
        for s in data["sizes"]:
            idm = s.get("idm") or {}
            t.rows.append([_num(s["minutes"]), str(s.get("episodes", "?")), _fixed(idm.get("keypress_accuracy"), 3),
                           _pair(idm.get("camera_r2_pitch_mean"), idm.get("camera_r2_yaw_mean")),
                           _fixed((s.get("idm_joint") or {}).get("joint_accuracy"), 3),
                           _fixed((s.get("bc") or {}).get("joint_accuracy"), 3), _fixed(maj, 3),
                           f"{_num(s.get('idm_train_s'))} / {_num(s.get('bc_train_s'))}", f"`{name}`"])
        de = data.get("data_efficiency")
        if isinstance(de, dict) and de.get("ratio") is not None:
            t.notes.append(f"`{name}`: BC needs {'at least ' if 'lower' in str(de.get('bound', '')) else ''}"
                           f"{_num(de['ratio'])}x the IDM's labelled data for the same joint accuracy"
                           + (f" (bound: {de['bound']})" if de.get("bound") else "") + "; the paper reads about 30x.")

    return _per_file(files, t, one)


# -- Does the IDM read the camera? -----------------------------------------------------------------------------

_HELDOUT = {"contractor": "contractor-like", "expert": "plain expert play"}


def _idm_camera(files: Files) -> Table:
    t = Table(["IDM", "held-out play", "frames", "keypress accuracy", "camera R² pitch / yaw (posterior mean)",
               "camera R² pitch / yaw (argmax bin)", "turn direction right, moves ≥ 5° (pitch / yaw)",
               "train time (s)", "file"])

    def one(name: str, data: Any, t: Table) -> None:
        for design, run in data["runs"].items():
            for split, m in run["heldout"].items():
                t.rows.append([f"`{design}`", _HELDOUT.get(split, split), _num(m.get("n_frames")),
                               _fixed(m.get("keypress_accuracy"), 3),
                               _pair(m.get("camera_r2_pitch_mean"), m.get("camera_r2_yaw_mean")),
                               _pair(m.get("camera_r2_pitch"), m.get("camera_r2_yaw")),
                               _pair(m.get("camera_sign_accuracy_pitch_mean"), m.get("camera_sign_accuracy_yaw_mean")),
                               _num(run.get("train_seconds")), f"`{name}`"])
        a = data.get("args")
        if isinstance(a, dict) and {"steps", "batch", "seq_len"} <= set(a):
            t.notes.append(f"`{name}`: {a['steps']} steps of {a['batch']} x {a['seq_len']} frames"
                           + (f", trained on {a['train_episodes']} episodes of {a.get('episode_ticks', '?')} ticks"
                              if "train_episodes" in a else "") + ".")

    return _per_file(files, t, one)


# -- Does the scripted expert reach the tech tree? -------------------------------------------------------------


def _expert(files: Files) -> Table:
    good: Files = []
    t = Table([])

    def check(name: str, data: Any, t: Table) -> None:
        data["rates"].items()  # noqa: B018 (raises when absent)
        good.append((name, data))

    _per_file(files, t, check)
    eps = [(d.get("config") or {}).get("epsilon") for _, d in good]
    t.header = ["milestone", "target"] + [h for (n, _), e in zip(good, eps)
                                          for h in (f"rate, ε = {_num(e)} (`{n}`)", f"median ticks, ε = {_num(e)}")]
    milestones: List[str] = []
    for _, d in good:
        milestones += [m for m in d["rates"] if m not in milestones]
    targets = next((d["targets"] for _, d in good if isinstance(d.get("targets"), dict)), {})
    for m in milestones:
        row = [m.replace("_", " "), f"≥ {_pct(targets[m])}" if m in targets else "-"]
        for _, d in good:
            row += [_pct(d["rates"].get(m)), _num((d.get("median_ticks") or {}).get(m))]
        t.rows.append(row)
    for n, d in good:
        c = d.get("config") or {}
        t.notes.append(f"`{n}`: {c.get('seeds', '?')} world seeds, {c.get('max_ticks', '?')}-tick budget"
                       + (f", {_num(d['env_ticks_per_s'])} ticks/s" if isinstance(d.get("env_ticks_per_s"), (int, float)) else "")
                       + f"; every target met: {_yes_no(d.get('meets_targets'))}.")
    return t


# -- How fast does SB3 fine-tuning run, and how much memory does it need? -------------------------------------


def _sb3(files: Files) -> Table:
    t = Table(["file", "policy", "params (M)", "rollout (env steps/s)", "training (ms per env step)",
               "whole iteration (env steps/s)", "peak RSS (MiB)"])

    def one(name: str, data: Any, t: Table) -> None:
        for i, (cfg, r) in enumerate(data["vpt"].items()):
            flags = [f for f, on in (("freeze_cnn", r.get("freeze_cnn")), ("bf16", r.get("bf16"))) if on]
            t.rows.append([f"`{name}`", f"VPTPPO `{cfg}`" + (f" ({' + '.join(flags)})" if flags else ""),
                           _fixed(r["params"] / 1e6, 1) if isinstance(r.get("params"), (int, float)) else "n/a",
                           _num(r.get("rollout_steps_per_s")), _num(r.get("train_ms_per_step")),
                           _num(r.get("iteration_steps_per_s")), _num(r.get("peak_rss_mib")) if i == 0 else "-"])
        b = data.get("sb3_cnn")
        if isinstance(b, dict):
            t.rows.append([f"`{name}`", str(b.get("policy") or "SB3 PPO + NatureCNN"),
                           _fixed(b["params"] / 1e6, 1) if isinstance(b.get("params"), (int, float)) else "n/a",
                           _num(b.get("rollout_steps_per_s")), _num(b.get("train_ms_per_step")),
                           _num(b.get("iteration_steps_per_s")), "-"])
        h = data.get("headline") or {}
        if "buffer_1x_8x256_MiB" in h:
            t.notes.append(f"`{name}`: rollout buffer of the 1x policy at 8 envs x 256 steps: "
                           f"{_num(h['buffer_1x_8x256_MiB'])} MiB (measured RSS {_num(h.get('buffer_1x_8x256_measured_rss_MiB'))} MiB); "
                           f"storing the memory at every step instead would take {_num(h.get('per_step_state_layout_GiB'))} GiB.")
        if "tiny_vs_sb3_cnn_throughput_ratio" in h:
            t.notes.append(f"`{name}`: throughput of VPTPPO `tiny` / plain SB3 PPO: {_num(h['tiny_vs_sb3_cnn_throughput_ratio'])}.")

    _per_file(files, t, one)
    t.notes.append("Peak RSS is the benchmark process's, so only the first policy of a file has a figure of its own.")
    return t


# -- Is Sample Factory faster than SB3? -------------------------------------------------------------------------

_TRAINERS = {"sample_factory": "Sample Factory", "sb3_vptppo": "SB3 VPTPPO"}


def _sample_factory(files: Files) -> Table:
    t = Table(["file", "trainer", "mode", "rollout workers", "envs", "env steps/s", "wall (s)", "load average (1 min)"])

    def one(name: str, data: Any, t: Table) -> None:
        for r in data["runs"]:
            load = r.get("load_avg")
            t.rows.append([f"`{name}`" + (f" ({data['sf_extra']})" if data.get("sf_extra") else ""),
                           _TRAINERS.get(r.get("trainer"), str(r.get("trainer"))), str(r.get("mode", "?")),
                           str(r.get("workers", "?")), str(r.get("envs", "?")), _num(r["env_steps_per_s"]),
                           _num(r.get("wall_s")), _num(load[0]) if isinstance(load, list) and load else "n/a"])
        if data.get("speedup_best") is not None:
            t.notes.append(f"`{name}`: best Sample Factory / SB3 = {_num(data['speedup_best'])}x "
                           f"(at the same number of envs: {_num(data.get('speedup_same_envs'))}x); "
                           f"target: {data.get('target', 'n/a')}.")

    return _per_file(files, t, one)


# -- Does the data loader keep up with training? ------------------------------------------------------------------


def _loader(files: Files) -> Table:
    t = Table(["stage", "frames/s", "file"])

    def one(name: str, data: Any, t: Table) -> None:
        if isinstance(data.get("raw_decode"), dict):
            t.rows.append(["raw PyAV decode, one process", _num(data["raw_decode"]["frames_per_s"]), f"`{name}`"])
        for r in data["loader"]:
            t.rows.append([f"`SequenceDataset`, {r['workers']} worker(s)", _num(r["frames_per_s"]), f"`{name}`"])
        for r in data.get("model_training", []):
            b = r.get("batch")
            t.rows.append([f"{r['model']} training step" + (f" (B x T = {b[0]} x {b[1]})" if isinstance(b, list) and len(b) == 2 else ""),
                           _num(r["frames_per_s"]), f"`{name}`"])
        if data.get("load_avg_1min") is not None:
            t.notes.append(f"`{name}`: 1-minute load average {_num(data['load_avg_1min'])} during the run, so the "
                           "absolute numbers are low; they are comparable with each other.")

    return _per_file(files, t, one)


# -- What do the action mapping and the wrappers cost? --------------------------------------------------------------

_COST_LABELS = {
    "env_to_agent_us_per_step": "`env_to_agent`, one action dict",
    "agent_to_env_us_per_step": "`agent_to_env`, one action",
    "env_to_agent_batch_list_us_per_action": "`env_to_agent_batch`, list of dicts (per action)",
    "env_to_agent_batch_columns_us_per_action": "`env_to_agent_batch`, columnar dict (per action)",
    "agent_to_env_batch_list_us_per_action": "`agent_to_env_batch`, list of dicts (per action)",
    "agent_to_env_batch_columns_us_per_action": "`agent_to_env_batch`, `columns=True` (per action)",
    "minelite_raw_ms_per_step": "MineLite 32³ world, raw env step",
    "minelite_vpt_stack_ms_per_step": "MineLite 32³ world, full VPT wrapper stack",
    "stack_overhead_ms_per_step": "wrapper stack over MineLite (difference of the two above)",
    "resize_360x640_to_128_us": "`resize_pov` 360x640 → 128x128",
    "techtree_update_us": "`TechTreeReward` inventory update",
    "null_env_stack_128_us_per_step": "whole wrapper stack over a zero-cost env, 128x128 `pov`",
    "null_env_stack_360x640_us_per_step": "whole wrapper stack over a zero-cost env, 360x640 `pov` (with the resize)",
}


def _unit(key: str) -> str:
    return next((u for s, u in (("_us", "µs"), ("_ms", "ms"), ("_s", "s")) if f"{s}_" in f"{key}_"), "")


def _costs(files: Files) -> Table:
    t = Table(["what", "cost per step", "file"])

    def one(name: str, data: Any, t: Table) -> None:
        res = data["results"]
        for k, v in res.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                t.rows.append([_COST_LABELS.get(k, k), f"{_num(v)} {_unit(k)}".strip(), f"`{name}`"])

    return _per_file(files, t, one)


QUESTIONS: Tuple[Question, ...] = (
    Question("How fast is inference vs the official code?", ("inference",),
             "vpt-rl's default fast paths against the same network run in the official code's computation order and "
             "memory layout (the stand-in for the official code on the same CPU), one torch thread, process CPU time "
             "per frame; the last columns show the memory and how far the outputs move.", _inference),
    Question("How fast is MineLite vs MineRL/Crafter?", ("minelite",),
             "env steps per second of MineLite (random and scripted policies, resets included) against Crafter 1.8.3 "
             "measured in the same run, and MineRL's published rate.", _minelite),
    Question("Does pretraining help RL?", ("rl_comparison",),
             "RL from the foundation model (with a KL penalty to it) against RL from random init (with an entropy "
             "bonus), same env-step budget, scored on held-out world seeds; the zero-shot foundation model and the "
             "scripted expert for reference. Rates are the share of evaluation episodes that obtained the item.", _rl),
    Question("How much data does BC need?", ("bc_data_scaling",),
             "milestone rates of foundation models cloned from more and more pseudo-labelled video, zero-shot and after "
             "early-game BC fine-tuning (the paper's Fig. 11), on held-out world seeds.", _bc_data),
    Question("How much labelled data does the IDM need, against BC?", ("idm_data_efficiency",),
             "the IDM against BC trained on the same true labels at several amounts of labelled data (the paper's "
             "Fig. 3): held-out joint-action accuracy (both the 8641-way button class and the 121-way camera class "
             "right) and the IDM's camera R².", _idm_data),
    Question("Does the IDM read the camera?", ("idm_camera",),
             "the plain IDM against the motion-trunk IDM at the same training budget, scored on held-out "
             "contractor-like and plain expert play.", _idm_camera),
    Question("Does the scripted expert reach the tech tree?", ("expert",),
             "the share of world seeds on which the scripted expert obtains each milestone within the tick budget, "
             "against the targets.", _expert),
    Question("How fast is SB3 fine-tuning, and how much memory does it need?", ("sb3",),
             "`VPTPPO` on MineLite at the 1x and `tiny` sizes against plain SB3 PPO with its NatureCNN policy: env steps "
             "per second of rollout, of training and of whole iterations.", _sb3),
    Question("Is Sample Factory faster than SB3?", ("sample_factory",),
             "training throughput (env steps consumed per second) of the Sample Factory plug-in against SB3 `VPTPPO` "
             "with the same network and env.", _sample_factory),
    Question("Does the data loader keep up with training?", ("loader",),
             "frames per second the contractor-data loader delivers against what the IDM and BC training steps "
             "consume.", _loader),
    Question("What do the action mapping and the env wrappers cost?", ("actions", "wrappers"),
             "the per-step cost of converting actions between MineRL and VPT and of the env wrapper stack "
             "(process CPU time).", _costs),
)


def _matches(bench: str, stem: str, data: Any) -> bool:
    field_ = data.get("benchmark") if isinstance(data, dict) else None
    return field_ == bench or stem in (bench, f"bench_{bench}") or stem.startswith(
        (f"{bench}_", f"bench_{bench}_", f"{bench}-", f"bench_{bench}-"))


def _machine(data: Any) -> str:
    m = data.get("machine") if isinstance(data, dict) else None
    if isinstance(m, dict):
        parts = [str(m[k]) for k in ("platform",) if k in m]
        if "cpu_count" in m:
            parts.append(f"{m['cpu_count']} CPUs")
        load = m.get("loadavg_at_end")
        if isinstance(load, list) and load:
            parts.append(f"load average {_num(load[0])} at the end")
        return ", ".join(parts) or "not recorded"
    return str(m) if m else "not recorded"


def _date(data: Any) -> str:
    d = data.get("date") if isinstance(data, dict) else None
    return str(d)[:10] if d else "not recorded"


def anchor(title: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return "".join(c for c in title.lower() if c.isalnum() or c in " -_").replace(" ", "-")


def _cell(s: Any) -> str:
    return str(s).replace("\n", " ")


def question_sections(loaded: Dict[str, Any]) -> List[Tuple[Question, List[str]]]:
    """``[(question, its Markdown lines)]`` for every question that has at least one results file in ``loaded``
    (results file stem -> parsed JSON); questions without one are left out."""
    out = []
    for q in QUESTIONS:
        files = [(f"{stem}.json", data) for stem, data in sorted(loaded.items())
                 if isinstance(data, dict) and any(_matches(b, stem, data) for b in q.benches)]
        if not files:
            continue
        table = q.build(files)
        lines = [f"## {q.title}", "", f"*Compares* {q.compares}", ""]
        if table.rows:
            lines += ["| " + " | ".join(_cell(h) for h in table.header) + " |",
                      "|" + "---|" * len(table.header)]
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
            lines.append("")
        lines += [f"- {n}" for n in table.notes]
        where: Dict[str, List[str]] = {}
        for name, data in files:
            where.setdefault(f"{_machine(data)}; date: {_date(data)}", []).append(f"`{name}`")
        lines += [f"- Machine: {k} ({', '.join(v)})." for k, v in where.items()]
        lines.append("")
        out.append((q, lines))
    return out
