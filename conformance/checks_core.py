"""Small deterministic checks of the core behaviours, complementing the state machine."""
