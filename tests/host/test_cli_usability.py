"""What a new user meets first: every command-line error is ONE line (no usage block), names every problem
at once, and comes before any work (no Verilator build, no simulation)."""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest

from golden.cli import OutputDir, OutputFile, Parser
from golden.config import DATAFLOWS, ArrayConfig
from golden.encode import _image_words, encode
from golden.layer import Layer
from golden.layerio import save_layer
from tests.support import assert_one_line_error, run_main

LAYER_FILE = "(.npz with 'weights' and 'activations' integer arrays)"


def _layer_file(tmp_path, m=2, c=2, h=6, w=6, k=3, padding=1):
    path = tmp_path / "layer.npz"
    save_layer(path, Layer(np.ones((m, c, k, k), np.int64), np.ones((c, h, w), np.int64), 1, padding))
    return path


def _sim_run():
    from sim.run import main

    return main


# --- 1. every violated limit in one message ---------------------------------------------------------------


def test_run_names_every_broken_buffer_limit_in_one_line(tmp_path, capsys):
    # 10 channels of 30x30 (9000 activations) and 10 filters at padding 1 (9000 outputs): both buffers
    # overflow, and with act_depth 900 not even one output row's 10 x 3 x 32 input words fit (no passes;
    # without the output stage, no channel chunks either)
    path = _layer_file(tmp_path, m=10, c=10, h=30, w=30)
    code, _, err = run_main(_sim_run(), ["--layer", str(path), "--act-depth", "900", "--epilogue", "0",
                                         "--build-dir", str(tmp_path / "never")], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m sim.run",
                          "activations need 9000 words but act_depth is 900 (regenerate with --act-depth 9000 or "
                          "split the layer); outputs need 9000 words but out_depth is 8192 (regenerate with "
                          "--out-depth 9000 or split the layer); it does not run in passes either: one output row "
                          "needs 960 activation words (C=10 channels of 3 input rows) but act_depth is 900: "
                          "splitting the input channels needs the output stage to add partial sums (regenerate "
                          "with --epilogue 1, or with --act-depth 960)")
    assert not (tmp_path / "never").exists()


def test_run_names_the_image_limits_together(tmp_path, capsys):
    path = _layer_file(tmp_path, m=10, c=1, h=3, w=3)  # element: 90 weights, 90 unit-index words
    code, _, err = run_main(_sim_run(), ["--layer", str(path), "--sparsity", "element", "--weight-depth", "64",
                                         "--index-depth", "64", "--build-dir", str(tmp_path / "never")], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m sim.run",
                          "the weight image needs 90 words but the buffer holds 64 (regenerate with --weight-depth 90 "
                          "or prune harder); the unit index needs 90 words but the buffer holds 64 (regenerate with "
                          "--index-depth 90 or prune harder); it does not run in passes either: no split of the layer "
                          "into filter chunks of acc_depth=32 and bands of output rows fits the buffers (10 filters "
                          "need 90 weight words and 90 index words; weight_depth 64, index_depth 64): regenerate "
                          "with larger buffers or a smaller acc_depth")
    assert not (tmp_path / "never").exists()


def test_layer_limits_and_image_limits_come_in_one_message():
    # activations out of range and over act_depth (so no index word is packed), weights over weight_depth,
    # the unit index over index_depth: all four in one line
    layer = Layer(np.ones((40, 2, 3, 3), np.int64), np.full((2, 8, 8), 200, np.int64), 1, 1)
    cfg = ArrayConfig(dataflow="element", act_depth=64, weight_depth=128, index_depth=64)
    with pytest.raises(ValueError) as e:
        encode(layer, cfg)
    assert str(e.value).split("; ") == [
        "activations range [200, 200] does not fit 8-bit signed [-128, 127] (requantize or regenerate with "
        "--act-bits 9)",
        "activations need 128 words but act_depth is 64 (regenerate with --act-depth 128 or split the layer)",
        "the weight image needs 720 words but the buffer holds 128 (regenerate with --weight-depth 720 or "
        "prune harder)",
        "the unit index needs 720 words but the buffer holds 64 (regenerate with --index-depth 720 or prune harder)",
    ]


