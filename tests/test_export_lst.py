"""CrystFEL event lists: multi-event and single-image lines, path conventions, reading back."""

from __future__ import annotations

import os

import pytest

from peaknet_gui.errors import InputError
from peaknet_gui.export.lst import lst_line, output_path, parse_lst_line, read_lst, write_lst
from peaknet_gui.frame import EventId


def test_multi_event_and_single_image_lines(tmp_path):
    events = [EventId("data/run_0001.cxi", 0), EventId("data/run_0001.cxi", 17), EventId("cbf/img_00042.cbf"),
              EventId("data/run 2.h5", 3)]
    write_lst(tmp_path / "hits.lst", events)
    assert (tmp_path / "hits.lst").read_text() == (
        "data/run_0001.cxi //0\ndata/run_0001.cxi //17\ncbf/img_00042.cbf\ndata/run 2.h5 //3\n")
    assert read_lst(tmp_path / "hits.lst") == events
    assert [e.lst_line() for e in events] == [lst_line(e.path, e.index) for e in events]


def test_paths_relative_to_the_output_directory_or_absolute(tmp_path):
    out = tmp_path / "results" / "run7"
    data = tmp_path / "raw" / "run7.cxi"
    rel = output_path(data, out)
    assert rel == os.path.join("..", "..", "raw", "run7.cxi")
    assert os.path.normpath(os.path.join(out, rel)) == str(data)  # what indexamajig run in OUT opens
    assert output_path(data, out, "absolute") == str(data)
    assert output_path(out / "hits.cxi", out) == "hits.cxi"
    with pytest.raises(ValueError):
        output_path(data, out, "sideways")
    # nothing in common but the root: absolute
    assert output_path("/data/exp7/run.h5", "/tmp/out") == "/data/exp7/run.h5"
    assert output_path("/data/exp7/raw/run.h5", "/data/exp7/out") == "../raw/run.h5"


def test_parse_lines_and_errors(tmp_path):
    assert parse_lst_line("  a.h5 //5  ") == EventId("a.h5", 5)
    assert parse_lst_line("a.cbf") == EventId("a.cbf", None)
    assert parse_lst_line("a.h5 //") == EventId("a.h5", None)
    assert parse_lst_line("") is None and parse_lst_line("# comment") is None
    (tmp_path / "x.lst").write_text("a.h5 //1\nb.h5 //x\n")
    with pytest.raises(InputError, match=r"x.lst, line 2"):
        read_lst(tmp_path / "x.lst")
    with pytest.raises(InputError, match="not found"):
        read_lst(tmp_path / "none.lst")
    with pytest.raises(InputError, match="line break"):
        lst_line("a\nb.h5", 1)
