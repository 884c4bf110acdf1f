"""Writers of small detector files for the run-source tests (test_sources_*.py, test_cli_info.py).

Every format is written here from scratch -- miniCBF with a Pilatus header (byte-offset
compressed, optionally ``.gz``/``.bz2``), ADSC/SMV ``.img``, CXI stacks, Cheetah files, and a
Dectris-style Eiger master + data file pair with external links and bitshuffle/LZ4 data.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import base64
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

PILATUS_HEADER = """# Detector: PILATUS3 6M, S/N 60-0000 test
# 2024-01-01T00:00:00.000
# Pixel_size 172e-6 m x 172e-6 m
# Silicon sensor, thickness 0.000450 m
# Exposure_time 0.0190000 s
# Exposure_period 0.0200000 s
# Count_cutoff {cutoff} counts
# Threshold_setting: 6400 eV
# Wavelength {wavelength:.5f} A
# Detector_distance {distance:.5f} m
# Beam_xy ({bx:.2f}, {by:.2f}) pixels
# Start_angle 10.0000 deg.
# Angle_increment 0.1000 deg.
# Detector_2theta 0.0000 deg.
"""


def minicbf_bytes(data: np.ndarray, wavelength=0.97625, distance=0.25, beam=(40.5, 30.25), cutoff=100000) -> bytes:
    """A Pilatus miniCBF file (byte-offset compressed int32) as CBFlib writes it."""
    from fabio.compression import compByteOffset

    data = np.ascontiguousarray(data, dtype=np.int32)
    binary = compByteOffset(data)
    header = PILATUS_HEADER.format(cutoff=cutoff, wavelength=wavelength, distance=distance, bx=beam[0], by=beam[1])
    md5 = base64.b64encode(hashlib.md5(binary).digest()).decode()
    text = (
        "###CBF: VERSION 1.5, CBFlib v0.7.8 - PILATUS detectors\r\n\r\ndata_test\r\n\r\n"
        '_array_data.header_convention "PILATUS_1.2"\r\n_array_data.header_contents\r\n;\r\n'
        + header.replace("\n", "\r\n")
        + ";\r\n\r\n_array_data.data\r\n;\r\n--CIF-BINARY-FORMAT-SECTION--\r\n"
        'Content-Type: application/octet-stream;\r\n     conversions="x-CBF_BYTE_OFFSET"\r\n'
        "Content-Transfer-Encoding: BINARY\r\n"
        f"X-Binary-Size: {len(binary)}\r\nX-Binary-ID: 1\r\n"
        'X-Binary-Element-Type: "signed 32-bit integer"\r\nX-Binary-Element-Byte-Order: LITTLE_ENDIAN\r\n'
        f"Content-MD5: {md5}\r\nX-Binary-Number-of-Elements: {data.size}\r\n"
        f"X-Binary-Size-Fastest-Dimension: {data.shape[1]}\r\nX-Binary-Size-Second-Dimension: {data.shape[0]}\r\n"
        "X-Binary-Size-Padding: 4095\r\n\r\n"
    ).encode("latin-1")
    tail = b"\x00" * 4095 + b"\r\n--CIF-BINARY-FORMAT-SECTION----\r\n;\r\n\r\n"
    return text + b"\x0c\x1a\x04\xd5" + binary + tail


def write_minicbf(path, data, compress=None, **kw) -> Path:
    content = minicbf_bytes(data, **kw)
    path = Path(path)
    if compress == "gz":
        content = gzip.compress(content)
    elif compress == "bz2":
        content = bz2.compress(content)
    path.write_bytes(content)
    return path


def write_adsc(path, data: np.ndarray, wavelength=1.0, distance_mm=150.0, pixel_mm=0.1, beam_x_mm=3.0, beam_y_mm=4.0):
    """An ADSC/SMV ``.img`` (512-byte text header, little-endian unsigned 16-bit pixels)."""
    data = np.ascontiguousarray(data, dtype="<u2")
    fields = [
        "HEADER_BYTES=  512;", "DIM=2;", "BYTE_ORDER=little_endian;", "TYPE=unsigned_short;",
        f"SIZE1={data.shape[1]};", f"SIZE2={data.shape[0]};", f"PIXEL_SIZE={pixel_mm};", f"WAVELENGTH={wavelength};",
        f"DISTANCE={distance_mm};", f"BEAM_CENTER_X={beam_x_mm};", f"BEAM_CENTER_Y={beam_y_mm};", "TIME=0.5;",
        "DETECTOR_SN=916;",
    ]
    text = ("{\n" + "\n".join(fields) + "\n}\n").encode()
    Path(path).write_bytes(text.ljust(512, b" ") + data.tobytes())
    return Path(path)


def write_cxi(path, data: np.ndarray, energy_ev=9500.0, distance_m=0.1, pixel_m=75e-6, beam=(40.0, 30.0),
              compression=None, mask=None, labels=True, maxshape=None):
    """A CXI run in the project's layout (CONTRACTS.md)."""
    n = data.shape[0]
    comp = {} if compression is None else dict(compression)
    with h5py.File(path, "w") as f:
        f.create_dataset("/entry_1/data_1/data", data=data, chunks=(1,) + data.shape[1:], maxshape=maxshape, **comp)
        if labels:
            f.create_dataset("/entry_1/data_1/labels", data=np.zeros(data.shape, np.uint8), chunks=(1,) + data.shape[1:])
        if mask is not None:
            f.create_dataset("/entry_1/data_1/mask", data=mask)
        src = "/entry_1/instrument_1/source_1"
        det = "/entry_1/instrument_1/detector_1"
        f[f"{src}/energy"] = np.full(n, energy_ev * 1.602176634e-19)
        f[f"{src}/photon_energy_eV"] = np.full(n, energy_ev)
        f[f"{det}/distance"] = np.full(n, distance_m) if np.isscalar(distance_m) else np.asarray(distance_m)
        f[f"{det}/x_pixel_size"] = pixel_m
        f[f"{det}/y_pixel_size"] = pixel_m
        for axis, v in zip("xy", beam):
            d = f.create_dataset(f"{det}/beam_center_{axis}", data=np.full(n, v))
            d.attrs["convention"] = "pixel index; centre of first pixel at 0"
    return Path(path)


