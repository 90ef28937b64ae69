"""The torch reference of SSE, written from docs/reference/spec.md (independent of sse_np).

Tokenization: tokenizers.Tokenizer.from_file + no_padding() +
encode_batch(add_special_tokens=False); then nn.EmbeddingBag(mode="mean")
with offsets; DyT beta * tanh(alpha * x + bias); keep y[:k]; L2-normalize.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Imported, not importorskip'ed: a missing or broken torch (the test extra pins it) must fail the
# parity tests loudly, not skip them and leave the run green (tests/helpers/skips.py).
import torch
from tokenizers import Tokenizer


def reference_tokenize(tokenizer_path: Path, texts: list[str]) -> list[list[int]]:
    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


class TorchSSE(torch.nn.Module):
    """EmbeddingBag + DyT, as the published module."""

    def __init__(self, weight: np.ndarray, dyt: tuple | None):
        super().__init__()
        w = torch.from_numpy(np.array(weight, dtype=np.float32))
        self.embedding = torch.nn.EmbeddingBag(w.shape[0], w.shape[1], mode="mean")
        self.embedding.weight.data.copy_(w)
        self.dyt = dyt is not None
        if self.dyt:
            self.alpha, self.beta, self.bias = (torch.from_numpy(np.array(v, dtype=np.float32)) for v in dyt)

    @torch.no_grad()
    def pooled(self, ids: list[list[int]]) -> torch.Tensor:
        """Full-width DyT output y (before truncation)."""
        flat = torch.tensor([i for row in ids for i in row], dtype=torch.long)
        offsets = torch.tensor(np.cumsum([0] + [len(r) for r in ids[:-1]]), dtype=torch.long)
        x = self.embedding(flat, offsets)
        return self.beta * torch.tanh(self.alpha * x + self.bias) if self.dyt else x

    @staticmethod
    def finish(y: torch.Tensor, dim: int, normalize: bool) -> np.ndarray:
        """Matryoshka: keep y[:, :dim], THEN L2-normalize (sentence-transformers order)."""
        y = y[:, :dim]
        if normalize:
            y = torch.nn.functional.normalize(y, p=2, dim=1)
        return y.numpy()

    def forward(self, ids: list[list[int]], dim: int, normalize: bool) -> np.ndarray:
        return self.finish(self.pooled(ids), dim, normalize)


def dequantize_q4(path: Path, dim: int) -> np.ndarray:
    """docs/reference/spec.md: V*D/2 packed bytes (high nibble = even column), then V float32 scales."""
    raw = torch.from_numpy(np.fromfile(path, dtype=np.uint8))
    vocab = raw.numel() // (dim // 2 + 4)
    packed = raw[: vocab * dim // 2].reshape(vocab, dim // 2).to(torch.int64)
    scales = raw[vocab * dim // 2 :].view(torch.float32).reshape(vocab, 1)
    q = torch.stack([packed >> 4, packed & 15], dim=2).reshape(vocab, dim).to(torch.float32)
    return ((q / 7.5 - 1) * scales).numpy()


def quantize_q4(weight: np.ndarray) -> bytes:
    """docs/reference/spec.md: scale = max|row| + 1e-8, q = clip(round((w/scale + 1) * 7.5), 0, 15)."""
    w = torch.from_numpy(np.array(weight, dtype=np.float32))
    scale = w.abs().amax(dim=1, keepdim=True) + 1e-8
    q = torch.clamp(torch.round((w / scale + 1) * 7.5), 0, 15).to(torch.uint8)
    packed = (q[:, 0::2] << 4) | q[:, 1::2]
    return packed.numpy().tobytes() + scale.reshape(-1).numpy().astype("<f4").tobytes()
