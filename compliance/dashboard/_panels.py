"""The pages of other compliance modules (cases, customers), wired into the dashboard."""

from __future__ import annotations

import argparse

from compliance.dashboard._app import Panel, Services


async def panels_for(svc: Services, args: argparse.Namespace) -> list[Panel]:
    """Open the stores the panels need (closers go to ``svc.extra["closers"]``)."""
    return []


__all__ = ["panels_for"]
