"""Golden model: the executable specification of the sparse PE array.

Everything the RTL must reproduce lives here in plain NumPy: pruning, the memory images the
hardware loads (``encode``), the integer reference convolution, the exact cycle model and the
exact performance-counter values. The RTL is checked against this package, never the other way round.
"""
