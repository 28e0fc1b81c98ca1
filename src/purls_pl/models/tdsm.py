"""TDSM (Do & Kim, ICCV 2025): triplet diffusion for skeleton-text matching, a zero-shot method beside PURLS.

A conditional diffusion model learns to denoise a skeleton latent ``x`` (the frozen backbone's node
features, mean-pooled: one token ``(1, n)``) given a class's text; a class is recognised as the one whose
text denoises the skeleton best. The forward process is DDPM's with ``T = num_steps`` steps and the
scaled-linear β schedule of Stable Diffusion 2.1 (whose scheduler the official code loads)::

    β_t = (√β_start + t/(T-1)·(√β_end - √β_start))²,   ᾱ_t = Π_{s≤t} (1 - β_s),   t = 0 .. T-1
    x_t = √ᾱ_t · x + √(1-ᾱ_t) · ε,                      ε ~ N(0, I)

The denoiser ``ε_θ(x_t, t, c_g, c_l)`` is a small diffusion transformer: the skeleton tokens and the text
tokens ``c_l`` (one per description field, global last, each with a learned position) attend jointly in
every block (separate projections and MLPs per stream), and both streams are scale-shift-gated (adaLN) by
``emb(t) + MLP(c_g)``, ``c_g`` the global description. With ``e(x, t, ε, k) = mean((ε - ε_θ(x_t, t, T_k))²)``
over the latent's elements, training on seen-class samples ``(x, y)`` minimises

``L = λ_d · E[e(x, t, ε, y)]                                                          (diffusion loss)
    + λ_t · E[max(0, e(x, t, ε, y) - e(x, t, ε, y') + margin) · 1[y' ≠ y]]``          (triplet diffusion loss)

with ``t ~ U{0..T-1}``, ``ε ~ N(0, I)`` shared by the two terms and ``y'`` a seen class drawn uniformly (the
official code's draw; a draw of ``y`` itself is masked out). Inference predicts

``ŷ = argmin_k  1/|R| Σ_{(t, ε) ∈ R} e(x, t, ε, k)``

over a fixed set ``R`` of (timestep, noise) draws: every timestep of ``inference_timesteps`` with each of
``num_noises`` noises drawn once from ``seed`` (the paper: t = 25 of 50, 3 noises). :meth:`Tdsm.score`
returns ``-1/|R| Σ e`` (higher is better), a pure function of its inputs and the weights; it does not
depend on the other candidates, so the zero-shot scores are the columns of the generalised ones.

Differences from the paper, on purpose:

* the skeleton latent is this project's frozen stage-1 Shift-GCN feature (mean-pooled node features, as the
  paper's pre-extracted Shift-GCN features are), not SA-DVAE's released features;
* the text is this project's frozen text tower (``data.text_encoder``) on the classes' descriptions: the
  global condition ``c_g`` is the global description's embedding and so, by default, is the one text
  token ``c_l`` (``text_tokens: fields`` makes every description field, body parts, phases and global, a
  token), where the paper feeds CLIP's 35 token features and pooled feature of the label and of an LLM
  description, concatenated; one token keeps the CPU budget, and with few seen classes the per-field
  tokens let the denoiser tell the seen classes apart by any field instead of learning the text-to-skeleton
  map that carries over to unseen ones (on generated data they generalise worse);
* the denoiser is sized for a CPU budget (``hidden 64``, ``depth 2``, ``4`` heads; the paper's DiT has
  768 / 12 / 12, wider than its 256-d latent, where a width below ``n`` bounds the predicted noise's
  rank) and trains for ``trainer.max_epochs`` instead of 50 000 iterations of batch 256, so the default
  learning rate is 3e-3 (paper: 1e-4) and the cosine schedule's warm-up is a fraction of training
  (``warmup``, paper: 100 of 50 000 steps);
* the inference timesteps may be several (their errors are averaged); the default is the paper's one.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from purls_pl.data.batch import SkeletonBatch
from purls_pl.data.layouts import SkeletonLayout
from purls_pl.eval.outputs import ZeroShotScores
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.method import LinkedClassText, ZeroShotMethod
from purls_pl.text.fields import FIELDS, GLOBAL_INDEX

#: Rows of one denoiser call while scoring (samples × draws × candidates), bounding its memory.
SCORE_CHUNK = 8192


def scaled_linear_alphas_cumprod(num_steps: int, beta_start: float = 0.00085, beta_end: float = 0.012) -> Tensor:
    """``(T,)`` ᾱ_t of the scaled-linear β schedule (Stable Diffusion's, the official code's scheduler)."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_steps, dtype=torch.float64).pow(2)
    return torch.cumprod(1.0 - betas, dim=0).float()


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """``(N, dim)`` sinusoidal features (cos, sin) of timesteps ``t`` ``(N,)``, as DiT's."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin(), args.new_zeros(len(t), dim % 2)], dim=-1)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN's scale-shift of tokens ``x`` ``(N, L, h)`` by ``(N, h)`` vectors."""
    return x * (1 + scale[:, None]) + shift[:, None]


