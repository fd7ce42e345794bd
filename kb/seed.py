"""The bundled seed KB (kb/data/seed.db): what `medicalrec` knows on a fresh clone.

It holds two sources:
- the MedMNIST v2 benchmark (Yang et al., Sci Data 2023): 12 2D datasets x 7 baselines, test ACC
  and AUC, from the bundled kb/data/medmnist_v2.csv (the v2 rows of
  ../shared/data/medmnist/published_results.csv, with their source URLs), features from
  `medmnist.INFO`;
- the curated literature table ../shared/data/literature/medrec_literature.csv, imported with
  `kb import`'s importer.

Rebuild it with `python -m medicalrec.kb.seed` (needs ../shared); `--refresh-medmnist-csv` first
rewrites kb/data/medmnist_v2.csv from shared's published_results.csv.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sqlite3
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional

from ..errors import UserError
from . import db, normalize
from .records import ExperimentRecord, FeatureField, MeasurementRecord, PaperRecord, Provenance
from .store import KnowledgeBase

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared"
LITERATURE = ("data", "literature", "medrec_literature.csv")
PUBLISHED = ("data", "medmnist", "published_results.csv")

MEDMNIST_CSV = "medmnist_v2.csv"
MEDMNIST_COLUMNS = ("dataset", "method", "resolution", "test_auc", "test_acc", "source_url")
MEDMNIST_BENCHMARK = "MedMNIST v2"
MEDMNIST_INFO_URL = "https://github.com/MedMNIST/MedMNIST/blob/main/medmnist/info.py"
MEDMNIST_IMAGE_SIZE = 28  # every MedMNIST v2 2D image; only the ResNets were also run upscaled to 224

MEDMNIST_PAPER = dict(
    ref_id="Yang2023MedMNISTv2",
    doi="10.1038/s41597-022-01721-8",
    title="MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical image classification",
    year=2023,
    venue="Scientific Data",
    source_url="https://doi.org/10.1038/s41597-022-01721-8",
    source_file=MEDMNIST_CSV,
)


# ---------------------------------------------------------------- the MedMNIST v2 table

def write_medmnist_csv(published: Path, target: Path) -> int:
    """Copy the MedMNIST v2 rows of shared's published_results.csv into the bundled table."""
    with published.open(encoding="utf-8", newline="") as fh:
        rows = [row for row in csv.DictReader(fh) if row["benchmark"] == MEDMNIST_BENCHMARK]
    with target.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MEDMNIST_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def read_medmnist_csv() -> list[dict[str, str]]:
    with resources.files("medicalrec.kb").joinpath("data", MEDMNIST_CSV).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def medmnist_setting(row: dict[str, str]) -> str:
    return f"size={row['resolution']}" if row["resolution"] else ""


