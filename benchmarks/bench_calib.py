"""Calibration accuracy and speed: simulated AgBh frames with known geometry, and the real
Pilatus 100K silver behenate frame.

    nice -n 10 .venv/bin/python benchmarks/bench_calib.py [--quick] [--seed N]

For every case a noisy AgBh frame is simulated (peaknet_gui.sim.powder) with a known beam
centre and distance, the fit starts from a rough geometry (beam centre off by 20-35 px in each
direction, distance off by 8-12 %), and the table lists the beam-centre error (px), the
distance error (%), the residual, the rings used and the time.  Targets: |beam centre error|
<= 0.5 px, |distance error| <= 0.5 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peaknet_gui.calib.refine import calibrate  # noqa: E402
from peaknet_gui.errors import CalibrationError  # noqa: E402
from peaknet_gui.geometry.detector import Geometry  # noqa: E402
from peaknet_gui.sim.powder import simulate_calibrant_frame  # noqa: E402

PILATUS = ("Pilatus 2M", (1679, 1475), 172e-6)
RAYONIX = ("Rayonix 1920", (1920, 1920), 117e-6)
P100K = ("Pilatus 100K", (195, 487), 172e-6)

# (detector, distance m, beam centre (fs, ss), wavelength A, frame options)
CASES = [
    (PILATUS, 0.100, (737.3, 839.6), 1.0, dict(module_gaps=True, beamstop_radius_px=6)),
    (PILATUS, 0.200, (700.3, 800.7), 1.0, dict(module_gaps=True, beamstop_radius_px=12)),
    (PILATUS, 0.350, (150.8, 1500.2), 1.0, dict(module_gaps=True)),                  # near a corner
    (PILATUS, 0.500, (-35.4, 900.1), 1.0, dict(module_gaps=True)),                   # off the detector
    (PILATUS, 0.250, (1520.6, -40.3), 0.8, dict(module_gaps=True)),                  # off the detector
    (PILATUS, 1.500, (740.2, 420.9), 1.0, dict(module_gaps=True, beamstop_radius_px=20)),  # SAXS-like
    (PILATUS, 3.000, (600.6, 1100.4), 1.0, dict(module_gaps=True, beamstop_radius_px=20)),  # SAXS-like
    (RAYONIX, 0.100, (960.4, 950.2), 1.0, dict(beamstop_radius_px=8)),
    (RAYONIX, 0.300, (1500.2, 300.9), 1.0, {}),
    (RAYONIX, 0.450, (1960.7, 1010.3), 1.0, {}),                                     # off the detector
    (P100K, 0.5138, (-5.42, 85.86), 0.73363, {}),                                   # the real frame's geometry
]
QUICK = [1, 3, 8, 10]

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "agbh_pilatus100k" / "AgBehenate_228.hdf5"
README = dict(wavelength=0.73363, distance_m=0.5138, beam_center=(-5.42, 85.86), pixel=172e-6)


def _rough(true: Geometry, rng: np.random.Generator):
    dfs, dss = rng.uniform(20, 35, 2) * rng.choice([-1, 1], 2)
    factor = 1 + rng.uniform(0.08, 0.12) * rng.choice([-1, 1])
    g = true.copy()
    g.panels[0].corner_x -= dfs
    g.panels[0].corner_y -= dss
    g.clen *= factor
    return g, (dfs, dss, factor)


def _row(name, dist_mm, bc, start, res, true_bc, true_d, seconds):
    err = np.subtract(res.beam_center, true_bc)
    derr = 100 * (res.distance_m / true_d - 1)
    ok = np.all(np.abs(err) <= 0.5) and abs(derr) <= 0.5
    return (f"{name:13s} {dist_mm:7.1f} ({bc[0]:7.1f},{bc[1]:7.1f}) {start:>22s} "
            f"{err[0]:+7.3f} {err[1]:+7.3f} {derr:+7.3f} {res.residual_px:6.3f} {len(res.rings_used):5d} "
            f"{res.n_control_points:6d} {seconds:6.1f}  {'ok' if ok else 'MISS'}"), ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="four representative cases only")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{'detector':13s} {'D (mm)':>7s} {'true beam (fs,ss)':>17s} {'start: dfs,dss,D factor':>22s} "
          f"{'d_fs':>7s} {'d_ss':>7s} {'dD %':>7s} {'resid':>6s} {'rings':>5s} {'points':>6s} {'time s':>6s}")
    n_ok = n = 0
    cases = [CASES[i] for i in QUICK] if args.quick else CASES
    for (name, shape, pix), dist, bc, wl, opts in cases:
        true = Geometry.single_panel(shape, pix, dist, *bc)
        frame = simulate_calibrant_frame(true, "AgBh", wl, seed=int(rng.integers(1 << 30)), **opts)
        start, (dfs, dss, fac) = _rough(true, rng)
        t0 = time.perf_counter()
        try:
            res = calibrate(frame.data, start, "AgBh", wl, bad=frame.bad)
        except CalibrationError as e:
            print(f"{name:13s} {dist * 1e3:7.1f} ({bc[0]:7.1f},{bc[1]:7.1f})  FAILED: {e}")
            n += 1
            continue
        line, ok = _row(name, dist * 1e3, bc, f"{dfs:+.0f},{dss:+.0f},x{fac:.3f}", res, bc, dist, time.perf_counter() - t0)
        print(line)
        n += 1
        n_ok += ok
    print(f"\nsimulated: {n_ok}/{n} within 0.5 px and 0.5 %")

    if REAL.exists():
        import h5py

        with h5py.File(REAL, "r") as f:
            data = f["entry/data/data"][()].astype(np.float32)
        print(f"\nreal frame {REAL.name} (README: lambda {README['wavelength']} A, {README['distance_m'] * 1e3} mm, "
              f"beam centre {README['beam_center']} px)")
        print(f"{'rough start (fs, ss, mm)':>26s} {'tilt':>5s} {'beam fs':>8s} {'beam ss':>8s} {'D (mm)':>8s} "
              f"{'d_fs':>7s} {'d_ss':>7s} {'dD %':>7s} {'resid':>6s} {'rings':>5s} {'time s':>6s}")
        for sfs, sss, smm in [(20, 60, 470), (-40, 110, 560), (30, 100, 480), (-5.42, 85.86, 513.8)]:
            for tilt in (False, True):
                start = Geometry.single_panel(data.shape, README["pixel"], smm * 1e-3, sfs, sss)
                t0 = time.perf_counter()
                res = calibrate(data, start, "AgBh", README["wavelength"], bad=data < 0, fit_tilt=tilt)
                e = np.subtract(res.beam_center, README["beam_center"])
                print(f"{f'({sfs}, {sss}, {smm})':>26s} {'yes' if tilt else 'no':>5s} {res.beam_center[0]:8.3f} "
                      f"{res.beam_center[1]:8.3f} {res.distance_m * 1e3:8.2f} {e[0]:+7.3f} {e[1]:+7.3f} "
                      f"{100 * (res.distance_m / README['distance_m'] - 1):+7.3f} {res.residual_px:6.3f} "
                      f"{len(res.rings_used):5d} {time.perf_counter() - t0:6.1f}")
    else:
        print(f"\nreal frame not found at {REAL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
