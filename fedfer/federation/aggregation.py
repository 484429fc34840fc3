"""The server's strategy for a run's `aggregation` setting: Flower's own robust strategies, each with
fedfer's bookkeeping and update checks (`VHeadFedAvg` first in the method order, Flower's
aggregation rule second), so bytes, client logs, refusals and resumption work the same for all.

What each rule does not stop: the coordinate-wise median and trimmed mean ignore a minority of
extreme values but follow a majority; Krum keeps the one update closest to its neighbours (all others
are dropped, honest ones too); MultiKrum averages the n − f closest, so it
needs `num-malicious` ≥ the real number of hostile clients.
"""

from __future__ import annotations

from typing import Any

from flwr.serverapp.strategy import FedMedian, FedTrimmedAvg, Krum, MultiKrum

from fedfer.federation.strategy import VHeadFedAvg
from fedfer.runconfig import RobustConfig


class VHeadFedMedian(VHeadFedAvg, FedMedian):
    """Coordinate-wise median of the accepted v() updates (Flower's FedMedian)."""


class VHeadFedTrimmedAvg(VHeadFedAvg, FedTrimmedAvg):
    """Coordinate-wise mean after cutting the `trim-beta` share at each end (Flower's FedTrimmedAvg)."""


class VHeadKrum(VHeadFedAvg, Krum):
    """The single update with the smallest summed distance to its n − f − 2 nearest (Flower's Krum)."""


class VHeadMultiKrum(VHeadFedAvg, MultiKrum):
    """FedAvg of the n − f updates with the best Krum scores (Flower's MultiKrum)."""


def make_strategy(robust: RobustConfig, num_clients: int, **kwargs: Any) -> VHeadFedAvg:
    """The strategy `robust.aggregation` names (its values were checked against their declarations when the
    run config was read); `kwargs` are `VHeadFedAvg`'s (log path, v() keys, sampling)."""
    kwargs = {**kwargs, "robust": robust}
    if robust.aggregation == "median":
        return VHeadFedMedian(**kwargs)
    if robust.aggregation == "trimmed":
        return VHeadFedTrimmedAvg(beta=robust.trim_beta, **kwargs)
    if robust.aggregation == "krum":
        return VHeadKrum(num_malicious_nodes=robust.num_malicious, **kwargs)
    if robust.aggregation == "multikrum":
        selected = max(1, num_clients - robust.num_malicious)
        return VHeadMultiKrum(num_malicious_nodes=robust.num_malicious, num_nodes_to_select=selected, **kwargs)
    return VHeadFedAvg(**kwargs)
