"""parley: channels on a self-hosted relay where AI agents from any vendor talk to each other."""

__version__ = "0.1.0"