def test_both_indexes_over_their_depth_name_the_depth_holding_both():
    layer = Layer(np.ones((8, 40, 1, 1), np.int64), np.ones((40, 2, 2), np.int64))  # 1x1 kernels, 40 channels
    cfg = ArrayConfig(dataflow="element", acc_depth=1, index_depth=32)  # 8 groups: 8 + 320 chan, 320 unit words
    with pytest.raises(ValueError) as e:
        encode(layer, cfg)
    assert str(e.value) == (
        "the channel index needs 328 words but the buffer holds 32 (regenerate with --index-depth 328 or "
        "prune harder); the unit index needs 320 words but the buffer holds 32 (regenerate with --index-depth 328 "
        "or prune harder)")


def test_an_oversized_kernel_is_reported_without_building_any_image(monkeypatch):
    import golden.encode as enc_mod

    def never(*a, **k):
        raise AssertionError("encode built a schedule for a kernel the array cannot run")

    monkeypatch.setattr(enc_mod, "_units", never)
    monkeypatch.setattr(enc_mod, "stride_pattern", never)
    layer = Layer(np.ones((4, 2, 5, 5), np.int64), np.full((2, 80, 80), 300, np.int64), stride=3)
    with pytest.raises(ValueError) as e:
        encode(layer, ArrayConfig(dataflow="strided"))
    assert str(e.value) == (
        "kernel 5x5 exceeds max_kernel=3 (regenerate with --max-kernel 5); "
        "stride 3 exceeds max_stride=2 (regenerate with --max-stride 3); "
        "activations range [300, 300] does not fit 8-bit signed [-128, 127] (requantize or regenerate with "
        "--act-bits 10); "
        "activations need 12800 words but act_depth is 8192 (regenerate with --act-depth 12800 or split the layer)")


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_counted_image_sizes_equal_the_encoded_images(dataflow):
    rng = np.random.default_rng(3)
    for _ in range(15):
        m, c = (int(v) for v in rng.integers(1, 20, 2))
        r, s = (int(v) for v in rng.integers(1, 4, 2))
        w = rng.integers(-3, 4, (m, c, r, s)) * (rng.random((m, c, 1, 1)) < 0.6)
        layer = Layer(w, rng.integers(-5, 5, (c, 5, 5)))
        cfg = ArrayConfig(dataflow=dataflow, acc_depth=int(rng.choice([1, 4, 32])))
        e = encode(layer, cfg)
        assert _image_words(layer, cfg) == (len(e.weight), len(e.chan_index), len(e.unit_index))


# --- 2. a file that is not a layer ------------------------------------------------------------------------


def test_random_bytes_are_not_a_valid_layer_file(tmp_path, capsys):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    code, _, err = run_main(_sim_run(), ["--layer", str(path), "--build-dir", str(tmp_path / "never")], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m sim.run",
                          f"{path} is not a valid layer file {LAYER_FILE}: it is not a zip archive "
                          "(np.savez writes one)")
    assert "pickle" not in err


def test_object_arrays_are_not_a_valid_layer_file(tmp_path, capsys):
    path = tmp_path / "objects.npz"
    np.savez(path, weights=np.array([[1, "a"]], dtype=object), activations=np.zeros((1, 4, 4), np.int64))
    code, _, err = run_main(_sim_run(), ["--layer", str(path), "--build-dir", str(tmp_path / "never")], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m sim.run",
                          f"{path} is not a valid layer file {LAYER_FILE}: 'weights' is an object (pickled) array, "
                          "not numbers")
    assert "allow_pickle" not in err


def test_prune_says_the_same_for_random_bytes(tmp_path, capsys):
    from golden.prune.cli import main

    path = tmp_path / "noise.npz"
    path.write_bytes(b"\x80\x04not a layer at all")
    code, _, err = run_main(main, ["--layer", str(path), "--granularity", "kernel", "--target-sparsity", "0.5",
                                   "-o", str(tmp_path / "o.npz")], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m golden.prune",
                          f"{path} is not a valid layer file (.npz with an integer 'weights' array): it is not a zip "
                          "archive (np.savez writes one)")


# --- 3. output paths are checked before any work ----------------------------------------------------------


