"""The corpus llmc-tiny is trained on: CPython's own documentation text.

Every CPython ships `pydoc_data.topics.topics`, a dict of ~79 help topics
(~466 KB of English reference text on Python 3.11), so the corpus needs no
download. Tokens are UTF-8 bytes (vocab 256), so `encode`/`decode` need no
tokenizer file either.

Split rule (deterministic, by topic, then deduplicated so no text leaks):
sort the topic names; the topics at positions 0, 10, 20, ... are held out,
the rest are train. Topics quote one another ("else" is the same text as
"if"; "identifiers" and "comparisons" share paragraphs with other topics),
so every held-out paragraph (text between blank lines) that occurs anywhere
in the train text is dropped from held-out. Train is left whole. On Python
3.11.7: train 71 topics, 433,909 bytes; held-out 7 topics (8 minus the
"else" duplicate), 28,322 bytes (6.1 %), none of whose 64-byte chunks occurs
in train. Each split is its topics' UTF-8 text concatenated in sorted-name
order (every topic ends with a newline, so topics stay separated).

The topic texts change between Python releases; `corpus_sha256` lets the
model card and tests notice when they are evaluated on a different corpus.
"""

from __future__ import annotations

import hashlib

import numpy as np

HELDOUT_EVERY = 10  # every 10th topic (sorted by name, starting at the first) is held out


def _topics() -> dict[str, str]:
    from pydoc_data.topics import topics
    return topics


def split_topics() -> tuple[list[str], list[str]]:
    """(train topic names, held-out topic names), both in sorted order."""
    names = sorted(_topics())
    heldout = names[0::HELDOUT_EVERY]
    train = [n for i, n in enumerate(names) if i % HELDOUT_EVERY]
    return train, heldout


def _unseen_paragraphs(text: bytes, train: bytes) -> bytes:
    """`text` without the paragraphs that occur verbatim in `train` (b"" if none are left)."""
    kept = [p for p in text.split(b"\n\n") if p not in train]
    out = b"\n\n".join(kept)
    return out if not out or out.endswith(b"\n") else out + b"\n"


def corpus_splits() -> tuple[bytes, bytes]:
    """(train, held-out) corpus bytes; disjoint by topic and by paragraph."""
    topics = _topics()
    train_names, heldout_names = split_topics()
    train = b"".join(topics[n].encode("utf-8") for n in train_names)
    heldout = b"".join(_unseen_paragraphs(topics[n].encode("utf-8"), train)
                       for n in heldout_names)
    return train, heldout


def corpus_sha256() -> str:
    """Hash of both splits, to tell which Python's documentation a number belongs to."""
    train, heldout = corpus_splits()
    return hashlib.sha256(train + b"\0" + heldout).hexdigest()


def encode(text: str) -> np.ndarray:
    """UTF-8 bytes as int64 token ids, shape (len(bytes),)."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)


def decode(ids: object) -> str:
    """Token ids (any int sequence in 0..255) back to text; invalid UTF-8 is replaced."""
    return bytes(np.asarray(ids, dtype=np.uint8).tolist()).decode("utf-8", errors="replace")


def batches(data: bytes, seq_len: int, n: int, seed: int) -> np.ndarray:
    """n random windows of seq_len + 1 tokens, shape (n, seq_len + 1) int64.

    Row r is data[s_r : s_r + seq_len + 1] for a start s_r drawn uniformly
    (numpy PCG64 seeded with `seed`); inputs are row[:-1], targets row[1:].
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    if len(arr) < seq_len + 1:
        raise ValueError(f"corpus of {len(arr)} bytes is shorter than a window of {seq_len + 1}")
    starts = np.random.default_rng(seed).integers(0, len(arr) - seq_len, size=n)
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]           # (n, seq_len + 1)
    return arr[idx].astype(np.int64)


def eval_windows(data: bytes, seq_len: int) -> np.ndarray:
    """Non-overlapping windows for perplexity, shape (n, seq_len + 1) int64.

    Window i is data[i*seq_len : i*seq_len + seq_len + 1], so the targets
    (row[1:]) of consecutive windows tile data[1 : 1 + n*seq_len] exactly once;
    the ragged tail shorter than a full window is dropped.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    n = (len(arr) - 1) // seq_len
    idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return arr[idx].astype(np.int64)
