"""Per-button error breakdown of an IDM on held-out sets: which buttons cost keypress accuracy."""
import sys, json, numpy as np, torch
torch.set_num_threads(1)
from vpt_rl.checkpoint import load_idm
from vpt_rl.data.contractor import find_segments
from vpt_rl.data.dataset import SequenceDataset, make_loader
from vpt_rl.model import idm_argmax
from vpt_rl.actions import BUTTONS_ALL
model = sys.argv[1]; sets = sys.argv[2:]
idm = load_idm(model, model.replace(".model", ".weights")).eval()
for folder in sets:
    ds = SequenceDataset(find_segments([folder]), batch_size=4, seq_len=32, skip_null=False, pack=False, epochs=1, shuffle=False)
    P, T, G, C = [], [], [], []
    with torch.no_grad():
        for b in make_loader(ds):
            m = b["mask"].numpy()
            if not m.any(): continue
            pb, _ = idm_argmax(idm(b["img"]))
            P.append(pb.numpy()[m]); T.append(b["idm_buttons"].numpy()[m]); C.append(b["camera_deg"].numpy()[m])
            if "gui" in b: G.append(b["gui"].numpy()[m])
    P, T, C = map(np.concatenate, (P, T, C))
    wrong = P != T
    print(folder, "frames", len(P), "keypress", 1 - wrong.any(1).mean())
    for i in np.argsort(-wrong.mean(0))[:6]:
        fn = ((P[:, i] == 0) & (T[:, i] == 1)).mean(); fp = ((P[:, i] == 1) & (T[:, i] == 0)).mean()
        print(f"  {BUTTONS_ALL[i]:10s} err {wrong[:, i].mean():.3f} (missed {fn:.3f}, false {fp:.3f}) rate {T[:, i].mean():.3f}")
    big = (np.abs(C) >= 5).any(1)
    print("  keypress on frames with a >=5deg move", 1 - wrong[big].any(1).mean(), "n", big.sum(), " others", 1 - wrong[~big].any(1).mean())
