"""Soak: ``peaknet find`` over 10,000 small simulated frames with its memory sampled.

    .venv/bin/python benchmarks/bench_soak.py [--frames 10000] [--size 128] [--algorithm peakfinder8]

Simulates ``--unique`` frames with the project's simulator (``peaknet simulate``, Pilatus 6M
cropped to SIZE x SIZE), writes a run of ``--frames`` frames cycling through them, runs
``peaknet find`` on it in a subprocess and samples its resident memory (VmRSS) every 0.25 s.
Prints the RSS after warm-up (20 % of the run time) and at the end, the peak, the drift per
1,000 frames after warm-up (a least-squares slope against the frames done, assuming a steady
rate), frames/s, and checks the output set (summary.json manifest against the files).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def make_run(folder: Path, frames: int, unique: int, size: int) -> Path:
    import h5py

    sim = folder / "sim.cxi"
    subprocess.run([sys.executable, "-m", "peaknet_gui.cli.main", "simulate", "--frames", str(unique), "--out", str(sim),
                    "--detector", "pilatus-6m", "--crop", f"{size}x{size}", "--seed", "5", "--no-progress"],
                   check=True, cwd=ROOT)
    with h5py.File(sim, "r") as f:
        data = f["/entry_1/data_1/data"][()].astype(np.float32)
        energy = float(f["/entry_1/instrument_1/source_1/photon_energy_eV"][0]) if \
            "/entry_1/instrument_1/source_1/photon_energy_eV" in f else 12000.0
    run = folder / "soak.cxi"
    with h5py.File(run, "w") as f:
        d = f.create_dataset("/entry_1/data_1/data", shape=(frames, size, size), dtype=np.float32,
                             chunks=(1, size, size))
        for k in range(0, frames, unique):
            n = min(unique, frames - k)
            d[k:k + n] = data[:n]
        f["/entry_1/instrument_1/source_1/photon_energy_eV"] = np.full(frames, energy)
    geom = sim.with_suffix(".geom")
    (folder / "soak.geom").write_text(geom.read_text())
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--unique", type=int, default=50, help="frames simulated (the run cycles through them)")
    ap.add_argument("--size", type=int, default=128, help="frame side in pixels")
    ap.add_argument("--algorithm", default="peakfinder8", choices=("peakfinder8", "peaknet"))
    ap.add_argument("--trace", action="store_true", help="print the RSS samples (time, MB) every 5 s")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak_") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        run = make_run(tmp, args.frames, args.unique, args.size)
        print(f"run: {args.frames} frames of {args.size}x{args.size} ({args.unique} simulated, cycled) "
              f"in {time.perf_counter() - t0:.0f} s")
        out = tmp / "out"
        cmd = [sys.executable, "-m", "peaknet_gui.cli.main", "find", str(run), "--geom", str(tmp / "soak.geom"),
               "--algorithm", args.algorithm, "--out", str(out), "--no-progress", "--device", "cpu"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        samples = []
        while proc.poll() is None:
            samples.append((time.perf_counter() - t0, rss_mb(proc.pid)))
            time.sleep(0.25)
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(stdout, stderr)
            return 1
        doc = json.loads((out / "summary.json").read_text())
        for e in doc["manifest"]:
            assert (out / e["name"]).stat().st_size == e["size"], e
        n = doc["totals"]["frames"]
        if args.trace:
            print("  ".join(f"{t:.0f}s:{m:.0f}" for t, m in samples[::20]))
        s = np.array([x for x in samples if x[1] == x[1]])
        warm = s[s[:, 0] >= 0.2 * wall]
        frames_at = warm[:, 0] / wall * n  # frames done, assuming a steady rate
        slope = np.polyfit(frames_at, warm[:, 1], 1)[0] * 1000 if len(warm) > 2 else float("nan")
        print(f"find: {n} frames in {wall:.0f} s ({n / wall:.0f} frames/s, {args.algorithm}), "
              f"{doc['totals']['hits']} hits, status {doc['status']}, {len(doc['manifest'])} files in the manifest")
        print(f"memory (RSS): after warm-up {warm[0, 1]:.0f} MB, end {s[-1, 1]:.0f} MB, peak {s[:, 1].max():.0f} MB; "
              f"drift after warm-up {slope:+.2f} MB per 1,000 frames ({len(s)} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
