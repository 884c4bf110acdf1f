"""CrystFEL .geom reading and writing (peaknet_gui.geometry.crystfel_geom / geom_writer)."""

from __future__ import annotations

import numpy as np
import pytest

from peaknet_gui.errors import GeometryError
from peaknet_gui.geometry import Geometry, pixel_map
from peaknet_gui.geometry.crystfel_geom import parse_geom_text, parse_vector, read_geom
from peaknet_gui.geometry.geom_writer import format_geom_text, write_geom
from tests.conftest import real_file

CSPAD_GEOM = "thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom"

TWO_PANELS = """\
; two panels stacked, CrystFEL 0.9 style
; second comment line
photon_energy = 9500 ; eV
clen = /LCLS/detector_1/EncoderValue
coffset = 0.573224
res = 10000
adu_per_eV = 0.0075
data = /entry_1/data_1/data
dim0 = %
dim1 = ss
dim2 = fs
mask = /entry_1/data_1/mask
mask_good = 0x0000
mask_bad = 0xffff
peak_list = /entry_1/result_1
peak_list_type = cxi
rigid_group_q0 = top,bottom
rigid_group_collection_det = q0
some_future_key = 42

top/min_fs = 0
top/max_fs = 99
top/min_ss = 0
top/max_ss = 49
top/corner_x = -50.5
top/corner_y = -60
top/fs = +1.0x +0.0y +0.0z
top/ss = +0.0x +1.0y +0.0z
top/flag_lessthan = -10

res = 5000

bottom/min_fs = 0
bottom/max_fs = 99
bottom/min_ss = 50
bottom/max_ss = 99
bottom/corner_x = 50.5
bottom/corner_y = 60
bottom/fs = -x
bottom/ss =-1.0y
bottom/no_index = 1
bottom/my_extension = hello

bad_beamstop/min_x = -5
bad_beamstop/max_x = 5
bad_beamstop/min_y = -5
bad_beamstop/max_y = 5

bad_row/panel = top
bad_row/min_fs = 0
bad_row/max_fs = 99
bad_row/min_ss = 10
bad_row/max_ss = 10
"""


def test_real_cspad_geometry(real_data):
    geom = read_geom(real_file(CSPAD_GEOM))
    assert len(geom.panels) == 64
    assert geom.data_shape == (1480, 1552)
    assert geom.photon_energy_ev == pytest.approx(9742.54)
    names = [p.name for p in geom.panels]
    assert names[0] == "q0a0" and names[-1] == "q3a15" and len(set(names)) == 64
    p = geom.panels[0]
    assert (p.min_fs, p.max_fs, p.min_ss, p.max_ss) == (0, 193, 0, 184)
    assert p.fs == pytest.approx((-0.003632, 0.999993, 0.0))
    assert p.ss == pytest.approx((-0.999993, -0.003632, 0.0))
    assert (p.corner_x, p.corner_y) == (447.493, -30.406)
    assert p.res == 9097.5255 and p.adu_per_photon == 1.0
    assert p.data == "/data/data" and p.dims == ["ss", "fs"]
    # per-panel clen = 0 (CrystFEL 0.9) folded into the global clen + coffset: distance unchanged
    assert geom.clen == 0.0 and p.clen is None
    assert all(q.distance(geom.clen) == pytest.approx(0.130107) for q in geom.panels)
    # every data pixel belongs to exactly one panel (raw layout tiles the slab)
    pm = pixel_map(geom)
    assert (pm.panel >= 0).all()
    # the beam goes through the central hole: smallest radius is a few mm, not 0 and not 10 cm
    r = pm.radius
    assert 2e-3 < r.min() < 6e-3 and 0.1 < r.max() < 0.14  # CSPAD is ~19 cm across
    assert geom.comments[0].startswith("; CSPAD raw layout")


def test_real_cspad_round_trip(real_data, tmp_path):
    geom = read_geom(real_file(CSPAD_GEOM))
    out = tmp_path / "cspad.geom"
    write_geom(geom, out)
    again = read_geom(out)
    again.source = geom.source
    assert again == geom
    text = out.read_text()
    assert "q0a0/clen" not in text and "clen = 0" in text  # 0.12 form
    np.testing.assert_array_equal(pixel_map(again).x, pixel_map(geom).x)


