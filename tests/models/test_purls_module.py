import pytest
import torch

from purls_pl.data.batch import SkeletonBatch
from purls_pl.models.features import FrozenBackbone, export_backbone, load_backbone
from purls_pl.models.partition import AdaptivePartitioner, GlobalPartitioner, StaticPartitioner
from purls_pl.models.purls_module import LeakageError, PurlsModule
from purls_pl.text.encoder import ClassText

K, M_DIM = 6, 12
SEEN, UNSEEN = (0, 1, 2, 4), (3, 5)


@pytest.fixture
def class_text() -> ClassText:
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(K, 8, M_DIM), dim=-1)
    return ClassText(tuple(f"c{i}" for i in range(K)), emb, SEEN, UNSEEN)


def _module(class_text, backbone, partitioner=AdaptivePartitioner, **kw) -> PurlsModule:
    return PurlsModule(class_text, "ntu25", FrozenBackbone(str(backbone)), partitioner=partitioner, **kw)


def _batch(labels):
    torch.manual_seed(1)
    return SkeletonBatch(x=torch.randn(len(labels), 1, 12, 25, 3), y=torch.tensor(labels))


def test_backbone_is_frozen_and_stays_in_eval(class_text, tiny_backbone):
    module = _module(class_text, tiny_backbone)
    module.train()
    assert not module.backbone.training and not module.backbone.encoder.training
    assert all(not p.requires_grad for p in module.backbone.parameters())
    stats = {k: v.clone() for k, v in module.backbone.state_dict().items()}
    opt = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.1)
    loss = module.training_step(_batch([0, 1, 2, 4]), 0)
    loss.backward()
    opt.step()
    for k, v in module.backbone.state_dict().items():
        assert torch.equal(v, stats[k]), f"frozen backbone changed: {k}"
    assert module.partitioner.w_q.weight.grad is not None


def test_training_only_sees_seen_class_text(class_text, tiny_backbone):
    module = _module(class_text, tiny_backbone)
    assert module.seen_text.shape == (len(SEEN), 8, M_DIM)
    torch.testing.assert_close(module.seen_text, class_text.embeddings[list(SEEN)])
    with pytest.raises(LeakageError, match="c3"):
        module.training_step(_batch([0, 3]), 0)


@pytest.mark.parametrize("gzsl", [True, False])
@pytest.mark.parametrize("part", [AdaptivePartitioner, StaticPartitioner, GlobalPartitioner])
def test_evaluation_scores_every_candidate(class_text, tiny_backbone, part, gzsl):
    text = ClassText(class_text.class_names, class_text.embeddings, SEEN, UNSEEN, gzsl=gzsl)
    module = _module(text, tiny_backbone, partitioner=part).eval()
    assert module.candidates == ((*SEEN, *UNSEEN) if gzsl else UNSEEN)
    out = module.evaluate(_batch([3, 5, 0]))
    assert out.scores.shape == (3, len(module.candidates))
    assert out.labels.tolist() == [3, 5, 0]
    assert out.scores.abs().max() <= 1.0 + 1e-5
    # A candidate's score does not depend on which other candidates are scored.
    unseen_columns = [module.candidates.index(c) for c in UNSEEN]
    alone = _module(ClassText(text.class_names, text.embeddings, SEEN, UNSEEN, gzsl=False), tiny_backbone, part)
    alone.load_state_dict(module.state_dict())
    torch.testing.assert_close(alone.eval().evaluate(_batch([3, 5, 0])).scores, out.scores[:, unseen_columns])
    loss = module.training_step(_batch([0, 1, 2, 4]), 0)
    assert torch.isfinite(loss)
    assert module.fields == (("global",) if part is GlobalPartitioner else module.fields)


def test_alpha_modes(class_text, tiny_backbone):
    uniform = _module(class_text, tiny_backbone, alpha="uniform")
    learn = _module(class_text, tiny_backbone, alpha="learnable")
    assert not uniform.criterion.log_var.requires_grad and learn.criterion.log_var.requires_grad
    torch.testing.assert_close(uniform.criterion.alphas(), torch.full((8,), 1 / 8))


def test_a_few_steps_fit_a_batch(class_text, tiny_backbone):
    torch.manual_seed(0)
    module = _module(class_text, tiny_backbone, proj_dropout=0.0)
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=3e-3)
    batch = _batch([0, 1, 2, 4, 0, 1])
    first = module.training_step(batch, 0).item()
    for _ in range(30):
        opt.zero_grad()
        module.training_step(batch, 0).backward()
        opt.step()
    assert module.training_step(batch, 0).item() < 0.7 * first


def test_export_round_trip_and_missing_checkpoint(tiny_backbone, tmp_path):
    net, meta = load_backbone(tiny_backbone)
    assert meta == {"note": "random"} and net.init_args["channels"] == [8, 16]
    x = torch.randn(2, 1, 8, 25, 3)
    path = export_backbone(net.eval(), tmp_path / "again.pt")
    again, _ = load_backbone(path)
    torch.testing.assert_close(again.eval()(x), net(x))
    with pytest.raises(FileNotFoundError, match="make backbone SPLIT=<split>"):
        FrozenBackbone(str(tmp_path / "missing.pt"))


