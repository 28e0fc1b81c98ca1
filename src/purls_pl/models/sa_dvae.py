"""SA-DVAE (Li et al., ECCV 2024): disentangled VAEs of pooled skeleton features and class text.

The skeleton VAE's latent is split in two: a semantic-related part ``z_r`` (``semantic_dim``), aligned
with the text, and a semantic-irrelevant part ``z_v`` (``irrelevant_dim``) that holds what the class's
one description cannot say (performer, view, style). For a skeleton feature ``x`` (the frozen backbone's
node features, mean-pooled: ``(n,)``) and its class's text ``t`` (one field's embedding, ``(m,)``)::

    q(z_r, z_v | x) = N(μ_x, σ_x²)   (one encoder, its output split),   x̂ = D_x(z_r, z_v)
    q(z_t | t)      = N(μ_t, σ_t²),                                      t̂ = D_t(z_t)

Training minimises, per batch of seen-class samples paired with their classes' text,

``L = |x̂ - x|² + |t̂ - t|²                                                  (reconstruction, mean squared)
    + β_x·(KL(q(z_r|x) || N(0,I)) + KL(q(z_v|x) || N(0,I))) + β_t·KL(q(z_t|t) || N(0,I))
    + λ_ca·(|D_x(z_t, z_v) - x|² + |D_t(z_r) - t|²)                         (cross-alignment: the text latent
                                                                             stands in for z_r, z_v is kept)
    + λ_tc·E[D(z_r, z_v)]                                                  (total-correlation penalty)
    [+ δ·W₂(q(z_r|x), q(z_t|t))]``                                         (optional: CADA-VAE's alignment)

where the discriminator ``D`` (sigmoid output) is trained in turn, by binary cross-entropy, to tell
joint samples ``(z, z_v)`` from ones whose ``z_v`` is permuted across the batch (samples of the product
of the marginals), for ``z = z_r`` and for ``z = z_t``::

    L_D = ½·Σ_{z ∈ {z_r, z_t}} ½·(BCE(D(z, z_v), 1) + BCE(D(z, z_v[π]), 0))

so the penalty drives the parts towards independence (an adversarial estimate of their total
correlation, as in FactorVAE and SDGZSL). The weights follow the official code's cyclical schedule, whose
cycle is one pass over the data (``cycle_epochs``): at the fraction ``p`` of a cycle, ``β_x`` ramps from 0
to ``beta`` over ``beta_warmup``, ``λ_ca`` switches on at ``cross_warmup`` and ``β_t`` and ``λ_tc`` ramp
over ``text_warmup``, from cycle ``text_after`` on.

Classification happens in the semantic latent space: a softmax classifier is trained on latents sampled
from the candidate classes' text Gaussians (``samples_per_class`` per class, full-batch Adam for
``classifier_steps`` steps) and scores a skeleton by its mean semantic latent ``μ_r``. It is retrained
for every new set of candidates or text-encoder weights (deterministically, from ``seed``), so
:meth:`SaDvae.score` is a pure function of its inputs and the weights.

Defaults come from the official code (github.com/pha123661/SA-DVAE, ``train.py``, ``model.py``,
``scripts/train_eval_synse_split.sh``): NTU-60's latent sizes 160 + 8; the weights the default schedule
reaches at the end of a cycle (``β_x`` = 0.1·700/3000 ≈ 0.023 from 1000/1700 of it, ``β_t`` and ``λ_tc``
= 0.1·340/3000 ≈ 0.011 from 0.8 of it, after two cycles; ``λ_ca`` = 1 from 0.8 of it); a
discriminator ``d -> d/4 -> 1``; a full-batch latent classifier.

Differences from the paper, on purpose:

* The skeleton feature is the pooled feature of this project's frozen stage-1 encoder, and the
  encoders/decoders are the CADA-VAE building blocks (one hidden ReLU layer; no output ReLU), where the
  official code uses a linear encoder and a ``Linear + ReLU`` decoder. The text is this project's
  embedding of the class's description (``field``; official: Sentence-BERT ``stsb-bert-large`` of its own
  one-line descriptions, ``class_lists/*.csv``).
* The learning rate is 1e-3 (official: 3.4e-5 over ~12,500 steps of NTU-60; a stage-2 run here has a
  few hundred), the discriminator is updated every step (``discriminator_every``; official: every 4-5
  steps) and throughout training (official: only while ``λ_tc`` > 0). Both optimisers' steps count in
  ``trainer.global_step``.
* The latent classifier trains on 200 text latents per class for 150 steps at 2e-3 (official: 500, 300
  steps at 1e-3), to keep a validation epoch cheap on CPU (a selection trial retrains two per epoch).
* Latents are sampled with independent noise per dimension (the official code draws one number per
  sample for all dimensions), and the latent classifier is linear (official: ``Linear + ReLU``).
* Generalised zero-shot: the paper gates between the stage-1 classifier (seen classes) and the latent
  classifier (unseen classes) with a domain classifier trained on a held-out split of the seen classes.
  This project's backbone exports carry no classifier head and its GZSL protocol is calibrated stacking,
  so here one latent classifier is trained on text latents of every candidate and the evaluation's γ
  (``gzsl.gamma``, chosen on validation classes) takes the gate's place.
* The classifier is never chosen on test accuracy (the official code keeps the cycle with the best ZSL
  accuracy); the run's last weights score.
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
from purls_pl.models.cada_vae import GaussianEncoder, decoder, kl_to_standard, ramp, wasserstein
from purls_pl.models.features import FrozenBackbone
from purls_pl.models.method import LinkedClassText, ZeroShotMethod
from purls_pl.text.fields import FIELDS, GLOBAL

#: How many candidate sets' classifiers :meth:`SaDvae.score` keeps (evaluation alternates two under GZSL).
CACHED_CLASSIFIERS = 4


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """``(B, d)`` samples ``μ + σ·ε`` of diagonal Gaussians ``(B, d)``."""
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


class Discriminator(nn.Module):
    """``(B, d) -> (B,)`` logits that a latent pair is a joint sample (not one with a part permuted)."""

    def __init__(self, d_in: int) -> None:
        super().__init__()
        hidden = max(1, d_in // 4)
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).squeeze(-1)


class SaDvae(ZeroShotMethod):
    """SA-DVAE: disentangled, cross-aligned VAEs of skeleton features and class text (module docstring).

    Args:
        class_text: The classes and their text (linked from the datamodule).
        layout: The skeleton layout (linked from the datamodule).
        backbone: The frozen stage-1 encoder; its node features are mean-pooled to ``(n,)``.
        field: The description field whose embedding is a class's text (``global``: the whole description).
        semantic_dim: Size of the semantic-related latent ``z_r``, shared with the text (official: 160).
        irrelevant_dim: Size of the semantic-irrelevant latent ``z_v`` (official: 8 on NTU-60, 32 on NTU-120).
        skeleton_hidden: Hidden width of the skeleton VAE's encoder and decoder.
        text_hidden: Hidden width of the text VAE's encoder and decoder.
        beta: ``β_x``, weight of the skeleton KL terms at the end of a cycle.
        text_beta: ``β_t``, weight of the text KL term at the end of a cycle.
        cross_weight: ``λ_ca``, weight of cross-alignment once on.
        tc_weight: ``λ_tc``, weight of the total-correlation penalty at the end of a cycle.
        alignment_weight: ``δ`` of an extra 2-Wasserstein alignment of ``q(z_r|x)`` and ``q(z_t|t)``
            (CADA-VAE's; 0, the official code's choice, leaves it out).
        cycle_epochs: Length in epochs of the cycle the weight schedule repeats (official: 1, one pass over
            the data).
        beta_warmup: ``[start, end]`` of ``β_x``'s ramp, as fractions of a cycle.
        cross_warmup: ``[start, end]`` of ``λ_ca``'s ramp (equal ends: a switch).
        text_warmup: ``[start, end]`` of the ramp of ``β_t`` and ``λ_tc``.
        text_after: The first cycle (0-based) in which ``β_t`` and ``λ_tc`` are on.
        discriminator_every: Train the discriminator every this many steps.
        lr: Adam learning rate of the VAEs and of the discriminator.
        samples_per_class: Text latents sampled per candidate class to train the classifier (official: 500).
        classifier_steps: Full-batch Adam steps of the latent classifier (official: 300).
        classifier_lr: Its learning rate (official: 1e-3).
        seed: Seed of the classifier's samples and initialisation (scores are reproducible).
    """

    #: The default selection search: the learning rate and the size of the semantic-irrelevant part.
    default_search: ClassVar[dict[str, list[Any]]] = {
        "model.lr": [0.0003, 0.001, 0.003],
        "model.irrelevant_dim": [4, 8, 16],
    }

    def __init__(
        self,
        class_text: LinkedClassText,
        layout: str | SkeletonLayout,
        backbone: FrozenBackbone,
        field: str = GLOBAL,
        semantic_dim: int = 160,
        irrelevant_dim: int = 8,
        skeleton_hidden: int = 256,
        text_hidden: int = 256,
        beta: float = 0.023,
        text_beta: float = 0.011,
        cross_weight: float = 1.0,
        tc_weight: float = 0.011,
        alignment_weight: float = 0.0,
        cycle_epochs: float = 1.0,
        beta_warmup: tuple[float, float] = (0.59, 1.0),
        cross_warmup: tuple[float, float] = (0.8, 0.8),
        text_warmup: tuple[float, float] = (0.8, 1.0),
        text_after: int = 2,
        discriminator_every: int = 1,
        lr: float = 1e-3,
        samples_per_class: int = 200,
        classifier_steps: int = 150,
        classifier_lr: float = 2e-3,
        seed: int = 0,
    ) -> None:
        super().__init__(class_text, layout, backbone)
        if field not in FIELDS:
            raise ValueError(f"model.field must be one of {list(FIELDS)}, got {field!r}")
        if semantic_dim < 1 or irrelevant_dim < 1 or cycle_epochs <= 0 or discriminator_every < 1:
            raise ValueError("model.semantic_dim, irrelevant_dim, cycle_epochs, discriminator_every must be positive")
        self.save_hyperparameters(ignore=["class_text", "backbone", "layout"])
        self.automatic_optimization = False  # the VAEs and the discriminator step in turn
        column = FIELDS.index(field)
        text = class_text.embeddings[:, column].float()
        self.register_buffer("seen_text", text[list(self.seen)].clone(), persistent=False)
        self.register_buffer("candidate_text", text[list(self.candidates)].clone(), persistent=False)
        n, m = backbone.out_channels, text.shape[-1]
        self.skeleton_encoder = GaussianEncoder(n, skeleton_hidden, semantic_dim + irrelevant_dim)
        self.skeleton_decoder = decoder(semantic_dim + irrelevant_dim, skeleton_hidden, n)
        self.text_encoder = GaussianEncoder(m, text_hidden, semantic_dim)
        self.text_decoder = decoder(semantic_dim, text_hidden, m)
        self.discriminator = Discriminator(semantic_dim + irrelevant_dim)
        self._classifiers: dict[tuple[str, ...], nn.Linear] = {}

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

    def encode_skeleton(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(μ_r, log σ_r², μ_v, log σ_v²)`` of pooled features ``(B, n)``: ``(B, semantic_dim)`` twice, then
        ``(B, irrelevant_dim)`` twice."""
        mu, logvar = self.skeleton_encoder(x)
        d = self.hparams.semantic_dim
        return mu[:, :d], logvar[:, :d], mu[:, d:], logvar[:, d:]

    # ------------------------------------------------------------------ training
    def weights(self, epochs: float | None = None) -> dict[str, float]:
        """``β_x``, ``β_t``, ``λ_ca``, ``λ_tc`` and ``δ`` after ``epochs`` epochs of training (fractional;
        ``None``: every weight at its full value, as at the end of a late cycle)."""
        hp = self.hparams
        if epochs is None:
            cycle, p = hp.text_after, 1.0
        else:
            position = max(epochs, 0.0) / hp.cycle_epochs
            cycle, p = int(position), position - int(position)
        text_on = ramp(p, *hp.text_warmup) * float(cycle >= hp.text_after)
        return {
            "beta": hp.beta * ramp(p, *hp.beta_warmup),
            "text_beta": hp.text_beta * text_on,
            "cross": hp.cross_weight * ramp(p, *hp.cross_warmup),
            "tc": hp.tc_weight * text_on,
            "alignment": hp.alignment_weight,
        }

    def epochs_done(self, batch_idx: int) -> float | None:
        """The (fractional) epochs of training done at training batch ``batch_idx`` (``None`` without a trainer)."""
        trainer = self._trainer
        if trainer is None:
            return None
        batches = trainer.num_training_batches
        batches = max(1, int(batches)) if batches != float("inf") else max(1, batch_idx + 1)
        return self.current_epoch + min(batch_idx, batches) / batches

    def losses(self, x: Tensor, t: Tensor, weights: dict[str, float]) -> dict[str, Tensor]:
        """The loss terms (each ``()``) for skeleton features ``x`` ``(B, n)`` paired with text ``t`` ``(B, m)``."""
        mu_r, logvar_r, mu_v, logvar_v = self.encode_skeleton(x)
        mu_t, logvar_t = self.text_encoder(t)
        z_r, z_v, z_t = reparameterize(mu_r, logvar_r), reparameterize(mu_v, logvar_v), reparameterize(mu_t, logvar_t)
        terms = {
            "reconstruction": F.mse_loss(self.skeleton_decoder(torch.cat([z_r, z_v], -1)), x)
            + F.mse_loss(self.text_decoder(z_t), t),
            "kl": (kl_to_standard(mu_r, logvar_r) + kl_to_standard(mu_v, logvar_v)).mean(),
            "text_kl": kl_to_standard(mu_t, logvar_t).mean(),
            "cross_alignment": F.mse_loss(self.skeleton_decoder(torch.cat([z_t, z_v], -1)), x)
            + F.mse_loss(self.text_decoder(z_r), t),
            "tc": torch.sigmoid(self.discriminator(torch.cat([z_r, z_v], -1))).mean(),
            "alignment": wasserstein(mu_r, logvar_r, mu_t, logvar_t).mean(),
        }
        terms["loss"] = (
            terms["reconstruction"]
            + weights["beta"] * terms["kl"]
            + weights["text_beta"] * terms["text_kl"]
            + weights["cross"] * terms["cross_alignment"]
            + weights["tc"] * terms["tc"]
            + weights["alignment"] * terms["alignment"]
        )
        return terms

    def discriminator_loss(self, x: Tensor, t: Tensor) -> Tensor:
        """``()`` the discriminator's binary cross-entropy on joint and ``z_v``-permuted latent pairs of the
        skeleton (``z_r``) and text (``z_t``) branches; the latents are sampled without gradient."""
        with torch.no_grad():
            mu_r, logvar_r, mu_v, logvar_v = self.encode_skeleton(x)
            mu_t, logvar_t = self.text_encoder(t)
            z_r, z_t = reparameterize(mu_r, logvar_r), reparameterize(mu_t, logvar_t)
            z_v = reparameterize(mu_v, logvar_v)
            shuffled = z_v[torch.randperm(len(z_v), device=z_v.device)]
        loss = x.new_zeros(())
        for z in (z_r, z_t):
            joint = self.discriminator(torch.cat([z, z_v], -1))
            product = self.discriminator(torch.cat([z, shuffled], -1))
            loss = loss + 0.25 * (
                F.binary_cross_entropy_with_logits(joint, torch.ones_like(joint))
                + F.binary_cross_entropy_with_logits(product, torch.zeros_like(product))
            )
        return loss

    def training_step(self, batch: SkeletonBatch, batch_idx: int) -> Tensor:
        targets = self.seen_targets(batch.y)
        x, t = self.pooled(batch.x, batch.index), self.seen_text[targets]
        vae_optimizer, discriminator_optimizer = self.optimizers()
        terms = self.losses(x, t, self.weights(self.epochs_done(batch_idx)))
        vae_optimizer.zero_grad()
        self.manual_backward(terms["loss"])
        vae_optimizer.step()
        if batch_idx % self.hparams.discriminator_every == 0:
            terms["discriminator"] = self.discriminator_loss(x, t)
            discriminator_optimizer.zero_grad()  # also drops what the penalty left on its parameters
            self.manual_backward(terms["discriminator"])
            discriminator_optimizer.step()
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=len(targets))
        self.log_dict(
            {f"train/{k}": v for k, v in terms.items() if k != "loss"},
            on_step=False,
            on_epoch=True,
            batch_size=len(targets),
        )
        return terms["loss"].detach()

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        vae = [p for name, p in self.named_parameters() if p.requires_grad and not name.startswith("discriminator.")]
        return [
            torch.optim.Adam(vae, lr=self.hparams.lr),
            torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr),
        ]

    # ------------------------------------------------------------------ scoring
    def fit_classifier(self, text: Tensor) -> nn.Linear:
        """A softmax classifier ``semantic latent -> K`` trained on ``samples_per_class`` latents sampled
        from each candidate's text Gaussian (``text`` ``(K, m)``), deterministically from ``seed``."""
        with torch.inference_mode(False), torch.enable_grad():  # evaluation loops run in inference mode
            return self._train_classifier(text.detach().clone().float())

    def _train_classifier(self, text: Tensor) -> nn.Linear:
        """:meth:`fit_classifier`'s training, outside inference mode (full-batch Adam, as the official code)."""
        hp = self.hparams
        generator = torch.Generator().manual_seed(hp.seed)
        with torch.no_grad():
            mu, logvar = self.text_encoder(text)
            mu, std = mu.cpu(), (0.5 * logvar).exp().cpu()
        k, d = mu.shape
        noise = torch.randn(k, hp.samples_per_class, d, generator=generator)
        z = (mu[:, None] + noise * std[:, None]).reshape(-1, d)
        y = torch.arange(k).repeat_interleave(hp.samples_per_class)
        with torch.random.fork_rng(devices=[]):  # the classifier's init draws nothing from the global stream
            torch.manual_seed(hp.seed)
            classifier = nn.Linear(d, k)
        optimizer = torch.optim.Adam(classifier.parameters(), lr=hp.classifier_lr)
        for _ in range(hp.classifier_steps):
            loss = F.cross_entropy(classifier(z), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return classifier.requires_grad_(False).to(text.device)

    def _classifier(self, text: Tensor) -> nn.Linear:
        """:meth:`fit_classifier`, cached by the candidates' text and the text encoder's weights."""
        digest = hashlib.sha1(text.detach().float().cpu().numpy().tobytes())
        weights = hashlib.sha1()
        for p in self.text_encoder.parameters():
            weights.update(p.detach().float().cpu().numpy().tobytes())
        key = (digest.hexdigest(), weights.hexdigest())
        if key not in self._classifiers:
            if len(self._classifiers) >= CACHED_CLASSIFIERS:
                self._classifiers.pop(next(iter(self._classifiers)))
            self._classifiers[key] = self.fit_classifier(text)
        return self._classifiers[key]

    def score(self, nodes: Tensor, candidates: Tensor, labels: Tensor | None = None) -> Tensor:
        """``(B, K)`` log-probabilities of the latent classifier of candidates with text ``(K, m)`` (or
        ``(K, 1, m)``, the method's field) for node features ``(B, S, n)``, from the mean semantic latent."""
        text = candidates[:, -1] if candidates.dim() == 3 else candidates
        mu_r, _, _, _ = self.encode_skeleton(nodes.float().mean(dim=1))
        return self._classifier(text.float())(mu_r).log_softmax(-1)

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
