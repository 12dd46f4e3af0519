#!/usr/bin/env python3
"""The IlgpuDdw models in plain PyTorch eager, timing the same training step as `ddw bench`.

Models (same layers as src/IlgpuDdw/Models/ModelZoo.cs and ModelSpec.cs):
  resnet_mini  1x28x28 -> 10: 3x3 conv 1->16, BN, ReLU; stages of 3 basic blocks at widths 16/32/64,
               strides 1/2/2 (projection shortcut = 1x1 conv + BN when stride or width change); GAP; Linear(64, 10).
  resnet18     3xSxS -> 1000 (torchvision resnet18): 7x7/2 conv 3->64, BN, ReLU, 3x3/2 max pool; stages of 2 basic
               blocks at 64/128/256/512, strides 1/2/2/2; GAP; Linear(512, 1000).
Every convolution is bias-free and followed by BatchNorm2d; every torchvision layer is one DDW stage of n nodes.

Wirings (DESIGN.md section 1, src/IlgpuDdw/Models/DdwStage.cs):
  chain    the backbone as published: nodes run one after another.
  dense    node j > 0 reads x_j = sum_{i<j} A[i, j] * y_i and the stage output sum_{i<n} A[i, n] * y_i, with
           static edge weights A = sigmoid(logit), one logit per edge, initialised to 3.
  dynamic  as dense, but row i of A is written per sample by node i's router from y_i:
           GAP -> Linear(C, max(C // r, 4)) -> ReLU -> Linear(-> n - i) -> sigmoid (last bias initialised to 3),
           then the gate keeps a where a > tau and writes 0 elsewhere; the gradient reaches kept edges only
           (the forward multiplies by the non-differentiable mask).
A one-node stage runs as a chain under every wiring.

Training step: zero_grad, forward, cross-entropy (mean), backward, SGD (lr 0.01, momentum 0.9, weight decay 5e-4),
then torch.cuda.synchronize() on a GPU. Warm-up steps run before the timing; prints the median step time.
cuDNN TF32 is off by default (the IlgpuDdw kernels compute in FP32); --allow-tf32 turns it on.
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    """ResNet basic block: 3x3 (stride) -> BN -> ReLU -> 3x3 -> BN, plus the shortcut, then ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        main = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(main + (x if self.shortcut is None else self.shortcut(x)))


