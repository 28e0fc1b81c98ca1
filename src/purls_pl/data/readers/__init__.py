"""Dataset readers: each class is a :class:`~purls_pl.data.skeletons.SkeletonSource` whose ``load()``
returns a :class:`~purls_pl.data.skeletons.SkeletonSet` (built once, then memory-mapped from the
cache in ``$PURLS_CACHE_DIR`` or ``~/.cache/purls_pl``).

=========================  ==========================================================================
``NTUSkeletonSource``      NTU RGB+D 60/120 raw ``.skeleton`` files (denoised, xsub/xview/xset)
``NTUProcessedSource``     NTU as CTR-GCN ``NTU60_CS.npz``-style or st-gcn ``train_data_joint.npy`` + ``.pkl``
``KineticsSource``         Kinetics-skeleton st-gcn json clips + ``kinetics_*_label.json``
``KineticsProcessedSource``  st-gcn ``train_data.npy`` ``(N, 3, 300, 18, 2)`` + ``train_label.pkl``
``UCLASource``             NW-UCLA ``all_sqe`` json files
``PennActionSource``       Penn Action ``labels/NNNN.mat`` files (2-D, 13 joints)
``PysklSource``            a pyskl annotation ``.pkl`` (NTU 3-D / HRNet 2-D, Kinetics-400 HRNet; any split)
``ReleasedFeatureSource``  released pooled features: a SynSE folder or a Flora ``.npz`` (no stage 1)
``CustomSource``           your own ``.npy`` per sample + ``index.csv`` (format in :mod:`.custom`)
=========================  ==========================================================================

Every reader takes the same :class:`Conversion` options (``conversion: {max_samples, num_workers,
cache_dir, cache, on_error}`` in a config): ``on_error="raise" | "skip"`` (a broken file raises an
error naming it and the fix, or is left out and listed in one report, ``source.skipped`` and the cache
manifest) and ``num_workers`` (parallel parsing in processes, identical results); see :mod:`._base`.

Every reader states its :class:`~purls_pl.data.preprocessing.Preprocessing` (``source.preprocessing``, the
record checkpoints store); the readers of single sample files also read one file (``read_file``) and say
which files they read (``suffixes``, ``can_read``), so :func:`~.files.prepare_sample` prepares a new file
exactly as the reader's conversion prepared its own (``recognize`` uses it).
"""

from purls_pl.data.readers._base import Conversion, SampleError, SkippedSample
from purls_pl.data.readers.custom import CustomSource
from purls_pl.data.readers.features import ReleasedFeatureSource
from purls_pl.data.readers.files import file_readers, prepare_sample, read_sample, recorded_preprocessing
from purls_pl.data.readers.kinetics import KineticsSource
from purls_pl.data.readers.kinetics_processed import KineticsProcessedSource
from purls_pl.data.readers.ntu import NTUSkeletonSource
from purls_pl.data.readers.ntu_processed import NTUProcessedSource
from purls_pl.data.readers.penn import PennActionSource
from purls_pl.data.readers.pyskl import PysklSource
from purls_pl.data.readers.ucla import UCLASource

__all__ = [
    "Conversion",
    "CustomSource",
    "KineticsProcessedSource",
    "KineticsSource",
    "NTUProcessedSource",
    "NTUSkeletonSource",
    "PennActionSource",
    "PysklSource",
    "ReleasedFeatureSource",
    "SampleError",
    "SkippedSample",
    "UCLASource",
    "file_readers",
    "prepare_sample",
    "read_sample",
    "recorded_preprocessing",
]