def write_eiger_pair(folder, stem="series_7", frames=(3, 2), shape=(40, 60), seed=0, energy_ev=12650.0):
    """A Dectris-like Eiger master file + one data file per block, bitshuffle/LZ4 uint16.

    Returns (master path, list of data arrays).  Pixel (1, 2) is masked in ``pixel_mask`` and
    pixel (3, 4) of every frame holds the 16-bit marker value 65535.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    arrays = []
    master = folder / f"{stem}_master.h5"
    with h5py.File(master, "w") as m:
        entry = m.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        data_g = entry.create_group("data")
        data_g.attrs["NX_class"] = "NXdata"
        inst = entry.create_group("instrument")
        inst.attrs["NX_class"] = "NXinstrument"
        beam = inst.create_group("beam")
        beam.attrs["NX_class"] = "NXbeam"
        wl = beam.create_dataset("incident_wavelength", data=np.float32(12398.419843320026 / energy_ev))
        wl.attrs["units"] = "angstrom"
        det = inst.create_group("detector")
        det.attrs["NX_class"] = "NXdetector"
        for name, value, unit in (("beam_center_x", 30.5, "pixel"), ("beam_center_y", 20.25, "pixel"),
                                  ("detector_distance", 0.125, "m"), ("x_pixel_size", 75e-6, "m"),
                                  ("y_pixel_size", 75e-6, "m"), ("count_time", 0.004, "s")):
            d = det.create_dataset(name, data=np.float32(value))
            d.attrs["units"] = unit
        det["description"] = np.bytes_(b"Dectris EIGER2 test")
        det["bit_depth_image"] = np.int32(16)
        spec = det.create_group("detectorSpecific")
        spec["photon_energy"] = np.float32(energy_ev)
        spec["nimages"] = np.int32(sum(frames))
        spec["ntrigger"] = np.int32(1)
        spec["x_pixels_in_detector"] = np.int32(shape[1])
        spec["y_pixels_in_detector"] = np.int32(shape[0])
        pm = np.zeros(shape, np.uint32)
        pm[1, 2] = 1
        spec.create_dataset("pixel_mask", data=pm)
        for k, n in enumerate(frames, start=1):
            arr = rng.poisson(5.0, (n,) + shape).astype(np.uint16)
            arr[:, 3, 4] = 65535
            arrays.append(arr)
            fname = f"{stem}_data_{k:06d}.h5"
            with h5py.File(folder / fname, "w") as df:
                df.create_dataset("/entry/data/data", data=arr, chunks=(1,) + shape,
                                  **hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))
            data_g[f"data_{k:06d}"] = h5py.ExternalLink(fname, "/entry/data/data")
    return master, arrays