def test_tampered_checkpoint_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "payload": Evil()}, path)
    with pytest.raises(ValueError, match=r"evil\.pt: this backbone export holds pickled Python objects \(.*print"):
        load_backbone(path)


@pytest.mark.parametrize("queries", ["candidates", "true_class"])
def test_query_modes_train_and_agree_without_text_conditioning(class_text, tiny_backbone, queries):
    torch.manual_seed(0)
    adaptive = _module(class_text, tiny_backbone, queries=queries, proj_dropout=0.0)
    assert torch.isfinite(adaptive.training_step(_batch([0, 1, 2, 4]), 0))
    torch.manual_seed(0)
    static = _module(class_text, tiny_backbone, partitioner=StaticPartitioner, queries=queries, proj_dropout=0.0)
    torch.manual_seed(0)
    other = _module(
        class_text,
        tiny_backbone,
        partitioner=StaticPartitioner,
        proj_dropout=0.0,
        queries="true_class" if queries == "candidates" else "candidates",
    )
    batch = _batch([0, 1, 2, 4])
    torch.testing.assert_close(static.training_step(batch, 0), other.training_step(batch, 0))


def test_a_backbone_trained_on_a_foreign_class_is_refused(class_text, tiny_backbone, tmp_path):
    """An export records its seen classes; one that saw an unseen class of this run must not be loaded."""
    net, _ = load_backbone(tiny_backbone)
    foreign = export_backbone(net, tmp_path / "foreign.pt", {"seen_class_names": ["c0", "c1", "c3"]})
    with pytest.raises(ValueError, match=r"trained on 3 classes \['c0', 'c1', 'c3'\].*\['c3'\] are not among them"):
        _module(class_text, foreign)
    own = export_backbone(net, tmp_path / "own.pt", {"seen_class_names": ["c0", "c1"]})
    assert _module(class_text, own).seen == SEEN  # a subset of the seen classes is fine
    by_id = export_backbone(net, tmp_path / "ids.pt", {"seen_classes": [0, 5]})  # older exports: class ids
    with pytest.raises(ValueError, match=r"\['c5'\] are not among them"):
        _module(class_text, by_id)
    with pytest.warns(UserWarning, match="records no seen classes"):
        _module(class_text, tiny_backbone)


@pytest.mark.parametrize("part", [AdaptivePartitioner, GlobalPartitioner])
def test_eq5_scoring_normalises_over_the_zero_shot_classes(class_text, tiny_backbone, part):
    module = _module(class_text, tiny_backbone, partitioner=part, scoring="eq5").eval()
    out = module.evaluate(_batch([3, 5, 0]))
    assert out.scores.shape == (3, K) and out.zsl_scores.shape == (3, len(UNSEEN))
    # log-probabilities: each candidate's own softmax over the candidates it competes with
    assert (out.scores <= 0).all() and (out.zsl_scores <= 0).all()
    if part is GlobalPartitioner:  # one V: a proper softmax over the zero-shot classes
        torch.testing.assert_close(out.zsl_scores.exp().sum(-1), torch.ones(3))
    with pytest.raises(ValueError, match="model.scoring"):
        _module(class_text, tiny_backbone, scoring="dot")


def _with_labels(class_text: ClassText) -> ClassText:
    torch.manual_seed(7)
    labels = torch.nn.functional.normalize(torch.randn(K, M_DIM), dim=-1)
    return ClassText(class_text.class_names, class_text.embeddings, SEEN, UNSEEN, labels=labels)


@pytest.mark.parametrize("part", [AdaptivePartitioner, GlobalPartitioner])
def test_label_fusion_scores_against_the_fused_target(class_text, tiny_backbone, part):
    text = _with_labels(class_text)
    plain, ends = _module(text, tiny_backbone, partitioner=part).eval(), {}
    for beta in (0.0, 0.5, 1.0):
        module = _module(text, tiny_backbone, partitioner=part, label_fusion=beta).eval()
        module.load_state_dict(plain.state_dict())  # same weights; only the scoring target differs
        nodes = module.node_features(_batch([3, 5]).x)
        v = module.global_embedding(nodes, module.candidate_text)
        target = torch.nn.functional.normalize(
            (1 - beta) * module.candidate_text + beta * text.labels[list(module.candidates)], dim=-1
        )
        torch.testing.assert_close(module.evaluate(_batch([3, 5])).scores, module.scores_of(v, target))
        ends[beta] = module.evaluate(_batch([3, 5])).scores
    torch.testing.assert_close(ends[0.0], plain.evaluate(_batch([3, 5])).scores)
    assert not torch.allclose(ends[0.0], ends[1.0])
    with pytest.raises(ValueError, match="label_fusion"):
        _module(class_text, tiny_backbone, label_fusion=0.5)  # no label embeddings
    with pytest.raises(ValueError, match="label_fusion"):
        _module(text, tiny_backbone, label_fusion=1.5)


