"""Everything that crosses the network and the Flower runtime around it: what a message carries,
the server's strategy, a subject's client, starting and stopping Flower's processes, certificates."""
