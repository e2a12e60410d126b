"""What is measured: the encoder registry and the encoders. Knows nothing of suites or reports."""

from models.base import DenseEncoder, EncodeOutput, EncodingContract, LexicalRetriever, ModelMeta, Role
from models.catalog import register_builtins
from models.registry import REGISTRY, ModelEntry, Registry, register

register_builtins(REGISTRY)

__all__ = ["REGISTRY", "DenseEncoder", "EncodeOutput", "EncodingContract", "LexicalRetriever", "ModelEntry",
           "ModelMeta", "Registry", "Role", "register"]
