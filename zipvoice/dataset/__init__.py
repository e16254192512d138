"""Training data for ZipVoice: lhotse cuts with precomputed features → batches.

* :class:`ZipVoiceDataset` turns a sampled CutSet into a batch (features,
  lengths, token ids);
* :mod:`zipvoice.dataset.datamodule` reads and checks manifests and builds
  the samplers and data loaders.
"""

from zipvoice.dataset.datamodule import (
    DataOptions,
    add_data_arguments,
    load_cuts,
    make_dev_dataloader,
    make_train_dataloader,
    total_duration,
)
from zipvoice.dataset.dataset import TokenMapper, ZipVoiceDataset

__all__ = [
    "add_data_arguments",
    "DataOptions",
    "TokenMapper",
    "ZipVoiceDataset",
    "load_cuts",
    "make_dev_dataloader",
    "make_train_dataloader",
    "total_duration",
]
