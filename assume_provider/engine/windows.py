"""The size of the early (advisory) refresh window, from the credentials' lifetime.

A module of its own, importing nothing, because two callers need the one rule: the engine's
schedule (``schedule.py``) and the disk cache's freshness check, which runs on the
``credential-process`` cache-hit path where ``schedule.py``'s own imports (dataclasses,
typing, datetime through ``model.py``) would cost more than the rest of a hit.
"""

__all__ = ["advisory_window_for"]


def advisory_window_for(lifetime: float) -> float:
    """Size the early window from the lifetime so short credentials last (botocore#2189)."""
    if lifetime <= 20 * 60:
        return 5 * 60.0
    if lifetime <= 90 * 60:
        return 15 * 60.0
    return 60 * 60.0
