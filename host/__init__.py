"""Everything that runs on the host against the array: packing, the board protocol and its links."""
