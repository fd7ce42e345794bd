"""The learned resolver of conflicting counts: its value features, its decisions inside
`features.resolve`, its JSON form, and the shipped model."""

from __future__ import annotations

import pytest

from medicalrec.extract import features as feat
from medicalrec.extract.resolver import RESOLVED_FEATURES, Resolver, fit_resolver, load_resolver, value_rows


def _evidence(feature, value, *, weight=1.0, position=0.5, section="body", method="sentence"):
    return feat.Evidence(feature, value, 3, f"{value} stated", method, weight, position=position, section=section)


def _resolver_preferring(name: str, *, threshold=0.5) -> Resolver:
    """A resolver whose probability rises with one value feature only."""
    return Resolver([name], [0.5], [0.5], [4.0], 0.0, threshold, {})


def test_value_rows_describe_each_stated_value():
    evidence = [_evidence("n_samples", 112120, position=0.05, section="abstract"),
                _evidence("n_samples", 112120, position=0.2),
                _evidence("n_samples", 420, weight=2.0, position=0.4, method="table")]
    rows = value_rows("n_samples", evidence)
    assert set(rows) == {112120, 420}
    assert rows[112120]["mentions"] == 2 and rows[420]["mentions"] == 1
    assert rows[112120]["earliest_value"] == 1.0 and rows[420]["earliest_value"] == 0.0
    assert rows[420]["from_table"] == 1.0 and rows[112120]["in_abstract"] == 1.0
    assert rows[112120]["largest"] == 1.0 and rows[420]["smallest"] == 1.0
    assert sum(row["support_share"] for row in rows.values()) == pytest.approx(1.0)
    assert rows[420]["is_n_samples"] == 1.0 and rows[420]["is_n_classes"] == 0.0


def test_a_conflict_stays_ambiguous_without_a_resolver_and_is_settled_with_one():
    evidence = [_evidence("n_classes", 2, position=0.1), _evidence("n_classes", 4, position=0.9)]
    alone = feat.resolve("n_classes", evidence, method="sentence")
    assert alone.status == "ambiguous" and "2" in alone.reason and "4" in alone.reason
    settled = feat.resolve("n_classes", evidence, method="sentence", resolver=_resolver_preferring("last_position"))
    assert settled.status == "reported" and settled.value == 4
    assert "resolver" in settled.reason and settled.provenance.snippet == "4 stated"
    earliest = feat.resolve("n_classes", evidence, method="sentence",
                            resolver=_resolver_preferring("earliest_value"))
    assert earliest.value == 2


def test_an_unconfident_resolver_leaves_the_conflict_ambiguous():
    evidence = [_evidence("n_train", 500), _evidence("n_train", 900)]
    unsure = _resolver_preferring("last_position", threshold=0.999)
    assert feat.resolve("n_train", evidence, method="sentence", resolver=unsure).status == "ambiguous"


def test_features_outside_the_resolver_keep_their_rules():
    evidence = [_evidence("width", 224), _evidence("width", 512)]
    field = feat.resolve("width", evidence, method="sentence", resolver=_resolver_preferring("last_position"))
    assert field.status == "ambiguous"
    assert "width" not in RESOLVED_FEATURES


def test_fit_learns_which_values_are_the_papers_own_and_round_trips_as_json():
    rows, labels = [], []
    for i in range(60):
        own = i % 2 == 0
        rows.append({"support_share": 0.8 if own else 0.2, "mentions": float(1 + i % 3)})
        labels.append(int(own))
    model = fit_resolver(rows, labels, threshold=0.4)
    assert model.probability({"support_share": 0.8, "mentions": 1.0}) > 0.7
    assert model.probability({"support_share": 0.2, "mentions": 1.0}) < 0.3
    again = Resolver.from_json(model.to_json())
    assert again.threshold == 0.4
    assert again.probability({"support_share": 0.8}) == pytest.approx(model.probability({"support_share": 0.8}))
    with pytest.raises(ValueError, match="one class"):
        fit_resolver(rows, [1] * len(rows))


def test_the_shipped_resolver_loads_and_scores_every_value_feature():
    resolver = load_resolver()
    if resolver is None:
        pytest.skip("no shipped resolver: run bench/feature_resolver.py --train")
    names = set(value_rows("n_classes", [_evidence("n_classes", 3)])[3])
    assert names <= set(resolver.feature_names) | {"round_value"}
    assert 0.0 < resolver.threshold < 1.0
    assert resolver.trained_on.get("papers", 0) >= 20


def test_a_value_that_fits_the_other_counts_is_marked():
    evidence = [_evidence("n_samples", 6400), _evidence("n_samples", 5120), _evidence("n_train", 5120),
                _evidence("n_test", 1280), _evidence("n_val", None), _evidence("n_train", 4000)]
    evidence[-2].ratio = 0.2
    totals = value_rows("n_samples", evidence)
    assert totals[6400]["agrees_with_counts"] == 1.0   # 5120 + 1280
    assert totals[5120]["agrees_with_counts"] == 0.0   # one split alone is not a sum
    trains = value_rows("n_train", evidence)
    assert trains[5120]["agrees_with_counts"] == 1.0   # completes 6400 with the test size
    assert trains[4000]["agrees_with_counts"] == 0.0
    assert value_rows("n_classes", [_evidence("n_classes", 4)])[4]["agrees_with_counts"] == 0.0
