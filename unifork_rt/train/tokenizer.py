"""The text tokenizer: byte-level BPE trained on ShapesWorld's text.

No torch here: the runtime loads the same tokenizer.json and must tokenize exactly as
training did, so the conventions live in this one module:

- the initial alphabet is all 256 bytes, so any unicode string is encodable (unknown words
  fall back to byte tokens) and decoding is lossless;
- "<|endoftext|>" is id 0: end of a caption and the padding token (config eos/pad = 0);
- no BOS and no prefix space: a drawing prompt is `encode(prompt)`; an understanding
  sequence is `encode(CAPTION_PROMPT) + encode(answer) + [eos]`, each part encoded on its
  own, so a generated answer decodes to the caption text with nothing to strip.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from ..config import CAPTION_PROMPT
from ..errors import ModelFolderError

EOS = "<|endoftext|>"


def build_text_tokenizer(vocab_size: int, corpus: list[str] | None = None) -> Tokenizer:
    """Train the byte-level BPE on `corpus` (default: ShapesWorld's text + CAPTION_PROMPT).

    Deterministic: the same corpus and vocab_size give the same tokenizer.json. The result
    may be smaller than vocab_size when the corpus runs out of pairs to merge.
    """
    if corpus is None:
        from ..data.shapes_world import text_corpus

        corpus = text_corpus() + [CAPTION_PROMPT]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + 1:
        raise ValueError(f"vocab_size={vocab_size} cannot hold the {len(alphabet)} byte tokens and {EOS}: "
                         f"use at least {len(alphabet) + 1}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, special_tokens=[EOS],
                                  initial_alphabet=alphabet, show_progress=False)
    # sorted input: the trainer's word counts, and so its merges, do not depend on list order
    tok.train_from_iterator(sorted(corpus), trainer=trainer)
    return tok


def load_text_tokenizer(path: str | Path) -> Tokenizer:
    path = Path(path)
    if not path.is_file():
        raise ModelFolderError(f"{path} is missing: a model folder needs tokenizer.json "
                               "(train one with `unifork-rt train --stage tokenizer`)")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
        raise ModelFolderError(f"{path} is not a readable tokenizer.json ({e})") from None


def check_tokenizer(tok: Tokenizer, vocab_size: int, eos_token_id: int, pad_token_id: int, source: str) -> None:
    """Raise if the tokenizer does not fit the model config (vocab size, eos/pad ids)."""
    n = tok.get_vocab_size(with_added_tokens=True)
    eos = tok.token_to_id(EOS)
    if n > vocab_size:
        raise ModelFolderError(f"{source} has {n} tokens but config text.vocab_size is {vocab_size}: "
                               "retrain the tokenizer with a smaller vocabulary or enlarge the model")
    if eos is None or eos != eos_token_id or eos != pad_token_id:
        raise ModelFolderError(f"{source}: {EOS} has id {eos} but config eos_token_id={eos_token_id}, "
                               f"pad_token_id={pad_token_id}: they must agree")


def encode(tok: Tokenizer, text: str) -> list[int]:
    """Token ids of `text` alone (no special tokens added)."""
    return tok.encode(text, add_special_tokens=False).ids


def caption_ids(tok: Tokenizer, answer: str, prompt: str = CAPTION_PROMPT) -> tuple[list[int], int]:
    """ids = prompt + answer + eos; returns (ids, n_prompt): loss is taken on ids[n_prompt:]."""
    p = encode(tok, prompt)
    return p + encode(tok, answer) + [tok.token_to_id(EOS)], len(p)
