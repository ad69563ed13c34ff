"""Network pieces more than one vision system uses, one concept per module (import the module)."""
