"""The CSM network: a Llama-3.2 backbone over whole frames and a small depth decoder within a frame.

A frame is one row of ``codebooks + 1`` tokens: the Mimi codes of 80 ms of audio and a text column.
Rows of a text segment carry only text, rows of audio carry only codes; a mask says which columns
count, and a row's embedding is the sum of its unmasked columns. The backbone reads rows and predicts
codebook 0 of the next frame; the decoder starts from the backbone's last hidden state and fills
codebooks 1..N-1 one at a time, so each code sees the ones before it in the same frame.

Parameter names follow the published CSM-1B checkpoint, so its ``model.safetensors`` loads as is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

logging.getLogger("torchao").setLevel(logging.ERROR)  # its optional CUDA kernels fail to load on CPU: harmless
from torchtune.models.llama3_2 import llama3_2  # noqa: E402
from torchtune.modules import TransformerDecoder  # noqa: E402

from tara.core.stages.tts.csm.sampling import Sampling  # noqa: E402


@dataclass(frozen=True)
class LlamaArgs:
    layers: int
    heads: int
    kv_heads: int
    dim: int
    intermediate: int
    max_seq_len: int


@dataclass(frozen=True)
class CSMArgs:
    backbone: LlamaArgs
    decoder: LlamaArgs
    text_vocab: int = 128_256  # Llama-3.2's tokenizer, special tokens included
    audio_vocab: int = 2051  # embedding rows per codebook; only the first ``audio_codes`` are sampled
    audio_codes: int = 2048  # Mimi's codebook size: larger codes crash its decoder
    codebooks: int = 32

    @property
    def max_positions(self) -> int:
        """Rows (text tokens + audio frames) the backbone can hold: context, text and new audio together."""
        return self.backbone.max_seq_len


FLAVOURS: dict[str, CSMArgs] = {
    # CSM-1B: Llama-3.2 1B backbone, 100M decoder.
    "1b": CSMArgs(
        backbone=LlamaArgs(layers=16, heads=32, kv_heads=8, dim=2048, intermediate=8192, max_seq_len=2048),
        decoder=LlamaArgs(layers=4, heads=8, kv_heads=2, dim=1024, intermediate=8192, max_seq_len=32),
    ),
    # Same code paths, small enough to build and run on a CPU in tests.
    "tiny": CSMArgs(
        backbone=LlamaArgs(layers=2, heads=4, kv_heads=2, dim=64, intermediate=128, max_seq_len=2048),
        decoder=LlamaArgs(layers=2, heads=4, kv_heads=2, dim=32, intermediate=64, max_seq_len=32),
    ),
}


def _llama(args: LlamaArgs) -> TransformerDecoder:
    """A Llama-3.2 stack that takes and returns hidden states (CSM embeds and projects itself)."""
    model = llama3_2(
        vocab_size=1,  # the token table is replaced below; a real one would be wasted memory
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        embed_dim=args.dim,
        max_seq_len=args.max_seq_len,
        intermediate_dim=args.intermediate,
    )
    # torchtune types it nn.Embedding; here it passes CSM's own embeddings through
    model.tok_embeddings = nn.Identity()  # pyright: ignore[reportAttributeAccessIssue]
    model.output = nn.Identity()
    return model


def sample_top_k(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None) -> torch.Tensor:
    """Sample one code per row of ``logits`` [b, codes] from the ``top_k`` most likely, at ``temperature``."""
    if sampling.temperature <= 0:
        return logits.argmax(dim=-1, keepdim=True)
    values, indices = (logits.float() / sampling.temperature).topk(min(sampling.top_k, logits.shape[-1]), dim=-1)
    choice = torch.multinomial(torch.softmax(values, dim=-1), 1, generator=generator)
    return indices.gather(-1, choice)


class CSM(nn.Module):
    # buffers (register_buffer), declared so they read as tensors rather than nn.Module's Tensor | Module
    _offsets: torch.Tensor
    _backbone_mask: torch.Tensor
    _decoder_mask: torch.Tensor

    def __init__(self, args: CSMArgs) -> None:
        super().__init__()
        self.args = args
        self.backbone = _llama(args.backbone)
        self.decoder = _llama(args.decoder)
        self.text_embeddings = nn.Embedding(args.text_vocab, args.backbone.dim)
        self.audio_embeddings = nn.Embedding(args.audio_vocab * args.codebooks, args.backbone.dim)
        self.projection = nn.Linear(args.backbone.dim, args.decoder.dim, bias=False)
        self.codebook0_head = nn.Linear(args.backbone.dim, args.audio_vocab, bias=False)
        self.audio_head = nn.Parameter(torch.empty(args.codebooks - 1, args.decoder.dim, args.audio_vocab))
        nn.init.normal_(self.audio_head, std=args.decoder.dim**-0.5)
        offsets = torch.arange(args.codebooks) * args.audio_vocab  # codebook i uses rows i*vocab ..
        self.register_buffer("_offsets", offsets, persistent=False)

    def setup_caches(self) -> None:
        """Static KV caches for one stream: the backbone's for a whole utterance, the decoder's for a frame."""
        parameter = next(self.parameters())
        with parameter.device:
            self.backbone.setup_caches(1, parameter.dtype)
            self.decoder.setup_caches(1, parameter.dtype, decoder_max_seq_len=self.args.codebooks)
            self.register_buffer("_backbone_mask", self._causal(self.args.backbone.max_seq_len), persistent=False)
            self.register_buffer("_decoder_mask", self._causal(self.args.codebooks), persistent=False)

    @staticmethod
    def _causal(size: int) -> torch.Tensor:
        return torch.tril(torch.ones(size, size, dtype=torch.bool))

    def reset_caches(self) -> None:
        self.backbone.reset_caches()
        self.decoder.reset_caches()

    def embed_rows(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[b, s, codebooks + 1] tokens and mask -> [b, s, dim]: the sum of each row's unmasked columns."""
        audio = self.audio_embeddings(tokens[..., :-1] + self._offsets)
        text = self.text_embeddings(tokens[..., -1:])
        columns = torch.cat([audio, text], dim=-2) * mask.unsqueeze(-1)
        return columns.sum(dim=-2)

    def _embed_code(self, codebook: int, code: torch.Tensor) -> torch.Tensor:
        return self.audio_embeddings(code + codebook * self.args.audio_vocab)  # [b, 1] -> [b, 1, dim]

    @torch.inference_mode()
    def generate_frame(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        sampling: Sampling,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Feed new rows at ``positions`` [b, s] and sample the next frame: [b, codebooks] codes < audio_codes."""
        dtype = self.codebook0_head.weight.dtype
        hidden = self.backbone(self.embed_rows(tokens, mask), input_pos=positions, mask=self._backbone_mask[positions])[
            :, -1
        ].to(dtype)
        codes = [sample_top_k(self.codebook0_head(hidden)[:, : self.args.audio_codes], sampling, generator)]
        # The decoder sees [backbone state, code 0, code 1, ...] afresh for every frame.
        self.decoder.reset_caches()
        step = torch.cat([hidden.unsqueeze(1), self._embed_code(0, codes[0])], dim=1)
        step_positions = torch.arange(2, device=tokens.device).unsqueeze(0).expand(tokens.shape[0], -1)
        for codebook in range(1, self.args.codebooks):
            out = self.decoder(
                self.projection(step), input_pos=step_positions, mask=self._decoder_mask[step_positions]
            )[:, -1].to(dtype)
            logits = out @ self.audio_head[codebook - 1]
            codes.append(sample_top_k(logits[:, : self.args.audio_codes], sampling, generator))
            step = self._embed_code(codebook, codes[-1])
            step_positions = step_positions[:, -1:] + 1
        return torch.cat(codes, dim=1)
