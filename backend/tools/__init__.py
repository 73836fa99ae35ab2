"""Tools around the product: the demo clinic, simulators, replay and the detection yardstick."""
