"""Dataset readers: each class is a :class:`~purls_pl.data.skeletons.SkeletonSource` whose ``load()``
returns a :class:`~purls_pl.data.skeletons.SkeletonSet` (built once, then memory-mapped from the
cache in ``$PURLS_CACHE_DIR`` or ``~/.cache/purls_pl``).

=========================  ==========================================================================
``NTUSkeletonSource``      NTU RGB+D 60/120 raw ``.skeleton`` files (denoised, xsub/xview/xset)
``NTUProcessedSource``     NTU as CTR-GCN ``NTU60_CS.npz``-style or st-gcn ``train_data_joint.npy`` + ``.pkl``
``KineticsSource``         Kinetics-skeleton st-gcn json clips + ``kinetics_*_label.json``
``KineticsProcessedSource``  st-gcn ``train_data.npy`` ``(N, 3, 300, 18, 2)`` + ``train_label.pkl``
``UCLASource``             NW-UCLA ``all_sqe`` json files
``CustomSource``           your own ``.npy`` per sample + ``index.csv`` (format in :mod:`.custom`)
=========================  ==========================================================================
"""

from purls_pl.data.readers.custom import CustomSource
from purls_pl.data.readers.kinetics import KineticsProcessedSource, KineticsSource
from purls_pl.data.readers.ntu import NTUProcessedSource, NTUSkeletonSource
from purls_pl.data.readers.ucla import UCLASource

__all__ = [
    "CustomSource",
    "KineticsProcessedSource",
    "KineticsSource",
    "NTUProcessedSource",
    "NTUSkeletonSource",
    "UCLASource",
]
