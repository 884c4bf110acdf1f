"""How realistic are the simulated frames?  Real versus simulated, measured with one ruler.

    nice .venv/bin/python benchmarks/bench_sim_realism.py [--quick] [--sim-frames 6]

Pilatus 6M (Diamond I24 thaumatin grid stills, ../shared/data/real/thaumatin_grid) against
(a) the ``thaumatin_like`` preset and (b) the default training mix on the ``pilatus-6m`` model:

* background against radius (median of the pixels outside spots, photons) and noise (variance /
  mean of the same pixels: 1 = Poisson);
* spots per frame: DIALS' lists, a DIALS-like dispersion finder (:mod:`peaknet_gui.sim.realism`)
  on real and simulated frames, and the label-1 spots of the simulated frames;
* the finder's intensity_sum, n_signal and brightest pixel (quantiles 5/25/50/75/95);
* spot shapes (second moments: axis ratio, major / minor RMS width, direction);
* how labels agree with the finder on simulated frames (the labels are meant to be what DIALS finds).

CSPAD (LCLS thermolysin stills) against the ``thermolysin_cspad_like`` preset and the default mix:
per-ASIC medians and noise (ADU), finder with DIALS' CSPAD settings (gain 25, global threshold 100,
min spot size 2).  Last, the Rayonix MX340 model's settings (no real Rayonix frame is available).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from peaknet_gui.sim.detectors import get_detector  # noqa: E402
from peaknet_gui.sim.frame import simulate_frame  # noqa: E402
from peaknet_gui.sim.presets import thaumatin_like, thermolysin_cspad_like  # noqa: E402
from peaknet_gui.sim.realism import (  # noqa: E402
    dispersion_mask, dispersion_spots, match_fraction, quantiles, radial_stats, read_dials_spots, spot_shapes,
)
from peaknet_gui.sim.run import RunSpec, plan_run  # noqa: E402

REAL = REPO.parent / "shared" / "data" / "real"
THAU = REAL / "thaumatin_grid"
BEAM = (1261.61 - 0.5, 1306.96 - 0.5)
RADII = (150, 450, 650, 850, 1050, 1250, 1450, 1650)


def q(x, nd=0):
    v = quantiles(x)
    return "/".join(f"{a:.{nd}f}" for a in v)


def background_row(data, bad, beam):
    from scipy import ndimage

    strong, _ = dispersion_mask(data, bad)
    ex = ndimage.binary_dilation(strong, iterations=3)
    st = radial_stats(data, ~bad, beam[0], beam[1], step=100, exclude=ex)
    centres = 0.5 * (st.edges[1:] + st.edges[:-1])
    med = [st.median[np.argmin(np.abs(centres - r))] for r in RADII]
    disp = [st.var[np.argmin(np.abs(centres - r))] / st.mean[np.argmin(np.abs(centres - r))] for r in RADII]
    return med, disp


class Acc:
    def __init__(self):
        self.rows = {}

    def add(self, key, values):
        self.rows.setdefault(key, []).append(np.atleast_1d(np.asarray(values, float)))

    def cat(self, key):
        return np.concatenate(self.rows.get(key, [np.zeros(0)]))


def measure(acc: Acc, data, bad, beam, truth=None, marginal=None, dials=None):
    data = np.asarray(data, dtype=np.float64)
    med, disp = background_row(data, bad, beam)
    acc.add("bg", [med])
    acc.add("disp", [disp])
    sp = dispersion_spots(data, bad)
    acc.add("count_finder", len(sp))
    acc.add("I", sp.intensity_sum)
    acc.add("n", sp.n_signal)
    acc.add("max", sp.max_value)
    sh = spot_shapes(np.where(bad, 0, data), bad, sp.fs, sp.ss, beam)
    acc.add("ratio", sh.ratio)
    acc.add("major", sh.major)
    acc.add("minor", sh.minor)
    acc.add("along_fs", np.mean((sh.angle_deg < 30) | (sh.angle_deg > 150)) if len(sh.ratio) else np.nan)
    if dials is not None:
        acc.add("count_dials", len(dials))
        acc.add("dials_found", match_fraction(dials.fs, dials.ss, sp.fs, sp.ss))
    if truth is not None:
        acc.add("count_label1", len(truth.fs))
        acc.add("finder_is_label1", match_fraction(sp.fs, sp.ss, truth.fs, truth.ss))
        acc.add("finder_is_label1_or_255", match_fraction(sp.fs, sp.ss, np.r_[truth.fs, marginal[0]],
                                                          np.r_[truth.ss, marginal[1]]))
        acc.add("label1_found", match_fraction(truth.fs, truth.ss, sp.fs, sp.ss))


def report(name, acc: Acc):
    print(f"\n== {name}")
    bg = np.array([r[0] for r in acc.rows["bg"]])
    dp = np.array([r[0] for r in acc.rows["disp"]])
    print("  background median (photons) at r = " + ", ".join(f"{r}" for r in RADII) + " px:")
    print("     mean over frames " + " ".join(f"{v:5.2f}" for v in np.nanmean(bg, 0))
          + "   (frame range at r=650: " + f"{np.nanmin(bg[:, 2]):.2f}-{np.nanmax(bg[:, 2]):.2f})")
    print("  noise variance/mean outside spots: " + " ".join(f"{v:4.2f}" for v in np.nanmean(dp, 0)))
    line = f"  spots per frame: finder {q(acc.cat('count_finder'))}"
    if "count_dials" in acc.rows:
        line += f"; DIALS {q(acc.cat('count_dials'))}; DIALS spots the finder finds {np.nanmean(acc.cat('dials_found')):.3f}"
    if "count_label1" in acc.rows:
        line += f"; label-1 {q(acc.cat('count_label1'))}"
    print(line)
    print(f"  finder intensity_sum {q(acc.cat('I'))}; n_signal {q(acc.cat('n'))}; brightest pixel {q(acc.cat('max'))}")
    print(f"  spot shape: axis ratio {q(acc.cat('ratio'), 2)}; major sigma {q(acc.cat('major'), 2)} px; "
          f"minor {q(acc.cat('minor'), 2)} px; major axis within 30 deg of fs: {np.nanmean(acc.cat('along_fs')):.2f}")
    if "finder_is_label1" in acc.rows:
        print(f"  labels vs finder: finder spots that are label 1 {np.nanmean(acc.cat('finder_is_label1')):.3f}, "
              f"label 1 or 255 {np.nanmean(acc.cat('finder_is_label1_or_255')):.3f}; "
              f"label-1 spots the finder finds {np.nanmean(acc.cat('label1_found')):.3f}")


def pilatus(args):
    import fabio

    if THAU.is_dir():
        real, blank = Acc(), Acc()
        hits = [f"{i:04d}" for i in range(1, 11)][: (3 if args.quick else 10)]
        for n in hits + ["0016", "0017"]:
            img = fabio.open(str(THAU / f"thau_3_2_{n}.cbf.bz2")).data.astype(np.float64)
            bad = (img < 0) | (img > 100000)
            measure(blank if n in ("0016", "0017") else real, img, bad, BEAM,
                    dials=read_dials_spots(THAU / f"thau_3_2_{n}.cbf.spots.csv"))
        report(f"REAL Pilatus 6M thaumatin hits {hits[0]}-{hits[-1]}", real)
        report("REAL Pilatus 6M thaumatin blanks 0016, 0017", blank)
    else:
        print(f"(real thaumatin frames not found at {THAU})")
    det = get_detector("pilatus-6m")
    pre = Acc()
    scales = np.exp(np.linspace(-0.7, 0.7, args.sim_frames))  # weak to strong hits, like 0001-0010
    for seed in range(args.sim_frames):
        f = simulate_frame(det, thaumatin_like(det, seed, strength_scale=float(scales[seed])))
        measure(pre, f.data, f.bad, BEAM, truth=f.peaks, marginal=(f.marginal_fs, f.marginal_ss))
    report("SIM pilatus-6m, thaumatin_like preset", pre)
    mix = Acc()
    d2, pers, params = plan_run(RunSpec(n_frames=args.sim_frames * 2, seed=11, detector="pilatus-6m", mix={"hit": 1.0}))
    for p in params:
        f = simulate_frame(d2, p, pers)
        measure(mix, f.data, f.bad, d2.geometry.beam_center(0), truth=f.peaks, marginal=(f.marginal_fs, f.marginal_ss))
    report("SIM pilatus-6m, default training mix (hits)", mix)


def cspad(args):
    import h5py

    from peaknet_gui.geometry.crystfel_geom import read_geom

    def asic_stats(data, panels):
        med = np.array([np.median(data[p.slices()]) for p in panels])
        sig = []
        for p in panels:
            v = data[p.slices()].astype(float).ravel()
            sig.append(1.4826 * np.median(np.abs(v - np.median(v))))
        return med, np.array(sig)

    def show(name, frames, panels, truth=None):
        meds, sigs, counts, I, n, mx, lab, agree = [], [], [], [], [], [], [], []
        for k, (data, bad) in enumerate(frames):
            m, s = asic_stats(data, panels)
            meds.append(m)
            sigs.append(s)
            sp = dispersion_spots(data.astype(float), bad, gain=25.0, global_threshold=100.0, min_spot_size=2,
                                  panels=[pn.slices() for pn in panels])
            counts.append(len(sp))
            I.append(sp.intensity_sum)
            n.append(sp.n_signal)
            mx.append(sp.max_value)
            if truth is not None:
                t = truth[k]
                lab.append(len(t.fs))
                agree.append((match_fraction(sp.fs, sp.ss, t.fs, t.ss), match_fraction(t.fs, t.ss, sp.fs, sp.ss)))
        print(f"\n== {name}")
        print(f"  ASIC medians (ADU) {q(np.concatenate(meds), 1)}; ASIC robust sigma (ADU) {q(np.concatenate(sigs), 1)}")
        print(f"  finder (gain 25, threshold 100 ADU, min 2 px): spots per frame {counts}; intensity_sum "
              f"{q(np.concatenate(I))}; n_signal {q(np.concatenate(n))}; brightest pixel {q(np.concatenate(mx))}")
        if truth is not None:
            a = np.nanmean(np.array(agree), 0)
            print(f"  label-1 per frame {lab}; finder spots that are label 1 {a[0]:.3f}; label-1 found by the finder {a[1]:.3f}")

    folder = REAL / "thermolysin_cspad"
    if folder.is_dir():
        geom = read_geom(folder / "cspad_rawlayout_from_dxtbx.geom")
        frames = []
        for h5 in sorted(folder.glob("*_rawlayout.h5")):
            with h5py.File(h5, "r") as f:
                d = f["/data/data"][()]
            frames.append((d, np.zeros(d.shape, bool)))
        show("REAL CSPAD thermolysin (ADU)", frames, geom.panels)
    det = get_detector("cspad")
    sims = [simulate_frame(det, thermolysin_cspad_like(det, s)) for s in range(3)]
    show("SIM cspad, thermolysin_cspad_like preset", [(f.data, f.bad) for f in sims], det.geometry.panels,
         [f.peaks for f in sims])
    d2, pers, params = plan_run(RunSpec(n_frames=4, seed=5, detector="cspad", mix={"hit": 1.0}))
    sims = [simulate_frame(d2, p, pers) for p in params]
    show("SIM cspad, default training mix (hits)", [(f.data, f.bad) for f in sims], d2.geometry.panels,
         [f.peaks for f in sims])


def rayonix():
    det = get_detector("rayonix-mx340")
    pix = det.pixels
    wl = det.wavelength_a
    tth_edge = np.arctan(960 * det.pixel_size_m / det.distance_m)
    tth_corner = float(pix.tth_sorted[-1])
    r = det.readout
    print("\n== Rayonix MX340 model (no real Rayonix frame is available here)")
    print(f"  {det.shape[0]}x{det.shape[1]} px of {det.pixel_size_m * 1e3:.3f} mm, {det.distance_m * 1e3:.0f} mm, "
          f"{wl:.3f} A ({det.photon_energy_ev / 1e3:.2f} keV), beam at the centre; resolution at the edge "
          f"{wl / (2 * np.sin(tth_edge / 2)):.2f} A, in the corner {wl / (2 * np.sin(tth_corner / 2)):.2f} A; "
          f"water ring (3.2 A) at r = {det.distance_m * np.tan(2 * np.arcsin(wl / 6.4)) / det.pixel_size_m:.0f} px")
    print(f"  readout: CCD, uint16, offset {r.offset_adu} ADU, gain {r.adu_per_photon} ADU/photon, read noise "
          f"{r.read_noise_adu} ADU, point spread sigma {r.psf_sigma_px} px, per-pixel gain spread {r.gain_spread}, "
          f"saturation {det.saturation_adu:.0f}; bin2 variant 960x960 of 0.354 mm")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 real hits instead of 10")
    ap.add_argument("--sim-frames", type=int, default=6)
    args = ap.parse_args()
    pilatus(args)
    cspad(args)
    rayonix()


if __name__ == "__main__":
    main()
