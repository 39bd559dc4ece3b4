"""The trained model as one typed object, saved and loaded with skops: loading never runs
code outside an explicit allow-list."""

from __future__ import annotations

import copy
import dataclasses
import io
import logging
import multiprocessing
import re
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from stages.core.cli import UserError
from stages.core.io import atomic_path
from stages.model.baselines import BudgetLinear, BudgetLogistic
from stages.model.features import MovieFeatures, Records
from stages.model.params import TrainParams
from stages.model.trees import MAX_ROWS, Trees, compile_head

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Baselines:
    """The budget-only and majority-class references, fitted on the same train split."""

    majority: DummyClassifier
    logreg_budget: BudgetLogistic
    linear_budget: BudgetLinear
    majority_threshold: float = 0.5
    logreg_budget_threshold: float = 0.5


@dataclass(frozen=True)
class Model:
    """What `train` writes and every consumer loads: one feature step, two heads on it."""

    features: MovieFeatures
    classifier: HistGradientBoostingClassifier  # P(success)
    regressor: HistGradientBoostingRegressor  # log(1 + revenue)
    baselines: Baselines
    params: TrainParams
    threshold: float = 0.5  # P(success) at or above it predicts a success
    train_rows: int = 0
    threshold_years: tuple[int, ...] = ()  # train years whose out-of-time scores chose it

    # Both heads' trees for small batches (stages.model.trees), verified against the public
    # path when the model is built; None (and an error log) if they could not be.
    fast: tuple[Trees, Trees] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        heads = {"classifier": self.classifier, "regressor": self.regressor}
        compiled = {name: compile_head(head) for name, head in heads.items()}
        off = [f"{name}: {got}" for name, got in compiled.items() if isinstance(got, str)]
        if off:
            log.error(
                "fast tree evaluator off, scoring on scikit-learn's public predict (slower "
                "per request; model_info fast_path=off): %s",
                "; ".join(off),
            )
        clf, reg = compiled["classifier"], compiled["regressor"]
        fast = (clf, reg) if isinstance(clf, Trees) and isinstance(reg, Trees) else None
        object.__setattr__(self, "fast", fast)

    @property
    def fast_path(self) -> str:
        """What model_info reports: on when small batches go to the verified evaluator."""
        return "off" if self.fast is None else "on"

    def public_only(self) -> Model:
        """The same model, scoring on scikit-learn's public path only (for comparisons)."""
        clone = copy.copy(self)
        object.__setattr__(clone, "fast", None)
        return clone

    def encode(self, X: Records) -> np.ndarray:
        return self.features.transform(X)

    def success_probability(self, encoded: np.ndarray) -> np.ndarray:
        if self.fast is not None and len(encoded) <= MAX_ROWS:
            return self.fast[0].predict(encoded)
        proba: np.ndarray = self.classifier.predict_proba(encoded)[:, 1]
        return proba

    def log_revenue(self, encoded: np.ndarray) -> np.ndarray:
        if self.fast is not None and len(encoded) <= MAX_ROWS:
            return self.fast[1].predict(encoded)
        predicted: np.ndarray = self.regressor.predict(encoded)
        return predicted

    def to_dict(self) -> dict[str, Any]:
        """The on-disk form: plain containers and estimators only (what skops stores)."""
        return {
            "features": self.features,
            "classifier": self.classifier,
            "regressor": self.regressor,
            "baselines": dataclasses.asdict(self.baselines),
            "params": dataclasses.asdict(self.params),
            "threshold": self.threshold,
            "train_rows": self.train_rows,
            "threshold_years": list(self.threshold_years),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Model:
        """The object from its on-disk form; ValueError if it is not what `train` writes."""
        if not isinstance(data, dict) or set(data) != set(_KEYS):
            raise ValueError("its contents are not a model's")
        checks = {
            "features": MovieFeatures,
            "classifier": HistGradientBoostingClassifier,
            "regressor": HistGradientBoostingRegressor,
        }
        for key, kind in checks.items():
            if not isinstance(data[key], kind):
                raise ValueError(f"'{key}' is not a {kind.__name__}")
        return cls(
            features=data["features"],
            classifier=data["classifier"],
            regressor=data["regressor"],
            baselines=Baselines(**data["baselines"]),
            params=TrainParams(**data["params"]),
            threshold=float(data["threshold"]),
            train_rows=int(data["train_rows"]),
            threshold_years=tuple(int(y) for y in data["threshold_years"]),
        )


_KEYS = (
    "features",
    "classifier",
    "regressor",
    "baselines",
    "params",
    "threshold",
    "train_rows",
    "threshold_years",
)

# Types outside skops' defaults that our models contain. Anything else in a file is refused.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "stages.model.features.MovieFeatures",
        "stages.model.baselines.BudgetLinear",
        "stages.model.baselines.BudgetLogistic",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.common.PREDICTOR_RECORD_DTYPE",
        # HistGradientBoosting's categorical pre-processing wraps check_array in a partial;
        # partial is safe here because its target must be on this list too.
        "functools.partial",
        "sklearn.utils.validation.check_array",
    }
)


