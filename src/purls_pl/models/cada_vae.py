"""CADA-VAE (Schönfeld et al., CVPR 2019) over pooled skeleton features: a zero-shot method beside PURLS.

One VAE per modality maps a skeleton feature ``x`` (the frozen backbone's node features, mean-pooled:
``(n,)``) and its class's text ``t`` (one field's embedding, ``(m,)``) to diagonal Gaussians in a shared
latent space. Training minimises, per batch of seen-class samples paired with their classes' text,

``L = Σ_mod |D_mod(z_mod) - mod|_1 + β·Σ_mod KL(q_mod || N(0, I))               (VAE terms)
    + γ·(|D_x(z_t) - x|_1 + |D_t(z_x) - t|_1)                                   (cross-reconstruction)
    + δ·sqrt(|μ_x - μ_t|² + |σ_x - σ_t|²)``                                     (distribution alignment,
                                                                                  the 2-Wasserstein distance)

with ``β``, ``γ`` and ``δ`` each ramped linearly from 0 to its weight between two points of training
(the paper's warm-up; fractions of ``trainer.max_epochs`` here). Classification happens in the latent
space: a softmax classifier is trained on latents sampled from the candidate classes' text Gaussians
(``samples_per_class`` per class) and scores a skeleton by its mean latent ``μ_x``. It is retrained for
every new set of candidates or weights (deterministically, from ``seed``), so :meth:`CadaVae.score` is a
pure function of its inputs and the weights.

Differences from the paper, on purpose: the skeleton feature is the pooled Shift-GCN feature of this
project's stage 1 (as SynSE's and SMIE's CADA-VAE baselines use), the reconstruction losses are averaged
over the batch (the paper sums them, tying the weights to the batch size), and under generalised zero-shot
evaluation the classifier sees text latents for the seen classes too (the paper adds seen skeleton latents).
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from purls_pl.data.batch import SkeletonBatch
from purls_pl.data.layouts import SkeletonLayout
from purls_pl.eval.outputs import ZeroShotScores
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.method import LinkedClassText, ZeroShotMethod
from purls_pl.text.fields import FIELDS, GLOBAL


class GaussianEncoder(nn.Module):
    """``(B, d_in) -> (μ, log σ²)``, each ``(B, latent)``: one hidden ReLU layer."""

    def __init__(self, d_in: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=-1)
        return mu, logvar


def decoder(latent: int, hidden: int, d_out: int) -> nn.Module:
    """``(B, latent) -> (B, d_out)``: one hidden ReLU layer."""
    return nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


def ramp(progress: float, start: float, end: float) -> float:
    """0 before ``start``, 1 after ``end``, linear between (``progress``, ``start``, ``end`` in [0, 1])."""
    if end <= start:
        return float(progress >= start)
    return min(1.0, max(0.0, (progress - start) / (end - start)))


def l1_distance(a: Tensor, b: Tensor) -> Tensor:
    """``()`` the L1 distance of ``(B, d)`` rows, averaged over the batch (the paper's reconstruction error)."""
    return (a - b).abs().sum(-1).mean()


def kl_to_standard(mu: Tensor, logvar: Tensor) -> Tensor:
    """``(B,)`` KL(N(μ, σ²) || N(0, I)) of diagonal Gaussians ``(B, latent)``."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)


def wasserstein(mu_a: Tensor, logvar_a: Tensor, mu_b: Tensor, logvar_b: Tensor) -> Tensor:
    """``(B,)`` 2-Wasserstein distance between diagonal Gaussians (the paper's distribution alignment)."""
    spread = (0.5 * logvar_a).exp() - (0.5 * logvar_b).exp()
    return ((mu_a - mu_b).pow(2).sum(-1) + spread.pow(2).sum(-1)).clamp_min(1e-12).sqrt()


class CadaVae(ZeroShotMethod):
    """CADA-VAE: cross- and distribution-aligned VAEs of skeleton features and class text (module docstring).

    Args:
        class_text: The classes and their text (linked from the datamodule).
        layout: The skeleton layout (linked from the datamodule).
        backbone: The frozen stage-1 encoder; its node features are mean-pooled to ``(n,)``.
        field: The description field whose embedding is a class's text (``global``: the whole description).
        latent_dim: Size of the shared latent space (paper: 64).
        skeleton_hidden: Hidden width of the skeleton VAE's encoder and decoder.
        text_hidden: Hidden width of the text VAE's encoder and decoder.
        beta: Weight of the KL terms after warm-up (paper: 0.25), ramped over ``beta_warmup``.
        cross_weight: Weight γ of cross-reconstruction (paper: 2.37), ramped over ``cross_warmup``.
        alignment_weight: Weight δ of distribution alignment (paper: 8.13), ramped over ``alignment_warmup``.
        beta_warmup: ``[start, end]`` of β's ramp as fractions of ``trainer.max_epochs`` (paper: 0-93 of 100).
        cross_warmup: ``[start, end]`` of γ's ramp (paper: 21-75 of 100).
        alignment_warmup: ``[start, end]`` of δ's ramp (paper: 6-22 of 100).
        lr: Adam learning rate of the VAEs (paper: 1.5e-4).
        samples_per_class: Latents sampled per candidate class to train the classifier (paper: 200-400).
        classifier_epochs: Epochs of the latent classifier (Adam, batch 32).
        classifier_lr: Its learning rate (paper: 1e-3).
        seed: Seed of the classifier's samples and initialisation (scores are reproducible).
    """

    #: ``select``'s search: the learning rate around the paper's 1.5e-4 and the latent size (its 64, or 16).
    default_search: ClassVar[dict[str, list[Any]]] = {
        "model.lr": [0.00015, 0.0005, 0.0015],
        "model.latent_dim": [16, 64],
    }

    def __init__(
        self,
        class_text: LinkedClassText,
        layout: str | SkeletonLayout,
        backbone: FrozenBackbone,
        field: str = GLOBAL,
        latent_dim: int = 64,
        skeleton_hidden: int = 512,
        text_hidden: int = 512,
        beta: float = 0.25,
        cross_weight: float = 2.37,
        alignment_weight: float = 8.13,
        beta_warmup: tuple[float, float] = (0.0, 0.93),
        cross_warmup: tuple[float, float] = (0.21, 0.75),
        alignment_warmup: tuple[float, float] = (0.06, 0.22),
        lr: float = 1.5e-4,
        samples_per_class: int = 200,
        classifier_epochs: int = 20,
        classifier_lr: float = 1e-3,
        seed: int = 0,
    ) -> None:
        super().__init__(class_text, layout, backbone)
        if field not in FIELDS:
            raise ValueError(f"model.field must be one of {list(FIELDS)}, got {field!r}")
        self.save_hyperparameters(ignore=["class_text", "backbone", "layout"])
        column = FIELDS.index(field)
        text = class_text.embeddings[:, column].float()
        self.register_buffer("seen_text", text[list(self.seen)].clone(), persistent=False)
        self.register_buffer("candidate_text", text[list(self.candidates)].clone(), persistent=False)
        n, m = backbone.out_channels, text.shape[-1]
        self.skeleton_encoder = GaussianEncoder(n, skeleton_hidden, latent_dim)
        self.skeleton_decoder = decoder(latent_dim, skeleton_hidden, n)
        self.text_encoder = GaussianEncoder(m, text_hidden, latent_dim)
        self.text_decoder = decoder(latent_dim, text_hidden, m)
        self._classifiers: dict[tuple[Any, ...], nn.Linear] = {}

    # ------------------------------------------------------------------ what recognize asks
    @property
    def text_fields(self) -> tuple[int, ...]:
        return (FIELDS.index(self.hparams.field),)

    @property
    def text_dim(self) -> int:
        return int(self.seen_text.shape[-1])

    def pooled(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        """``(B, n)`` mean-pooled node features of skeletons ``x``."""
        return self.node_features(x, index).float().mean(dim=1)

    # ------------------------------------------------------------------ training
    def weights(self) -> dict[str, float]:
        """β, γ, δ at the current point of training (their warm-up ramps)."""
        hp, trainer = self.hparams, self._trainer
        epochs = max(1, trainer.max_epochs or 1) if trainer is not None else 1
        progress = self.current_epoch / epochs
        return {
            "beta": hp.beta * ramp(progress, *hp.beta_warmup),
            "cross": hp.cross_weight * ramp(progress, *hp.cross_warmup),
            "alignment": hp.alignment_weight * ramp(progress, *hp.alignment_warmup),
        }

    def losses(self, x: Tensor, t: Tensor, weights: dict[str, float]) -> dict[str, Tensor]:
        """The loss terms for skeleton features ``x`` ``(B, n)`` paired with text ``t`` ``(B, m)``."""
        mu_x, logvar_x = self.skeleton_encoder(x)
        mu_t, logvar_t = self.text_encoder(t)
        z_x = mu_x + torch.randn_like(mu_x) * (0.5 * logvar_x).exp()
        z_t = mu_t + torch.randn_like(mu_t) * (0.5 * logvar_t).exp()
        terms = {
            "reconstruction": l1_distance(self.skeleton_decoder(z_x), x) + l1_distance(self.text_decoder(z_t), t),
            "kl": (kl_to_standard(mu_x, logvar_x) + kl_to_standard(mu_t, logvar_t)).mean(),
            "cross_reconstruction": l1_distance(self.skeleton_decoder(z_t), x) + l1_distance(self.text_decoder(z_x), t),
            "alignment": wasserstein(mu_x, logvar_x, mu_t, logvar_t).mean(),
        }
        terms["loss"] = (
            terms["reconstruction"]
            + weights["beta"] * terms["kl"]
            + weights["cross"] * terms["cross_reconstruction"]
            + weights["alignment"] * terms["alignment"]
        )
        return terms

    def training_step(self, batch: SkeletonBatch, batch_idx: int) -> Tensor:
        targets = self.seen_targets(batch.y)
        terms = self.losses(self.pooled(batch.x, batch.index), self.seen_text[targets], self.weights())
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=len(targets))
        self.log_dict(
            {f"train/{k}": v for k, v in terms.items() if k != "loss"},
            on_step=False,
            on_epoch=True,
            batch_size=len(targets),
        )
        return terms["loss"]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=self.hparams.lr)

    # ------------------------------------------------------------------ scoring
    def fit_classifier(self, text: Tensor) -> nn.Linear:
        """A softmax classifier ``latent -> K`` trained on ``samples_per_class`` latents sampled from each
        candidate's text Gaussian (``text`` ``(K, m)``), deterministically from ``seed``."""
        with torch.inference_mode(False), torch.enable_grad():  # evaluation loops run in inference mode
            return self._train_classifier(text.detach().clone().float())

    def _train_classifier(self, text: Tensor) -> nn.Linear:
        """:meth:`fit_classifier`'s training, outside inference mode."""
        hp = self.hparams
        generator = torch.Generator().manual_seed(hp.seed)
        with torch.no_grad():
            mu, logvar = self.text_encoder(text.float())
            mu, std = mu.cpu(), (0.5 * logvar).exp().cpu()
        k = len(text)
        noise = torch.randn(k, hp.samples_per_class, mu.shape[-1], generator=generator)
        z = (mu[:, None] + noise * std[:, None]).reshape(-1, mu.shape[-1])
        y = torch.arange(k).repeat_interleave(hp.samples_per_class)
        with torch.random.fork_rng(devices=[]):  # the classifier's init draws nothing from the global stream
            torch.manual_seed(hp.seed)
            classifier = nn.Linear(mu.shape[-1], k)
        optimizer = torch.optim.Adam(classifier.parameters(), lr=hp.classifier_lr, betas=(0.5, 0.999))
        for _ in range(hp.classifier_epochs):
            for rows in torch.randperm(len(z), generator=generator).split(32):
                loss = F.cross_entropy(classifier(z[rows]), y[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return classifier.requires_grad_(False).to(text.device)

    def _classifier(self, text: Tensor) -> nn.Linear:
        """:meth:`fit_classifier`, cached by the candidates' text and the weights' version (a training step)."""
        key = (hashlib.sha1(text.detach().float().cpu().numpy().tobytes()).hexdigest(), self.global_step)
        if key not in self._classifiers:
            self._classifiers = {key: self.fit_classifier(text)}
        return self._classifiers[key]

    def score(self, nodes: Tensor, candidates: Tensor, labels: Tensor | None = None) -> Tensor:
        """``(B, K)`` log-probabilities of the latent classifier of candidates with text ``(K, m)`` (or
        ``(K, 1, m)``, the method's field) for node features ``(B, S, n)``."""
        text = candidates[:, -1] if candidates.dim() == 3 else candidates
        mu, _ = self.skeleton_encoder(nodes.float().mean(dim=1))
        return self._classifier(text)(mu).log_softmax(-1)

    def evaluate(self, batch: SkeletonBatch) -> ZeroShotScores:
        nodes = self.node_features(batch.x, batch.index)
        scores = self.score(nodes, self.candidate_text)
        zsl = scores if not self.gzsl else self.score(nodes, self.candidate_text[self.zsl_columns])
        return ZeroShotScores(scores, zsl, batch.y)

    def full_class_text(self) -> Tensor:
        """``(K, len(FIELDS), m)``: the seen and candidate classes' text in the method's field, zeros elsewhere."""
        text = torch.zeros(len(self.class_names), len(FIELDS), self.text_dim)
        column = FIELDS.index(self.hparams.field)
        text[list(self.seen), column] = self.seen_text.detach().cpu()
        text[list(self.candidates), column] = self.candidate_text.detach().cpu()
        return text