class Router(nn.Module):
    """a = sigmoid(FC2(ReLU(FC1(GAP(y))))), hidden max(C // r, 4), FC2's bias initialised to `output_bias`."""

    def __init__(self, channels, out_degree, reduction, output_bias):
        super().__init__()
        self.fc1 = nn.Linear(channels, max(channels // reduction, 4))
        self.fc2 = nn.Linear(self.fc1.out_features, out_degree)
        nn.init.constant_(self.fc2.bias, output_bias)

    def forward(self, y):
        return torch.sigmoid(self.fc2(F.relu(self.fc1(y.mean(dim=(2, 3))))))


class Stage(nn.Module):
    """n nodes at one resolution and width; node 0 carries the stride and width change."""

    def __init__(self, count, cin, cout, stride, wiring, tau, reduction, initial_logit):
        super().__init__()
        self.nodes = nn.ModuleList(BasicBlock(cin if k == 0 else cout, cout, stride if k == 0 else 1) for k in range(count))
        self.n = count
        self.wiring = wiring if count >= 2 else "chain"
        self.tau = tau
        if self.wiring == "dense":
            self.edge_logits = nn.Parameter(torch.full((count * (count + 1) // 2,), float(initial_logit)))
        if self.wiring == "dynamic":
            self.routers = nn.ModuleList(Router(cout, count - i, reduction, initial_logit) for i in range(count))
        self.track_keep = False
        self.kept = []  # per-router mask sums of a tracked step (read after it: no sync inside the step)
        self.edges = 0

    def _row(self, i, y):
        """Edge weights out of node i, [B or 1, n - i] (targets i+1..n)."""
        n = self.n
        if self.wiring == "dense":
            first = i * n - i * (i - 1) // 2  # row-by-row edge numbering (Adjacency.EdgeIndex)
            return torch.sigmoid(self.edge_logits[first:first + n - i]).unsqueeze(0)
        a = self.routers[i](y)
        mask = (a > self.tau).to(a.dtype)
        if self.track_keep:
            self.kept.append(mask.detach().sum())
            self.edges += mask.numel()
        return a * mask  # kept-only gradient: d a = dA * mask

    def forward(self, u):
        if self.wiring == "chain":
            for node in self.nodes:
                u = node(u)
            return u
        ys, rows = [], []
        for j in range(self.n + 1):
            if j == 0:
                x = u
            else:
                x = sum(rows[i][:, j - i - 1].view(-1, 1, 1, 1) * ys[i] for i in range(j))
                if j == self.n:
                    return x
            y = self.nodes[j](x)
            ys.append(y)
            rows.append(self._row(j, y))
        raise AssertionError("unreachable")


class DdwNet(nn.Module):
    def __init__(self, model, wiring, tau=0.5, reduction=4, initial_logit=3.0):
        super().__init__()
        if model == "resnet_mini":
            self.in_channels, self.input_size, classes = 1, 28, 10
            self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
            shapes, cin = [(3, 16, 1), (3, 32, 2), (3, 64, 2)], 16
        elif model == "resnet18":
            self.in_channels, self.input_size, classes = 3, 224, 1000
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
            shapes, cin = [(2, 64, 1), (2, 128, 2), (2, 256, 2), (2, 512, 2)], 64
        else:
            raise ValueError(f"unknown model {model!r}; known: resnet_mini, resnet18")
        stages = []
        for count, width, stride in shapes:
            stages.append(Stage(count, cin, width, stride, wiring, tau, reduction, initial_logit))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(cin, classes)
        self.classes = classes
        for m in self.modules():  # torchvision's ResNet initialisation of convolutions and batch norms
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.set_track_keep(False)

    def set_track_keep(self, on):
        for s in self.stages:
            s.track_keep = on
            s.kept, s.edges = [], 0

    def keep_rate(self):
        kept = sum(float(k) for s in self.stages for k in s.kept)
        edges = sum(s.edges for s in self.stages)
        return kept / edges if edges else 1.0

    def forward(self, x):
        x = self.stem(x)
        for s in self.stages:
            x = s(x)
        return self.fc(x.mean(dim=(2, 3)))


def run(model, wiring, batch, input_size, device, steps, warmup, seed):
    torch.manual_seed(seed)
    net = DdwNet(model, wiring).to(device)
    size = input_size or net.input_size
    params = sum(p.numel() for p in net.parameters())
    x = torch.rand(batch, net.in_channels, size, size, device=device) * 2 - 1
    labels = torch.randint(0, net.classes, (batch,), device=device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    net.train()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), labels)
        loss.backward()
        opt.step()
        sync()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(steps):
        net.set_track_keep(i == steps - 1)  # the keep rate of the last step (reading it synchronises)
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000.0)
    keep = net.keep_rate() if wiring == "dynamic" else 1.0
    median = statistics.median(times)
    return {
        "peer": "pytorch", "torch": torch.__version__, "device": str(device),
        "deviceName": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "model": model, "wiring": wiring, "batch": batch, "inputSize": size,
        "parameters": params, "steps": steps, "warmup": warmup, "medianStepMs": median,
        "spreadMs": max(times) - min(times), "imagesPerSecond": batch / (median / 1000.0), "keepRate": keep,
        "peakBytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "tf32": bool(torch.backends.cudnn.allow_tf32), "cudnnBenchmark": bool(torch.backends.cudnn.benchmark),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet_mini", choices=["resnet_mini", "resnet18"])
    p.add_argument("--wiring", nargs="+", default=["dense", "chain", "dynamic"], choices=["chain", "dense", "dynamic"])
    p.add_argument("--batch", nargs="+", type=int, default=[32])
    p.add_argument("--input-size", type=int, default=None, help="input side (default: the model's, 28 or 224)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=10, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before the timing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads); default: every core")
    p.add_argument("--allow-tf32", action="store_true", help="let cuDNN/cuBLAS use TF32 (default: strict FP32)")
    p.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    a = p.parse_args(argv)
    if a.steps < 1 or a.warmup < 0 or any(b < 1 for b in a.batch):
        p.error("--steps and --batch must be at least 1, --warmup at least 0")
    device = torch.device(a.device)
    if device.type == "cpu":
        torch.set_num_threads(a.threads or len(__import__("os").sched_getaffinity(0)))
    torch.backends.cudnn.allow_tf32 = a.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = a.allow_tf32
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    rows = []
    for b in a.batch:
        for w in a.wiring:
            r = run(a.model, w, b, a.input_size, device, a.steps, a.warmup, a.seed)
            rows.append(r)
            if a.json:
                print(json.dumps(r), flush=True)
    if not a.json:
        print(f"PyTorch {torch.__version__} eager on {rows[0]['deviceName']} ({rows[0]['threads']} threads); "
              f"model {a.model} at {rows[0]['inputSize']}x{rows[0]['inputSize']}; {a.steps} timed steps")
        print(f"{'wiring':8} {'batch':>5} {'median ms':>10} {'spread ms':>10} {'images/s':>9} {'ratio to dense':>14} {'keep':>6} {'params':>10}")
        for r in rows:
            dense = next((d for d in rows if d["batch"] == r["batch"] and d["wiring"] == "dense"), None)
            ratio = f"{r['medianStepMs'] / dense['medianStepMs']:.3f}" if dense else "-"
            print(f"{r['wiring']:8} {r['batch']:>5} {r['medianStepMs']:>10.1f} {r['spreadMs']:>10.1f} {r['imagesPerSecond']:>9.1f} "
                  f"{ratio:>14} {r['keepRate']:>6.1%} {r['parameters']:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
