"""EfficientAT Dynamic MobileNet (`dymn*_as`): the `dymn` family's registry entries and builder, without torch
(EfficientAT front-end and release, see `mobilenet`); the network is in `dymn.network`, imported when one is built.

Not exportable: per-item kernels use a batch-dependent grouped conv, so it runs on torch.
"""
from __future__ import annotations

from ..mobilenet import efficientat_builder, efficientat_entry
from ..family import Family, network_names


def _network_class():
    from .network import DyMN
    return DyMN


__getattr__ = network_names(__name__)  # the network module's names, importing torch on first use


def _dymn(*args, **kwargs):
    return efficientat_entry("dymn", *args, **kwargs)


# dynamic MobileNets (params: README table; counted 1.961 / 10.548 / 39.966 M)
FAMILY = Family("dymn", efficientat_builder(_network_class), (
    _dymn("dymn04_as", 0.4, 384, "dymn04_as.pt", 1.97, 0.12, 45.0),
    _dymn("dymn10_as", 1.0, 960, "dymn10_as.pt", 10.57, 0.58, 47.7),
    _dymn("dymn20_as", 2.0, 1920, "dymn20_as_mAP_493.pt", 40.02, 2.2, 49.1),
))
