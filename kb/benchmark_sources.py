"""The benchmark result tables `kb import` reads, declared as data (one entry per source layout).

kb/benchmarks.py interprets these declarations; nothing here reads a file. Every name, scale,
protocol and quirk comes from ../shared/data/benchmarks/README.md (and SOURCES.md for commits), so
a reader can check each mapping against that text. A layout is recognised by its header
(`required` columns, or a `model` first column with known task columns for the wide tables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class BenchmarkModel:
    """A model the benchmarks name, with what a pick needs: family and parameter count (millions)."""

    name: str
    family: str
    params_millions: Optional[float]
    aliases: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Source:
    """One repository: the paper record every experiment of its files hangs from."""

    folder: str
    ref_id: str
    title: str
    repo: str
    year: Optional[int] = None


@dataclass(frozen=True)
class Layout:
    """How one kind of file maps onto the KB.

    shape: `long` (one row per result), `wide` (one row per model, one column per task),
    `markdown` (torchxrayvision's per-dataset tables). `required` identifies the layout; columns in
    `known` or starting with one of `known_prefixes` are read or deliberately ignored; any other
    column is reported as unknown (line 1) and its cells are not imported.
    """

    name: str
    source: str  # Source.folder
    shape: str
    required: tuple[str, ...]
    known: tuple[str, ...] = ()
    known_prefixes: tuple[str, ...] = ()
    # metric column -> (KB metric, average); values are fractions unless `percent_columns` lists them
    metrics: dict[str, tuple[str, str]] = field(default_factory=dict)
    ignored_metrics: dict[str, str] = field(default_factory=dict)  # column or metric name -> why not imported
    training_scheme: str = "fine_tune"
    resolution: Optional[int] = None
    split: str = "test"
    description: str = ""


SOURCES: dict[str, Source] = {s.folder: s for s in (
    Source("pathbench", "benchmark:pathbench", "PathBench: benchmarking pathology foundation models",
           "gevaertlab/benchmarking-path-models", 2025),
    Source("medmnist-transferability", "benchmark:medmnist-transferability",
           "On dataset transferability in medical image classification (arXiv 2412.20172)",
           "DovileDo/transferability-in-medical-imaging", 2024),
    Source("slampai-lspt", "benchmark:slampai-lspt",
           "Effect of pre-training scale on intra- and inter-domain transfer for natural and X-ray chest images"
           " (Cherti & Jitsev, arXiv 2106.00116)", "SLAMPAI/large-scale-pretraining-transfer", 2021),
    Source("eva", "benchmark:eva", "eva: evaluation framework for pathology foundation models (leaderboard)",
           "kaiko-ai/eva", 2024),
    Source("torchxrayvision", "benchmark:torchxrayvision", "TorchXRayVision benchmarks (BENCHMARKS.md)",
           "mlmed/torchxrayvision", 2023),
)}

# ---------------------------------------------------------------- models

_VIT = "Vision Transformer"
BENCHMARK_MODELS: tuple[BenchmarkModel, ...] = (
    # PathBench ModelName_short and eva vendor ids land on one entity where they are one model.
    BenchmarkModel("Kaiko ViT-B", _VIT, 85.0, ("Kaiko",), "PathBench does not say which ViT-B kaiko model"),
    BenchmarkModel("Kaiko ViT-B/8", _VIT, 85.8, ("kaiko_vitb8",)),
    BenchmarkModel("Kaiko ViT-B/16", _VIT, 85.8, ("kaiko_vitb16",)),
    BenchmarkModel("Kaiko ViT-S/8", _VIT, 21.7, ("kaiko_vits8",)),
    BenchmarkModel("Kaiko ViT-S/16", _VIT, 21.7, ("kaiko_vits16",)),
    BenchmarkModel("Kaiko ViT-L/14", _VIT, 303.0, ("kaiko_vitl14",)),
    BenchmarkModel("Midnight-12k", _VIT, 1100.0, ("kaiko_midnight_12k",), "ViT-g/14"),
    BenchmarkModel("Lunit ViT-S/16", _VIT, 21.0, ("Lunit", "lunit_dino_Vit-S16", "lunit_vits16")),
    BenchmarkModel("Phikon", _VIT, 85.0, ("owkin_phikon",)),
    BenchmarkModel("Phikon-v2", _VIT, None, ("owkin_phikon_v2",), "Parameters_in_million is NaN in PathBench"),
    BenchmarkModel("HIPT", _VIT, 21.0, ("Hipt_Vit-S16",)),
    BenchmarkModel("iBOT ViT-B/16", _VIT, 85.0, ("iBot-B16",)),
    BenchmarkModel("iBOT ViT-L/16", _VIT, 307.0, ("iBot-L16",)),
    BenchmarkModel("DINO ViT-S/16", _VIT, 21.0, ("Dino-S16", "Dino-Vit-S16")),
    BenchmarkModel("DINO ViT-B/16", _VIT, 85.0, ("Dino-B16", "Dino-Vit-B16")),
    BenchmarkModel("DINOv2 ViT-L/14", _VIT, 300.0, ("Dinov2", "DINOv2")),
    BenchmarkModel("Hibou-B", _VIT, 85.0, ("Hibou",)),
    BenchmarkModel("Hibou-L", _VIT, 303.0, ("histai_hibou_l",)),
    BenchmarkModel("H-optimus-0", _VIT, 1100.0, ("bioptimus_h_optimus_0",), "ViT-g/14"),
    BenchmarkModel("H0-mini", _VIT, 85.0, ("H-optimus-mini",)),
    BenchmarkModel("UNI", _VIT, 300.0, ("mahmood_uni",)),
    BenchmarkModel("UNI2-h", _VIT, 632.0, ("UNI2", "mahmood_uni2_h"), "ViT-H; PathBench gives 632"),
    BenchmarkModel("Virchow", _VIT, 632.0, ()),
    BenchmarkModel("Virchow2", _VIT, 632.0, ("paige_virchow2",)),
    BenchmarkModel("Prov-GigaPath", _VIT, 1100.0, ("prov_gigapath",),
                   "ViT-g; PathBench's 307 disagrees with its README (~1100), README kept"),
    BenchmarkModel("TITAN", _VIT, 85.0, ()),
    BenchmarkModel("CONCH", _VIT, 85.0, ()),
    BenchmarkModel("EXAONEPath", _VIT, 86.0, ()),
    BenchmarkModel("GPFM", _VIT, 307.0, ()),
    BenchmarkModel("QuiltNet-B-16", _VIT, 85.0, ()),
    BenchmarkModel("PLIP", _VIT, 85.0, ()),
    BenchmarkModel("BiomedCLIP", _VIT, 85.0, ()),
    BenchmarkModel("CLIP ViT-B/16", _VIT, 115.0, ("Clip-B16",)),
    BenchmarkModel("BEiT-3 ViT-L/16", _VIT, 307.0, ("beit3-L16",),
                   "PathBench's 746 disagrees with its README (~307), README kept"),
    BenchmarkModel("BLIP ViT-B/16", _VIT, 85.0, ("Blip-B16-14M",)),
    BenchmarkModel("ALIGN-base", "EfficientNet", 85.0, ("Align-base",), "an EfficientNet image encoder (ModelArch says Vit-B)"),
    BenchmarkModel("CTransPath", "Hybrid CNN-Transformer", 21.0, ("cTranspath",), "CNN + Swin (ModelArch says Vit-S)"),
    BenchmarkModel("MI-Zero BioClinicalBERT", _VIT, 21.0, ("mizero bioclinicalbert", "mizero_bioclinicalbert")),
    BenchmarkModel("MI-Zero PubMedBERT", _VIT, 21.0, ("mizero pubmedbert", "mizero_pubmedbert")),
    # medmnist-transferability architectures the curated catalogue lacks
    BenchmarkModel("MNASNet1.0", "CNN", 4.4, ("mnasnet",)),
    BenchmarkModel("ShuffleNetV2-x0.5", "CNN", 1.4, ()),
    # slampai-lspt
    BenchmarkModel("BiT ResNet-50x1", "ResNet", 25.5, ("bit50x1",)),
    BenchmarkModel("BiT ResNet-152x4", "ResNet", 936.0, ("bit152x4",)),
)

# medmnist-transferability `source` / `source_flag` values that are architectures (README §2);
# every other value is a pretraining source of a ResNet-18.
MEDMNIST_ARCHITECTURES: dict[str, str] = {
    "densenet": "DenseNet-121", "efficientnet": "EfficientNetV2-S", "googlenet": "GoogLeNet",
    "mnasnet": "MNASNet1.0", "mobilenet": "MobileNetV3-Small", "vgg": "VGG-11", "convnext": "ConvNeXt-Tiny",
    "shufflenet": "ShuffleNetV2-x0.5", "resnet": "ResNet-18",
}
MEDMNIST_RESNET = "ResNet-18"
MEDMNIST_PRETRAINING_SOURCES = frozenset({
    "imagenet", "radimagenet", "medmnist", "bloodmnist", "breastmnist", "chestmnist", "dermamnist", "octmnist",
    "organamnist", "organcmnist", "organsmnist", "pathmnist", "pneumoniamnist", "retinamnist", "tissuemnist"})
MEDMNIST_TRAIN_PER_CLASS = 100
MEDMNIST_CLASSES: dict[str, int] = {
    "bloodmnist": 8, "breastmnist": 2, "chestmnist": 14, "dermamnist": 7, "octmnist": 4, "organamnist": 11,
    "organcmnist": 11, "organsmnist": 11, "pathmnist": 9, "pneumoniamnist": 2, "retinamnist": 5, "tissuemnist": 8}
MEDMNIST_DATASETS: dict[str, str] = {
    "bloodmnist": "BloodMNIST", "breastmnist": "BreastMNIST", "chestmnist": "ChestMNIST", "dermamnist": "DermaMNIST",
    "octmnist": "OCTMNIST", "organamnist": "OrganAMNIST", "organcmnist": "OrganCMNIST", "organsmnist": "OrganSMNIST",
    "pathmnist": "PathMNIST", "pneumoniamnist": "PneumoniaMNIST", "retinamnist": "RetinaMNIST",
    "tissuemnist": "TissueMNIST"}
MEDMNIST_FINISHED = "FINISHED"

# PathBench: Task_short -> (KB dataset, n_classes). n_classes read from `binary_multi` and the
# free-text `Classes` (README §1); BreakHis and "blca hist subtype" are tagged multi-class but
# their Classes text describes a binary task, so 2.
PATHBENCH_TASKS: dict[str, tuple[str, int]] = {
    "lung exp subtype": ("TCGA lung exp subtype", 5), "lusc vs luad": ("TCGA lusc vs luad", 2),
    "CPTAC-MYC": ("CPTAC-MYC", 2), "Chrom": ("CPTAC Chrom", 2), "CPTAC-grade": ("CPTAC-grade", 4),
    "tumor label": ("CPTAC tumor label", 7), "MTOR": ("CPTAC MTOR", 2), "P53": ("CPTAC P53", 2),
    "SWI": ("CPTAC SWI", 2), "gi subtype": ("TCGA gi subtype", 3), "ERG status": ("TCGA ERG status", 2),
    "prad mrna cluster": ("TCGA prad mrna cluster", 3), "lung hist OOD1": ("Stanford lung hist OOD1", 2),
    "lung stage OOD": ("Stanford lung stage OOD", 3), "brain necrosis": ("Stanford brain necrosis", 2),
    "MGMT OOD": ("Stanford MGMT OOD", 2), "BACH": ("BACH", 4), "BRACS": ("BRACS", 7), "BreakHis": ("BreakHis", 2),
    "lung hist OOD2": ("DHMC lung hist OOD2", 3), "LC25000": ("LC25000", 5), "MHIST": ("MHIST", 2),
    "NCT-CRC-HE": ("NCT-CRC-HE-100K", 9), "SICAPv2": ("SICAPv2", 4), "UniToPatho": ("UniToPatho", 6),
    "lung grade": ("NLST lung grade", 3), "lung stage": ("NLST lung stage", 3),
    "kidney subtype": ("TCGA kidney subtype", 4), "blca hist subtype": ("TCGA blca hist subtype", 2),
    "blca mrna cluster": ("TCGA blca mrna cluster", 3), "ER status": ("TCGA ER status", 2),
    "PAM50 status": ("TCGA PAM50 status", 4), "PR status": ("TCGA PR status", 2), "IDH": ("TCGA IDH", 2),
    "MGMT": ("TCGA MGMT", 2), "brain hist subtype": ("TCGA brain hist subtype", 4),
    "brain exp subtype": ("TCGA brain exp subtype", 4), "MYC": ("TCGA MYC", 2), "PI3K": ("TCGA PI3K", 2),
    "TCGA-Grade": ("TCGA-Grade", 4), "Immunegroup": ("TCGA Immunegroup", 6),
}
PATHBENCH_PATCH_SIZE = 256  # README: the repo's example runs --img_size=256 (_Patches256x256)

# slampai-lspt: dataset -> (KB dataset, n_classes, resolution); natural-image controls are skipped.
SLAMPAI_DATASETS: dict[str, tuple[str, int, int]] = {
    "covidx_cxr2": ("COVIDx CXR-2", 2, 480), "tuberculosis_full": ("Shenzhen + Montgomery TB", 2, 480),
    "padchest": ("PadChest", 27, 224)}
SLAMPAI_NON_MEDICAL = frozenset({"cifar10", "cifar100", "flowers_oversampling", "pets"})
SLAMPAI_MODELS = {"bit50x1": "BiT ResNet-50x1", "bit152x4": "BiT ResNet-152x4"}
SLAMPAI_FULL_SHOT = "full_shot"

# eva: column -> (KB dataset, n_classes, scheme, resolution, n_train); "/test" columns are the test split.
EVA_TASKS: dict[str, tuple[str, int, str, Optional[int], Optional[int]]] = {
    "bach": ("BACH", 4, "linear_probe", None, 268), "breakhis": ("BreakHis", 4, "linear_probe", None, 1132),
    "crc": ("NCT-CRC-HE-100K", 9, "linear_probe", 224, 100000),
    "gleason_arvaniti": ("Gleason (Arvaniti)", 4, "linear_probe", None, 15303),
    "mhist": ("MHIST", 2, "linear_probe", 224, 2175), "patch_camelyon": ("PCam", 2, "linear_probe", 96, 262144),
    "camelyon16_small": ("Camelyon16", 2, "abmil_probe", None, 216), "panda_small": ("PANDA", 6, "abmil_probe", None, 955),
}
EVA_SEGMENTATION = frozenset({"consep", "monusac"})
EVA_TEST_SUFFIX = "/test"
EVA_MODELS = {
    "paige_virchow2": "Virchow2", "mahmood_uni2_h": "UNI2-h", "kaiko_midnight_12k": "Midnight-12k",
    "bioptimus_h_optimus_0": "H-optimus-0", "kaiko_vitb8": "Kaiko ViT-B/8", "prov_gigapath": "Prov-GigaPath",
    "mahmood_uni": "UNI", "histai_hibou_l": "Hibou-L", "kaiko_vitl14": "Kaiko ViT-L/14",
    "kaiko_vitb16": "Kaiko ViT-B/16", "owkin_phikon": "Phikon", "kaiko_vits8": "Kaiko ViT-S/8",
    "owkin_phikon_v2": "Phikon-v2", "kaiko_vits16": "Kaiko ViT-S/16", "lunit_vits16": "Lunit ViT-S/16"}

# torchxrayvision: section heading -> KB dataset; model name -> (KB model, resolution, pretraining)
XRV_DATASETS = {
    "NIH ChestX-ray14": "ChestX-ray14", "Google": "NIH Google expert labels", "RSNA": "RSNA Pneumonia",
    "SIIM": "SIIM-ACR Pneumothorax", "PadChest": "PadChest", "VinBrain": "VinDr-CXR", "CheXpert": "CheXpert",
    "MIMIC-CXR (CheXpert labels)": "MIMIC-CXR"}
XRV_MODELS: dict[str, tuple[str, Optional[int], str]] = {
    "XRV-ResNet-resnet50-res512-all": ("ResNet-50", 512, "xrv-all (union of public CXR sets)"),
    "XRV-DenseNet121-densenet121-res224-all": ("DenseNet-121", 224, "xrv-all (union of public CXR sets)"),
    "jfhealthcare-DenseNet121": ("DenseNet-121", None, "jfhealthcare (CheXpert)"),
    "CheXpert-DenseNet121-ensemble": ("DenseNet-121", None, "chexpert (ensemble of DenseNet-121s)"),
}
XRV_NOT_EVALUATED = "-"
XRV_PARAMS_COLUMN = "# Params"

_MLFLOW_CORE = ("Start Time", "Duration", "Run ID", "Name", "Source Type", "Source Name", "User", "Status",
                "batch_size", "epochs", "file", "letter", "listeners", "lr", "manual", "max_epoch", "max_time",
                "model", "momentum", "params", "source_flag", "target_flag", "wd", "workload", "workload_listener",
                "stopped_at", "test_acc", "test_auc", "test_loss", "val_acc", "val_auc", "val_loss")
_PATHBENCH_METRICS = ("AUROC", "AUPRC", "Balanced_accuracy", "Precision", "Recall", "Weighted_F1", "Sensitivity",
                      "Specificity")

LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "pathbench", "pathbench", "long",
        required=("ModelName_short", "Task_short", "AUROC", "Balanced_accuracy", "Weighted_F1"),
        known=("Cancer", *_PATHBENCH_METRICS, *(f"{m}_{b}" for m in _PATHBENCH_METRICS for b in ("lower", "upper")),
               "binary_multi", "Public", "Dataset", "Slide_vs_patch_classification", "tissue", "TaskCategory",
               "TaskCategory_short", "Classes", "ModelName", "ModelCategory", "ModelDomain", "ModelArch",
               "Parameters_in_million", "TrainingData_patches_in_million", "Slides_in_million"),
        metrics={"AUROC": ("auc", ""), "Balanced_accuracy": ("balanced_accuracy", ""),
                 "Precision": ("precision", ""), "Weighted_F1": ("f1", "weighted")},
        ignored_metrics={"Recall": "identical to Balanced_accuracy in every row (macro recall)",
                         "AUPRC": "no KB field", "Sensitivity": "no KB field", "Specificity": "no KB field"},
        training_scheme="linear_probe", resolution=PATHBENCH_PATCH_SIZE,
        description="32 frozen foundation models x 41 tasks, linear evaluation"),
    Layout(
        "medmnist_runs", "medmnist-transferability", "long",
        required=("Run ID", "Status", "source_flag", "target_flag", "batch_size", "lr", "momentum", "wd",
                  "test_auc", "test_acc", "val_loss"),
        known=_MLFLOW_CORE, known_prefixes=("SMI - ", "TOP - ", "DCGMI - "),
        metrics={"test_auc": ("auc", ""), "test_acc": ("accuracy", "")},
        training_scheme="fine_tune", resolution=224,
        description="MLflow fine-tuning runs (every run of the hyper-parameter sweep)"),
    Layout(
        "medmnist_aggregate", "medmnist-transferability", "wide",
        required=("", "source"),
        metrics={"*": ("auc", "")}, training_scheme="fine_tune", resolution=224,
        description="the authors' table: test AUC of the min-val_loss run per (source, target)"),
    Layout(
        "slampai", "slampai-lspt", "long",
        required=("metric_value", "metric", "path", "seed", "shot", "pretrained_model", "dataset", "last_step"),
        metrics={"test/acc": ("accuracy", ""), "test/mean_auc": ("auc", "macro")},
        ignored_metrics={"test/recall_0": "class-0 one-vs-rest score, not a macro recall",
                         "test/f1_0": "class-0 one-vs-rest score, not a macro F1",
                         "test/average_precision_class_0": "class-0 one-vs-rest score",
                         "test/mean_average_precision": "no KB field"},
        training_scheme="fine_tune", description="BiT k-shot fine-tuning runs, 5 seeds"),
    Layout(
        "eva", "eva", "wide", required=("model",),
        known=tuple(EVA_TASKS) + tuple(f"{t}{EVA_TEST_SUFFIX}" for t in EVA_TASKS) + tuple(EVA_SEGMENTATION),
        metrics={"*": ("balanced_accuracy", "")}, training_scheme="linear_probe",
        description="leaderboard: frozen backbone + linear (patch) or ABMIL (slide) head"),
    Layout(
        "torchxrayvision", "torchxrayvision", "markdown", required=("Model Name",),
        metrics={"*": ("auc", "")}, training_scheme="frozen_eval", split="test",
        description="per-pathology AUC of pretrained weights, 8 evaluation sets"),
)
LAYOUTS_BY_NAME = {layout.name: layout for layout in LAYOUTS}

# Files of a benchmarks folder that are its documentation, not results.
DOCUMENTATION_FILES = frozenset({"README.md", "SOURCES.md"})