def test_two_panel_parse_defaults_and_kept_keys():
    geom = parse_geom_text(TWO_PANELS, source="two.geom")
    top, bottom = geom.panels
    assert geom.photon_energy_ev == 9500 and geom.clen is None
    assert geom.clen_path == "/LCLS/detector_1/EncoderValue"
    # top-level values are defaults for panels defined AFTER them
    assert top.res == 10000 and bottom.res == 5000
    assert top.coffset == bottom.coffset == 0.573224
    assert top.adu_per_ev == 0.0075 and top.adu_per_photon is None
    assert top.dims == bottom.dims == ["%", "ss", "fs"]
    assert top.mask == "/entry_1/data_1/mask" and top.mask_good == 0 and bottom.mask_bad == 0xFFFF
    assert bottom.fs == (-1.0, 0.0, 0.0) and bottom.ss == (0.0, -1.0, 0.0)
    assert bottom.no_index and not top.no_index
    assert top.extra == {"flag_lessthan": "-10"} and bottom.extra == {"my_extension": "hello"}
    assert geom.globals["peak_list"] == "/entry_1/result_1" and geom.globals["peak_list_type"] == "cxi"
    assert geom.globals["data"] == "/entry_1/data_1/data" and "res" in geom.globals
    assert geom.rigid_groups == {"q0": ["top", "bottom"]}
    assert geom.rigid_group_collections == {"det": ["q0"]}
    assert geom.unknown_lines == [("some_future_key", "42")]
    assert geom.comments == ["; two panels stacked, CrystFEL 0.9 style", "; second comment line"]
    xy, row = geom.bad_regions
    assert xy.is_xy and (xy.min_x, xy.max_x, xy.min_y, xy.max_y) == (-5, 5, -5, 5)
    assert not row.is_xy and row.panel == "top" and (row.min_ss, row.max_ss) == (10, 10)


def test_two_panel_round_trip_and_layout(tmp_path):
    geom = parse_geom_text(TWO_PANELS, source="two.geom")
    path = tmp_path / "out.geom"
    write_geom(geom, path)
    again = read_geom(path)
    again.source = geom.source
    assert again == geom
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith(";")]
    first_panel = next(i for i, ln in enumerate(lines) if ln.startswith("top/"))
    # every top-level line (mask lines, data/dim, peak_list...) comes BEFORE the panels,
    # except rigid groups, which CrystFEL allows anywhere
    for i, ln in enumerate(lines):
        if "/" not in ln.split("=")[0] and not ln.startswith("rigid_group"):
            assert i < first_panel, ln
    for key in ("mask = ", "mask_good = 0x0", "mask_bad = 0xffff", "data = ", "dim0 = %", "peak_list = "):
        assert any(ln.startswith(key) for ln in lines[:first_panel]), key
    # the second panel's own res (5000, from a mid-file default) is written per panel
    assert "bottom/res = 5000" in lines


def test_vector_forms():
    assert parse_vector("+0.0x -1.0y +0.0z") == (0.0, -1.0, 0.0)
    assert parse_vector("-0.003632x +0.999993y") == (-0.003632, 0.999993, 0.0)
    assert parse_vector("x") == (1.0, 0.0, 0.0)
    assert parse_vector("-y") == (0.0, -1.0, 0.0)
    assert parse_vector("0.70710678x+0.70710678y") == pytest.approx((0.70710678, 0.70710678, 0.0))
    assert parse_vector("  +1x  - 0.5 y ") == (1.0, -0.5, 0.0)
    assert parse_vector("1e-3x +1y") == (0.001, 1.0, 0.0)
    for bad in ("", "1.0", "+1.0q", "x y", "0x +0y", "+.x"):
        with pytest.raises(ValueError):
            parse_vector(bad)


def test_photon_energy_and_clen_forms():
    base = "p/min_fs = 0\np/max_fs = 9\np/min_ss = 0\np/max_ss = 9\np/corner_x = 0\np/corner_y = 0\np/res = 5000\n"
    g = parse_geom_text("photon_energy = 9.5 keV\nclen = 0.1\n" + base)
    assert g.photon_energy_ev == 9500 and g.clen == 0.1
    g = parse_geom_text("photon_energy = /LCLS/photon_energy_eV\nphoton_energy_scale = 1.01\n" + base)
    assert g.photon_energy_ev is None and g.photon_energy_path == "/LCLS/photon_energy_eV"
    assert g.photon_energy_scale == 1.01
    assert "photon_energy_scale = 1.01" in format_geom_text(g)
    g = parse_geom_text("wavelength = 1.0 A\n" + base)
    assert g.photon_energy_ev == pytest.approx(12398.419843320026)
    g = parse_geom_text("p/clen = 0.25\n" + base)  # CrystFEL <= 0.11 per-panel clen
    assert g.clen == 0.25 and g.panels[0].distance(g.clen) == 0.25
    # defaults of CrystFEL 0.9: fs = +x, ss = +y when absent
    assert g.panels[0].fs == (1.0, 0.0, 0.0) and g.panels[0].ss == (0.0, 1.0, 0.0)


