"""Packing and unpacking the array's host interface through the manifest's layouts.

Every host of the array (Amaranth's simulator, cocotb on Verilator, a board's driver) talks to it
through these functions, so the packing of struct fields into flat Verilog ports exists once.
"""

from __future__ import annotations

from dataclasses import dataclass

from golden.encode import EncodedLayer


@dataclass(frozen=True)
class Packing:
    """Field offsets and widths of the packed ports, read from a manifest."""

    layouts: dict
    load_targets: dict

    @classmethod
    def from_manifest(cls, manifest: dict) -> Packing:
        return cls(manifest["layouts"], manifest["load_targets"])

    def pack(self, layout: str, values: dict[str, int]) -> int:
        """Pack field values into one integer, failing loudly if a value does not fit its field."""
        word = 0
        fields = self.layouts[layout]
        for name, value in values.items():
            f = fields[name]
            value = int(value)
            lo = -(1 << (f["width"] - 1)) if value < 0 else 0
            if not lo <= value < (1 << f["width"]):
                raise ValueError(f"{layout}.{name} = {value} does not fit {f['width']} bits")
            word |= (value & ((1 << f["width"]) - 1)) << f["offset"]
        return word

    def unpack(self, layout: str, word: int) -> dict[str, int]:
        return {name: (int(word) >> f["offset"]) & ((1 << f["width"]) - 1)
                for name, f in self.layouts[layout].items()}

    def load_words(self, enc: EncodedLayer) -> list[int]:
        """The whole load sequence for ``enc``: every image, target by target, packed."""
        data_bits = self.layouts["load"]["data"]["width"]
        words = []
        for target, image in enc.images().items():
            code = self.load_targets[target]
            for value in image:
                value = int(value)
                if not -(1 << (data_bits - 1)) <= value < (1 << data_bits):
                    raise ValueError(f"{target} word {value} does not fit the {data_bits}-bit load stream")
                words.append(self.pack("load", {"target": code, "data": value & ((1 << data_bits) - 1)}))
        return words

    def config_word(self, enc: EncodedLayer) -> int:
        return self.pack("cfg", enc.runtime_config())


def to_signed(value: int, bits: int) -> int:
    value = int(value) & ((1 << bits) - 1)
    return value - (1 << bits) if value >> (bits - 1) else value
