"""Identical-weights parity of bench/flow_torch.py with this project's Glow (driven by
bench/flow_parity.ts): loads the weights that our run started from (JSON, NHWC/HWIO layouts),
trains the same steps on the same dequantized batches with the same Adam, warm-up and clip, and
prints one JSON line: the per-step losses, the global gradient norms, and the largest relative
difference between our final weights and PyTorch's, per parameter.
"""
import json, math, sys
import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import flow_torch as ft


def build(P, levels, steps, hidden):
    """The torch Glow holding our weights P; returns (model, {our name: (torch param, map)})."""
    model = ft.Glow([28, 28, 1], levels, steps, hidden)
    t = lambda k: torch.tensor(np.array(P[k]["data"], dtype=np.float32).reshape(P[k]["shape"]))
    ch = lambda v: v.view(1, -1, 1, 1)
    same = lambda v: v
    hwio = lambda v: v.permute(3, 2, 0, 1).contiguous()
    m = {}
    for i, level in enumerate(model.levels):
        for k, (an, conv, cp) in enumerate(level):
            pre = f"level{i}.step{k}"
            m[f"{pre}.actnorm.bias"], m[f"{pre}.actnorm.logs"] = (an.bias, ch), (an.logs, ch)
            an.initialized.fill_(1)
            conv.p.data, conv.sign.data = t(f"{pre}.invconv.perm"), t(f"{pre}.invconv.sign")
            for nm in ("lower", "upper", "log_s"):
                m[f"{pre}.invconv.{nm}"] = (getattr(conv, nm), same)
            for a, b in (("conv0", cp.conv0), ("conv1", cp.conv1), ("out", cp.out.conv)):
                m[f"{pre}.coupling.net.{a}.weight"] = (b.weight, hwio)
                m[f"{pre}.coupling.net.{a}.bias"] = (b.bias, same)
            m[f"{pre}.coupling.net.out.logs"] = (cp.out.logs, ch)
    for i, sp in enumerate(model.splits):
        m[f"level{i}.split.weight"] = (sp.conv.weight, hwio)
        m[f"level{i}.split.bias"] = (sp.conv.bias, same)
        m[f"level{i}.split.logs"] = (sp.logs, ch)
    m["top.mean"], m["top.logs"] = (model.top_mean, ch), (model.top_logs, ch)
    assert set(m) <= set(P) and len(m) == len(list(model.parameters())), "parameter sets differ"
    with torch.no_grad():
        for k, (p, f) in m.items():
            p.copy_(f(t(k)))
    return model, m


def main():
    d = json.load(open(sys.argv[1]))
    torch.set_num_threads(int(d["threads"]))
    B, S, cfg = d["batch"], d["trainSteps"], d["config"]
    xs = np.fromfile(sys.argv[2], dtype=np.float32).reshape(S, B, 28, 28, 1)
    model, m = build(d["start"], d["levels"], d["steps"], d["hidden"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    ramp, D = cfg["lrRampupKimg"] * 1000, 784
    losses, norms = [], []
    for s in range(S):
        x = torch.from_numpy(xs[s]).permute(0, 3, 1, 2).contiguous()
        for g in opt.param_groups:
            g["lr"] = cfg["lr"] * (min(s * B / ramp, 1) if ramp > 0 else 1)
        opt.zero_grad()
        loss = ((-model.log_prob(x) + D * math.log(256)) / (D * math.log(2))).mean()
        loss.backward()
        clip = cfg["clipGradNorm"] or math.inf
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), clip).item())
        opt.step()
        losses.append(loss.item())
    final = {}
    for k, (p, f) in m.items():
        F = d["final"][k]
        ours = f(torch.tensor(np.array(F["data"], dtype=np.float32).reshape(F["shape"])))
        final[k] = ((ours - p.detach()).norm() / p.detach().norm().clamp_min(1e-30)).item()
    print(json.dumps({"losses": losses, "gradNorms": norms, "finalRelDiff": final}))


if __name__ == "__main__":
    main()
