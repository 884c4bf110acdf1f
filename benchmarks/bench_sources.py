"""Run-source speed: opening a 10,000-frame HDF5 run, random access to 1920x1920 frames.

    .venv/bin/python benchmarks/bench_sources.py [--dir /tmp/peaknet_bench_sources] [--repeat 15]

Goals (issue 2): open a 10,000-frame HDF5 run < 1 s; one 1920x1920 frame from local HDF5
< 20 ms (compressed and uncompressed); from a .cbf.bz2 < 150 ms.  Wall times depend on what else
runs on the machine; the CPU time this process spent per frame is printed beside them (on an idle
machine the wall time of a single-threaded read is about that).  Times are for ``source[i]``
-- the whole Frame (float32 data + bad-pixel map + metadata) -- with the files in the page cache
(freshly written).  The 10,000-frame file is one chunked (N, 1920, 1920) stack of which only a
few chunks are written (the rest are unallocated), so it takes little disk while opening does
exactly what it does for a full file (nothing is scanned).
"""

from __future__ import annotations

import argparse
import bz2
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import peaknet_gui  # noqa: E402,F401  (before h5py: HDF5 file locking off, as in the application)
import h5py  # noqa: E402
import hdf5plugin  # noqa: E402
import numpy as np  # noqa: E402

from peaknet_gui.sources import open_run  # noqa: E402
from peaknet_gui.sources import cbf as cbf_mod  # noqa: E402

SHAPE = (1920, 1920)


def pilatus_like(rng, shape=SHAPE) -> np.ndarray:
    """Poisson background of a few counts, a few hundred spots, module gaps of -1."""
    img = rng.poisson(3.0, shape).astype(np.int32)
    ys, xs = rng.integers(0, shape[0], 300), rng.integers(0, shape[1], 300)
    img[ys, xs] += rng.integers(100, 50000, 300)
    img[:, 487:494] = -1
    img[195:212, :] = -1
    return img


def ms(ts) -> str:
    return f"median {statistics.median(ts) * 1e3:7.2f} ms  (min {min(ts) * 1e3:.2f}, max {max(ts) * 1e3:.2f}, n={len(ts)})"


def bench_open_10k(d: Path, repeat: int) -> None:
    n = 10_000
    path = d / "run10k.cxi"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("/entry_1/data_1/data", shape=(n,) + SHAPE, dtype=np.float32, chunks=(1,) + SHAPE,
                              **hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))
        written = [0, 1234, 5000, 9999]
        for i in written:
            ds[i] = pilatus_like(rng).astype(np.float32)
        src_g = "/entry_1/instrument_1/source_1"
        det = "/entry_1/instrument_1/detector_1"
        f[f"{src_g}/photon_energy_eV"] = rng.normal(9500, 5, n)
        f[f"{src_g}/energy"] = f[f"{src_g}/photon_energy_eV"][()] * 1.602176634e-19
        f[f"{det}/distance"] = np.full(n, 0.1)
        f[f"{det}/x_pixel_size"] = 75e-6
        f[f"{det}/y_pixel_size"] = 75e-6
        f.create_dataset("/entry_1/data_1/labels", shape=(n,) + SHAPE, dtype=np.uint8, chunks=(1,) + SHAPE,
                         compression="gzip")
    print(f"10,000-frame run: {path} ({path.stat().st_size / 1e6:.1f} MB on disk, chunked {SHAPE}, bitshuffle-lz4)")
    ts, tl = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        src = open_run(str(path))
        nf = len(src)
        src.event(9999)
        src.metadata(5000)
        t1 = time.perf_counter()
        src[9999]
        t2 = time.perf_counter()
        src.close()
        ts.append(t1 - t0)
        tl.append(t2 - t1)
    assert nf == n
    print(f"  open + len + event(9999) + metadata(5000): {ms(ts)}   goal < 1000 ms")
    print(f"  then read frame 9999 (bitshuffle-lz4 float32):  {ms(tl)}")
    # the same with every one of the 10,000 frames written (small 128x128 frames)
    full = d / "run10k_full.cxi"
    with h5py.File(full, "w") as f:
        f.create_dataset("/entry_1/data_1/data", data=rng.poisson(3.0, (n, 128, 128)).astype(np.uint16),
                         chunks=(1, 128, 128), **hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))
        f["/entry_1/instrument_1/source_1/photon_energy_eV"] = np.full(n, 9500.0)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        src = open_run(str(full))
        len(src), src.event(9999), src.metadata(5000), src[7777]
        ts.append(time.perf_counter() - t0)
        src.close()
    print(f"10,000 frames all written ({full.stat().st_size / 1e6:.0f} MB, 128x128 uint16): open + len + event + "
          f"metadata + read one frame: {ms(ts)}")


