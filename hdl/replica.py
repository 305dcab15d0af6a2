"""Registers that exist as several identical copies on purpose, and how synthesis keeps them.

Every PE receives the same broadcast operands and computes the same control (valid bits, accumulator
addresses, forwarding hits) as its neighbours, and the array keeps one copy of the broadcast operands
per PE row. To a logic optimiser these copies are identical, and Yosys' ``opt_merge`` folds them into
one flip-flop that then drives every PE: one net from one place to thousands of loads across the die.
On the 8x8 ECP5 array that single-copy control (3072 loads on one forwarding-hit net) is what made the
design congest the router and miss timing. The copies are the design: each PE's own control drives
only its own datapath, each row's operands only its row.

So the signals meant as copies carry the ``keep`` attribute (:data:`KEEP`), and ``hdl.synth`` marks
the flip-flops that drive kept wires ``keep`` too (:data:`YOSYS_KEEP_REPLICAS`), which ``opt_merge``
respects. Boards whose devices are too small to afford the copies (``replicate: false`` in
``constraints/<board>.json``) skip that step, and Yosys merges them as before. Simulation and other
tools are unaffected: the attribute is a comment to them.
"""

KEEP = {"keep": 1}
"""``attrs`` of a signal that is a deliberate copy."""

YOSYS_KEEP_REPLICAS = "setattr -set keep 1 a:keep %ci1:+$dff[Q] t:$dff %i"
"""Yosys command, run right after reading the design: give ``keep`` to every flip-flop whose output
is a kept wire (Amaranth emits registers as ``$dff`` cells; the attribute survives their mapping)."""
