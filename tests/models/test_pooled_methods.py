"""Methods on released pooled features: those on pooled vectors build and score them, those that need joints or
frames refuse them with the reason and what to use."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from purls_pl.data.layouts import POOLED
from purls_pl.models.cada_vae import CadaVae
from purls_pl.models.partition import AdaptivePartitioner, GlobalPartitioner, StaticPartitioner
from purls_pl.models.pooled import ReleasedFeatures
from purls_pl.models.purls_module import PurlsModule
from purls_pl.models.sa_dvae import SaDvae
from purls_pl.models.skeleton_cache import CacheSettings, SkeletonCache
from purls_pl.models.smie import Smie
from purls_pl.models.tdsm import Tdsm
from purls_pl.text.encoder import ClassText
from purls_pl.text.fields import FIELDS


def _text() -> ClassText:
    torch.manual_seed(0)
    text = F.normalize(torch.randn(6, len(FIELDS), 12), dim=-1)
    return ClassText(tuple(f"c{i}" for i in range(6)), text, (0, 1, 2, 3), (4, 5))


@pytest.mark.parametrize("partitioner", [AdaptivePartitioner, StaticPartitioner])
def test_purls_partitioners_that_need_nodes_refuse_pooled_features(partitioner):
    with pytest.raises(ValueError) as err:
        PurlsModule(_text(), POOLED, ReleasedFeatures(dim=16), partitioner=partitioner)
    message = str(err.value)
    assert f"model.partitioner {partitioner.__name__} divides the node features into body parts and phases" in message
    assert "one vector per sample" in message and "experiments/global.yaml" in message


def test_the_methods_on_pooled_features_score_them():
    x = torch.randn(5, 1, 1, 1, 16)
    for module in (
        PurlsModule(_text(), POOLED, ReleasedFeatures(dim=16), partitioner=GlobalPartitioner),
        CadaVae(_text(), POOLED, ReleasedFeatures(dim=16), samples_per_class=4, classifier_epochs=1),
        SaDvae(_text(), POOLED, ReleasedFeatures(dim=16)),
        Tdsm(_text(), POOLED, ReleasedFeatures(dim=16)),
    ):
        module.eval()
        nodes = module.node_features(x)
        assert nodes.shape == (5, 1, 16)
        text = module.full_class_text()[list(module.candidates)][:, list(module.text_fields)]
        assert module.score(nodes, text).shape == (5, len(module.candidates))


def test_smie_needs_frames_for_its_temporal_term_only():
    with pytest.raises(ValueError, match=r"SMIE's temporal constraint .* set --model\.temporal_weight=0"):
        Smie(_text(), POOLED, ReleasedFeatures(dim=16))
    module = Smie(_text(), POOLED, ReleasedFeatures(dim=16), temporal_weight=0.0)
    assert module.score(torch.randn(3, 1, 16), module.candidate_text).shape == (3, len(module.candidates))


def test_skeleton_cache_refuses_a_layout_without_body_parts():
    settings = CacheSettings(enabled=True)
    with pytest.raises(ValueError, match=r"Skeleton-Cache .* layout 'pooled' has no joints or frames"):
        SkeletonCache(settings, POOLED)
