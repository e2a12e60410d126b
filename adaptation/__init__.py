"""How an LLM becomes a retrieval encoder: LLaRA's EBAE/EBAR pretraining (`pretext`, on chunk pairs
from `corpus`) and contrastive fine-tuning (`finetune`), trained by one loop (`train`) and saved by
`stages` as folders that `models/` loads by path. Commands: `llara-bench adapt`, `llara-bench finetune`.
"""