@pytest.mark.parametrize("part", [AdaptivePartitioner, GlobalPartitioner])
@pytest.mark.parametrize("gzsl", [False, True])
def test_label_field_mixes_the_label_score_into_every_candidate(class_text, tiny_backbone, part, gzsl):
    text = _with_labels(class_text)
    text = ClassText(text.class_names, text.embeddings, SEEN, UNSEEN, gzsl=gzsl, labels=text.labels)
    torch.manual_seed(3)
    plain = _module(text, tiny_backbone, partitioner=part).eval()
    assert plain.label_head is None and not any(k.startswith("label_head") for k in plain.state_dict())
    torch.manual_seed(3)
    module = _module(text, tiny_backbone, partitioner=part, label_field=0.5).eval()
    # the description fields' parameters initialise as without the label field
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(module.state_dict()[name], value)
    batch = _batch([3, 5, 0])
    nodes = module.node_features(batch.x)
    labels = text.labels[list(module.candidates)]
    label_sims = torch.nn.functional.normalize(module.label_head.projector(nodes.mean(1)), dim=-1) @ labels.T
    out, before = module.evaluate(batch), plain.evaluate(batch)
    torch.testing.assert_close(out.scores, 0.5 * before.scores + 0.5 * label_sims)
    columns = module.zsl_columns
    torch.testing.assert_close(out.zsl_scores, 0.5 * before.zsl_scores + 0.5 * label_sims[:, columns])
    # recognition's path (global text only, or every field) scores alike
    fields = module.candidate_fields if part is AdaptivePartitioner else module.candidate_text
    torch.testing.assert_close(module.score(nodes, fields, labels), out.scores)


def test_label_field_under_eq5_is_a_product_of_experts(class_text, tiny_backbone):
    text = _with_labels(class_text)
    text = ClassText(text.class_names, text.embeddings, SEEN, UNSEEN, gzsl=True, labels=text.labels)
    module = _module(text, tiny_backbone, scoring="eq5", label_field=1.0).eval()
    batch = _batch([3, 5, 0])
    nodes = module.node_features(batch.x)
    scale = module.label_head.logit_scale()
    sims = module.label_similarities(nodes, text.labels[list(module.candidates)])
    out = module.evaluate(batch)
    torch.testing.assert_close(out.scores, (sims * scale).log_softmax(-1))
    # the zero-shot scores compete among the unseen classes alone, as Eq. 5's Y_uc
    torch.testing.assert_close(out.zsl_scores, (sims[:, module.zsl_columns] * scale).log_softmax(-1))


def test_label_field_is_trained_on_the_seen_labels(class_text, tiny_backbone):
    text = _with_labels(class_text)
    module = _module(text, tiny_backbone, label_field=0.5, lr=1e-2)
    torch.testing.assert_close(module.seen_labels, text.labels[list(SEEN)])
    batch = _batch([0, 1, 2, 4])
    logged = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, value)
    module.log_dict = lambda values, **kw: logged.update(values)
    loss = module.training_step(batch, 0)
    assert {"train/loss_label", "train/temperature_label"} <= set(logged)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.label_head.projector.parameters())
    # the label term alone: the seen labels are learned from the mean-pooled nodes
    nodes = module.node_features(batch.x).detach()
    targets = module.seen_targets(batch.y)
    opt = torch.optim.Adam(module.label_head.parameters(), lr=1e-2)
    first = module.label_head.loss(nodes, module.seen_labels, targets)["loss"].item()
    for _ in range(30):
        opt.zero_grad()
        module.label_head.loss(nodes, module.seen_labels, targets)["loss"].backward()
        opt.step()
    assert module.label_head.loss(nodes, module.seen_labels, targets)["loss"].item() < 0.5 * first
    with pytest.raises(ValueError, match="label_field"):
        _module(class_text, tiny_backbone, label_field=0.5)  # no label embeddings
    with pytest.raises(ValueError, match="label_field"):
        _module(text, tiny_backbone, label_field=-0.1)


def test_text_noise_and_node_dropout_act_in_training_only(class_text, tiny_backbone):
    module = _module(class_text, tiny_backbone, text_noise=0.3, node_dropout=0.5)
    batch = _batch([0, 1, 2, 4])
    torch.manual_seed(0)
    first = module.training_step(batch, 0)
    torch.manual_seed(1)
    assert not torch.equal(first, module.training_step(batch, 0)), "training draws new noise"
    assert torch.isfinite(module.training_step(_batch([0, 1, 2, 4]), 0))
    module.eval()  # evaluation is deterministic: neither lever touches it
    first, second = module.evaluate(_batch([3, 5])).scores, module.evaluate(_batch([3, 5])).scores
    torch.testing.assert_close(first, second)
    with pytest.raises(ValueError, match="node_dropout"):
        _module(class_text, tiny_backbone, node_dropout=1.0)
