"""CrystFEL stream writer and the project's stream reader; cross-checked with PyPI cfstreamparser."""

from __future__ import annotations

import math

import CFstreamparser
import numpy as np
import pytest

from peaknet_gui.errors import InputError
from peaknet_gui.export.cellfile import UnitCell
from peaknet_gui.export.stream import (
    PEAKS_HEADER, StreamChunk, estimate_peak_resolution, event_text, format_chunk, format_stream_header,
    from_crystfel_corner, to_crystfel_corner, write_stream,
)
from peaknet_gui.export.stream_reader import iter_stream, read_stream, read_stream_file
from peaknet_gui.frame import EventId
from peaknet_gui.geometry import Geometry, Panel
from peaknet_gui.geometry.crystfel_geom import format_geom_text
from peaknet_gui.peaks.peaklist import PeakList

HC_EV_A = 12398.419843320026


def slab_geometry() -> Geometry:
    """Two 50x40 panels side by side in one 50x80 slab; the second one turned by 90 degrees."""
    panels = [
        Panel("left", 0, 39, 0, 49, corner_x=-45.0, corner_y=-25.0, res=5000.0, adu_per_photon=1.0),
        Panel("right", 40, 79, 0, 49, corner_x=5.0, corner_y=-20.0, fs=(0, 1, 0), ss=(-1, 0, 0), res=5000.0,
              adu_per_photon=1.0),
    ]
    g = Geometry(panels=panels, photon_energy_ev=9000.0, clen=0.08)
    g.globals.update({"data": "/data/data"})
    return g


def chunk(peaks, event=EventId("/data/run_001.h5", 3), energy=9000.0, hit=True, serial=3, geom=None):
    return StreamChunk(filename=event.path, event=event_text(event), serial=serial, hit=hit, peaks=peaks,
                       photon_energy_ev=energy, camera_length_m=(geom or slab_geometry()).mean_camera_length())


def two_peaks():
    # (10, 5) on "left"; (52, 7.25) on "right", i.e. panel-relative fs 12 in the slab's columns 40..79
    return PeakList(fs=[10.0, 52.0], ss=[5.0, 7.25], intensity=[123.456, 789.0], npix=[4, 6], snr=[7.0, 9.0])


def test_half_pixel_is_added_in_one_place_and_removed_by_the_inverse():
    fs, ss = to_crystfel_corner([0.0, 10.0], [0.0, -0.5])
    assert fs.tolist() == [0.5, 10.5] and ss.tolist() == [0.5, 0.0]
    back = from_crystfel_corner(fs, ss)
    assert back[0].tolist() == [0.0, 10.0] and back[1].tolist() == [0.0, -0.5]


def test_chunk_text_is_indexamajigs_layout_with_corner_convention_in_slab_coordinates():
    g = slab_geometry()
    text, n = format_chunk(chunk(two_peaks()), g)
    assert n == 2
    lines = text.splitlines()
    assert lines[:9] == [
        "----- Begin chunk -----",
        "Image filename: /data/run_001.h5",
        "Event: //3",
        "Image serial number: 3",
        "hit = 1",
        "indexed_by = none",
        "photon_energy_eV = 9000.000000",
        "beam_divergence = 0.00e+00 rad",
        "beam_bandwidth = 1.00e-08 (fraction)",
    ]
    assert lines[9] == "average_camera_length = 0.080000 m"
    assert lines[10] == "num_peaks = 2"
    assert lines[12:14] == ["Peaks from peak search", PEAKS_HEADER]
    assert PEAKS_HEADER == "  fs/px   ss/px (1/d)/nm^-1   Intensity  Panel"  # stream.c's column header
    # %7.2f %7.2f %10.2f  %10.2f   %s, file (slab) coordinates + 0.5
    q = g.resolution(np.array([10.0, 52.0]), np.array([5.0, 7.25]), 9000.0) * 10
    assert lines[14] == f"  10.50    5.50 {q[0]:10.2f}      123.46   left"
    assert lines[15] == f"  52.50    7.75 {q[1]:10.2f}      789.00   right"
    assert lines[16:] == ["End of peak list", "----- End chunk -----"]
    # the (1/d) column is 2 sin(theta) / lambda from the lab position of the pixel centre
    x, y, z = g.lab_xyz(np.array([52.0]), np.array([7.25]))
    two_theta = math.atan2(math.hypot(x[0], y[0]), z[0])
    assert q[1] == pytest.approx(10 * 2 * math.sin(two_theta / 2) / (HC_EV_A / 9000.0), rel=1e-12)
    assert lines[11] == f"peak_resolution = {max(q):f} nm^-1 or {10 / max(q):f} A"


