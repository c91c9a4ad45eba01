"""The models own their training split: WhisperHead.embed/hidden (the teacher's representations)."""

import torch

from emotion_core.models.whisper import WhisperHead, WhisperHeadConfig

# Every shipped checkpoint has been retrained since the split (classroom copies), so none of them was ever
# loaded by the code before it: the check that they gave the same logits under old and new code has nothing
# left to compare (the last two, lstm and cnn2d, were replaced in stop 21).


def test_whisper_head_embed_and_hidden_are_the_first_steps_of_forward():
    torch.manual_seed(0)
    head = WhisperHead(WhisperHeadConfig(), 7).eval()
    stats = torch.randn(4, 7, 1024)
    with torch.inference_mode():
        emb, hid = head.embed(stats), head.hidden(stats)
        assert emb.shape == (4, 1024) and hid.shape == (4, 256)
        assert torch.equal(head.classifier[3:](hid), head(stats))
        assert torch.equal(head.classifier(emb), head(stats))
