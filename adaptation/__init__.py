"""How an LLM becomes a retrieval encoder: LLaRA's EBAE/EBAR pretraining and contrastive
fine-tuning. Produces checkpoints that `models/` loads as registry variants.

Not built yet: the adaptation module is its own issue, after the decoder-LLM encoders.
"""
