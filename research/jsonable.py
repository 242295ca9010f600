"""JSON-safe values (numpy scalars, timestamps, NaN, frames) for manifests, run records and
stored metadata: :func:`to_jsonable`, :func:`canonical_json` (signed bytes), :func:`is_missing`.

One implementation, owned by the pipeline runner (:mod:`nbrunner`, which writes every run's
manifest with it); the stores and the retrain pipeline take it from here.
"""

from __future__ import annotations

from nbrunner.jsonable import canonical_json, is_missing, to_jsonable

__all__ = ["canonical_json", "is_missing", "to_jsonable"]