_ID_RE = re.compile(r'("__id__": |"file": ")(\d+)')
_EPOCH = (1980, 1, 1, 0, 0, 0)


def canonical_skops(data: bytes) -> bytes:
    """Make a skops archive byte-stable: skops names members by id() and stamps the clock.

    Object ids become their order of first appearance in schema.json (the references stay
    consistent because the mapping is one-to-one), and every member gets a fixed timestamp.
    """
    src = zipfile.ZipFile(io.BytesIO(data))
    schema = src.read("schema.json").decode("utf-8")
    mapping: dict[str, str] = {}

    def renumber(m: re.Match[str]) -> str:
        return m.group(1) + mapping.setdefault(m.group(2), str(len(mapping)))

    schema = _ID_RE.sub(renumber, schema)
    members = {"schema.json": schema.encode("utf-8")}
    for info in src.infolist():
        if info.filename != "schema.json":
            stem, dot, ext = info.filename.partition(".")
            members[f"{mapping[stem]}{dot}{ext}"] = src.read(info)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, members[name])
    return out.getvalue()


def save_model(path: Path | str, model: Model) -> None:
    import skops.io as sio  # imported on use: importing skops imports every sklearn estimator

    with atomic_path(path) as tmp:
        tmp.write_bytes(canonical_skops(sio.dumps(model.to_dict())))


def require_model_file(
    path: Path | str, fix: str = "run 'make repro' (or 'dvc pull') first"
) -> Path:
    """The model's path, or the one-line error for a missing file (before any slow import)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a model file; give the .skops file")
    if not path.is_file():
        raise UserError(f"{path}: model not found; {fix}")
    return path


# Bounds on a model archive, checked on the file size and the zip directory before any member
# is decompressed and before skops sees the file. The model `train` writes is about 1 MB and
# unpacks to a few MB; these caps leave two orders of magnitude of headroom. zipfile never
# yields more than a member's declared size (and a member that lies fails its CRC), so
# bounding the declared sizes bounds what loading can allocate.
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024  # the .skops file on disk
MAX_MEMBER_BYTES = 256 * 1024 * 1024  # one member, uncompressed
MAX_TOTAL_BYTES = 512 * 1024 * 1024  # all members, uncompressed
MAX_MEMBERS = 10_000
_CHUNK = 1024 * 1024


def check_archive(path: Path) -> None:
    """A one-line UserError unless `path` is a zip within the caps whose members all read
    back intact (CRC), streamed in bounded chunks: what skops then parses is sound."""
    size = path.stat().st_size
    if size > MAX_ARCHIVE_BYTES:
        raise UserError(
            f"{path}: model file is {size} bytes, over the {MAX_ARCHIVE_BYTES}-byte cap "
            "(stages.model.artifact.MAX_ARCHIVE_BYTES); rebuild it with the train stage"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise UserError(
                    f"{path}: model archive has {len(infos)} members, over the cap of "
                    f"{MAX_MEMBERS}; rebuild it with the train stage"
                )
            total = 0
            for info in infos:
                total += info.file_size
                if info.file_size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
                    cap, got = (
                        (MAX_MEMBER_BYTES, info.file_size)
                        if info.file_size > MAX_MEMBER_BYTES
                        else (MAX_TOTAL_BYTES, total)
                    )
                    raise UserError(
                        f"{path}: model archive member '{info.filename}' unpacks to {got} "
                        f"bytes, over the {cap}-byte cap; refusing it (rebuild the model)"
                    )
            for info in infos:
                try:
                    with zf.open(info) as member:
                        while member.read(_CHUNK):
                            pass
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
                    raise UserError(
                        f"{path}: model archive member '{info.filename}' is corrupt ({exc}); "
                        "rebuild it with the train stage"
                    ) from None
    except zipfile.BadZipFile as exc:
        raise UserError(f"{path}: not a readable skops model ({exc}); rebuild it") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied; make it readable") from None


def load_model(path: Path | str) -> Model:
    import skops.io as sio  # imported on use: importing skops imports every sklearn estimator

    path = require_model_file(path)
    check_archive(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises several types for a corrupt archive
        raise UserError(f"{path}: not a readable skops model ({exc}); rebuild it") from None
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise UserError(f"{path}: refuses to load untrusted type {refused[0]}; rebuild the model")
    try:
        return Model.from_dict(sio.load(path, trusted=sorted(untrusted)))
    except (ValueError, TypeError, KeyError, AttributeError, zipfile.BadZipFile) as exc:
        # an intact archive whose schema is not a model's (skops raises these for it)
        raise UserError(
            f"{path}: not a model written by the train stage ({exc}); rebuild it"
        ) from None


def load_model_isolated(path: Path | str) -> Model:
    """load_model run in a short-lived child process, the model handed back by pickle.

    Why: importing skops imports every sklearn estimator (its default trusted-type list), which
    a long-running service would carry for its whole life (~30 MB RSS). The allow-list check
    and the skops load happen in the child exactly as in load_model; the parent only unpickles
    what that child produced (never a file), importing just the modules the model needs.
    """
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(load_model, str(path)).result()
