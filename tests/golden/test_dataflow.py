"""The dataflow descriptor and the index-word layouts shared by the encoder and the decoder."""

from __future__ import annotations

import numpy as np
import pytest

from golden.config import DATAFLOWS, ArrayConfig
from golden.dataflow import DATAFLOW_TABLE, Unit, dataflow_of
from golden.encode import encode
from golden.prune import GRANULARITIES
from golden.words import WordLayout, chan_header, chan_word, unit_word
from tests.support import random_layer


def test_every_dataflow_pairs_with_a_pruning_granularity_but_dense():
    assert DATAFLOWS == tuple(DATAFLOW_TABLE)
    for d in DATAFLOW_TABLE.values():
        assert (d.pruning is None) == (d.name == "dense")
        assert d.pruning is None or d.pruning in GRANULARITIES
        assert d.indexed == d.skips_zero_units  # only the baseline neither skips nor stores an index


def test_unknown_dataflow_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown dataflow 'sparse'; choose one of dense, kernel"):
        dataflow_of("sparse")


def test_word_layout_packs_least_significant_field_first():
    lay = WordLayout((("a", 3), ("b", 5), ("c", 2)))
    word = lay.pack(a=5, b=17, c=2)
    assert word == 5 | 17 << 3 | 2 << 8 and lay.width == 10 and lay.offset("c") == 8
    assert lay.unpack(word) == {"a": 5, "b": 17, "c": 2}
    with pytest.raises(ValueError, match="word.b = 32 does not fit 5 bits"):
        lay.pack(b=32)
    with pytest.raises(ValueError, match="no field"):
        lay.pack(d=1)


@pytest.mark.parametrize("name", DATAFLOWS)
def test_encoded_words_unpack_to_the_schedule(name):
    cfg = ArrayConfig(dataflow=name, acc_depth=4)
    d = dataflow_of(name)
    ly = random_layer(np.random.default_rng(2), 6, 3, 5, 5, kernel_density=0.6, row_density=0.7, element_density=0.8)
    enc = encode(ly, cfg)
    assert cfg.chan_index_bits == chan_word(cfg).width and cfg.unit_index_bits == unit_word(cfg).width
    if not d.indexed:
        assert enc.chan_index == [] and enc.unit_index == []
        return
    words = iter(enc.chan_index)
    units = iter(enc.unit_index)
    for g, ents in enumerate(enc.entries):
        assert chan_header(cfg).unpack(next(words)) == {"empty": int(not ents), "count": len(ents)}
        for c, n_units, _ in ents:
            entry = chan_word(cfg).unpack(next(words))
            assert entry["chan"] == c * ly.h * ly.w and entry["count"] == n_units
            for _ in range(n_units):
                u = unit_word(cfg).unpack(next(units))
                assert set(u) == {"slot", *(f"{p}0" for p in d.unit_position)}
                kernel = ly.weights[g * cfg.acc_depth + u["slot"], c]
                if d.unit is Unit.SINGLE:
                    assert kernel[u["r0"], u["s0"]] != 0
                elif d.unit is Unit.ROW:
                    assert np.any(kernel[u["r0"]])
                else:
                    assert np.any(kernel)
