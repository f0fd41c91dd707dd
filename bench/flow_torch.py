"""PyTorch reference for bench/flow_bench.ts: the same Glow as flows/glow.ts (written for this
bench from the Glow paper, Kingma & Dhariwal 2018; not copied from any implementation).

Architecture, matching createGlow(): L levels, each squeeze + K steps of
[ActNorm (data init) -> LU 1x1 conv -> affine coupling (3x3 conv, ReLU, 1x1 conv, ReLU, zero 3x3
conv * exp(3 logs); shift, scale = sigmoid(h + 2))], a split with a zero-conv conditional prior
between levels, a learned per-channel top prior. Loss: bits/dim of uniformly dequantized 8-bit
images, x = (k + u) / 256 - 0.5. Adam, linear warm-up in images, global grad-norm clip.

Modes (one JSON line on stdout):
  --time:  img/s of the training step (batch B) and the trainable parameter count
  --train: train on the images of --data (uint8 [N, H, W, C] raw file) for --steps steps, then
           the test bits/dim on --test; also the training curve.
"""
import argparse, json, math, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class ActNorm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.register_buffer("initialized", torch.tensor(0))

    def forward(self, x):
        if self.initialized.item() == 0:
            with torch.no_grad():
                mean = x.mean(dim=(0, 2, 3), keepdim=True)
                std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
                self.bias.copy_(-mean)
                self.logs.copy_(torch.where(std > 1e-6, -torch.log(std.clamp_min(1e-30)), torch.zeros_like(std)))
                self.initialized.fill_(1)
        hw = x.shape[2] * x.shape[3]
        return (x + self.bias) * torch.exp(self.logs), hw * self.logs.sum()


class InvConvLU(nn.Module):
    def __init__(self, c):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(c, c, dtype=torch.float64))
        p, l, u = torch.linalg.lu(q)
        s = torch.diagonal(u)
        self.register_buffer("p", p.float())
        self.register_buffer("sign", torch.sign(s).float())
        self.register_buffer("lmask", torch.tril(torch.ones(c, c), -1))
        self.lower = nn.Parameter(l.float())
        self.upper = nn.Parameter(torch.triu(u, 1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).float())

    def forward(self, x):
        c = x.shape[1]
        eye = torch.eye(c, device=x.device)
        w = self.p @ (self.lower * self.lmask + eye) @ (self.upper * self.lmask.T + torch.diag(self.sign * torch.exp(self.log_s)))
        hw = x.shape[2] * x.shape[3]
        return F.conv2d(x, w.view(c, c, 1, 1)), hw * self.log_s.sum()


class ZeroConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv.weight.data.zero_()
        self.conv.bias.data.zero_()
        self.logs = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x):
        return self.conv(x) * torch.exp(self.logs * 3)


