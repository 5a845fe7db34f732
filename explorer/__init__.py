"""Explorer: reproducible, interactive figures about the insides of neural networks."""

from explorer.errors import ExplorerError, ModelUnavailable, UnknownName

__all__ = ["ExplorerError", "ModelUnavailable", "UnknownName"]
