"""Networks, geometry, losses, trainer and evaluation; reads only the stores."""
