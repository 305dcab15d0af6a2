"""Everything that runs on the host against the array: its links, the network runner and training
(the word packing, ``golden.words``, and the board protocol, ``golden.protocol``, sit below ``sim``)."""