def test_peak_resolution_drops_the_top_two_percent_like_indexamajig():
    assert estimate_peak_resolution(np.zeros(0)) == 0.0
    assert estimate_peak_resolution(np.arange(1.0, 11.0)) == 10.0  # 10 peaks: ncut = 0
    assert estimate_peak_resolution(np.arange(1.0, 101.0)) == 98.0  # 100 peaks: ncut = 2
    assert estimate_peak_resolution(np.arange(1.0, 76.0)) == 75.0  # 75 peaks: ncut = 1 < 2 -> 0


def test_no_peaks_single_image_event_and_unknown_energy():
    g = slab_geometry()
    text, n = format_chunk(chunk(PeakList(), event=EventId("/cbf/img_0001.cbf"), energy=None, hit=False), g)
    assert n == 0
    assert "Event: //\n" in text and "hit = 0\n" in text
    assert "photon_energy_eV = nan\n" in text
    assert "num_peaks = 0\npeak_resolution = 0.000000 nm^-1 or inf A\n" in text


def test_peaks_outside_every_panel_are_left_out(caplog):
    g = slab_geometry()
    peaks = PeakList(fs=[10.0, 200.0], ss=[5.0, 5.0], intensity=[1.0, 2.0])
    text, n = format_chunk(chunk(peaks), g)
    assert n == 1 and "num_peaks = 1" in text and "outside every panel" in caplog.text


def test_panel_from_peaklist_is_used_only_when_it_holds_the_peak():
    g = slab_geometry()
    peaks = PeakList(fs=[10.0, 52.0], ss=[5.0, 7.0], intensity=[1.0, 2.0], panel=[1, 0])  # both wrong
    text, _ = format_chunk(chunk(peaks), g)
    assert "   left\n" in text and "   right\n" in text


def test_header_layout_geometry_block_and_cell():
    g = slab_geometry()
    cell = UnitCell(79.1, 79.1, 37.9, lattice_type="tetragonal", centering="P", unique_axis="c")
    text = format_stream_header(format_geom_text(g), cell=cell, command_line="peaknet find run.h5 --out x")
    lines = text.splitlines()
    assert lines[0] == "CrystFEL stream format 2.3"
    assert lines[1].startswith("Generated by peaknet_gui ")
    assert lines[2] == "peaknet find run.h5 --out x"
    assert lines[3] == "----- Begin geometry file -----"
    end = lines.index("----- End geometry file -----")
    assert "\n".join(lines[4:end]) + "\n" == format_geom_text(g)
    assert lines[end + 1] == "----- Begin unit cell -----"
    assert lines[end + 2] == "CrystFEL unit cell file version 1.0"
    assert "a = 79.10 A" in lines and "unique_axis = c" in lines and "----- End unit cell -----" in lines
    assert lines[-1] == "Indexing methods selected: none"


@pytest.fixture
def stream_file(tmp_path):
    g = slab_geometry()
    cell = UnitCell(79.1, 79.1, 37.9, lattice_type="tetragonal", centering="P", unique_axis="c")
    chunks = [
        chunk(two_peaks(), event=EventId("/data/run_001.h5", 3), serial=3),
        chunk(PeakList(), event=EventId("/data/run_001.h5", 4), serial=4, hit=False),
        chunk(PeakList(fs=[79.0], ss=[49.0], intensity=[5.0]), event=EventId("/data/run_002.h5", 0), serial=5),
    ]
    path = tmp_path / "peaks.stream"
    write_stream(path, g, chunks, cell=cell)
    return path, g, chunks


