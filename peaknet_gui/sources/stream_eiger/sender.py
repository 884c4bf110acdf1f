"""A small Eiger stream sender: replays frames (numpy arrays) as the detector would send them.

For tests, benchmarks and trying the window without a detector::

    python -m peaknet_gui.sources.stream_eiger.sender tcp://127.0.0.1:9999 FILE... [--format stream2]

Legacy SIMPLON (``fmt="legacy"``: ``dheader-1.0`` with the detector configuration and pixel
mask, ``dimage-1.0`` ..., ``dseries_end-1.0``) or ``stream2`` CBOR.  Compression by hdf5plugin's
bitshuffle/LZ4 filters (the HDF5 framing the detector uses) or ``lz4`` blocks.  It binds a PUSH
socket like the detector; ``die_after`` stops mid-series without an end message (a crash).
"""

from __future__ import annotations

import io
import json
import time
from typing import Optional, Sequence

import numpy as np

from .codecs import BITSHUFFLE_DEFAULT_BLOCK_BYTES  # noqa: F401  (the framing the decoder expects)

LEGACY_ENCODINGS = ("<", "lz4<", "bslz4")


def hdf5_chunk(arr: np.ndarray, codec: str) -> bytes:
    """``arr`` compressed as one HDF5 chunk by hdf5plugin (``bslz4`` or ``lz4``), with its framing."""
    import h5py
    import hdf5plugin

    filt = hdf5plugin.Bitshuffle(cname="lz4") if codec == "bslz4" else hdf5plugin.LZ4()
    with h5py.File(io.BytesIO(), "w") as f:
        d = f.create_dataset("d", data=arr, chunks=arr.shape, **filt)
        return bytes(d.id.read_direct_chunk((0,) * arr.ndim)[1])


def legacy_image_parts(arr: np.ndarray, series: int, frame: int, encoding: str = "bslz4") -> list:
    arr = np.ascontiguousarray(arr)
    if encoding == "bslz4":
        blob, enc = hdf5_chunk(arr, "bslz4"), f"bs{8 * arr.dtype.itemsize}-lz4<"
    elif encoding == "lz4<":
        import lz4.block

        blob, enc = lz4.block.compress(arr.tobytes(), store_size=False), "lz4<"
    else:
        blob, enc = arr.astype(arr.dtype.newbyteorder("<")).tobytes(), "<"
    ss, fs = arr.shape
    return [json.dumps({"htype": "dimage-1.0", "series": series, "frame": frame, "hash": ""}).encode(),
            json.dumps({"htype": "dimage_d-1.0", "shape": [fs, ss], "type": arr.dtype.name, "encoding": enc,
                        "size": len(blob)}).encode(),
            blob,
            json.dumps({"htype": "dconfig-1.0", "start_time": frame * 1000, "stop_time": frame * 1000 + 500,
                        "real_time": 500}).encode()]


def legacy_header_parts(series: int, config: dict, pixel_mask: Optional[np.ndarray] = None) -> list:
    parts = [json.dumps({"htype": "dheader-1.0", "series": series, "header_detail": "all" if pixel_mask is not None else "basic"}).encode(),
             json.dumps(config).encode()]
    if pixel_mask is not None:
        ss, fs = pixel_mask.shape
        parts += [json.dumps({"htype": "dflatfield-1.0", "shape": [fs, ss], "type": "float32"}).encode(),
                  np.ones(pixel_mask.shape, "<f4").tobytes(),
                  json.dumps({"htype": "dpixelmask-1.0", "shape": [fs, ss], "type": "uint32"}).encode(),
                  pixel_mask.astype("<u4").tobytes(),
                  json.dumps({"htype": "dcountrate_table-1.0", "shape": [2, 1], "type": "float32"}).encode(),
                  np.zeros(2, "<f4").tobytes()]
    return parts


def _cbor_array(arr: np.ndarray, codec: Optional[str]):
    import cbor2

    from .stream2 import TYPED_ARRAY_TAGS

    arr = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"))
    tag = next(t for t, d in TYPED_ARRAY_TAGS.items() if np.dtype(d) == arr.dtype and t not in (68,))
    payload = arr.tobytes() if codec is None else cbor2.CBORTag(56500, [codec, arr.dtype.itemsize if codec == "bslz4" else 0,
                                                                      hdf5_chunk(arr, codec)])
    return cbor2.CBORTag(40, [list(arr.shape), cbor2.CBORTag(tag, payload)])


def stream2_start(series: int, config: dict, pixel_mask: Optional[np.ndarray] = None, channel: str = "threshold_1") -> bytes:
    import cbor2

    msg = dict(config, type="start", series_id=series, series_unique_id=f"series-{series}", channels=[channel])
    if pixel_mask is not None:
        msg["pixel_mask"] = {channel: _cbor_array(pixel_mask.astype(np.uint32), "bslz4")}
    return cbor2.dumps(cbor2.CBORTag(55799, msg))


def stream2_image(arr: np.ndarray, series: int, image_id: int, codec: Optional[str] = "bslz4",
                  channel: str = "threshold_1") -> bytes:
    import cbor2

    msg = {"type": "image", "series_id": series, "series_unique_id": f"series-{series}", "image_id": image_id,
           "start_time": [image_id, 1000], "stop_time": [image_id + 1, 1000], "real_time": [1, 1000],
           "data": {channel: _cbor_array(arr, codec)}}
    return cbor2.dumps(cbor2.CBORTag(55799, msg))