def mlp(hidden: int, ratio: float) -> nn.Module:
    """A transformer block's feed-forward network (tanh-approximated GELU, as DiT's)."""
    inner = int(hidden * ratio)
    return nn.Sequential(nn.Linear(hidden, inner), nn.GELU(approximate="tanh"), nn.Linear(inner, hidden))


class JointBlock(nn.Module):
    """A cross-DiT block: skeleton tokens ``(N, L_x, h)`` and text tokens ``(N, L_c, h)`` attend jointly, each
    stream with its own projections, MLP and adaLN modulation from the condition ``c`` ``(N, h)``."""

    def __init__(self, hidden: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.ModuleList([nn.Linear(hidden, 3 * hidden) for _ in range(2)])
        self.proj = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(2)])
        self.mlp = nn.ModuleList([mlp(hidden, mlp_ratio) for _ in range(2)])
        self.modulation = nn.ModuleList([nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden)) for _ in range(2)])

    def forward(self, x: Tensor, text: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        streams, lengths = [x, text], [x.shape[1], text.shape[1]]
        mods = [m(c).chunk(6, dim=-1) for m in self.modulation]
        n, h = x.shape[0], x.shape[-1]
        qkv = torch.cat([self.qkv[i](modulate(self.norm(s), *mods[i][:2])) for i, s in enumerate(streams)], dim=1)
        q, k, v = qkv.view(n, -1, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, -1, h).split(lengths, dim=1)
        out = []
        for i, (s, a) in enumerate(zip(streams, attended, strict=True)):
            _, _, gate_attn, shift, scale, gate_mlp = mods[i]
            s = s + gate_attn[:, None] * self.proj[i](a)
            out.append(s + gate_mlp[:, None] * self.mlp[i](modulate(self.norm(s), shift, scale)))
        return out[0], out[1]


class Denoiser(nn.Module):
    """``ε_θ(x_t, t, c_g, c_l)``: a diffusion transformer over skeleton and text tokens (module docstring).

    Args:
        latent_dim: ``n``, the skeleton latent's channels.
        text_dim: ``m``, the text embeddings' size.
        text_tokens: ``L_c``, the most text tokens (one learned position each; fewer take the last ones).
        hidden, depth, heads, mlp_ratio: The transformer's width, blocks, attention heads and MLP ratio.
        frequency_dim: Size of the timestep's sinusoidal features (DiT: 256).
    """

    def __init__(
        self,
        latent_dim: int,
        text_dim: int,
        text_tokens: int,
        hidden: int,
        depth: int,
        heads: int,
        mlp_ratio: float = 4.0,
        frequency_dim: int = 256,
    ) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.x_embedder = nn.Linear(latent_dim, hidden)
        self.t_embedder = nn.Sequential(nn.Linear(frequency_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.global_embedder = nn.Sequential(nn.Linear(text_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.token_embedder = nn.Linear(text_dim, hidden)
        self.token_position = nn.Parameter(torch.randn(text_tokens, hidden) * 0.02)
        self.blocks = nn.ModuleList([JointBlock(hidden, heads, mlp_ratio) for _ in range(depth)])
        self.final_norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.final = nn.Linear(hidden, latent_dim)
        for module in self.modules():  # DiT's initialisation: Xavier, zero biases, zero adaLN and output
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for layer in (*(m[-1] for b in self.blocks for m in b.modulation), self.final_modulation[-1], self.final):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in (self.t_embedder[0], self.t_embedder[2]):
            nn.init.normal_(layer.weight, std=0.02)

    def embed_text(self, text: Tensor) -> tuple[Tensor, Tensor]:
        """Text ``(K, D, m)`` (global last) to the global condition ``(K, h)`` and the text tokens ``(K, D, h)``."""
        if text.shape[1] > len(self.token_position):
            raise ValueError(
                f"{text.shape[1]} text tokens; the denoiser was built for at most {len(self.token_position)}"
            )
        tokens = self.token_embedder(text) + self.token_position[len(self.token_position) - text.shape[1] :]
        return self.global_embedder(text[:, -1]), tokens

    def denoise(self, x_t: Tensor, t: Tensor, global_c: Tensor, tokens: Tensor) -> Tensor:
        """``(N, L_x, n)`` predicted noise of ``x_t`` ``(N, L_x, n)`` at timesteps ``t`` ``(N,)`` given embedded
        text (:meth:`embed_text`'s outputs, one row per sample: ``(N, h)``, ``(N, D, h)``)."""
        c = self.t_embedder(timestep_embedding(t, self.frequency_dim)) + global_c
        x = self.x_embedder(x_t)
        for block in self.blocks:
            x, tokens = block(x, tokens, c)
        shift, scale = self.final_modulation(c).chunk(2, dim=-1)
        return self.final(modulate(self.final_norm(x), shift, scale))

    def forward(self, x_t: Tensor, t: Tensor, text: Tensor) -> Tensor:
        """``(N, L_x, n)`` predicted noise of ``x_t`` ``(N, L_x, n)`` at ``t`` ``(N,)`` given text ``(N, D, m)``."""
        return self.denoise(x_t, t, *self.embed_text(text))


class Tdsm(ZeroShotMethod):
    """TDSM: a text-conditioned diffusion model whose denoising error ranks the classes (module docstring).

    Args:
        class_text: The classes and their text (linked from the datamodule).
        layout: The skeleton layout (linked from the datamodule).
        backbone: The frozen stage-1 encoder; its node features are mean-pooled to the latent ``(1, n)``.
        text_tokens: ``global``: the global description is the one text token; ``fields``: every description
            field is a text token (global last; about 4x the cost).
        hidden: Width of the denoiser (paper: 768).
        depth: Its blocks (paper: 12).
        heads: Its attention heads (paper: 12).
        mlp_ratio: Its MLPs' expansion (paper: 4).
        num_steps: ``T``, the diffusion steps (paper: 50).
        diffusion_weight: ``λ_d`` (paper: 1).
        triplet_weight: ``λ_t`` (paper: 1).
        margin: The triplet loss's margin (paper: 1).
        inference_timesteps: The timesteps scoring averages over (paper: 25 alone).
        num_noises: The noises scoring averages over, at each of them (paper: 3).
        lr: AdamW learning rate (paper: 1e-4 over 50 000 steps; 3e-3 suits this project's short runs).
        weight_decay: AdamW weight decay (paper: 0.01).
        warmup: Linear warm-up of the cosine schedule, as a fraction of the training steps.
        seed: Seed of the inference noises (scores are reproducible).
    """

    #: ``select``'s search: the learning rate around the default and the triplet loss's margin (the paper's 1).
    default_search: ClassVar[dict[str, list[Any]]] = {
        "model.lr": [0.001, 0.003, 0.01],
        "model.margin": [0.1, 1.0],
    }

    def __init__(
        self,
        class_text: LinkedClassText,
        layout: str | SkeletonLayout,
        backbone: FrozenBackbone,
        text_tokens: Literal["global", "fields"] = "global",
        hidden: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        num_steps: int = 50,
        diffusion_weight: float = 1.0,
        triplet_weight: float = 1.0,
        margin: float = 1.0,
        inference_timesteps: tuple[int, ...] = (25,),
        num_noises: int = 3,
        lr: float = 3e-3,
        weight_decay: float = 0.01,
        warmup: float = 0.02,
        seed: int = 0,
    ) -> None:
        super().__init__(class_text, layout, backbone)
        if text_tokens not in ("fields", "global"):
            raise ValueError(f"model.text_tokens must be 'fields' or 'global', got {text_tokens!r}")
        inference_timesteps = tuple(int(t) for t in inference_timesteps)
        if not inference_timesteps or not all(0 <= t < num_steps for t in inference_timesteps) or num_noises < 1:
            raise ValueError(
                f"model.inference_timesteps must be a non-empty list in [0, {num_steps}) and model.num_noises >= 1; "
                f"got {list(inference_timesteps)} and {num_noises}"
            )
        self.save_hyperparameters(ignore=["class_text", "backbone", "layout"])
        self.hparams.inference_timesteps = inference_timesteps
        text = class_text.embeddings.float()
        self.register_buffer("class_text_all", text.clone(), persistent=False)
        self.register_buffer("seen_text", text[list(self.seen)][:, list(self.text_fields)].clone(), persistent=False)
        candidate_text = text[list(self.candidates)][:, list(self.text_fields)].clone()
        self.register_buffer("candidate_text", candidate_text, persistent=False)
        self.register_buffer("alphas_cumprod", scaled_linear_alphas_cumprod(num_steps), persistent=False)
        n, m = backbone.out_channels, text.shape[-1]
        self.denoiser = Denoiser(n, m, len(self.text_fields), hidden, depth, heads, mlp_ratio)

    # ------------------------------------------------------------------ what recognize asks
    @property
    def text_fields(self) -> tuple[int, ...]:
        return tuple(range(len(FIELDS))) if self.hparams.text_tokens == "fields" else (GLOBAL_INDEX,)

    @property
    def text_dim(self) -> int:
        return int(self.class_text_all.shape[-1])

    @staticmethod
    def latent(nodes: Tensor) -> Tensor:
        """``(B, 1, n)`` the skeleton latent of node features ``(B, S, n)``: their mean, one token."""
        return nodes.float().mean(dim=1, keepdim=True)

    def noised(self, x: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t = √ᾱ_t·x + √(1-ᾱ_t)·ε`` of latents ``x`` ``(N, L, n)`` at ``t`` ``(N,)``."""
        a = self.alphas_cumprod[t][:, None, None]
        return a.sqrt() * x + (1 - a).sqrt() * noise

    # ------------------------------------------------------------------ training
    def losses(self, x: Tensor, targets: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The loss terms of latents ``x`` ``(B, L, n)`` of seen classes at seen positions ``targets`` ``(B,)``:
        one timestep, noise and negative seen class drawn per sample (from ``generator`` if given)."""
        b, device = len(x), x.device
        draw = {"generator": generator, "device": "cpu"}
        t = torch.randint(0, self.hparams.num_steps, (b,), **draw).to(device)
        noise = torch.randn(x.shape, **draw).to(device)
        negatives = torch.randint(0, len(self.seen), (b,), **draw).to(device)
        x_t = self.noised(x, t, noise).repeat(2, 1, 1)
        text = self.seen_text[torch.cat([targets, negatives])]
        errors = (self.denoiser(x_t, t.repeat(2), text) - noise.repeat(2, 1, 1)).pow(2).mean(dim=(1, 2))
        positive, negative = errors[:b], errors[b:]
        mask = (negatives != targets).float()
        terms = {
            "diffusion": positive.mean(),
            "triplet": ((positive - negative + self.hparams.margin).clamp_min(0) * mask).mean(),
            "positive_error": positive.mean().detach(),
            "negative_error": negative.mean().detach(),
        }
        terms["loss"] = (
            self.hparams.diffusion_weight * terms["diffusion"] + self.hparams.triplet_weight * terms["triplet"]
        )
        return terms

    def training_step(self, batch: SkeletonBatch, batch_idx: int) -> Tensor:
        targets = self.seen_targets(batch.y)
        terms = self.losses(self.latent(self.node_features(batch.x, batch.index)), targets)
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=len(targets))
        self.log_dict(
            {f"train/{k}": v for k, v in terms.items() if k != "loss"},
            on_step=False,
            on_epoch=True,
            batch_size=len(targets),
        )
        return terms["loss"]

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW with a linear warm-up then a cosine decay to 0 over the training steps (the paper's)."""
        optimizer = torch.optim.AdamW(
            [p for p in self.parameters() if p.requires_grad],
            lr=self.hparams.lr,
            weight_decay=self.hparams.weight_decay,
        )
        trainer = self._trainer
        total = max(1, int(trainer.estimated_stepping_batches)) if trainer is not None else 1000
        warmup = max(1, round(self.hparams.warmup * total))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------ scoring
    def draws(self, shape: torch.Size) -> tuple[Tensor, Tensor]:
        """The fixed inference draws for latents of ``shape`` ``(L, n)``: timesteps ``(R,)`` and noises
        ``(R, L, n)``, each timestep with each of ``num_noises`` noises drawn from ``seed`` (on the CPU)."""
        hp = self.hparams
        noises = torch.randn(hp.num_noises, *shape, generator=torch.Generator().manual_seed(hp.seed))
        timesteps = torch.tensor(hp.inference_timesteps).repeat_interleave(hp.num_noises)
        return timesteps, noises.repeat(len(hp.inference_timesteps), 1, 1)

    def denoising_errors(self, x: Tensor, text: Tensor) -> Tensor:
        """``(B, K)`` mean denoising error over the fixed draws of latents ``x`` ``(B, L, n)`` given each
        candidate's text ``(K, D, m)``: ``1/|R| Σ_(t, ε) mean((ε - ε_θ(x_t, t, T_k))²)``."""
        timesteps, noises = (d.to(x.device) for d in self.draws(x.shape[1:]))
        r, k = len(timesteps), len(text)
        global_c, tokens = self.denoiser.embed_text(text.float())
        noised = self.noised(x.repeat_interleave(r, dim=0), timesteps.repeat(len(x)), noises.repeat(len(x), 1, 1)).view(
            len(x), r, *x.shape[1:]
        )  # (B, R, L, n)
        errors = []
        for rows in torch.arange(len(x) * r * k, device=x.device).split(SCORE_CHUNK):
            b, d, c = rows // (r * k), rows // k % r, rows % k
            pred = self.denoiser.denoise(noised[b, d], timesteps[d], global_c[c], tokens[c])
            errors.append((pred - noises[d]).pow(2).mean(dim=(1, 2)))
        return torch.cat(errors).view(len(x), r, k).mean(dim=1)

    def score(self, nodes: Tensor, candidates: Tensor, labels: Tensor | None = None) -> Tensor:
        """``(B, K)`` negated mean denoising errors (:meth:`denoising_errors`) of node features ``(B, S, n)``
        given candidates' text ``(K, D, m)`` in :attr:`text_fields` (or ``(K, m)``: the global description)."""
        text = candidates if candidates.dim() == 3 else candidates[:, None]
        with torch.no_grad():
            return -self.denoising_errors(self.latent(nodes), text)

    def evaluate(self, batch: SkeletonBatch) -> ZeroShotScores:
        scores = self.score(self.node_features(batch.x, batch.index), self.candidate_text)
        return ZeroShotScores(scores, scores[:, self.zsl_columns], batch.y)

    def full_class_text(self) -> Tensor:
        """``(K, len(FIELDS), m)``: every class's text in every field, as the method was built with."""
        return self.class_text_all.detach().cpu().clone()
