"""The models own their training split: Cnn2d.trunk/top (the cache point), WhisperHead.embed/hidden (the
teacher's representations)."""
import torch

from emotion_core.features import DEFAULT_FEATURES
from emotion_core.models.cnn2d import Cnn2d, Cnn2dConfig, Cnn2dTop
from emotion_core.models.whisper import WhisperHead, WhisperHeadConfig

# Every shipped checkpoint has been retrained since the split (classroom copies), so none of them was ever
# loaded by the code before it: the check that they gave the same logits under old and new code has nothing
# left to compare (the last two, lstm and cnn2d, were replaced in stop 21).


def _inputs():
    g = torch.Generator().manual_seed(0)
    lm = torch.randn(2, 80, DEFAULT_FEATURES.window_frames, generator=g) * 2 - 4
    stats = torch.randn(2, 7, 1024, generator=g)
    return lm, stats


def test_cnn2d_top_of_trunk_is_the_whole_model():
    # the EfficientNet-Lite0 family (a training option since the AudioSet mn04 ships as cnn2d; the mn04 trains end
    # to end and has no cache point), with random weights and a set input norm
    torch.manual_seed(0)
    model = Cnn2d(Cnn2dConfig(), 7, pretrained=False)
    lm, _ = _inputs()
    model.set_input_norm(lm)
    model.eval()
    with torch.inference_mode():
        stage = model.trunk(lm)
        assert stage.shape[:2] == (2, 112)
        assert torch.allclose(model.top(stage), model(lm), atol=1e-5)
        assert torch.allclose(Cnn2dTop(model)(stage), model(lm), atol=1e-5)


def test_cnn2d_train_top_keeps_the_cached_part_in_eval():
    model = Cnn2d(Cnn2dConfig(), 7, pretrained=False)
    top = Cnn2dTop(model).train()
    assert top.training and model.head.training and model.backbone._bn1.training
    assert all(not m.training for part in model.trunk_modules() for m in part.modules())
    assert all(m.training for part in model.top_modules() for m in part.modules())
    top.eval()
    assert not any(m.training for m in model.modules())
    # the trunk and the top split the model's parameters between them
    n_trunk = sum(p.numel() for m in model.trunk_modules() for p in m.parameters()) + sum(
        p.numel() for p in model.backbone._conv_stem.parameters())
    n_top = sum(p.numel() for m in model.top_modules() for p in m.parameters())
    assert n_trunk + n_top == sum(p.numel() for p in model.parameters())


def test_whisper_head_embed_and_hidden_are_the_first_steps_of_forward():
    torch.manual_seed(0)
    head = WhisperHead(WhisperHeadConfig(), 7).eval()
    stats = torch.randn(4, 7, 1024)
    with torch.inference_mode():
        emb, hid = head.embed(stats), head.hidden(stats)
        assert emb.shape == (4, 1024) and hid.shape == (4, 256)
        assert torch.equal(head.classifier[3:](hid), head(stats))
        assert torch.equal(head.classifier(emb), head(stats))
