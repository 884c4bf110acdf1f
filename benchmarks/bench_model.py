"""Speed and memory of PeakNet candidates on one 1920x1920 frame (batch 1), torch and ONNX Runtime.

    nice -n 10 .venv/bin/python benchmarks/bench_model.py [--threads 2] [--repeat 5] [--size 1920]
        [--configs paper,fast,...] [--backends torch,torch_cl,ort,ort_int8] [--weights W]

Each (config, backend) runs in its own subprocess so that the peak memory (ru_maxrss) is that
of the model run alone.  Prints one line per candidate: milliseconds (median and best of
``--repeat``), peak resident memory, parameters and GMAC (multiply-accumulates).  The machine is
shared: medians fluctuate with the load, compare numbers taken in one invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CANDIDATES = {
    "paper": dict(widths=(8, 16, 32, 64), stem="conv"),
    "s2d2-8": dict(widths=(8, 16, 32, 64), stem="s2d", stem_factor=2),
    "s2d4-16": dict(widths=(16, 24, 32), stem="s2d", stem_factor=4),
    "fast": dict(widths=(24, 32, 48), stem="s2d", stem_factor=4),
    "s2d4-32": dict(widths=(32, 48, 64), stem="s2d", stem_factor=4),
    "s2d4-24r": dict(widths=(24, 32, 48), stem="s2d", stem_factor=4, refine_channels=2),
    "s2d4-4lvl": dict(widths=(16, 32, 48, 64), stem="s2d", stem_factor=4),
}


def count_macs(net, size: int) -> float:
    """Multiply-accumulates of the convolutions for one size x size frame (forward hooks)."""
    import torch

    total = [0]

    def hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total[0] += out.numel() * (mod.in_channels // mod.groups) * k

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 1, size, size))
    for h in hs:
        h.remove()
    return total[0] / 1e9


def _build(name: str, weights: str | None):
    from peaknet_gui.model import PeakNet, PeakNetConfig

    if weights:
        from peaknet_gui.model.weights import load_weights

        net, _ = load_weights(weights)
        return net.eval()
    return PeakNet(PeakNetConfig(name=name, **CANDIDATES[name])).eval()


def run_one(name: str, backend: str, size: int, threads: int, repeat: int, weights: str | None) -> dict:
    import resource

    import numpy as np
    import torch

    torch.set_num_threads(threads)
    net = _build(name, weights)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 1, size, size)).astype(np.float32))
    params = sum(p.numel() for p in net.parameters())
    gmac = count_macs(net, 256) * (size / 256) ** 2
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    if backend.startswith("torch"):
        if backend == "torch_cl":
            net = net.to(memory_format=torch.channels_last)
            x = x.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            for _ in range(repeat + 1):
                t0 = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - t0)
    else:
        import onnxruntime as ort

        from peaknet_gui.model.export import export_onnx, quantize_onnx

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.onnx")
            export_onnx(net, path)
            if backend == "ort_int8":
                qpath = os.path.join(tmp, "q.onnx")
                quantize_onnx(path, qpath, calibration=[x.numpy()])
                path = qpath
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            feed = {sess.get_inputs()[0].name: x.numpy()}
            for _ in range(repeat + 1):
                t0 = time.perf_counter()
                sess.run(None, feed)
                times.append(time.perf_counter() - t0)
    times = times[1:]  # first run warms up
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "config": name,
        "backend": backend,
        "ms_median": 1000 * float(np.median(times)),
        "ms_best": 1000 * float(np.min(times)),
        "peak_rss_mb": peak / 1024,
        "run_rss_mb": (peak - base_rss) / 1024,
        "params": params,
        "gmac": gmac,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--size", type=int, default=1920)
    p.add_argument("--configs", default="paper,fast")
    p.add_argument("--backends", default="torch,torch_cl,ort,ort_int8")
    p.add_argument("--weights", help="benchmark this weights file instead of random-init configs")
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        name, backend = a.one.split(":")
        print(json.dumps(run_one(name, backend, a.size, a.threads, a.repeat, a.weights)))
        return 0
    names = ["weights"] if a.weights else a.configs.split(",")
    print(f"# {a.size}x{a.size} frame, batch 1, {a.threads} threads, repeat {a.repeat}")
    print(f"{'config':12s} {'backend':9s} {'median ms':>10s} {'best ms':>8s} {'peak MB':>8s} {'params':>8s} {'GMAC':>6s}")
    for name in names:
        for backend in a.backends.split(","):
            cmd = [sys.executable, __file__, "--one", f"{name}:{backend}", "--size", str(a.size),
                   "--threads", str(a.threads), "--repeat", str(a.repeat)]
            if a.weights:
                cmd += ["--weights", a.weights]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                print(f"{name:12s} {backend:9s} FAILED: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
                continue
            d = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"{name:12s} {backend:9s} {d['ms_median']:10.0f} {d['ms_best']:8.0f} {d['peak_rss_mb']:8.0f} "
                  f"{d['params']:8d} {d['gmac']:6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
