"""The architecture registry: name resolution through the KB's aliases, forward passes for every
network at 28 px, and the ResNets' structure against MedMNIST's / torchvision's definitions."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from medicalrec.validate import architectures, nets  # noqa: E402
from medicalrec.validate.architectures import REGISTRY, Skipped  # noqa: E402

TORCH_ARCHS = [a for a in REGISTRY.values() if a.is_torch]


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize("name, canonical", [
    ("ResNet-18", "ResNet-18"), ("resnet18", "ResNet-18"), ("R18", "ResNet-18"), ("ResNet-50", "ResNet-50"),
    ("VGG-16", "VGG-16"), ("vgg16", "VGG-16"), ("DenseNet-121", "DenseNet-121"), ("densenet121", "DenseNet-121"),
    ("MobileNetV2", "MobileNetV2"), ("EfficientNet-B0", "EfficientNet-B0"),
    ("Vision Transformer", "Vision Transformer"), ("ViT", "Vision Transformer"), ("Custom CNN", "Custom CNN"), ("SimpleCNN", "Custom CNN"), ("svm", "SVM"),
    ("Random Forest", "Random Forest"), ("Logistic Regression", "Logistic Regression"),
])
def test_names_resolve_through_kb_aliases(name, canonical):
    arch = architectures.resolve(name)
    assert not isinstance(arch, Skipped), arch
    assert arch.name == canonical


def test_known_model_without_implementation_is_skipped_with_reason():
    skipped = architectures.resolve("Swin-T")
    assert isinstance(skipped, Skipped)
    assert skipped.model == "Swin Transformer"
    assert skipped.reason == "no 28-px implementation of Swin Transformer in medicalrec validate"


def test_unknown_name_is_skipped_not_raised():
    skipped = architectures.resolve("TotallyNewNet-7")
    assert isinstance(skipped, Skipped) and "TotallyNewNet-7" in skipped.reason


def test_every_registry_name_is_a_curated_kb_model():
    catalog = architectures.catalog_index()
    assert set(REGISTRY) <= set(catalog.values())


@pytest.mark.parametrize("arch", TORCH_ARCHS, ids=lambda a: a.name)
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_at_28px(arch, channels):
    torch.manual_seed(0)
    model = arch.build(channels, 5, 28)
    model.train()
    out = model(torch.randn(2, channels, 28, 28))
    assert out.shape == (2, 5)
    assert torch.isfinite(out).all()
    out.sum().backward()  # trainable end to end
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("size", [64, 128])
def test_forward_at_larger_sizes(size):
    for name in ("ResNet-18", "Custom CNN", "Vision Transformer"):
        model = REGISTRY[name].build(3, 4, size).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, size, size)).shape == (1, 4)


def test_resnet_28px_stem_is_3x3_stride1_without_maxpool():
    model = nets.resnet18(1, 2, 28)
    stem_conv = model.stem[0]
    assert (stem_conv.kernel_size, stem_conv.stride) == ((3, 3), (1, 1))
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    big = nets.resnet18(3, 2, 224)
    assert (big.stem[0].kernel_size, big.stem[0].stride) == ((7, 7), (2, 2))
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in big.modules())


def test_imagenet_sized_networks_match_torchvision_parameter_counts():
    # torchvision's published parameter counts for the 1000-class ImageNet models.
    assert n_params(nets.resnet18(3, 1000, 224)) == 11_689_512
    assert n_params(nets.resnet50(3, 1000, 224)) == 25_557_032
    assert n_params(nets.densenet121(3, 1000, 224)) == 7_978_856
    assert n_params(nets.mobilenet_v2(3, 1000, 224)) == 3_504_872
    assert n_params(nets.efficientnet_b0(3, 1000, 224)) == 5_288_548


def test_medmnist_resnet18_differs_from_torchvision_only_in_stem_and_head():
    # MedMNIST's ResNet18(in_channels=1, num_classes=2): torchvision's minus the 7x7x3x64 stem
    # and the 512x1000 head, plus a 3x3x1x64 stem and a 512x2 head.
    expected = 11_689_512 - 7 * 7 * 3 * 64 + 3 * 3 * 1 * 64 - (512 * 1000 + 1000) + (512 * 2 + 2)
    assert n_params(nets.resnet18(1, 2, 28)) == expected
