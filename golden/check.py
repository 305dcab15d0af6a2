"""Compare one run of the array (from any harness) with the golden model.

The cocotb testbench and the board driver both report the same three verdicts: outputs bit-exact
against ``golden.conv``, cycles and every counter exact against ``golden.timing``. One function
computes them so the harnesses cannot drift apart in what "exact" means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .encode import EncodedLayer
from .timing import simulate


@dataclass(frozen=True)
class Verdict:
    outputs_match: bool
    cycles_match: bool
    counters_match: bool
    predicted: dict[str, int]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_run(enc: EncodedLayer, outputs: np.ndarray, perf: dict[str, int], cycles: int | None = None) -> Verdict:
    """Verdict for a run of ``enc`` that produced ``outputs`` ``(M, E, F)``, counters ``perf`` and, if the
    harness measured it independently of the counters, ``cycles`` from ``start`` to ``done``."""
    ly = enc.layer
    golden = ly.expected(enc.cfg)
    predicted = simulate(enc).to_dict()
    problems = []
    width = enc.cfg.perf_bits
    wide = {k: v.bit_length() for k, v in predicted.items() if v >> width}
    if wide:
        problems.append(f"counters {sorted(wide)} need {max(wide.values())} bits but the array was generated with "
                        f"perf_bits={width}; regenerate with --perf-bits {max(wide.values())} or run a smaller layer")
    outputs_match = outputs.shape == golden.shape and bool(np.array_equal(outputs, golden))
    if not outputs_match:
        if outputs.shape != golden.shape:
            problems.append(f"outputs have shape {outputs.shape}, golden {golden.shape}")
        else:
            bad = np.argwhere(outputs != golden)
            first = tuple(int(i) for i in bad[0])
            problems.append(f"{len(bad)} outputs differ, first at (m,y,x)={first}: "
                            f"rtl {outputs[first]} golden {golden[first]}")
    measured = perf["busy_cycles"] if cycles is None else cycles
    cycles_match = measured == predicted["busy_cycles"]
    if not cycles_match:
        problems.append(f"cycles {measured} != predicted {predicted['busy_cycles']}")
    diff = {k: (perf.get(k), v) for k, v in predicted.items() if perf.get(k) != v}
    if diff:
        problems.append(f"counters (rtl, golden) differ: {diff}")
    return Verdict(outputs_match, cycles_match, not diff, predicted, problems)
