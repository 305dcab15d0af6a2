"""``python -m golden.prune``: magnitude-prune the weights of one layer file at a granularity.

Command line::

    python -m golden.prune --layer IN.npz --granularity kernel --target-sparsity 0.5 -o OUT.npz
    python -m golden.prune --layer IN.npz --granularity balanced --target-sparsity 0.9 --keep 3 -o OUT.npz

The command line takes integer (quantized) weights only, as ``sim.run`` does: it refuses float weights
instead of writing a layer the array cannot run (:func:`golden.prune.prune` itself prunes float tensors
too). ``--sparsity`` is an old spelling of ``--target-sparsity`` (elsewhere ``--sparsity`` names a
dataflow). The other arrays of ``IN.npz`` are copied through to ``OUT.npz``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from ..cli import OutputFile, Parser
from ..layerio import read_arrays
from . import GRANULARITIES, prune

# Arrays this command writes into OUT.npz; stale copies from an earlier run are not carried through.
_OUTPUT_KEYS = ("weights", "mask", "filter_perm", "channel_perm", "stride_pattern")



def _parse_block(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(f"expected BMxBC with positive integers, e.g. 4x4, not {text!r}")
    return int(parts[0]), int(parts[1])


_EPILOG = """\
Weights must be integers (quantized), as python -m sim.run needs them: float
weights are refused; quantize them first, for example with
np.round(w / scale).astype(np.int8).
--sparsity is accepted as an old spelling of --target-sparsity."""


def _build_parser() -> Parser:
    p = Parser(prog="python -m golden.prune", epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Magnitude-prune the weights of one layer (.npz) at a given granularity.")
    p.add_argument("--layer", required=True, metavar="IN.npz",
                   help="archive with integer 'weights' (M, C, R, S); other arrays are copied through")
    p.add_argument("--granularity", required=True, metavar="G", help=f"one of {', '.join(GRANULARITIES)}")
    p.add_argument("--target-sparsity", dest="sparsity", type=float, metavar="S",
                   help="target fraction of zero weights, in [0, 1) (required)")
    p.add_argument("--sparsity", dest="sparsity", type=float, help=argparse.SUPPRESS)  # old spelling
    p.add_argument("--norm", default="l2", choices=("l1", "l2"), help="group magnitude (default l2)")
    p.add_argument("--block", default=(4, 4), type=_parse_block, metavar="BMxBC",
                   help="block size for 'block' (default 4x4)")
    p.add_argument("--sigma", type=int, default=None, metavar="N",
                   help="'strided' only: keep kernel positions k = r*S + s with k %% N == phi, phi chosen per "
                        "input channel (default: round_half_down(1 / (1 - target sparsity)) clipped to [1, R*S], "
                        "e.g. 2 at 0.5, 4 at 0.75; whole kernels are pruned on top if the pattern falls short)")
    p.add_argument("--keep", type=int, default=None, metavar="K", help="weights kept per kernel, 'balanced' only")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed for block reordering restarts")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz", action=OutputFile,
                   help="where to write the result (its directory must exist)")
    return p


def _load_layer(parser: Parser, path: str) -> dict[str, np.ndarray]:
    try:
        arrays = read_arrays(path, what=".npz with an integer 'weights' array")
    except ValueError as exc:
        parser.error(str(exc))
    if "weights" not in arrays:
        found = ", ".join(sorted(arrays)) or "nothing"
        parser.error(f"{path} has no 'weights' array (found: {found}); "
                     "save the layer with np.savez(path, weights=W)")
    w = arrays["weights"]
    if not np.issubdtype(w.dtype, np.integer):
        parser.error(f"weights in {path} are {w.dtype}; the array needs integer weights: quantize them first "
                     "(e.g. np.round(w / scale).astype(np.int8))")
    return arrays


def _run(parser: Parser, argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    if args.sparsity is None:
        parser.error("the following arguments are required: --target-sparsity")
    if args.keep is not None and args.granularity != "balanced":
        parser.error(f"--keep only applies to --granularity balanced, not {args.granularity!r}; drop it")
    arrays = _load_layer(parser, args.layer)
    try:
        result = prune(arrays["weights"], args.granularity, args.sparsity, norm=args.norm,
                       block=args.block, sigma=args.sigma, keep=args.keep, seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    out = {k: v for k, v in arrays.items() if k not in _OUTPUT_KEYS}
    out.update(weights=result.weights, mask=result.mask)
    for key in ("filter_perm", "channel_perm", "stride_pattern"):
        if getattr(result, key) is not None:
            out[key] = getattr(result, key)
    try:
        with open(args.output, "wb") as f:  # a file object, so numpy does not append ".npz"
            np.savez(f, **out)
    except OSError as exc:
        parser.error(f"cannot write {args.output}: {exc}")
    bound = "" if result.keep is None else f" (keep {result.keep} per kernel)"
    print(f"{result.granularity}{bound}: target sparsity {result.target_sparsity:.4f}, achieved "
          f"{result.sparsity:.4f}, {result.groups_pruned}/{result.n_groups} groups pruned -> {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 on bad input, after one ``error:`` line)."""
    parser = _build_parser()
    try:
        return _run(parser, argv)
    except SystemExit as exc:  # argparse exits; hand the status back so main() is testable
        return exc.code if isinstance(exc.code, int) else 1
