"""The native Verilator driver (``sim.native``): the same verdicts as the cocotb testbench, without Python
in the cycle loop. The output stage under load gaps and backpressure, a hang, a bad job file, and the
commands that take ``--harness native`` (the random and edge layers of every array run on it in
``test_verilator.py``)."""

from __future__ import annotations

import json
import subprocess

import numpy as np

from golden.config import ArrayConfig
from golden.encode import encode
from golden.layerio import save_layer
from golden.words import Packing
from sim.native import build_native, read_results, run_layers_native, run_native, write_job
from tests.support import EPILOGUE_ARRAY, assert_exact, edge_layers, output_stage_layers


def test_output_stage_exact_on_the_native_driver():
    """Bias, partial sums across drain banks, requantization edge cases: the 32-bit sums' path."""
    cfg = ArrayConfig(dataflow="kernel", **EPILOGUE_ARRAY)
    layers = output_stage_layers(np.random.default_rng(8))
    stalls = [{"seed": k, "load_gap": 0.2 * (k % 3), "backpressure": 0.25 * (k % 4)} for k in range(len(layers))]
    assert_exact(run_layers_native(cfg, layers, "epilogue", stalls=stalls), len(layers))


def test_a_hang_is_reported_and_the_next_layer_still_runs(tmp_path):
    """A layer given too few cycles is a hang: the driver resets the array and goes on (as the cocotb
    testbench does), and its rates count every cycle it stepped."""
    cfg = ArrayConfig(dataflow="kernel", **EPILOGUE_ARRAY)
    b = build_native(cfg)
    layers = edge_layers(np.random.default_rng(3), cfg.to_dict())[:2]
    encs = [encode(ly, cfg) for ly in layers]
    job, out = tmp_path / "job.txt", tmp_path / "results.txt"
    write_job(job, Packing.from_manifest(b.manifest), encs, [{}, {}], seed=1)
    lines = job.read_text().splitlines()
    head = lines[2].split()
    head[3] = "5"  # the first layer's timeout: 5 cycles
    lines[2] = " ".join(head)
    job.write_text("\n".join(lines) + "\n")
    subprocess.run([str(b.binary), str(job), str(out)], check=True)
    rates, raw = read_results(out)
    assert raw[0]["hang"] and not raw[1]["hang"]
    assert rates.clocked == sum(edges for edges, _ in rates.phases.values()) + 8  # + two resets of 4 cycles
    results, _ = run_native(b, layers[1:], "after-hang")
    assert raw[1]["cycles"] == results[0]["predicted_cycles"]


def test_a_bad_job_file_is_one_clear_line(tmp_path):
    b = build_native(ArrayConfig(dataflow="kernel", **EPILOGUE_ARRAY))
    job = tmp_path / "job.txt"
    job.write_text("not a job\n")
    proc = subprocess.run([str(b.binary), str(job), str(tmp_path / "r.txt")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == "native driver: not a native job file (first token 'not')\n"


def test_sim_run_takes_the_native_harness(tmp_path):
    from sim.run import main

    rng = np.random.default_rng(0)
    layer = edge_layers(rng, EPILOGUE_ARRAY)[1]
    path = tmp_path / "layer.npz"
    save_layer(path, layer)
    report = tmp_path / "r.json"
    argv = ["--layer", str(path), "--harness", "native", "--json", str(report), "--load-gap", "0.2",
            *(f"--{k.replace('_', '-')}={v}" for k, v in EPILOGUE_ARRAY.items())]
    assert main(argv) == 0
    rep = json.loads(report.read_text())
    assert rep["outputs_match"] and rep["cycles"] == rep["predicted_cycles"]
