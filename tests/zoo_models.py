"""The zoo's models: `transformers` models from small configs and `timm` architectures across families, all
with random weights (nothing is downloaded). Imported by tests/test_zoo.py, tests/zoo.py and
benchmarks/bench_import.py."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from zoo import Case

VOCAB = 99


def _ids(batch: int = 2, length: int = 8, mask: bool = False) -> Any:
    def inputs() -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(0, VOCAB, (batch, length), generator=gen)
        if not mask:
            return (ids,), {}
        attention = torch.ones(batch, length, dtype=torch.long)
        attention[0, -3:] = 0  # padding in the first sequence
        return (ids,), {"attention_mask": attention}
    return inputs


def _image(size: int, batch: int = 2) -> Any:
    def inputs() -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        return (torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0)),), {}
    return inputs


def transformers_cases() -> list[Case]:
    """Small-config `transformers` models (2 layers, width 32), random init; encoder-only where the model
    has a decoder, since a decoder's generation loop is not one static graph."""
    import transformers as T

    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    text = dict(vocab_size=VOCAB, **small)
    vision = dict(image_size=32, patch_size=8, num_channels=3, **small)
    llama = dict(vocab_size=VOCAB, num_key_value_heads=2, use_cache=False, **small)

    def model(cls: str, config: str, **kw: Any) -> Any:
        return lambda: getattr(T, cls)(getattr(T, config)(**kw))

    cases = [
        Case("bert", "BERT", model("BertModel", "BertConfig", **text), _ids(mask=True)),
        Case("distilbert", "BERT", model("DistilBertModel", "DistilBertConfig", vocab_size=VOCAB, dim=32, n_layers=2,
                                         n_heads=4, hidden_dim=64), _ids()),
        Case("roberta", "BERT", model("RobertaModel", "RobertaConfig", **text), _ids(mask=True)),
        Case("albert", "BERT", model("AlbertModel", "AlbertConfig", embedding_size=16, **text), _ids()),
        Case("electra", "BERT", model("ElectraModel", "ElectraConfig", embedding_size=16, **text), _ids()),
        Case("gpt2", "GPT-2", model("GPT2Model", "GPT2Config", vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4,
                                    use_cache=False), _ids()),
        Case("gpt_neo", "GPT-2", model("GPTNeoModel", "GPTNeoConfig", vocab_size=VOCAB, hidden_size=32, num_layers=2,
                                       num_heads=4, attention_types=[[["global", "local"], 1]], window_size=4,
                                       use_cache=False), _ids()),
        Case("opt", "GPT-2", model("OPTModel", "OPTConfig", vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                   num_attention_heads=4, ffn_dim=64, word_embed_proj_dim=32, use_cache=False), _ids()),
        Case("t5_encoder", "T5 encoder", model("T5EncoderModel", "T5Config", vocab_size=VOCAB, d_model=32, d_kv=8,
                                               d_ff=64, num_layers=2, num_heads=4), _ids()),
        Case("llama", "Llama", model("LlamaModel", "LlamaConfig", **llama), _ids()),
        Case("mistral", "Llama", model("MistralModel", "MistralConfig", **llama), _ids()),
        Case("qwen2", "Llama", model("Qwen2Model", "Qwen2Config", **llama), _ids()),
        Case("vit_hf", "ViT/DeiT", model("ViTModel", "ViTConfig", **vision), _image(32)),
        Case("deit_hf", "ViT/DeiT", model("DeiTModel", "DeiTConfig", **vision), _image(32)),
        Case("clip_vision", "ViT/DeiT", model("CLIPVisionModel", "CLIPVisionConfig", **vision), _image(32)),
        Case("convnext_hf", "ConvNeXt", model("ConvNextModel", "ConvNextConfig", hidden_sizes=[8, 16, 24, 32],
                                              depths=[1, 1, 1, 1]), _image(32)),
        Case("resnet_hf", "ResNet", model("ResNetModel", "ResNetConfig", embedding_size=8, hidden_sizes=[8, 16, 24, 32],
                                          depths=[1, 1, 1, 1]), _image(32)),
    ]
    first = ("bert", "gpt2", "t5_encoder", "llama")
    return sorted(cases, key=lambda c: (c.name not in first, first.index(c.name) if c.name in first else 0))


# The default run keeps a few (their cost is about half a minute together); the rest are `slow`.
DEFAULT_TRANSFORMERS = ("bert", "gpt2", "llama")