def test_cfstreamparser_reads_our_stream(stream_file):
    path, g, chunks = stream_file
    parsed = CFstreamparser.parse_stream_file(str(path))
    assert len(parsed.chunks) == 3
    c0 = parsed.chunks[0]
    assert (c0.filename, c0.event, c0.serial, c0.hit, c0.num_peaks) == ("/data/run_001.h5", 3, 3, True, 2)
    assert c0.photon_energy_eV == 9000.0 and c0.camera_length_m == pytest.approx(0.08)
    assert [(p.fs_px, p.ss_px, p.panel) for p in c0.peaks] == [(10.5, 5.5, "left"), (52.5, 7.75, "right")]
    assert [p.intensity for p in c0.peaks] == [123.46, 789.0]
    assert parsed.chunks[1].hit is False and parsed.chunks[1].peaks == []
    assert [(p.fs_px, p.ss_px) for p in parsed.chunks[2].peaks] == [(79.5, 49.5)]  # last pixel of the slab
    assert parsed.unit_cell.a == 79.1 and parsed.unit_cell.lattice_type == "tetragonal"
    assert parsed.geometry.params["data"] == "/data/data"


def test_our_reader_gives_back_pixel_indices_panels_and_resolution(stream_file):
    path, g, chunks = stream_file
    sf = read_stream_file(path)
    assert sf.panel_names == ["left", "right"] and sf.geometry.panels[1].fs == (0.0, 1.0, 0.0)
    assert sf.cell.c == 37.9 and not sf.truncated
    got = sf.chunks
    assert [(c.filename, c.event, c.event_index, c.serial, c.hit) for c in got] == [
        ("/data/run_001.h5", "//3", 3, 3, True), ("/data/run_001.h5", "//4", 4, 4, False),
        ("/data/run_002.h5", "//0", 0, 5, True)]
    p = got[0].peaks
    np.testing.assert_allclose(p.fs, [10.0, 52.0])
    np.testing.assert_allclose(p.ss, [5.0, 7.25])
    np.testing.assert_allclose(p.intensity, [123.46, 789.0])
    assert p.panel.tolist() == [0, 1]
    expected = g.resolution(np.array([10.0, 52.0]), np.array([5.0, 7.25]), 9000.0)
    np.testing.assert_allclose(p.resolution, expected, atol=0.0005)  # written with 2 decimals in nm^-1
    assert got[0].photon_energy_ev == 9000.0 and got[0].camera_length_m == pytest.approx(0.08)
    assert got[0].event_id == EventId("/data/run_001.h5", 3)
    assert [c.n_peaks for c in read_stream(path)] == [2, 0, 1]
    assert [c.serial for c in iter_stream(path)] == [3, 4, 5]


def test_reader_stops_at_a_chunk_cut_short(stream_file, tmp_path):
    path, _, _ = stream_file
    text = path.read_text()
    cut = tmp_path / "cut.stream"
    cut.write_text(text[: text.rindex("  79.50")])  # inside the last peak list
    sf = read_stream_file(cut)
    assert sf.truncated and len(sf.chunks) == 2


def test_reader_errors_name_file_and_line(stream_file, tmp_path):
    path, _, _ = stream_file
    bad = tmp_path / "bad.stream"
    lines = path.read_text().splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("  10.50    5.50"))
    lines[i] = "  10.50    oops"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"bad.stream, line {i + 1}: cannot read peak line"):
        read_stream(bad)
    other = tmp_path / "x.stream"
    other.write_text("hello\n")
    with pytest.raises(InputError, match="x.stream: not a CrystFEL stream"):
        read_stream(other)
    with pytest.raises(InputError, match="not found"):
        read_stream(tmp_path / "missing.stream")
    nogeom = tmp_path / "nogeom.stream"
    nogeom.write_text("CrystFEL stream format 2.3\nGenerated by x\n")
    with pytest.raises(InputError, match="geometry"):
        read_stream(nogeom)


def test_reader_skips_peaks_on_unknown_panels_like_crystfel(stream_file, tmp_path, caplog):
    path, _, _ = stream_file
    t = path.read_text().replace("   right\n", "   nosuchpanel\n")
    p2 = tmp_path / "p2.stream"
    p2.write_text(t)
    chunks = read_stream(p2)
    assert chunks[0].n_peaks == 1 and "nosuchpanel" in caplog.text


