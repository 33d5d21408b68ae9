"""Monitoring: production batches against the training data profile of the version serving
them (:mod:`.drift` the statistics, :mod:`.performance` metrics once labels are known,
:mod:`.batch` recording one batch, :mod:`.report` showing it). Plain Python, like the registry.
"""

from __future__ import annotations

from .batch import BatchReport, MonitoringError, batch_sample, record_batch, resolve_version

__all__ = [
    "BatchReport",
    "MonitoringError",
    "batch_sample",
    "record_batch",
    "resolve_version",
]
