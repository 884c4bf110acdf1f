"""Fault-matrix cases: the base inputs, their corruptions and the special bad inputs.

A *case* is a base input (an HDF5/CXI run, a NeXus master + data file, a CBF plain/.gz/.bz2,
a TIFF, a ``.geom``, a weights file and its sidecar, a directory of frames, a command line)
plus one mutation (truncation at an offset, a byte flipped in the header/metadata/data, a
wrong type or shape, a bad option value).  :mod:`_fault_matrix` runs them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REAL = Path(os.environ.get("PEAKNET_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


@dataclass
class Case:
    id: str
    kind: str  # image | dir | geom | weights | cli
    base: str  # base file name in the base directory (or "" for cli)
    mutation: dict = field(default_factory=dict)
    expect_error: bool = False  # an "ok" outcome is "silent" (a bad value accepted)


# --- base inputs ------------------------------------------------------------------------------

def make_bases(folder: Path, real: bool = True) -> dict:
    """Write the base inputs into ``folder``; returns {name: kind}."""
    import h5py
    import numpy as np

    sys.path.insert(0, str(HERE))
    from _sources_files import write_cxi, write_eiger_pair, write_minicbf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    img = rng.poisson(20, (48, 64)).astype(np.int32)
    img[10:12, 20:22] = 900
    bases = {}
    stack = rng.poisson(20, (3, 48, 64)).astype(np.float32)
    write_cxi(folder / "plain.cxi", stack)
    bases["plain.cxi"] = "image"
    write_cxi(folder / "gzip.cxi", stack, compression={"compression": "gzip"})
    bases["gzip.cxi"] = "image"
    with h5py.File(folder / "cheetah.h5", "w") as f:
        f.create_dataset("/data/data", data=stack.astype(np.uint16))
    bases["cheetah.h5"] = "image"
    nx = folder / "nexus"
    nx.mkdir(exist_ok=True)
    master, _ = write_eiger_pair(nx, frames=(2,), shape=(40, 60))
    bases["nexus/" + master.name] = "image"
    write_minicbf(folder / "frame.cbf", img)
    write_minicbf(folder / "frame.cbf.gz", img, compress="gz")
    write_minicbf(folder / "frame.cbf.bz2", img, compress="bz2")
    for n in ("frame.cbf", "frame.cbf.gz", "frame.cbf.bz2"):
        bases[n] = "image"
    import fabio.tifimage

    fabio.tifimage.tifimage(data=img.astype(np.uint16), header={}).write(str(folder / "frame.tif"))
    bases["frame.tif"] = "image"
    (folder / "det.geom").write_text(
        "photon_energy = 9500\nclen = 0.1\nres = 13333.3\nadu_per_photon = 1\n\n"
        "p0/min_fs = 0\np0/max_fs = 63\np0/min_ss = 0\np0/max_ss = 23\np0/corner_x = -32\np0/corner_y = -24\n"
        "p0/fs = +1.0x\np0/ss = +1.0y\n\n"
        "p1/min_fs = 0\np1/max_fs = 63\np1/min_ss = 24\np1/max_ss = 47\np1/corner_x = -32\np1/corner_y = 2\n"
        "p1/fs = +1.0x\np1/ss = +1.0y\n")
    bases["det.geom"] = "geom"
    res = ROOT / "resources"
    shutil.copy(res / "peaknet.safetensors", folder / "w.safetensors")
    shutil.copy(res / "peaknet.json", folder / "w.json")
    bases["w.safetensors"] = "weights"
    bases["w.json"] = "sidecar"
    if real and REAL.is_dir():
        for rel in ("cspad_tile/cxitut13_r10_32_cspad2x1.h5", "agbh_pilatus100k/AgBehenate_228.hdf5",
                    "image_examples/dectris_eiger_master.h5", "cspad_tile/cspad2x1.geom"):
            p = REAL / rel
            if p.exists():
                name = "real_" + p.name
                shutil.copy(p, folder / name)
                bases[name] = "geom" if name.endswith(".geom") else "image"
    return bases


def _hdf5_data_ranges(path: Path) -> list:
    """(start, end) byte ranges of raw dataset storage in an HDF5 file (the rest is metadata)."""
    import h5py

    ranges = []
    try:
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                if not isinstance(obj, h5py.Dataset):
                    return
                try:
                    if obj.chunks is None:
                        off = obj.id.get_offset()
                        if off is not None:
                            ranges.append((off, off + obj.id.get_storage_size()))
                    else:
                        for k in range(obj.id.get_num_chunks()):
                            ci = obj.id.get_chunk_info(k)
                            ranges.append((ci.byte_offset, ci.byte_offset + ci.size))
                except Exception:
                    pass
            f.visititems(visit)
    except Exception:
        pass
    return sorted(ranges)


def _offsets(size: int, n: int, rnd: random.Random) -> list:
    fixed = [0, 1, 8, 64, 256, 512, 1024, 2048, 4096]
    fr = [int(size * x) for x in (0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.97, 0.99)]
    rest = [rnd.randrange(0, max(1, size)) for _ in range(max(0, n - len(fixed) - len(fr)))]
    offs = sorted({o for o in fixed + fr + rest if 0 <= o < size})
    return offs[:n] if n < len(offs) else offs


def file_cases(folder: Path, bases: dict, per_file: int, seed: int = 0) -> list:
    """Truncations and byte flips of every base file (about ``per_file`` of each kind and file)."""
    rnd = random.Random(seed)
    cases = []
    for name, kind in bases.items():
        size = (folder / name).stat().st_size
        for off in _offsets(size, per_file, rnd):
            cases.append(Case(f"{name}:trunc@{off}", kind if kind != "sidecar" else "weights", name, {"truncate": off}))
        if name.endswith((".h5", ".cxi", ".hdf5")):
            data = _hdf5_data_ranges(folder / name)
            meta_offs, data_offs = [], []
            for _ in range(per_file * 4):
                o = rnd.randrange(0, size)
                (data_offs if any(a <= o < b for a, b in data) else meta_offs).append(o)
            flips = [("meta", o) for o in meta_offs[:per_file]] + [("data", o) for o in data_offs[: max(2, per_file // 3)]]
        else:
            head = min(size, 1024 if kind != "geom" else size)
            flips = [("head", rnd.randrange(0, head)) for _ in range(per_file)]
            flips += [("data", rnd.randrange(0, size)) for _ in range(max(2, per_file // 3))]
        for where, off in flips:
            cases.append(Case(f"{name}:flip-{where}@{off}", kind if kind != "sidecar" else "weights", name,
                              {"flip": off, "xor": rnd.choice([0xFF, 0x01, 0x80, 0x5A])}))
    return cases


def special_cases() -> list:
    """Wrong types and shapes, bad values, bad options, bad files among good ones."""
    c = []
    for shape_kind in ("string", "1d", "4d", "complex", "compound", "empty", "huge", "scalar", "bool", "missing_link",
                       "corrupt_gzip", "nan"):
        c.append(Case(f"h5:{shape_kind}", "image", "", {"h5": shape_kind}))
    for g in ("no_clen", "clen_neg", "clen_zero", "overlap", "res_neg", "nan_corner", "empty", "binary", "huge_panel",
              "dup_panel"):
        c.append(Case(f"geom:{g}", "geom", "det.geom", {"geom": g}))
    for w in ("nan", "shape", "sidecar_list", "sidecar_badcfg", "sidecar_sha", "empty", "zero_header"):
        c.append(Case(f"weights:{w}", "weights", "w.safetensors", {"weights": w}))
    for d in ("trunc_cbf", "trunc_cbf_young", "corrupt_h5", "corrupt_h5_young", "trunc_bz2", "empty_h5"):
        c.append(Case(f"dir:{d}", "dir", "", {"dir": d}))
    for name, argv in CLI_CASES.items():
        c.append(Case(f"cli:{name}", "cli", "", {"argv": argv}, expect_error=True))
    return c


# {name: argv}; "{cxi}", "{cbf}", "{geom}", "{out}", "{w}" are filled in by the worker
CLI_CASES = {
    "calibrate_energy_inf": ["calibrate", "{cbf}", "--energy", "inf", "--out", "{out}"],
    "calibrate_energy_neg": ["calibrate", "{cbf}", "--energy", "-12", "--out", "{out}"],
    "calibrate_distance_zero": ["calibrate", "{cbf}", "--energy", "12", "--distance", "0", "--out", "{out}"],
    "calibrate_wavelength_nan": ["calibrate", "{cbf}", "--wavelength", "nan", "--out", "{out}"],
    "find_limit_neg": ["find", "{cxi}", "--algorithm", "peakfinder8", "--limit", "-1", "--out", "{out}", "--no-progress"],
    "find_dilation_neg": ["find", "{cxi}", "--algorithm", "peakfinder8", "--dilation", "-3", "--out", "{out}", "--no-progress"],
    "find_res_order": ["find", "{cxi}", "--algorithm", "peakfinder8", "--min-res", "5", "--max-res", "2", "--out", "{out}",
                       "--no-progress"],
    "find_formats_empty": ["find", "{cxi}", "--algorithm", "peakfinder8", "--formats", "", "--out", "{out}", "--no-progress"],
    "find_min_peaks_neg": ["find", "{cxi}", "--algorithm", "peakfinder8", "--min-peaks", "-2", "--out", "{out}", "--no-progress"],
    "find_res_neg": ["find", "{cxi}", "--algorithm", "peakfinder8", "--min-res", "-1", "--out", "{out}", "--no-progress"],
    "find_weights_shape": ["find", "{cxi}", "--weights", "{w_shape}", "--out", "{out}", "--no-progress"],
    "find_weights_nan": ["find", "{cxi}", "--weights", "{w_nan}", "--out", "{out}", "--no-progress"],
    "find_geom_clen_neg": ["find", "{cxi}", "--algorithm", "peakfinder8", "--geom", "{geom_neg}", "--out", "{out}",
                           "--no-progress"],
    "simulate_frames_neg": ["simulate", "--frames", "-3", "--out", "{out}/sim.cxi"],
    "simulate_energy_inf": ["simulate", "--frames", "1", "--energy", "inf", "--out", "{out}/sim.cxi"],
    "evaluate_truncated": ["evaluate", "--data", "{trunc_cxi}"],
}


def all_cases(folder: Path, bases: dict, per_file: int, seed: int = 0) -> list:
    return file_cases(folder, bases, per_file, seed) + special_cases()


# --- materialising a case's input ---------------------------------------------------------------

def _materialise(case: Case, bases_dir: Path, work: Path) -> Path:
    """The mutated input of a file case, written into ``work``."""
    src = bases_dir / case.base
    m = case.mutation
    dst = work / Path(case.base).name
    if case.base.startswith("nexus/"):
        dst = work / "nexus" / Path(case.base).name
        shutil.copytree(bases_dir / "nexus", work / "nexus")
    elif case.base in ("w.safetensors", "w.json"):
        shutil.copy(bases_dir / "w.safetensors", work / "w.safetensors")
        shutil.copy(bases_dir / "w.json", work / "w.json")
    else:
        shutil.copy(src, dst)
    if "truncate" in m:
        with open(dst, "r+b") as fh:
            fh.truncate(m["truncate"])
    if "flip" in m:
        with open(dst, "r+b") as fh:
            fh.seek(m["flip"])
            b = fh.read(1)
            if b:
                fh.seek(m["flip"])
                fh.write(bytes([b[0] ^ m["xor"]]))
    if case.base == "w.json":
        return work / "w.safetensors"
    return dst


def _special_h5(kind: str, work: Path) -> Path:
    import h5py
    import numpy as np

    p = work / f"{kind}.h5"
    with h5py.File(p, "w") as f:
        path = "/entry_1/data_1/data"
        if kind == "string":
            f[path] = np.array([b"abc", b"def"])
        elif kind == "1d":
            f[path] = np.arange(100, dtype=np.float32)
        elif kind == "4d":
            f[path] = np.ones((2, 2, 16, 16), np.float32)
        elif kind == "complex":
            f[path] = np.ones((2, 16, 16), np.complex64)
        elif kind == "compound":
            f[path] = np.zeros((2, 16, 16), dtype=[("a", "i4"), ("b", "f4")])
        elif kind == "empty":
            f.create_dataset(path, shape=(0, 16, 16), maxshape=(None, 16, 16), dtype=np.float32)
        elif kind == "huge":
            f.create_dataset(path, shape=(1, 100000, 100000), dtype=np.float32, chunks=(1, 1000, 1000))
        elif kind == "scalar":
            f[path] = 3.0
        elif kind == "bool":
            f[path] = np.ones((2, 16, 16), bool)
        elif kind == "missing_link":
            f[path] = h5py.ExternalLink("does_not_exist.h5", "/data")
        elif kind == "corrupt_gzip":
            f.create_dataset(path, data=np.arange(2 * 32 * 32, dtype=np.float32).reshape(2, 32, 32),
                             chunks=(1, 32, 32), compression="gzip")
        elif kind == "nan":
            f[path] = np.full((2, 16, 16), np.nan, np.float32)
    if kind == "corrupt_gzip":
        with h5py.File(p, "r") as f:
            ci = f[path].id.get_chunk_info(1)
        with open(p, "r+b") as fh:
            fh.seek(ci.byte_offset + ci.size // 2)
            fh.write(b"\xde\xad\xbe\xef" * 4)
    return p


def _special_geom(kind: str, bases_dir: Path, work: Path) -> Path:
    text = (bases_dir / "det.geom").read_text()
    p = work / "g.geom"
    if kind == "no_clen":
        text = text.replace("clen = 0.1\n", "")
    elif kind == "clen_neg":
        text = text.replace("clen = 0.1", "clen = -5")
    elif kind == "clen_zero":
        text = text.replace("clen = 0.1", "clen = 0")
    elif kind == "overlap":
        text = text.replace("p1/corner_y = 2", "p1/corner_y = -20")
    elif kind == "res_neg":
        text = text.replace("res = 13333.3", "res = -13333.3")
    elif kind == "nan_corner":
        text = text.replace("p0/corner_x = -32", "p0/corner_x = nan")
    elif kind == "empty":
        text = ""
    elif kind == "binary":
        p.write_bytes(bytes(range(256)) * 4)
        return p
    elif kind == "huge_panel":
        text = text.replace("p1/max_fs = 63", "p1/max_fs = 99999999999")
    elif kind == "dup_panel":
        text = text + "\np0/min_fs = 0\n"
    p.write_text(text)
    return p


def _special_weights(kind: str, bases_dir: Path, work: Path) -> Path:
    p = work / "w.safetensors"
    shutil.copy(bases_dir / "w.safetensors", p)
    shutil.copy(bases_dir / "w.json", work / "w.json")
    if kind in ("nan", "shape"):
        return _derived_weights(kind, bases_dir, work)
    side = json.loads((work / "w.json").read_text())
    if kind == "sidecar_list":
        (work / "w.json").write_text("[1, 2, 3]")
    elif kind == "sidecar_badcfg":
        side["config"] = {"base_channels": "many"}
        (work / "w.json").write_text(json.dumps(side))
    elif kind == "sidecar_sha":
        side["sha256"] = 12345
        (work / "w.json").write_text(json.dumps(side))
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "zero_header":
        with open(p, "r+b") as fh:
            fh.write(b"\xff" * 8)
    return p


def _derived_weights(kind: str, bases_dir: Path, work: Path) -> Path:
    """All-NaN weights without a sidecar, or weights of another shape under the shipped config."""
    import torch
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    src = bases_dir / "w.safetensors"
    with safe_open(str(src), "pt") as fh:
        meta = fh.metadata() or {}
    state = load_file(str(src))
    out = work / f"w_{kind}.safetensors"
    if kind == "nan":
        state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}
    else:
        k0 = sorted(k for k, v in state.items() if v.ndim == 4)[0]
        v = state[k0]
        state[k0] = torch.zeros((v.shape[0] + 3,) + tuple(v.shape[1:]), dtype=v.dtype)
    save_file(state, str(out), metadata=meta)
    return out


def _special_dir(kind: str, bases_dir: Path, work: Path) -> tuple:
    """A directory of good frames plus one bad one; returns (dir, bad file name)."""
    d = work / "frames"
    d.mkdir()
    h5 = kind in ("corrupt_h5", "corrupt_h5_young", "empty_h5")
    good = "plain.cxi" if h5 else "frame.cbf"
    for k in range(2):
        shutil.copy(bases_dir / good, d / f"f_{k}{Path(good).suffix}")
    if kind.startswith("trunc_cbf"):
        bad = d / "f_9.cbf"
        data = (bases_dir / "frame.cbf").read_bytes()
        bad.write_bytes(data[: data.index(b"\x0c\x1a\x04\xd5") + 200])  # cut inside the binary section
    elif kind == "trunc_bz2":
        bad = d / "f_9.cbf.bz2"
        data = (bases_dir / "frame.cbf.bz2").read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "empty_h5":
        bad = d / "f_9.cxi"
        bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    else:
        bad = d / "f_9.cxi"
        data = (bases_dir / "plain.cxi").read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    if not kind.endswith("_young"):
        old = time.time() - 3600
        for f in d.iterdir():
            os.utime(f, (old, old))
    return d, bad.name