@pytest.mark.parametrize("flag", ["--json", "--out-npz"])
def test_run_output_in_a_missing_directory_fails_before_building(tmp_path, capsys, flag):
    layer = _layer_file(tmp_path)
    missing = tmp_path / "out" / "dir"
    code, _, err = run_main(_sim_run(), ["--layer", str(layer), flag, str(missing / "r.x"),
                                         "--build-dir", str(tmp_path / "never")], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m sim.run", f"{flag}: directory {missing} does not exist; create it first")
    assert not (tmp_path / "never").exists()


def test_run_output_that_is_a_directory_fails_before_building(tmp_path, capsys):
    code, _, err = run_main(_sim_run(), ["--layer", str(_layer_file(tmp_path)), "--json", str(tmp_path),
                                         "--build-dir", str(tmp_path / "never")], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m sim.run", f"--json: {tmp_path} is a directory; give a file name")


def test_prune_output_in_a_missing_directory_fails_before_reading(tmp_path, capsys):
    from golden.prune.cli import main

    missing = tmp_path / "nope"
    code, _, err = run_main(main, ["--layer", str(tmp_path / "not-even-read.npz"), "--granularity", "kernel",
                                   "--target-sparsity", "0.5", "-o", str(missing / "o.npz")], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m golden.prune", f"-o: directory {missing} does not exist; create it first")


def _regress():
    from sim.regress import main

    return main


def _granularity():
    from bench.granularity import main

    return main


def _sweep():
    from bench.sweep import main

    return main


def _board_run(argv):
    from host.board import main

    return main(["run", "--port", "sim", "--layer", "x.npz", *argv])


@pytest.mark.parametrize("main,prog,extra", [
    (_regress, "python -m sim.regress", []),
    (_granularity, "python -m bench.granularity", []),
    (_sweep, "python -m bench.sweep", ["--dry-run"]),
    (lambda: importlib.import_module("bench.lanes").main, "python -m bench.lanes", []),
    (lambda: _board_run, "python -m host.board run", []),
])
def test_every_json_output_is_checked_first(tmp_path, capsys, main, prog, extra):
    missing = tmp_path / "missing"
    code, _, err = run_main(main(), ["--json", str(missing / "r.json"), *extra], capsys)
    assert code == 2
    assert_one_line_error(err, prog, f"--json: directory {missing} does not exist; create it first")


def test_output_directories_may_be_new_but_not_files(tmp_path, capsys):
    from hdl.generate import main as generate
    from hdl.synth import main as synth

    a_file = tmp_path / "f"
    a_file.write_text("")
    code, _, err = run_main(generate, ["-o", str(a_file)], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m hdl.generate", f"-o: {a_file} is a file, not a directory")
    code, _, err = run_main(synth, ["--board", "icebreaker", "--output", str(a_file / "sub")], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m hdl.synth", f"--output: {a_file} is a file, not a directory")


def test_output_actions_accept_good_paths(tmp_path):
    p = Parser(prog="x")
    p.add_argument("--json", action=OutputFile)
    p.add_argument("--out", action=OutputDir)
    args = p.parse_args(["--json", str(tmp_path / "r.json"), "--out", str(tmp_path / "new" / "deeper")])
    assert args.json == tmp_path / "r.json" and args.out == tmp_path / "new" / "deeper"
    assert p.parse_args([]).json is None


# --- 4. golden.prune refuses float weights ----------------------------------------------------------------


def test_prune_refuses_float_weights(tmp_path, capsys):
    from golden.prune.cli import main

    path = tmp_path / "float.npz"
    np.savez(path, weights=np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32))
    out = tmp_path / "o.npz"
    code, _, err = run_main(main, ["--layer", str(path), "--granularity", "kernel", "--target-sparsity", "0.5",
                                   "-o", str(out)], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m golden.prune",
                          f"weights in {path} are float32; the array needs integer weights: quantize them first "
                          "(e.g. np.round(w / scale).astype(np.int8))")
    assert not out.exists()
    code, help_text, _ = run_main(main, ["--help"], capsys)
    assert code == 0 and "float" in help_text and "np.round(w / scale).astype(np.int8)" in help_text


# --- 5. one line per error, in every command line ---------------------------------------------------------

CLI_MODULES = {"golden.prune": "golden.prune.cli"}  # python -m golden.prune runs the package's cli module


@pytest.mark.parametrize("module", ["hdl.generate", "hdl.synth", "sim.run", "sim.regress", "golden.prune",
                                    "bench.fpga_area", "bench.granularity", "bench.simspeed", "bench.sweep",
                                    "bench.report", "bench.lanes"])
def test_every_cli_error_is_one_line_without_usage(module, capsys):
    prog = f"python -m {module}"
    main = importlib.import_module(CLI_MODULES.get(module, module)).main
    code, _, err = run_main(main, ["--board", "icebreaker", "--bogus"], capsys)
    assert code == 2
    assert "usage:" not in err
    assert re.fullmatch(rf"{re.escape(prog)}: error: [^\n]+ \(see {re.escape(prog)} --help\)\n", err)
    if module not in ("sim.run", "golden.prune"):  # those first miss their required --layer
        assert re.search(r"unrecognized arguments: (--board icebreaker )?--bogus \(", err)


def test_subcommand_errors_are_one_line(capsys):
    from host.board import main

    code, _, err = run_main(main, ["run", "--port", "sim", "--layer", "x.npz", "--board", "nope"], capsys)
    assert code == 2
    assert re.fullmatch(r"python -m host\.board run: error: argument --board: invalid choice: 'nope' .*"
                        r"\(see python -m host\.board run --help\)\n", err)
    code, _, err = run_main(main, [], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m host.board", "the following arguments are required: command")


def test_parser_error_format(capsys):
    p = Parser(prog="python -m x")
    p.add_argument("--n", type=int, required=True)
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--n", "two"])
    assert e.value.code == 2
    assert_one_line_error(capsys.readouterr().err, "python -m x", "argument --n: invalid int value: 'two'")


# --- 6. a Verilator build says it is happening ------------------------------------------------------------


def test_a_new_build_prints_two_lines_and_a_cached_one_none(tmp_path, monkeypatch, capsys):
    import sim.verilator as sv

    compiled = []
    monkeypatch.setattr(sv, "_compile", lambda v, j, directory, top, verbose, trace=None: compiled.append(directory))
    monkeypatch.setenv(sv.QUICK_BUILD_ENV, "0")  # an optimised build, as the commands make
    v, j = tmp_path / "a.v", tmp_path / "a.json"
    v.write_text("module a; endmodule\n")
    j.write_text("{}\n")
    root = tmp_path / "cache"
    directory = sv.compile_cached(root, "kernel-2x2", v, j, "a", False)
    err = capsys.readouterr().err.splitlines()
    assert compiled == [directory] and len(err) == 2
    assert err[0] == sv.build_notice("kernel-2x2", directory, None)  # tests/test_waves.py tests its wording
    assert re.fullmatch(r"\.\.\. built kernel-2x2 in \d+ s", err[1])
    assert sv.compile_cached(root, "kernel-2x2", v, j, "a", False) == directory
    assert compiled == [directory] and capsys.readouterr().err == ""
    monkeypatch.setenv(sv.QUICK_BUILD_ENV, "1")  # a quick (-O0) build is cached apart from it
    quick = sv.compile_cached(root, "kernel-2x2", v, j, "a", False)
    assert quick != directory and quick.name.startswith("kernel-2x2-O0-") and compiled == [directory, quick]
    assert "building the Verilator model of kernel-2x2-O0 " in capsys.readouterr().err


# --- 7. and 8. golden.prune: --target-sparsity, and sigma's default in --help -----------------------------


def _prune_input(tmp_path):
    path = tmp_path / "in.npz"
    rng = np.random.default_rng(1)
    np.savez(path, weights=rng.integers(1, 100, (8, 4, 3, 3)).astype(np.int8), activations=np.ones((4, 5, 5), int))
    return path


def test_prune_takes_target_sparsity_and_the_old_spelling(tmp_path, capsys):
    from golden.prune.cli import main

    src = _prune_input(tmp_path)
    outs = []
    for flag in ("--target-sparsity", "--sparsity"):
        out = tmp_path / f"{flag.strip('-')}.npz"
        code, stdout, _ = run_main(main, ["--layer", str(src), "--granularity", "kernel", flag, "0.5",
                                          "-o", str(out)], capsys)
        assert code == 0 and "target sparsity 0.5000" in stdout
        outs.append(np.load(out)["weights"])
    assert np.array_equal(*outs)
    code, _, err = run_main(main, ["--layer", str(src), "--granularity", "kernel", "-o", str(tmp_path / "o.npz")],
                            capsys)
    assert code == 2
    assert_one_line_error(err, "python -m golden.prune", "the following arguments are required: --target-sparsity")


def test_prune_help_documents_target_sparsity_and_the_sigma_default(capsys):
    import golden.prune.cli
    from golden.prune.cli import main

    code, help_text, _ = run_main(main, ["--help"], capsys)
    assert code == 0
    flat = " ".join(help_text.split())
    assert "--target-sparsity S" in flat and "--sparsity S" not in flat  # the alias is not advertised as a flag
    assert "(default: round_half_down(1 / (1 - target sparsity)) clipped to [1, R*S]" in flat
    doc = golden.prune.cli.__doc__
    assert "--target-sparsity 0.5" in doc and "--sparsity 0.5" not in doc
