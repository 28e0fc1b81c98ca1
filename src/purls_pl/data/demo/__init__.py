"""The embedded demo dataset: procedural skeleton motions whose descriptions are exact by construction.

:class:`DemoSource` renders it (:mod:`.motion`); :mod:`.programs` holds its classes, their movement
programs and the phrase tables its descriptions are assembled from.
"""

from purls_pl.data.demo.motion import DemoSource, demo_descriptions, generate_demo
from purls_pl.data.demo.programs import DEMO_CLASS_NAMES

__all__ = ["DEMO_CLASS_NAMES", "DemoSource", "demo_descriptions", "generate_demo"]
