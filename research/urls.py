"""URL masking for the workbench: :func:`mask_url` hides a URL's password before it is logged,
printed, notified or stored.

One implementation for everything that shows a URL: the pipeline runner (:mod:`nbrunner`, the
sibling package the workbench uses, which masks run parameters) owns it, and the stores, the
CLI, the reports and the notifications take it from here.
"""

from __future__ import annotations

from nbrunner.masking import mask_url

__all__ = ["mask_url"]