@lru_cache(maxsize=1)
def medmnist_info() -> dict:
    """`medmnist.INFO`, read from medmnist/info.py alone: the package's __init__ imports torch,
    which takes seconds, and INFO is plain data."""
    package = importlib.util.find_spec("medmnist")
    if package is None or not package.submodule_search_locations:
        raise UserError("the medmnist package is not installed: run `make setup`")
    path = Path(list(package.submodule_search_locations)[0]) / "info.py"
    spec = importlib.util.spec_from_file_location("_medmnist_info", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.INFO


def medmnist_experiment(row: dict[str, str]) -> ExperimentRecord:
    info = medmnist_info()[row["dataset"].lower()]
    table = Provenance("import", source_url=row["source_url"])
    package = Provenance("import", source_url=MEDMNIST_INFO_URL)
    splits = info["n_samples"]
    features = {
        "n_samples": FeatureField.reported(sum(splits.values()), package, "train + val + test in medmnist.INFO"),
        "n_train": FeatureField.reported(splits["train"], package),
        "n_val": FeatureField.reported(splits["val"], package),
        "n_test": FeatureField.reported(splits["test"], package),
        "k_fold": FeatureField.missing("not_applicable", package, "the official train/val/test split, no cross-validation"),
        "channels": FeatureField.reported(info["n_channels"], package),
        "n_classes": FeatureField.reported(len(info["label"]), package, info["task"]),
        "pretrained": FeatureField.missing("not_reported", table, "not stated in the benchmark table"),
        "augmentation": FeatureField.missing("not_reported", table, "not stated in the benchmark table"),
        "is_proposed": FeatureField.reported("no", table, "a benchmark baseline"),
    }
    for name in ("width", "height"):
        if row["resolution"]:
            features[name] = FeatureField.reported(int(row["resolution"]), table, "the table's resolution column")
        else:
            features[name] = FeatureField.derived(
                MEDMNIST_IMAGE_SIZE, Provenance("derived", source_url=MEDMNIST_INFO_URL),
                "MedMNIST v2 2D images are 28x28; only the ResNets were also run at 224")
    catalogue = {entry.name: entry for entry in normalize.dataset_catalog()}[row["dataset"]]
    for name in ("domain", "modality"):
        features[name] = FeatureField.derived(getattr(catalogue, name), Provenance("derived"),
                                              "from the curated dataset catalogue kb/data/datasets.csv")
    measurements = [
        MeasurementRecord("accuracy", float(row["test_acc"]), table, split="test"),
        MeasurementRecord("auc", float(row["test_auc"]), table, split="test"),
    ]
    return ExperimentRecord(model=row["method"], dataset=row["dataset"], features=features,
                            measurements=measurements, setting=medmnist_setting(row))


# ---------------------------------------------------------------- build and open

def build_seed(output: Path, shared: Path) -> dict[str, int]:
    """Build the seed KB at `output` from scratch; returns its counts."""
    from .importers import import_file

    literature = shared.joinpath(*LITERATURE)
    if not literature.is_file():
        raise UserError(f"{literature} not found: the seed is built from ../shared; pass --shared PATH")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{output}{suffix}").unlink(missing_ok=True)
    kb = KnowledgeBase.open(output, write=True)
    kb.save_paper(PaperRecord(**MEDMNIST_PAPER), [medmnist_experiment(row) for row in read_medmnist_csv()])
    report = import_file(kb, literature)
    if report.problems:
        raise UserError(f"{literature} did not import cleanly: {report.problems[0]}")
    counts = kb.counts()
    kb.engine.dispose()
    # A single self-contained file: it must open read-only from site-packages, where no -wal can be made.
    conn = sqlite3.connect(output)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("VACUUM")
    finally:
        conn.close()
    return counts


def open_seed() -> KnowledgeBase:
    """The bundled seed KB, read-only."""
    location = db.KBLocation(db.seed_path(), is_seed=True, source="bundled seed")
    if not location.path.is_file():
        raise db.KBError(f"the bundled seed KB is missing at {location.path}: rebuild it with "
                         "`python -m medicalrec.kb.seed` or pass --kb")
    return KnowledgeBase(db.make_engine(location.path, readonly=True), location, readonly=True)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m medicalrec.kb.seed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the third-party data folder")
    parser.add_argument("--output", type=Path, default=db.seed_path(), help="where to write the seed KB")
    parser.add_argument("--refresh-medmnist-csv", action="store_true",
                        help=f"first rewrite kb/data/{MEDMNIST_CSV} from shared's published_results.csv")
    args = parser.parse_args(argv)
    try:
        if args.refresh_medmnist_csv:
            n = write_medmnist_csv(args.shared.joinpath(*PUBLISHED), Path(__file__).parent / "data" / MEDMNIST_CSV)
            print(f"wrote {n} MedMNIST v2 rows to kb/data/{MEDMNIST_CSV}")
        counts = build_seed(args.output, args.shared)
    except UserError as exc:
        parser.exit(2, f"Error: {exc}\n")
    print(f"seed KB at {args.output}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
