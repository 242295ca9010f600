"""Features: the registry (name, group, dtype, unit, availability) and the extractors."""

from research.features.context import SymbolClusterer, session_of, volatility_regime
from research.features.extract import bar_table, build_features, lifecycle_features
from research.features.registry import (
    CATEGORIES,
    FEATURES,
    Feature,
    check_entry_columns,
    feature_names,
    registry_frame,
)

__all__ = [
    "CATEGORIES",
    "FEATURES",
    "Feature",
    "SymbolClusterer",
    "bar_table",
    "build_features",
    "check_entry_columns",
    "feature_names",
    "lifecycle_features",
    "registry_frame",
    "session_of",
    "volatility_regime",
]