# timm architectures by family: (name, input size, extra create_model arguments)
TIMM: dict[str, list[tuple[str, int, dict[str, Any]]]] = {
    "ResNet": [("resnet18", 64, {}), ("resnet34", 64, {}), ("resnet50", 64, {}), ("resnet50d", 64, {}),
               ("resnet26t", 64, {}), ("resnet10t", 64, {}), ("seresnet50", 64, {}), ("resnext26ts", 64, {}),
               ("ecaresnet26t", 64, {}), ("skresnet18", 64, {}), ("resnetrs50", 64, {}), ("res2net50_14w_8s", 64, {}),
               ("densenet121", 64, {}), ("dla34", 64, {})],
    "EfficientNet/MobileNet": [("efficientnet_b0", 64, {}), ("efficientnet_lite0", 64, {}),
                               ("tf_efficientnet_b0", 64, {}), ("efficientnetv2_rw_t", 64, {}),
                               ("mobilenetv2_050", 64, {}), ("mobilenetv2_100", 64, {}),
                               ("mobilenetv3_small_050", 64, {}), ("mobilenetv3_large_100", 64, {}),
                               ("tf_mobilenetv3_small_minimal_100", 64, {}), ("mnasnet_small", 64, {}),
                               ("fbnetc_100", 64, {}), ("lcnet_050", 64, {}), ("mixnet_s", 64, {}),
                               ("tinynet_e", 64, {}), ("ghostnet_050", 64, {}), ("mobilenetv4_conv_small", 64, {})],
    "RegNet": [("regnetx_002", 64, {}), ("regnetx_004", 64, {}), ("regnety_002", 64, {}), ("regnety_004", 64, {}),
               ("regnetv_040", 64, {})],
    "ConvNeXt": [("convnext_atto", 64, {}), ("convnext_femto", 64, {}), ("convnext_pico", 64, {}),
                 ("convnextv2_atto", 64, {}), ("convnext_nano", 64, {})],
    "ViT/DeiT": [("vit_tiny_patch16_224", 64, {"img_size": 64}), ("vit_small_patch16_224", 64, {"img_size": 64}),
                 ("deit_tiny_patch16_224", 64, {"img_size": 64}),
                 ("deit_tiny_distilled_patch16_224", 64, {"img_size": 64}),
                 ("deit3_small_patch16_224", 64, {"img_size": 64}), ("vit_tiny_r_s16_p8_224", 64, {"img_size": 64}),
                 ("vit_small_patch16_rope_224", 64, {"img_size": 64}), ("beit_base_patch16_224", 64, {"img_size": 64}),
                 ("eva02_tiny_patch14_224", 56, {"img_size": 56}), ("cait_xxs24_224", 64, {"img_size": 64}),
                 ("levit_128s", 64, {"img_size": 64}), ("pit_ti_224", 64, {"img_size": 64})],
    "Swin": [("swin_tiny_patch4_window7_224", 64, {"img_size": 64, "window_size": 4}),
             ("swinv2_cr_tiny_ns_224", 64, {"img_size": 64, "window_size": 4}),
             ("swinv2_tiny_window8_256", 64, {"img_size": 64, "window_size": 4})],
    "MobileViT": [("mobilevit_xxs", 64, {}), ("mobilevit_xs", 64, {}), ("mobilevitv2_050", 64, {})],
    "MLP-Mixer": [("mixer_s32_224", 64, {"img_size": 64}), ("mixer_s16_224", 64, {"img_size": 64}),
                  ("gmixer_12_224", 64, {"img_size": 64}), ("resmlp_12_224", 64, {"img_size": 64}),
                  ("gmlp_ti16_224", 64, {"img_size": 64})],
}


def timm_cases() -> list[Case]:
    """The timm architectures above, random init, 10 classes, no dropout (so train mode is deterministic)."""
    import timm

    def make(name: str, extra: dict[str, Any]) -> Any:
        return lambda: timm.create_model(name, pretrained=False, num_classes=10, drop_rate=0.0, **extra)

    rounds = itertools.zip_longest(*([(family, *m) for m in models] for family, models in TIMM.items()))
    return [Case(name, family, make(name, extra), _image(size))  # families interleaved: any prefix spans them
            for row in rounds for family, name, size, extra in filter(None, row)]