INDEXED_CHUNK = """----- Begin chunk -----
Image filename: hits.cxi
Event: //1
Image serial number: 2
hit = 1
indexed_by = xgandalf-nolatt-cell
n_indexing_tries = 1
photon_energy_eV = 12000.000000
beam_divergence = 0.00e+00 rad
beam_bandwidth = 1.00e-08 (fraction)
average_camera_length = 0.080000 m
num_peaks = 1
peak_resolution = 1.000000 nm^-1 or 10.000000 A
Peaks from peak search
  fs/px   ss/px (1/d)/nm^-1   Intensity  Panel
  11.50   20.50       1.00      100.00   left
End of peak list
--- Begin crystal
Cell parameters 7.90985 7.90985 3.79015 nm, 90.00000 90.00000 90.00000 deg
astar = +0.0125650 -0.0013560 +0.0017380 nm^-1
bstar = +0.0008700 +0.0117930 +0.0046700 nm^-1
cstar = -0.0030060 -0.0124640 +0.0229480 nm^-1
lattice_type = tetragonal
centering = P
unique_axis = c
profile_radius = 0.01166 nm^-1
predict_refine/final_residual = 150.221089 (150.201401 0.015482 0.004206)
predict_refine/det_shift x = 0.000 y = 0.000 mm
diffraction_resolution_limit = 4.99 nm^-1 or 2.00 A
num_reflections = 2
num_saturated_reflections = 0
num_implausible_reflections = 0
Reflections measured after indexing
   h    k    l          I   sigma(I)       peak background  fs/px  ss/px panel
 -30    2  -12    1708.22      43.38     292.00       4.89   11.5   20.5 left
 -30    2  -11     550.11      26.07     127.00       5.44   12.5   21.6 left
End of reflections
--- End crystal
----- End chunk -----
"""


def test_reader_reads_indexamajig_crystal_blocks(tmp_path):
    g = slab_geometry()
    path = tmp_path / "indexed.stream"
    path.write_text(format_stream_header(format_geom_text(g)) + INDEXED_CHUNK)
    (c,) = read_stream(path)
    assert c.indexed_by == "xgandalf-nolatt-cell" and c.event_index == 1
    assert len(c.crystals) == 1
    cr = c.crystals[0]
    np.testing.assert_allclose(cr.cell, [79.0985, 79.0985, 37.9015, 90, 90, 90])
    assert cr.lattice_type == "tetragonal" and cr.centering == "P" and cr.unique_axis == "c"
    assert cr.num_reflections == 2 and cr.astar[0] == pytest.approx(0.012565)
    np.testing.assert_allclose([c.peaks.fs[0], c.peaks.ss[0]], [11.0, 20.0])


def test_real_cspad_spots_round_trip_through_the_stream(tmp_path):
    """DIALS spots of a real CSPAD frame (64 panels): the stream holds DIALS's raw slab positions
    (same corner convention) with the geometry's panel names, and reads back to pixel indices."""
    from conftest import real_file

    from peaknet_gui.geometry.crystfel_geom import read_geom

    csv = real_file("thermolysin_cspad/idx-20130301060858401.cbf.spots.csv")
    geom = read_geom(real_file("thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom"))
    spots = np.genfromtxt(csv, delimiter=",", names=True)
    peaks = PeakList(fs=spots["raw_x"] - 0.5, ss=spots["raw_y"] - 0.5, intensity=spots["intensity_sum"])
    ch = StreamChunk(filename="idx-20130301060858401_rawlayout.h5", event="//", serial=1, hit=True, peaks=peaks,
                     photon_energy_ev=geom.photon_energy_ev, camera_length_m=geom.mean_camera_length())
    write_stream(tmp_path / "cspad.stream", geom, [ch])
    text = (tmp_path / "cspad.stream").read_text()
    rows = text.split("  fs/px   ss/px (1/d)/nm^-1   Intensity  Panel\n")[1].split("End of peak list")[0].splitlines()
    assert len(rows) == len(spots)
    names = [geom.panels[int(p)].name for p in spots["panel"]]
    assert [r.split()[4] for r in rows] == names  # DIALS panel i is geometry panel i
    np.testing.assert_allclose([float(r.split()[0]) for r in rows], spots["raw_x"], atol=0.005)
    np.testing.assert_allclose([float(r.split()[1]) for r in rows], spots["raw_y"], atol=0.005)
    (c,) = read_stream(tmp_path / "cspad.stream")
    assert c.peaks.panel.tolist() == spots["panel"].astype(int).tolist()
    np.testing.assert_allclose(c.peaks.fs, spots["raw_x"] - 0.5, atol=0.005)
