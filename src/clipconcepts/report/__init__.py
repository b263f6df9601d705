"""The results report: the paper's values (`paper`), the run's inputs (`inputs`), HTML tables
(`tables`), matplotlib figures (`figures`), the standalone assets (`assets`) and the
self-contained page (`html`).

Names are imported lazily, so `clipconcepts.report.assets` stays cheap to import (a Snakefile
lists the report's outputs with it).
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "Asset": "assets",
    "asset_paths": "assets",
    "caption_path": "assets",
    "report_assets": "assets",
    "build_report": "html",
    "ReportInputError": "inputs",
    "PaperValues": "paper",
    "load_paper_values": "paper",
    "paper_values_path": "paper",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"clipconcepts.report.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'clipconcepts.report' has no attribute {name!r}")