def test_written_single_panel_text():
    geom = Geometry.single_panel((2527, 2463), 172e-6, 0.351, 1261.61, 1306.96, photon_energy_ev=12800.0)
    geom.globals.update({"data": "/entry_1/data_1/data", "dim0": "%", "dim1": "ss", "dim2": "fs",
                         "mask": "/entry_1/data_1/mask", "mask_good": 0, "mask_bad": 1})
    text = format_geom_text(geom)
    lines = text.splitlines()
    assert lines[:2] == ["photon_energy = 12800", "clen = 0.351"]
    assert lines.index("dim0 = %") < lines.index("dim1 = ss") < lines.index("dim2 = fs") < lines.index("p0/min_fs = 0")
    assert "mask_bad = 0x1" in lines and "adu_per_photon = 1" in lines
    assert "p0/corner_x = -1262.11" in lines and "p0/fs = +1x +0y +0z" in lines
    back = parse_geom_text(text)
    p = back.panels[0]
    assert p.data == "/entry_1/data_1/data" and p.dims == ["%", "ss", "fs"] and p.mask_bad == 1
    assert back.beam_center() == pytest.approx((1261.61, 1306.96))
    # no exponent notation anywhere (CrystFEL rejects '1e-05x' in directions)
    tiny = geom.copy()
    tiny.panels[0].fs = (1.0, 1e-7, 0.0)
    assert "+0.0000001y" in format_geom_text(tiny) and "e-" not in format_geom_text(tiny)


def test_mask_bits_without_mask_are_not_written():
    geom = Geometry.single_panel((10, 10), 1e-4, 0.1, 5, 5, photon_energy_ev=9000)
    geom.globals["mask_bad"] = 0xFF
    assert "mask_bad" not in format_geom_text(geom)  # CrystFEL 0.12 rejects bits without a mask


def test_write_is_atomic_and_reports_unwritable(tmp_path):
    geom = Geometry.single_panel((10, 10), 1e-4, 0.1, 5, 5, photon_energy_ev=9000)
    target = tmp_path / "g.geom"
    target.write_text("old content\n")
    bad = geom.copy()
    bad.panels[0].corner_x = float("nan")
    with pytest.raises(GeometryError):
        write_geom(bad, target)
    assert target.read_text() == "old content\n"  # untouched by the failed write
    assert [p.name for p in tmp_path.iterdir()] == ["g.geom"]  # no temporary left behind
    write_geom(geom, target)
    assert read_geom(target).panels[0].corner_x == -5.5


# --- malformed files ----------------------------------------------------------------------------
PANEL = "p/min_fs = 0\np/max_fs = 9\np/min_ss = 0\np/max_ss = 9\np/corner_x = 0\np/corner_y = 0\n"


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("res = 5000\np/max_fs = 9\np/min_ss = 0\np/max_ss = 9\np/corner_x = 0\np/corner_y = 0\n", 2, ["no min_fs"]),
        ("res = 5000\n" + PANEL + "p/fs = +1.0q\n", 8, ["invalid fs", "+1.0q"]),
        ("res = 5000\n" + PANEL + "p/ss = +1.0x\n", 8, ["parallel"]),
        ("res = 5000\nthis line has no equals sign\n" + PANEL, 2, ["key = value"]),
        ("res = 5000\n" + PANEL + "bad_a/panel = q9\nbad_a/min_fs = 0\nbad_a/max_fs = 1\n"
         "bad_a/min_ss = 0\nbad_a/max_ss = 1\n", 8, ["unknown panel", "q9"]),
        ("res = 5000\n" + PANEL + "bad_a/min_x = 0\nbad_a/max_x = 1\nbad_a/min_fs = 0\n", 8, ["mixes"]),
        ("res = 5000\n" + PANEL + "p/panel_size = x\np/max_ss = ten\n", 9, ["max_ss", "ten"]),
        ("res = 5000\nclen = 0.1 metres\n" + PANEL, 2, ["clen"]),
        ("res = 5000\nphoton_energy = 9 MeV\n" + PANEL, 2, ["photon_energy"]),
        ("res = -3\n" + PANEL, 1, ["res"]),
    ],
)
def test_malformed_messages(tmp_path, text, line, words):
    path = tmp_path / "broken.geom"
    path.write_text(text)
    with pytest.raises(GeometryError) as ei:
        read_geom(path)
    msg = str(ei.value)
    assert str(path) in msg and f"line {line}" in msg, msg
    for w in words:
        assert w in msg, msg


