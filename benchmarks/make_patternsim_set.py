"""An evaluation set made with CrystFEL's ``pattern_sim`` (another simulator than ours), with
exact per-spot truth.

    PATH=/path/to/crystfel/bin:$PATH .venv/bin/python benchmarks/make_patternsim_set.py \\
        --out /work/runs/patternsim [--frames 12] [--sets lysozyme,thaumatin] [--seed 1]

``pattern_sim`` (CrystFEL 0.10.2, the last release that has it; called from PATH, never
bundled) computes the Bragg diffraction of small crystals (random orientation, random size
between ``--min-size`` and ``--max-size`` nm, XFEL-like: most spots 1-3 px) without noise, in
expected photons per pixel (``adu_per_photon = 1``, ``--no-noise``, ``--no-fringes``).  Our own
physics is added on top, from :mod:`peaknet_gui.sim`: the diffuse background with its water
ring (:func:`~peaknet_gui.sim.background.render_background`), metal powder rings on half the
frames (:func:`~peaknet_gui.sim.artifacts.render_rings`), a beamstop with its arm
(:func:`~peaknet_gui.sim.artifacts.beamstop_transmission`), and the Rayonix-like CCD readout:
point spread, Poisson photons, gain, offset and read noise (:func:`~peaknet_gui.sim.noise.read_out`;
no hot or dead pixels: the set measures spot finding).

Truth (written beside each run as ``<set>_truth.csv``): a spot is a connected group (8-connected)
of pixels whose expected spot photons S (after the beamstop and the point spread) reach 0.1 of
the local background noise sigma, sigma^2 = V = expected diffuse photons + read noise^2 in
photons; its integrated SNR is that of the group's best aperture against the background noise:
pixels taken in order of S / V, the prefix with the highest sum(S) / sqrt(sum(V)) -- what an
ideal integration could detect, whatever a peak finder would say.  ``n_pixels`` counts the
group's pixels with S >= 3 sigma (at least 1): the spot's size as a per-pixel 3-sigma test sees
it (DIALS' n_signal); ``n_region`` the pixels of the best aperture.
``fs, ss`` are the S-weighted centroid (pixel indices, first pixel centre at 0, 0); ``h, k, l``
the reflection at the brightest pixel (from the orientation pattern_sim records).  Every group
with SNR >= 2 is listed, so that a found peak on a real but sub-threshold spot is not called a
false one; recall is scored on SNR >= 6.

Frame brightness: each frame's spot photons are scaled so that the 95th percentile of its
groups' total photons is drawn log-uniformly in ``--bright`` (default 40-400 photons).

Written per set: ``<set>.cxi`` (``/entry_1/data_1/data`` (N, 1920, 1920) uint16),
``<set>.geom`` (CrystFEL geometry of the run; ``peak_list = /entry_1/result_1``),
``<set>.cell``, ``<set>_truth.csv``, ``<set>_frames.json`` (per-frame parameters).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from peaknet_gui.geometry.detector import HC_EV_A  # noqa: E402
from peaknet_gui.sim.artifacts import MATERIALS, Beamstop, RingArtifact, beamstop_transmission, render_rings  # noqa: E402
from peaknet_gui.sim.background import BackgroundParams, render_background  # noqa: E402
from peaknet_gui.sim.detectors import rayonix_mx340  # noqa: E402
from peaknet_gui.sim.noise import Personality, read_out  # noqa: E402

N = 1920
PIXEL_M = 0.177e-3
SETS = {
    # name: (lattice, centering, unique axis, a, b, c, al, be, ga, absences rule, Wilson B)
    "lysozyme": ("tetragonal", "P", "c", 79.1, 79.1, 37.9, 90, 90, 90, "P43212", 20.0),
    "thaumatin": ("tetragonal", "P", "c", 58.0, 58.0, 151.0, 90, 90, 90, "P41212", 25.0),
}


def cell_text(spec) -> str:
    lat, cen, ua, a, b, c, al, be, ga = spec[:9]
    return (f"CrystFEL unit cell file version 1.0\n\nlattice_type = {lat}\nunique_axis = {ua}\ncentering = {cen}\n"
            f"a = {a:.2f} A\nb = {b:.2f} A\nc = {c:.2f} A\nal = {al:.2f} deg\nbe = {be:.2f} deg\nga = {ga:.2f} deg\n")


def write_intensities(path: Path, spec, d_min: float, rng: np.random.Generator) -> int:
    """A P1 reflection list of Wilson-like random intensities (acentric: exponential around
    exp(-B / (2 d^2))), zero for the space group's systematic absences (h00, 0k0: h odd;
    00l: l not 4n for P4x212)."""
    a, b, c, B = spec[3], spec[4], spec[5], spec[10]
    hm, km, lm = (int(np.ceil(x / d_min)) for x in (a, b, c))
    h, k, l = np.meshgrid(np.arange(-hm, hm + 1), np.arange(-km, km + 1), np.arange(-lm, lm + 1), indexing="ij")
    h, k, l = h.ravel(), k.ravel(), l.ravel()
    inv_d2 = (h / a) ** 2 + (k / b) ** 2 + (l / c) ** 2
    keep = (inv_d2 <= 1.0 / d_min**2) & (inv_d2 > 0)
    h, k, l, inv_d2 = h[keep], k[keep], l[keep], inv_d2[keep]
    mean = 1e4 * np.exp(-B * inv_d2 / 2.0)
    inten = mean * rng.exponential(1.0, size=len(h))
    absent = ((h == 0) & (k == 0) & (l % 4 != 0)) | ((k == 0) & (l == 0) & (h % 2 != 0)) | ((h == 0) & (l == 0) & (k % 2 != 0))
    inten[absent] = 0.0
    with open(path, "w") as fh:
        fh.write("CrystFEL reflection list version 2.0\nSymmetry: 1\n")
        fh.write("   h    k    l          I    phase   sigma(I)   nmeas\n")
        for row in zip(h, k, l, inten):
            fh.write(f"{row[0]:4d} {row[1]:4d} {row[2]:4d} {row[3]:10.2f}        -       0.00       1\n")
        fh.write("End of reflections\n")
    return len(h)


def geom_text(distance_m: float, energy_ev: float, data: str, stack: bool, adu_per_photon: float = 1.0,
              bandwidth: float = 0.0) -> str:
    lines = ["; Rayonix MX340-like, 1920 x 1920, 0.177 mm pixels (made by benchmarks/make_patternsim_set.py)",
             f"photon_energy = {energy_ev:g}", f"clen = {distance_m:g}", f"res = {1.0 / PIXEL_M:.4f}",
             f"adu_per_photon = {adu_per_photon:g}", "max_adu = 1e9", f"data = {data}"]
    if bandwidth:
        lines.append(f"bandwidth = {bandwidth:g}")
    if stack:
        lines += ["dim0 = %", "dim1 = ss", "dim2 = fs", "peak_list = /entry_1/result_1"]
    lines += ["", "p0/min_fs = 0", f"p0/max_fs = {N - 1}", "p0/min_ss = 0", f"p0/max_ss = {N - 1}",
              f"p0/corner_x = {-N / 2:g}", f"p0/corner_y = {-N / 2:g}", "p0/fs = +1.0x", "p0/ss = +1.0y", ""]
    return "\n".join(lines)


def run_pattern_sim(work: Path, name: str, args, n_frames: int) -> list:
    exe = shutil.which("pattern_sim")
    if exe is None:
        sys.exit("pattern_sim not found on PATH (build CrystFEL 0.10.2 from its public source)")
    cmd = [exe, "-g", str(work / "sim.geom"), "-p", str(work / f"{name}.cell"), "-i", str(work / f"{name}.hkl"),
           "-y", "1", "-n", str(n_frames), "-r", "--no-noise", "--no-fringes", f"--min-size={args.min_size}",
           f"--max-size={args.max_size}", "-o", str(work / name), "-s", str(args.spectrum_samples),
           "-x", "gaussian"]
    t = time.perf_counter()
    with open(work / f"{name}_pattern_sim.log", "w") as fh:
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=str(work))
    if r.returncode != 0:
        sys.exit(f"pattern_sim failed, see {work / (name + '_pattern_sim.log')}")
    print(f"  pattern_sim {name}: {n_frames} frames in {time.perf_counter() - t:.0f} s")
    files = [work / f"{name}-{i}.h5" for i in range(1, n_frames + 1)] if n_frames > 1 else [work / name]
    return files


def read_sim(path: Path) -> tuple:
    import h5py

    with h5py.File(path, "r") as f:
        img = np.asarray(f["/data/data"], dtype=np.float64)
        g = f["/pattern_sim"]
        recip = np.stack([np.asarray(g[k], dtype=np.float64) for k in ("astar", "bstar", "cstar")])
    return img, recip


def _complete(path: Path) -> bool:
    """A pattern_sim output that was written to the end (its metadata group comes last)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "/pattern_sim/cstar" in f and "/data/data" in f
    except OSError:
        return False


