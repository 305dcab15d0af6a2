"""Amaranth gateware of the sparse PE array and the ``generate`` command."""