def stream2_end(series: int) -> bytes:
    import cbor2

    return cbor2.dumps(cbor2.CBORTag(55799, {"type": "end", "series_id": series, "series_unique_id": f"series-{series}"}))


def detector_config(shape: tuple, *, pixel_size_m: float = 75e-6, distance_m: float = 0.2, beam_center=None,
                    wavelength_a: float = 1.0, count_time_s: float = 0.01, description: str = "Dectris EIGER2 (replay)") -> dict:
    """A SIMPLON detector configuration for frames of ``shape`` (ss, fs); beam centre in DECTRIS
    pixels (corner of the first pixel at 0)."""
    ss, fs = shape
    bx, by = beam_center if beam_center is not None else (fs / 2, ss / 2)
    return {"x_pixel_size": pixel_size_m, "y_pixel_size": pixel_size_m, "detector_distance": distance_m,
            "beam_center_x": bx, "beam_center_y": by, "wavelength": wavelength_a, "count_time": count_time_s,
            "x_pixels_in_detector": fs, "y_pixels_in_detector": ss, "description": description,
            "image_size_x": fs, "image_size_y": ss, "incident_wavelength": wavelength_a}


class ReplaySender:
    """Binds ``url`` (``tcp://127.0.0.1:PORT``; port 0 or ``*``: a free one, see :attr:`url`)."""

    def __init__(self, url: str = "tcp://127.0.0.1:*", *, sndhwm: int = 1000):
        import zmq

        self._zmq = zmq
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDHWM, sndhwm)
        self.sock.setsockopt(zmq.LINGER, 2000)
        if url.endswith(":0"):
            url = url[:-2] + ":*"
        self._mon = self.sock.get_monitor_socket(zmq.EVENT_ACCEPTED)
        self.sock.bind(url)
        self.url = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.sent = 0
        self.peers = 0

    def wait_for_peer(self, timeout_s: float = 60.0) -> bool:
        """Block until a receiver has connected (or ``timeout_s``); a PUSH socket without one
        would hold the messages back."""
        from zmq.utils.monitor import recv_monitor_message

        deadline = time.monotonic() + timeout_s
        while self.peers == 0 and time.monotonic() < deadline:
            if self._mon.poll(100):
                if recv_monitor_message(self._mon)["event"] == self._zmq.EVENT_ACCEPTED:
                    self.peers += 1
        return self.peers > 0

    def send(self, parts, timeout_s: float = 10.0) -> None:
        self.sock.setsockopt(self._zmq.SNDTIMEO, int(timeout_s * 1000))
        if isinstance(parts, (bytes, bytearray)):
            self.sock.send(parts)
        else:
            self.sock.send_multipart(parts, copy=False)

    def series(self, frames: Sequence[np.ndarray], *, series: int = 1, config: Optional[dict] = None,
               pixel_mask: Optional[np.ndarray] = None, fmt: str = "legacy", encoding: str = "bslz4",
               rate_hz: Optional[float] = None, die_after: Optional[int] = None, pre_encoded: Optional[list] = None) -> int:
        """Send one series (once a receiver is connected); returns the number of images sent."""
        self.wait_for_peer()
        config = config if config is not None else detector_config(frames[0].shape)
        self.send(stream2_start(series, config, pixel_mask) if fmt == "stream2" else legacy_header_parts(series, config, pixel_mask))
        t0 = time.perf_counter()
        n = 0
        for i, arr in enumerate(frames):
            if die_after is not None and i >= die_after:
                return n
            if rate_hz:
                delay = t0 + i / rate_hz - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            if pre_encoded is not None:
                msg = pre_encoded[i]
            elif fmt == "stream2":
                msg = stream2_image(arr, series, i, None if encoding == "<" else encoding.rstrip("<"))
            else:
                msg = legacy_image_parts(arr, series, i, encoding)
            self.send(msg)
            n += 1
            self.sent += 1
        self.send(stream2_end(series) if fmt == "stream2" else [json.dumps({"htype": "dseries_end-1.0", "series": series}).encode()])
        return n

    def close(self, linger_s: float = 2.0) -> None:
        self.sock.disable_monitor()
        self._mon.close(linger=0)
        self.sock.close(linger=int(linger_s * 1000))
        self.ctx.term()


def main(argv=None) -> int:  # pragma: no cover - a helper for people
    import argparse

    from ..detect import open_run

    p = argparse.ArgumentParser(description="replay a run's frames as an Eiger stream")
    p.add_argument("url")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--format", choices=("legacy", "stream2"), default="legacy")
    p.add_argument("--encoding", choices=LEGACY_ENCODINGS, default="bslz4")
    p.add_argument("--rate", type=float, default=10.0, help="frames per second")
    a = p.parse_args(argv)
    src = open_run(a.inputs if len(a.inputs) > 1 else a.inputs[0])
    frames = [src.read_raw(i) if hasattr(src, "read_raw") else src[i].data for i in range(len(src))]
    s = ReplaySender(a.url)
    print(f"sending {len(frames)} frames on {s.url}; Ctrl-C stops")
    s.series(frames, fmt=a.format, encoding=a.encoding, rate_hz=a.rate)
    s.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
