"""Reading and writing tabular files (CSV, Parquet) for the jobs, and data references for lineage."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from modelops_mlc.errors import JobError, MissingDataError, first_line
from modelops_mlc.jobs.results import DataRef
from modelops_mlc.registry.client import sha256_file

if TYPE_CHECKING:
    import pandas as pd

    from modelops_mlc.registry import ModelVersionInfo, Registry

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def file_format(path: str | os.PathLike[str]) -> str:
    """``parquet`` or ``csv`` from the file name (CSV unless it ends in a Parquet suffix)."""
    return "parquet" if str(path).lower().endswith(PARQUET_SUFFIXES) else "csv"


def require_file(path: str | os.PathLike[str] | None, what: str) -> Path:
    """The path as a Path when the file exists, else MissingDataError naming ``what``."""
    if path is None or str(path) == "":
        raise MissingDataError(f"no {what} given")
    p = Path(str(path).removeprefix("file://"))
    if not p.is_file():
        raise MissingDataError(f"{what} not found: {p}")
    return p


def read_frame(path: Path, what: str = "data") -> pd.DataFrame:
    """Load a whole CSV or Parquet file (for test/training data, which fit in memory); a file
    without rows (empty, or a header only) is a JobError like one that cannot be read."""
    import pandas as pd

    try:
        if file_format(path) == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except Exception as exc:
        raise JobError(f"cannot read {what} {path}: {first_line(exc)}") from exc
    require_rows(len(frame), path, what)
    return frame


def require_signature_types(df: pd.DataFrame, signature: dict | None, what: str = "data") -> None:
    """JobError naming the first value that is not a number in a column the signature calls numeric."""
    import pandas as pd

    from modelops_mlc.runtimes.modelinfo import NUMERIC_TYPES, signature_columns

    for col in signature_columns(signature) or []:
        if col.type not in NUMERIC_TYPES or col.name not in df.columns or pd.api.types.is_numeric_dtype(df[col.name]):
            continue
        values = df[col.name]
        bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise JobError(f"{what}: column {col.name!r} ({col.type}) holds {values.iloc[row]!r} in row {row}, "
                           "not a number")


def require_rows(rows: int, path: str | os.PathLike[str], what: str = "data") -> None:
    """JobError unless a file read for a job held at least one row."""
    if rows == 0:
        raise JobError(f"{what} {path} has no rows")


def write_frame(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file, then rename) as CSV or Parquet by suffix."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    if file_format(out) == "parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)
    os.replace(tmp, out)
    return out


def data_ref(path: str | os.PathLike[str], *, role: str | None = None, rows: int | None = None,
             uri: str | None = None, sha256: str | None = None) -> DataRef:
    """A lineage entry for a local file (hashing it unless the hash is known)."""
    p = Path(path)
    return DataRef(uri=uri or str(p.resolve()), sha256=sha256 or (sha256_file(p) if p.is_file() else None),
                   role=role, rows=rows)


def role_data(registry: "Registry", info: "ModelVersionInfo", role: str, given: str | os.PathLike[str] | None,
              *, what: str, given_as: str) -> tuple[Path, DataRef]:
    """The file a job reads: ``given`` when set, else the version's ``role`` asset (MissingDataError if none)."""
    if given is not None:
        path = require_file(given, what)
        return path, data_ref(path, role=role)
    asset = info.assets.get(role)
    if asset is None:
        raise MissingDataError(f"model {info.model_id} has no {role} asset and no {given_as} was given")
    path = registry.asset_path(info, role)
    if path is None or not path.is_file():
        raise MissingDataError(f"{role} of {info.model_id} not found: {asset.uri}")
    return path, DataRef(uri=asset.uri, sha256=asset.sha256, role=role)