def bench_h5_random_access(d: Path, repeat: int) -> None:
    rng = np.random.default_rng(1)
    n = 24
    frames = np.stack([pilatus_like(rng) for _ in range(n)])
    variants = {
        "uncompressed float32 (CXI)": (frames.astype(np.float32), {}),
        "uncompressed int32": (frames, {}),
        "gzip-1 float32": (frames.astype(np.float32), {"compression": "gzip", "compression_opts": 1}),
        "shuffle+gzip-1 float32 (sim CXI)": (frames.astype(np.float32),
                                             {"compression": "gzip", "compression_opts": 1, "shuffle": True}),
        "shuffle+gzip-1 int32": (frames, {"compression": "gzip", "compression_opts": 1, "shuffle": True}),
        "lz4 float32": (frames.astype(np.float32), dict(hdf5plugin.LZ4())),
        "bitshuffle-lz4 uint16 (Eiger)": (np.clip(frames, 0, 65534).astype(np.uint16),
                                          dict(hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))),
    }
    print(f"random access to one {SHAPE[0]}x{SHAPE[1]} frame of a {n}-frame local HDF5 stack (goal < 20 ms):")
    for name, (arr, comp) in variants.items():
        path = d / f"h5_{abs(hash(name)) % 10**8}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("/entry_1/data_1/data", data=arr, chunks=(1,) + SHAPE, **comp)
        src = open_run(str(path))
        src[0]
        # every frame once, in random order, so no chunk cache helps; the same for plain h5py
        order = np.random.default_rng(2).permutation(np.arange(1, n))[: min(repeat, n - 1)]
        ts, h5py_ts = [], []
        with h5py.File(path, "r") as f:  # plain h5py on the same frames, interleaved (same machine load)
            ds = f["/entry_1/data_1/data"]
            ds[0]
            cpu = []
            for i in order:
                t0, c0 = time.perf_counter(), time.process_time()
                src[int(i)]
                ts.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                t0 = time.perf_counter()
                ds[int(n - i)]
                h5py_ts.append(time.perf_counter() - t0)
        src.close()
        print(f"  {name:34s} Frame: {ms(ts)}, CPU {statistics.median(cpu) * 1e3:.1f} ms   (plain h5py read of the "
              f"frame alone: {statistics.median(h5py_ts) * 1e3:.1f} ms) [{path.stat().st_size / n / 1e6:.1f} MB/frame]")


def bench_cbf_bz2(d: Path, repeat: int) -> None:
    from _sources_files import minicbf_bytes

    rng = np.random.default_rng(3)
    n = 6
    paths = []
    for k in range(n):
        content = minicbf_bytes(pilatus_like(rng), cutoff=1_000_000)
        p = d / f"frame_{k:04d}.cbf.bz2"
        p.write_bytes(bz2.compress(content, 9))
        paths.append(p)
    raw_size = len(content)
    print(f"random access to one {SHAPE[0]}x{SHAPE[1]} frame of a .cbf.bz2 series (goal < 150 ms); "
          f"{raw_size / 1e6:.1f} MB CBF -> {paths[0].stat().st_size / 1e6:.2f} MB bz2; "
          f"indexed_bzip2 installed: {cbf_mod._ibz2 is not None} (used block-parallel with >= 4 CPUs; here {os.cpu_count()})")
    from peaknet_gui.sources.fabio_series import FabioSeries

    src = FabioSeries([str(p) for p in paths], prefetch=False)
    assert len(src) == n
    ts, cpu = [], []
    for r in range(repeat):
        i = (r * 5) % n
        src._frames_cache.clear()  # cold: decoded from the file every time
        t0, c0 = time.perf_counter(), time.process_time()
        src[i]
        ts.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    t0 = time.perf_counter()
    src[i]
    cached = time.perf_counter() - t0
    src.close()
    print(f"  Frame, random access (cold, decoded from the file): {ms(ts)}, CPU {statistics.median(cpu) * 1e3:.1f} ms")
    print(f"  Frame again (decoded-frame cache):                  {cached * 1e3:.2f} ms")
    src = FabioSeries([str(p) for p in paths])  # prefetch on (the default)
    ts = []
    for i in range(n):
        t0 = time.perf_counter()
        src[i]
        ts.append(time.perf_counter() - t0)
        time.sleep(0.25)  # a viewer stepping at 4 frames/s, or the model working on the frame
    src.close()
    print(f"  Frame, stepping forward at 4 frames/s (next frame prefetched): {ms(ts[1:])}")
    blob = paths[0].read_bytes()
    tb, td = [], []
    for _ in range(max(3, repeat // 3)):
        t0 = time.perf_counter()
        content = cbf_mod._bunzip2(blob)
        t1 = time.perf_counter()
        cbf_mod.decode(content, "x.cbf")
        t2 = time.perf_counter()
        tb.append(t1 - t0)
        td.append(t2 - t1)
    t0 = time.perf_counter()
    bz2.decompress(blob)
    std = time.perf_counter() - t0
    print(f"  of which bz2 decompression {statistics.median(tb) * 1e3:.1f} ms (stdlib bz2 single-thread: "
          f"{std * 1e3:.1f} ms), byte-offset decoding {statistics.median(td) * 1e3:.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/peaknet_bench_sources")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    try:
        bench_open_10k(d, args.repeat)
        bench_h5_random_access(d, args.repeat)
        bench_cbf_bz2(d, args.repeat)
    finally:
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
