"""Verification and running: cocotb testbenches, Verilator runner, ``sim.run``."""