def test_file_level_errors(tmp_path):
    with pytest.raises(GeometryError, match="not found"):
        read_geom(tmp_path / "missing.geom")
    empty = tmp_path / "empty.geom"
    empty.write_text("; only a comment\nphoton_energy = 9000\n")
    with pytest.raises(GeometryError, match=r"empty\.geom: no panel definitions"):
        read_geom(empty)
    binary = tmp_path / "image.geom"
    binary.write_bytes(b"\x89HDF\r\n\x1a\n\0\0\0\0" * 10)
    with pytest.raises(GeometryError, match="image.geom"):
        read_geom(binary)
    bad_group = tmp_path / "group.geom"
    bad_group.write_text("res = 5000\n" + PANEL + "rigid_group_a = p,nope\n")
    with pytest.raises(GeometryError, match="rigid_group_a names unknown panel 'nope'"):
        read_geom(bad_group)


def test_geometry_larger_than_data():
    geom = parse_geom_text("res = 5000\n" + PANEL, source="small.geom")
    geom.check_data_shape((10, 10))
    with pytest.raises(GeometryError, match=r"small\.geom.*10x10.*8x8"):
        geom.check_data_shape((8, 8))


def test_crystfel_012_syntax_round_trip():
    text = """\
wavelength = 1.2 A
clen = 0.2
res = 5000
adu_per_photon = 1
mask0_data = /entry/mask
mask0_file = static.h5
mask0_goodbits = 0x0
mask0_badbits = 0x1
mask1_data = /entry/hot
mask1_badbits = 0xff
group_all = a,b
a/min_fs = 0
a/max_fs = 9
a/min_ss = 0
a/max_ss = 9
a/corner_x = 0
a/corner_y = 0
a/fs = x
a/ss = y
b/min_fs = 0
b/max_fs = 9
b/min_ss = 10
b/max_ss = 19
b/corner_x = 20
b/corner_y = 0
b/fs = x
b/ss = y
b/flag_lessthan = -5
b/flag_lessthan = -10
"""
    g = parse_geom_text(text)
    a, b = g.panels
    assert g.photon_energy_ev == pytest.approx(12398.419843320026 / 1.2)
    assert (a.mask, a.mask_file, a.mask_good, a.mask_bad) == ("/entry/mask", "static.h5", 0, 1)
    assert a.extra == {"mask1_data": "/entry/hot", "mask1_badbits": "0xff"}
    assert b.extra["flag_lessthan"] == ["-5", "-10"]  # repeatable key kept in order
    assert g.panel_groups == {"all": ["a", "b"]}
    again = parse_geom_text(format_geom_text(g))
    assert again.panels == g.panels and again.panel_groups == g.panel_groups
    assert again.photon_energy_ev == g.photon_energy_ev
    from peaknet_gui.geometry.static_mask import panel_masks

    specs = panel_masks(again, again.panels[1])
    assert [(m.data, m.file, m.good, m.bad) for m in specs] == [("/entry/mask", "static.h5", 0, 1),
                                                                 ("/entry/hot", None, 0, 0xFF)]


def test_writer_refuses_mixed_camera_length_sources():
    g = parse_geom_text("clen = /LCLS/clen\nres = 5000\n" + PANEL + "q/min_fs = 0\nq/max_fs = 9\nq/min_ss = 10\n"
                        "q/max_ss = 19\nq/corner_x = 0\nq/corner_y = 0\nq/clen = 0.1\n", source="mixed.geom")
    with pytest.raises(GeometryError, match=r"mixed\.geom: panels take their camera length from different sources"):
        format_geom_text(g)


def test_clen_and_energy_paths_with_units_round_trip(tmp_path):
    """CrystFEL 0.12 accepts 'clen = /path m' (a unit-less path would be read as mm)."""
    from peaknet_gui.geometry.crystfel_geom import format_geom_text, parse_geom_text
    from peaknet_gui.geometry.geom_syntax import split_path_unit

    text = (
        "clen = /entry_1/instrument_1/detector_1/distance m\n"
        "photon_energy = /entry_1/instrument_1/source_1/photon_energy_eV eV\n"
        "res = 5000\nadu_per_photon = 1\n"
        "p0/min_fs = 0\np0/max_fs = 9\np0/min_ss = 0\np0/max_ss = 9\n"
        "p0/corner_x = -5\np0/corner_y = -5\np0/fs = +1.0x\np0/ss = +1.0y\n"
    )
    g = parse_geom_text(text)
    assert split_path_unit(g.clen_path, "mm") == ("/entry_1/instrument_1/detector_1/distance", "m")
    assert split_path_unit(g.photon_energy_path, "eV") == ("/entry_1/instrument_1/source_1/photon_energy_eV", "eV")
    g2 = parse_geom_text(format_geom_text(g))
    assert g2.clen_path == g.clen_path and g2.photon_energy_path == g.photon_energy_path