def hkl_at(fs, ss, recip: np.ndarray, distance_m: float, wavelength_a: float) -> np.ndarray:
    """Miller indices nearest to the scattering vector at data positions (pixel indices);
    ``recip`` rows a*, b*, c* in m^-1 (lab frame) as pattern_sim records them."""
    x = (np.asarray(fs) + 0.5 - N / 2) * PIXEL_M
    y = (np.asarray(ss) + 0.5 - N / 2) * PIXEL_M
    r = np.sqrt(x * x + y * y + distance_m**2)
    lam = wavelength_a * 1e-10
    q = np.stack([x / r, y / r, distance_m / r - 1.0], axis=1) / lam
    return np.rint(np.linalg.solve(recip.T, q.T).T).astype(int)


def frame_truth(spots: np.ndarray, var: np.ndarray, min_snr: float = 2.0) -> list:
    """Spots of one frame (module doc): 8-connected groups of pixels with S >= 0.1 sigma; each
    group's SNR is that of its best aperture (pixels taken in order of S / V, the prefix with
    the highest sum(S) / sqrt(sum(V))); ``n_pixels``: pixels with S >= 3 sigma (at least 1)."""
    from scipy import ndimage

    sigma = np.sqrt(var)
    lab, n = ndimage.label(spots >= 0.1 * sigma, structure=np.ones((3, 3), bool))
    rows = []
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        m = lab[sl] == i
        s, v = spots[sl][m], var[sl][m]
        order = np.argsort(-(s / v))
        snr_curve = np.cumsum(s[order]) / np.sqrt(np.cumsum(v[order]))
        best = int(np.argmax(snr_curve))
        snr = float(snr_curve[best])
        if snr < min_snr:
            continue
        yy, xx = np.nonzero(m)
        tot = float(s.sum())
        j = int(np.argmax(s))
        rows.append(dict(fs=float((s * (xx + sl[1].start)).sum() / tot), ss=float((s * (yy + sl[0].start)).sum() / tot),
                         snr=snr, n_pixels=max(1, int(np.sum(s >= 3 * np.sqrt(v)))), n_region=best + 1,
                         photons=tot, max_photons=float(s[j]), peak_ss=int(yy[j] + sl[0].start),
                         peak_fs=int(xx[j] + sl[1].start)))
    return rows


