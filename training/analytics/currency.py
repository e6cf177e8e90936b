"""Minor units of ISO 4217 currencies, to show ``amount_minor`` in major units.

Source: ISO 4217 list one (current currencies), maintained by SIX,
https://www.six-group.com/en/products-services/financial-information/data-standards.html
Every currency not listed has two decimals.
"""

from __future__ import annotations

import pandas as pd

DEFAULT_MINOR_UNITS = 2
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(_ZERO.split(), 0),
    **dict.fromkeys(_THREE.split(), 3),
    **dict.fromkeys(_FOUR.split(), 4),
}


def to_major(amount_minor: pd.Series, currency: pd.Series) -> pd.Series:
    """Amounts in major units (``1999`` EUR cents -> ``19.99``; ``500`` JPY -> ``500.0``)."""
    digits = currency.str.upper().map(MINOR_UNITS).fillna(DEFAULT_MINOR_UNITS)
    return amount_minor.astype("float64") / 10.0 ** digits.astype("float64")
