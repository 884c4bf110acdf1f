"""Label curation and fine-tuning (Qt-free): the PeakNet paper's data loop in the window.

* :mod:`.labels` -- label operations on one frame (start from the prediction, remove a false
  peak, add a missed one by a local threshold, paint/erase artifact pixels; undo);
* :mod:`.store` -- the curation file beside the run (labelled-run layout, atomic, appendable,
  train / held-out split);
* :mod:`.finetune` -- the fine-tune job: split files, simulated replay frames, the
  ``peaknet train`` command line, its log, the before/after comparison (:mod:`.compare`).
"""