def brightness_scale(raw: np.ndarray, target: float) -> float:
    from scipy import ndimage

    lab, n = ndimage.label(raw > raw.max() * 1e-6, structure=np.ones((3, 3), bool))
    if n == 0:
        return 1.0
    sums = ndimage.sum_labels(raw, lab, np.arange(1, n + 1))
    return float(target / max(np.percentile(sums, 95), 1e-30))


def make_set(name: str, spec, args, out: Path) -> None:
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed + (0 if name == "lysozyme" else 1000))
    energy = args.energy_ev
    wl = HC_EV_A / energy
    dist = args.distance_mm * 1e-3
    tth_max = np.arctan(np.sqrt(2) * N / 2 * PIXEL_M / dist)
    d_min = wl / (2 * np.sin(tth_max / 2)) * 0.98
    (work / f"{name}.cell").write_text(cell_text(spec))
    (out / f"{name}.cell").write_text(cell_text(spec))
    (work / "sim.geom").write_text(geom_text(dist, energy, "/data/data", False, bandwidth=args.bandwidth))
    if not (work / f"{name}.hkl").exists():
        nref = write_intensities(work / f"{name}.hkl", spec, d_min, np.random.default_rng(args.seed + 77 + (name != "lysozyme")))
        print(f"  {name}: {nref} P1 reflections to {d_min:.2f} A")
    if args.reuse_sim:
        files = [f for f in sorted(work.glob(f"{name}-*.h5"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
                 if _complete(f)][: args.frames]
        print(f"  {name}: {len(files)} pattern_sim frames reused")
    else:
        files = run_pattern_sim(work, name, args, args.frames)

    det = rayonix_mx340().with_values(distance_m=dist, photon_energy_ev=energy)
    pix = det.pixels
    gain = float(rng.uniform(*args.gain))
    pers = Personality(adu_per_photon=gain, offset_adu=float(rng.uniform(8, 30)), read_noise_adu=float(rng.uniform(1.5, 4)),
                       psf_sigma_px=float(rng.uniform(0.3, 0.6)), gain_spread=0.0, seed=int(rng.integers(2**31)))
    rn2 = pers.read_noise_photons2
    frames, truth, meta = [], [], []
    from scipy.ndimage import gaussian_filter

    for i, f in enumerate(files):
        raw, recip = read_sim(f)
        target = float(np.exp(rng.uniform(np.log(args.bright[0]), np.log(args.bright[1]))))
        k = brightness_scale(raw, target)
        bgp = BackgroundParams(air=float(rng.uniform(0.5, 2.0)), water=float(rng.uniform(1.0, 5.0)),
                               flat=float(rng.uniform(0.02, 0.2)), scale=float(rng.uniform(0.7, 1.3)))
        diffuse = render_background(pix, bgp, wl)
        rings = []
        if i % 2 == 1:
            mat = ["aluminium", "steel", "copper"][i % 3]
            d, inten = MATERIALS[mat]
            ring = RingArtifact(material=mat, d_spacings=list(d), intensities=list(inten),
                                peak_photons=float(rng.uniform(5, 30)), fwhm_px=float(rng.uniform(1.5, 3.0)),
                                speckles=0, seed=int(rng.integers(2**31)))
            render_rings(pix, ring, wl, diffuse)
            rings.append(mat)
        bs = Beamstop(radius_px=float(rng.uniform(15, 30)), arm_angle_deg=float(rng.uniform(0, 360)),
                      arm_width_px=float(rng.uniform(8, 14)))
        trans = pix.to_image(beamstop_transmission(pix, bs), fill=1.0, dtype=np.float32)
        diffuse_img = pix.to_image(diffuse, dtype=np.float32) * trans
        spots = (k * raw).astype(np.float32) * trans
        expected = diffuse_img + spots
        data, _ = read_out(expected, det, pers, np.random.default_rng(int(rng.integers(2**31))))
        spots_b = gaussian_filter(spots, pers.psf_sigma_px, mode="nearest", truncate=3.0) if pers.psf_sigma_px >= 0.05 else spots
        rows = frame_truth(spots_b.astype(np.float64), diffuse_img.astype(np.float64) + rn2)
        if rows:
            hkl = hkl_at([r["peak_fs"] for r in rows], [r["peak_ss"] for r in rows], recip, dist, wl)
            for r, m in zip(rows, hkl):
                r["frame"], (r["h"], r["k"], r["l"]) = i, (int(v) for v in m)
        truth += rows
        frames.append(data)
        n6 = sum(r["snr"] >= 6 for r in rows)
        meta.append(dict(frame=i, source=f.name, brightness_p95_photons=target, scale=k, rings=rings,
                         background=dict(air=bgp.air, water=bgp.water, flat=bgp.flat, scale=bgp.scale),
                         beamstop=dict(radius_px=bs.radius_px, arm_angle_deg=bs.arm_angle_deg), spots_snr6=int(n6),
                         spots_listed=len(rows)))
        print(f"  {name} frame {i}: {len(rows)} spots (SNR >= 2), {n6} with SNR >= 6, rings {rings or '-'}")
    write_run(out, name, frames, truth, meta, dist, energy, pers)


def write_run(out: Path, name: str, frames: list, truth: list, meta: list, dist: float, energy: float, pers) -> None:
    import h5py

    with h5py.File(out / f"{name}.cxi.tmp", "w") as f:
        f["/cxi_version"] = 150
        ds = f.create_dataset("/entry_1/data_1/data", data=np.stack(frames), chunks=(1, N, N), compression="gzip",
                              compression_opts=1, shuffle=True)
        ds.attrs["axes"] = "experiment_identifier:y:x"
        det = "/entry_1/instrument_1/detector_1"
        f[f"{det}/distance"] = np.full(len(frames), dist)
        f[f"{det}/x_pixel_size"] = PIXEL_M
        f[f"{det}/y_pixel_size"] = PIXEL_M
        f["/entry_1/instrument_1/source_1/energy"] = np.full(len(frames), energy * 1.602176634e-19)
        f["/entry_1/instrument_1/source_1/photon_energy_eV"] = np.full(len(frames), energy)
    os.replace(out / f"{name}.cxi.tmp", out / f"{name}.cxi")
    (out / f"{name}.geom").write_text(geom_text(dist, energy, "/entry_1/data_1/data", True, adu_per_photon=pers.adu_per_photon))
    cols = ["frame", "fs", "ss", "snr", "n_pixels", "n_region", "photons", "max_photons", "h", "k", "l"]
    with open(out / f"{name}_truth.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in truth:
            w.writerow([r["frame"], f"{r['fs']:.3f}", f"{r['ss']:.3f}", f"{r['snr']:.2f}", r["n_pixels"], r["n_region"],
                        f"{r['photons']:.2f}", f"{r['max_photons']:.3f}", r["h"], r["k"], r["l"]])
    (out / f"{name}_frames.json").write_text(json.dumps(dict(detector=pers.as_dict(), distance_m=dist, photon_energy_ev=energy,
                                                             frames=meta), indent=1))
    print(f"wrote {out / (name + '.cxi')} ({len(frames)} frames), {len(truth)} truth spots")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/work/runs/patternsim")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--sets", default="lysozyme,thaumatin")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--energy-ev", type=float, default=9500.0)
    ap.add_argument("--distance-mm", type=float, default=150.0)
    ap.add_argument("--min-size", type=float, default=150.0, help="crystal size, nm (default: %(default)s)")
    ap.add_argument("--max-size", type=float, default=400.0)
    ap.add_argument("--bandwidth", type=float, default=0.002, help="relative FWHM of the (Gaussian) spectrum")
    ap.add_argument("--spectrum-samples", type=int, default=3)
    ap.add_argument("--bright", type=float, nargs=2, default=(40.0, 400.0),
                    help="range of the frames' 95th-percentile spot photons (default: %(default)s)")
    ap.add_argument("--gain", type=float, nargs=2, default=(1.0, 4.0), help="ADU per photon range")
    ap.add_argument("--reuse-sim", action="store_true",
                    help="skip pattern_sim: use the complete <set>-N.h5 files already in <out>/work (at most --frames)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.sets.split(","):
        make_set(name, SETS[name], args, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
