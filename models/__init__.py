"""What is measured: the encoder registry and the encoders. Knows nothing of suites or reports."""

from llara_bench.models.base import DenseEncoder, EncodeOutput, EncodingContract, LexicalRetriever, ModelMeta, Role
from llara_bench.models.catalog import register_builtins
from llara_bench.models.registry import REGISTRY, ModelEntry, Registry, register

register_builtins(REGISTRY)

__all__ = ["REGISTRY", "DenseEncoder", "EncodeOutput", "EncodingContract", "LexicalRetriever", "ModelEntry",
           "ModelMeta", "Registry", "Role", "register"]
