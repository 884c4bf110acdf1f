"""Writers and readers of the files CrystFEL and the program exchange (Qt-free).

* :mod:`.stream` / :mod:`.stream_reader` -- CrystFEL stream 2.3 (``peaks.stream``), the only place
  where the program's pixel indices get CrystFEL's half pixel (``to_crystfel_corner``);
* :mod:`.lst` -- ``file //event`` lists (``hits.lst``) and the output path convention;
* :mod:`.cxi` -- ``hits.cxi`` in Cheetah's layout (raw pixel indices, ``--peaks=cxi``);
* :mod:`.geom_export` -- ``peaks.geom`` for hits.cxi, mask lines (1 = bad: goodbits 0x0, badbits 0x1);
* :mod:`.mask_h5` -- ``mask.h5`` run/frame masks;  :mod:`.summary` -- ``summary.json``;
* :mod:`.cellfile` -- CrystFEL unit cell files;  :mod:`.frame_values` -- per-frame energy/clen;
* :mod:`.session` -- :class:`ExportSession`, incremental and atomic, what ``peaknet find`` and the
  GUI use;  :mod:`.atomic` -- temporary file + rename.
"""
