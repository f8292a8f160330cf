"""Ready-made adapters from the one tool catalogue to other agent frameworks."""