class Coupling(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.ca = c // 2
        cb = c - self.ca
        self.conv0 = nn.Conv2d(self.ca, hidden, 3, padding=1)
        self.conv1 = nn.Conv2d(hidden, hidden, 1)
        for m in (self.conv0, self.conv1):
            m.weight.data.normal_(0, 0.05)
            m.bias.data.zero_()
        self.out = ZeroConv(hidden, 2 * cb)

    def forward(self, x):
        xa, xb = x[:, : self.ca], x[:, self.ca :]
        h = self.out(F.relu(self.conv1(F.relu(self.conv0(xa)))))
        shift, raw = h.chunk(2, 1)
        log_scale = F.logsigmoid(raw + 2)
        yb = (xb + shift) * torch.exp(log_scale)
        return torch.cat([xa, yb], 1), log_scale.flatten(1).sum(1)


def squeeze(x):
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def normal_logp(eps):
    return (-0.5 * eps ** 2 - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)


class Glow(nn.Module):
    def __init__(self, shape, levels, steps, hidden):
        super().__init__()
        h, w, c = shape
        self.levels = nn.ModuleList()
        self.splits = nn.ModuleList()
        for i in range(levels):
            c, h, w = c * 4, h // 2, w // 2
            self.levels.append(nn.ModuleList(
                [nn.ModuleList([ActNorm(c), InvConvLU(c), Coupling(c, hidden)]) for _ in range(steps)]))
            if i < levels - 1:
                self.splits.append(ZeroConv(c // 2, c))
                c = c // 2
        self.top_mean = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.top_logs = nn.Parameter(torch.zeros(1, c, 1, 1))

    def log_prob(self, x):
        logp = torch.zeros(x.shape[0], device=x.device)
        for i, level in enumerate(self.levels):
            x = squeeze(x)
            for step in level:
                for layer in step:
                    x, ld = layer(x)
                    logp = logp + ld
            if i < len(self.levels) - 1:
                z1, z2 = x.chunk(2, 1)
                mean, logs = self.splits[i](z1).chunk(2, 1)
                logp = logp + normal_logp((z2 - mean) * torch.exp(-logs)) - logs.flatten(1).sum(1)
                x = z1
        hw = x.shape[2] * x.shape[3]
        eps = (x - self.top_mean) * torch.exp(-self.top_logs)
        return logp + normal_logp(eps) - hw * self.top_logs.sum()


def bits_per_dim(model, k):
    """k: uint8-valued float tensor [N, C, H, W]."""
    x = (k + torch.rand_like(k)) / 256 - 0.5
    d = k[0].numel()
    return (-model.log_prob(x) + d * math.log(256)) / (d * math.log(2))


def n_trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["time", "train"], default="time")
    ap.add_argument("--shape", default="28,28,1")
    ap.add_argument("--levels", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rampup-images", type=float, default=5000)
    ap.add_argument("--clip", type=float, default=50)
    ap.add_argument("--data", default="")
    ap.add_argument("--test", default="")
    ap.add_argument("--train-steps", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    shape = [int(v) for v in a.shape.split(",")]
    h, w, c = shape
    model = Glow(shape, a.levels, a.steps, a.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)

    def load(path):
        raw = np.fromfile(path, dtype=np.uint8).reshape(-1, h, w, c)
        return torch.from_numpy(raw.astype(np.float32)).permute(0, 3, 1, 2).contiguous()

    if a.mode == "time":
        k = torch.randint(0, 256, (a.batch, c, h, w)).float()
        with torch.no_grad():
            model.log_prob((k + torch.rand_like(k)) / 256 - 0.5)  # data-dependent init
        def step():
            opt.zero_grad()
            loss = bits_per_dim(model, k).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            opt.step()
        for _ in range(2):
            step()
        times = []
        for _ in range(a.iters):
            t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
        best = min(times)
        print(json.dumps({"params": n_trainable(model), "imgPerSec": a.batch / best,
                          "medianImgPerSec": a.batch / sorted(times)[len(times) // 2], "threads": a.threads}))
        return
    train, test = load(a.data), load(a.test)
    g = torch.Generator().manual_seed(a.seed)
    with torch.no_grad():
        idx = torch.randperm(train.shape[0], generator=g)[:256]
        model.log_prob((train[idx] + torch.rand_like(train[idx])) / 256 - 0.5)
    curve, seen, t0 = [], 0, time.perf_counter()
    perm, pos = torch.randperm(train.shape[0], generator=g), 0
    for s in range(a.train_steps):
        if pos + a.batch > train.shape[0]:
            perm, pos = torch.randperm(train.shape[0], generator=g), 0
        batch = train[perm[pos:pos + a.batch]]
        pos += a.batch
        for group in opt.param_groups:
            group["lr"] = a.lr * min(seen / max(a.rampup_images, 1e-8), 1)
        opt.zero_grad()
        loss = bits_per_dim(model, batch).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        seen += batch.shape[0]
        curve.append(loss.item())
    with torch.no_grad():
        vals = torch.cat([bits_per_dim(model, test[i:i + 256]) for i in range(0, test.shape[0], 256)])
    print(json.dumps({"params": n_trainable(model), "trainSeconds": time.perf_counter() - t0,
                      "curve": curve, "testBpd": vals.mean().item(),
                      "testBpdStdError": (vals.std() / math.sqrt(len(vals))).item()}))


if __name__ == "__main__":
    main()
