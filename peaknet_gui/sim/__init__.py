"""Diffraction simulator: labelled serial-crystallography frames for training, tests and the demo run.

One job per module:

* :mod:`.lattice` unit cells (any lattice system, centring), Miller indices; :mod:`.orientation`
  rotations uniform on SO(3);
* :mod:`.reflections` Ewald excitation with mosaicity, domain size, bandwidth and divergence
  (partial reflections), Wilson intensities; :mod:`.projection` rays through the detector
  :class:`~peaknet_gui.geometry.detector.Geometry` (any panels);
* :mod:`.spots` spot profiles; :mod:`.background` air / water / polarisation;
  :mod:`.artifacts` metal and ice rings with speckles, jet streaks, kapton, calibrant rings
  (:mod:`.powder`, calibration engineer), beamstop;
* :mod:`.detectors` detector models and built-in geometries; :mod:`.pixels` cached per-pixel
  angles; :mod:`.noise` readout (CCD, photon counting, CSPAD);
* :mod:`.labels` what is a peak (DIALS-like detectability) and an artifact;
* :mod:`.params` random frame parameters; :mod:`.frame` one frame; :mod:`.run` a run;
  :mod:`.run_writer` CXI + .geom; :mod:`.demo` the GUI's demo run;
* :mod:`.presets` imitations of the real data sets; :mod:`.realism` measurements (DIALS-like
  dispersion finder, radial profiles, spot shapes) for ``benchmarks/bench_sim_realism.py``.

Entry points: ``peaknet simulate`` (:mod:`peaknet_gui.cli.simulate`),
:func:`peaknet_gui.sim.run.simulate_run`, :func:`peaknet_gui.sim.frame.simulate_frame`,
:func:`peaknet_gui.sim.demo.make_demo_run`.
"""
