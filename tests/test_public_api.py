import steward
import steward.data
import steward.evaluate
import steward.federated
import steward.ledger
import steward.serve


def test_exported_members_are_curated_and_importable() -> None:
    assert sorted(steward.__all__) == sorted([
        "__version__", "ArtifactRef", "ConfigError", "DataStageError", "DatasetManifest", "DependencyMissingError",
        "EvaluateStageError", "Finding", "GateFailed", "InputDataError", "LedgerError", "LedgerIntegrityError", "PrivacyBudgetExceeded", "QuarantineRecord",
        "RegistryError", "StewardError", "TrainStageError",
    ])
    for name in steward.__all__:
        assert hasattr(steward, name)
    assert steward.data.__all__ == ["DataResult", "run"]
    assert callable(steward.data.run)
    assert callable(steward.ledger.verify)
    assert steward.evaluate.__all__ == ["EvaluateResult", "run"]
    assert issubclass(steward.GateFailed, steward.EvaluateStageError)
    assert steward.serve.__all__ == ["create_app"]
    assert steward.federated.__all__ == ["FederatedResult", "run"]


def test_exception_tree_mixes_in_builtins() -> None:
    assert issubclass(steward.ConfigError, ValueError)
    assert issubclass(steward.ConfigError, steward.StewardError)
    assert issubclass(steward.InputDataError, ValueError)
    assert issubclass(steward.RegistryError, KeyError)
    assert issubclass(steward.LedgerIntegrityError, steward.LedgerError)
    assert issubclass(steward.DependencyMissingError, ImportError)
