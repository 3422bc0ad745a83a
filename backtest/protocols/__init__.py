"""Protocol models: exact integer replicas of on-chain arithmetic and their float counterparts.

Each protocol lives in its own module or small package (``aave`` for Aave v2/v3). The integer layers use
plain Python ints and reproduce the contracts' rounding to the wei, for replaying history; the float layers
(``aave_float``) express the same mechanics in float64 for counterfactual replays and are what the
numba engine ports. Nothing here touches the network, DuckDB or pandas.
"""
