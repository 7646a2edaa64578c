"""Where does the camera error on held-out expert play come from? Residuals by view pitch, GUI, size."""
import sys, json, numpy as np, torch
torch.set_num_threads(1)
from pathlib import Path
from vpt_rl.checkpoint import load_idm
from vpt_rl.data.contractor import find_segments, convert_lines, read_jsonl_lines
from vpt_rl.train.label import read_video_frames
from vpt_rl.train.idm import camera_posterior_mean
model, folder = sys.argv[1], sys.argv[2]
from vpt_rl.checkpoint import read_model_file
from vpt_rl.model import IDMNet, IDMConfig
try:
    idm = load_idm(model, model.replace(".model", ".weights")).eval()
except Exception:
    from vpt_rl.checkpoint import _parse_model_dict
    kw, temp = _parse_model_dict(read_model_file(model), model); idm = IDMNet(IDMConfig.from_kwargs(kw)); idm.load_state_dict(torch.load(model.replace(".model", ".weights"), weights_only=True), strict=False); idm.eval()
P, T, PIT, GUI, ATT = [], [], [], [], []
for mp4 in find_segments([folder]):
    infos = convert_lines(read_jsonl_lines(Path(mp4).with_suffix(".jsonl")))
    fr = read_video_frames(mp4); n = min(len(fr), len(infos)); fr = fr[:n]
    cam = np.array([i.env_action["camera"] for i in infos[:n]], np.float64)
    gui = np.array([i.gui_open for i in infos[:n]])
    att = np.array([i.env_action["attack"] for i in infos[:n]])
    pitch = np.zeros(n); p = 0.0
    for t in range(n):
        pitch[t] = p
        if not gui[t]: p = min(90, max(-90, p + cam[t, 0]))
    with torch.no_grad():
        pm = np.zeros((n, 2))
        for s in range(0, n, 32):
            w = torch.from_numpy(fr[None, s:s + 32])
            pm[s:s + w.shape[1]] = camera_posterior_mean(idm(w)["camera"])[0].numpy()
    P.append(pm); T.append(np.clip(cam, -10, 10)); PIT.append(pitch); GUI.append(gui); ATT.append(att)
P, T, PIT, GUI, ATT = map(np.concatenate, (P, T, PIT, GUI, ATT))
def r2(p, t): return 1 - ((p - t) ** 2).sum() / ((t - t.mean()) ** 2).sum()
tot = ((T - T.mean(0)) ** 2).sum(0)
print("R2 pitch/yaw", r2(P[:, 0], T[:, 0]).round(3), r2(P[:, 1], T[:, 1]).round(3), "n", len(P))
for name, m in [("gui", GUI), ("|pitch|<45", (~GUI) & (np.abs(PIT) < 45)), ("45-70", (~GUI) & (np.abs(PIT) >= 45) & (np.abs(PIT) < 70)), (">=70", (~GUI) & (np.abs(PIT) >= 70)), ("attack", (~GUI) & (ATT == 1)), ("no attack", (~GUI) & (ATT == 0))]:
    se = ((P[m] - T[m]) ** 2).sum(0)
    print(f"{name:12s} frac {m.mean():.3f} share of SSE pitch/yaw {se[0]/((P-T)**2).sum(0)[0]:.2f}/{se[1]/((P-T)**2).sum(0)[1]:.2f}  r2 {r2(P[m,0],T[m,0]):.2f}/{r2(P[m,1],T[m,1]):.2f} var {T[m,0].var():.2f}/{T[m,1].var():.2f}")
# error by true magnitude
for lo, hi in [(0, 0.01), (0.01, 2), (2, 5), (5, 10.1)]:
    m = (np.abs(T[:, 0]) >= lo) & (np.abs(T[:, 0]) < hi)
    print(f"pitch |true| in [{lo},{hi}) frac {m.mean():.3f} SSE share {((P[m,0]-T[m,0])**2).sum()/((P[:,0]-T[:,0])**2).sum():.2f} mean|err| {np.abs(P[m,0]-T[m,0]).mean():.2f}")
for ax in (0, 1):
    m = (np.abs(T[:, ax]) >= 5) & ~GUI
    print("axis", ax, "big moves: mean|true|", np.abs(T[m, ax]).mean().round(2), "mean pred*sign", (P[m, ax] * np.sign(T[m, ax])).mean().round(2))
    for lo, hi in [(5, 7), (7, 9), (9, 10.1)]:
        mm = m & (np.abs(T[:, ax]) >= lo) & (np.abs(T[:, ax]) < hi)
        print(f"   [{lo},{hi}) n {mm.sum()} mean|true| {np.abs(T[mm, ax]).mean():.2f} mean pred*sign {(P[mm, ax]*np.sign(T[mm, ax])).mean():.2f} sd {(P[mm, ax]*np.sign(T[mm, ax])).std():.2f}")
err = np.abs(P[:, 0] - T[:, 0]); order = np.argsort(-err)[:40]
for i in order:
    print(f"i {i:5d} gui {int(GUI[i])} att {ATT[i]} viewpitch {PIT[i]:6.1f} true {T[i,0]:6.2f} pred {P[i,0]:6.2f}  prev/next true {T[i-1,0]:6.2f} {T[min(i+1,len(T)-1),0]:6.2f}  yaw true {T[i,1]:6.2f}")
for ax in (0, 1):
    se = (P[:, ax] - T[:, ax]) ** 2
    ws = (P[:, ax] * T[:, ax] < 0) & (np.abs(T[:, ax]) >= 2) & (np.abs(P[:, ax]) >= 1)
    print(f"axis {ax}: wrong-sign frames {ws.sum()} ({ws.mean():.3f}) carry {se[ws].sum()/se.sum():.2f} of SSE; gui among them {GUI[ws].mean():.2f}")
    big_err = se > 16
    print(f"   frames with |err|>4: {big_err.sum()} carry {se[big_err].sum()/se.sum():.2f} of SSE")
