"""Verification and running: host-side packing, cocotb testbenches, Verilator runner, ``sim.run``."""
