"""Batch scoring over CSV or Parquet of any size: pyarrow reads record batches, the model predicts
each one, a writer streams the result out. Memory is bounded by the chunk, not the file.

The three stages overlap: a reader thread decodes the next chunks and a writer thread encodes the
last ones while the model predicts (pyarrow releases the GIL while it decodes and encodes). The
input is hashed by a third thread as it is read; the output is hashed as it is written."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelops_mlc.errors import JobError, MlcError, first_line
from modelops_mlc.jobs._data import data_ref, file_format, require_file, require_rows
from modelops_mlc.jobs.results import DataRef, ScoreResult
from modelops_mlc.registry import Registry

__all__ = ["score"]

PREDICTION = "prediction"
AHEAD = 2  # chunks the reader may decode ahead of the model, and the writer may hold behind it
_ARROW_TYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32",
                "boolean": "bool_", "string": "string", "binary": "binary"}


def _column_types(signature: dict[str, Any] | None) -> dict[str, Any]:
    """Arrow types for the signature's columns, so every CSV block parses the same way."""
    import pyarrow as pa

    types: dict[str, Any] = {}
    for col in (signature or {}).get("inputs") or []:
        name, kind = col.get("name"), col.get("type")
        if name and kind in _ARROW_TYPES:
            types[name] = getattr(pa, _ARROW_TYPES[kind])()
    return types


def _input_sha256(path: Path, stop: threading.Event, block_bytes: int = 1 << 20) -> str | None:
    """Hex sha256 of the input, read block by block; None once ``stop`` is set, so a job that failed
    does not go on reading the rest of a maybe 1 GB file for a digest no one wants."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(block_bytes):
            if stop.is_set():
                return None
            digest.update(block)
    return digest.hexdigest()


CSV_BLOCK_BYTES = 1 << 20  # pyarrow reads up to 32 CSV blocks ahead of the parser: this bounds that to 32 MiB


def _batches(path: Path, chunk_rows: int, types: dict[str, Any]) -> tuple[Any, Iterator[Any]]:
    """(arrow schema, iterator of record batches) for a CSV or Parquet file."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if file_format(path) == "parquet":
        # No read-ahead: pyarrow's default pre-buffering grows memory with the file; this keeps it
        # to about one row group (measured by bench/scoring.py).
        pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        return pf.schema_arrow, pf.iter_batches(batch_size=chunk_rows)
    header = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
    names = header.schema.names
    header.close()
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(column_types={k: v for k, v in types.items() if k in names}),
    )
    return reader.schema, _sliced(reader, chunk_rows)


def _sliced(batches: Any, chunk_rows: int) -> Iterator[Any]:
    """CSV blocks are sized in bytes: gather or cut them into chunks of ``chunk_rows`` rows."""
    import pyarrow as pa

    held: list[Any] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        if count < chunk_rows:
            continue
        joined = held[0] if len(held) == 1 else pa.Table.from_batches(held).combine_chunks().to_batches()[0]
        start = 0
        while joined.num_rows - start >= chunk_rows:
            yield joined.slice(start, chunk_rows)
            start += chunk_rows
        held = [joined.slice(start)] if start < joined.num_rows else []
        count = joined.num_rows - start
    if count:
        yield held[0] if len(held) == 1 else pa.Table.from_batches(held).combine_chunks().to_batches()[0]


class _HashingFile(io.FileIO):
    """A file opened for writing that hashes the bytes written to it: no second read for the sha256."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "wb")
        self.digest = hashlib.sha256()

    def write(self, data: Any) -> int:
        n = super().write(data) or 0
        view = memoryview(data).cast("B")
        self.digest.update(view if n == len(view) else view[:n])
        return n


def _dictionary_columns(schema: Any) -> list[str]:
    """Columns worth Parquet dictionary encoding: all but floating point ones.

    Float features and predictions rarely repeat, so a dictionary only costs: on chunk-sized row
    groups it never reaches the size at which pyarrow falls back to plain encoding, and it took
    most of the writing time (bench/RESULTS.md, scoring)."""
    import pyarrow.types as pat

    return [f.name for f in schema if not pat.is_floating(f.type)]


class _Writer:
    """Streams record batches to CSV or Parquet, into ``OUT.part`` renamed on success, hashing them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".part")
        self.kind = file_format(path)
        self._file: _HashingFile | None = None
        self._writer: Any = None
        self.sha256: str | None = None

    def _open(self, schema: Any) -> None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _HashingFile(self.tmp)
        if self.kind == "parquet":
            self._writer = pq.ParquetWriter(self._file, schema, use_dictionary=_dictionary_columns(schema))
        else:
            self._writer = pacsv.CSVWriter(self._file, schema)

    def write(self, batch: Any) -> None:
        if self._writer is None:
            self._open(batch.schema)
        self._writer.write_batch(batch)

    def close(self) -> None:
        assert self._writer is not None and self._file is not None  # require_rows: never an empty input
        self._writer.close()
        self._file.close()
        self.sha256 = self._file.digest.hexdigest()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            if self._file is not None:
                self._file.close()
            self.tmp.unlink(missing_ok=True)


def _ahead(pool: ThreadPoolExecutor, items: Iterator[Any], depth: int) -> Iterator[Any]:
    """The items of ``items``, drawn by ``pool``'s one thread up to ``depth`` ahead of the consumer."""
    end = object()
    pending: deque[Future[Any]] = deque(pool.submit(next, items, end) for _ in range(depth))
    while (item := pending.popleft().result()) is not end:
        pending.append(pool.submit(next, items, end))
        yield item


def _prediction_columns(pred: Any, rows: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    if isinstance(pred, pd.DataFrame):
        if pred.shape[1] == 1:
            return {PREDICTION: pred.iloc[:, 0].to_numpy()}
        return {f"{PREDICTION}_{c}": pred[c].to_numpy() for c in pred.columns}
    arr = np.asarray(pred)
    if arr.ndim == 2 and arr.shape[1] > 1:
        return {f"{PREDICTION}_{i}": arr[:, i] for i in range(arr.shape[1])}
    arr = arr.reshape(rows)
    return {PREDICTION: arr}


def score(
    registry: Registry,
    model_id: str,
    input_path: str | Path,
    output_path: str | Path,
    chunk_rows: int = 50_000,
    *,
    strict: bool = False,
    log_run: bool = True,
    run_tags: Mapping[str, str] | None = None,
) -> ScoreResult:
    """Score ``input_path`` with a version and write the input plus ``prediction`` to ``output_path``.

    The input's columns are checked against the signature before any work: missing columns fail
    with their names; extra columns pass through to the output (``strict=True`` refuses them).
    ``run_tags`` go on the score run (a worker's task key and process instance).
    """
    import mlflow
    import pyarrow as pa

    started = time.monotonic()
    if chunk_rows < 1:
        raise JobError("chunk_rows must be at least 1")
    info = registry.get_version(model_id)
    src = require_file(input_path, "input file")
    out = Path(output_path)
    if out.resolve() == src.resolve():
        raise JobError("output file must differ from the input file")
    wanted = info.input_columns()
    types = _column_types(info.signature)
    try:
        schema, batches = _batches(src, chunk_rows, types)
    except Exception as exc:
        raise JobError(f"cannot read input {src}: {first_line(exc)}") from exc
    names = list(schema.names)
    extra: list[str] = []
    if wanted is not None:
        missing = [c for c in wanted if c not in names]
        extra = [c for c in names if c not in wanted]
        if missing or (strict and extra):
            parts = []
            if missing:
                parts.append(f"missing columns {', '.join(missing)}")
            if extra:
                parts.append(f"extra columns {', '.join(extra)}")
            raise JobError(f"input {src.name} does not match the signature of {info.model_id}: {'; '.join(parts)}")
    features = wanted or names
    model = registry.load_pyfunc(info.ref)
    writer = _Writer(out)
    rows = chunks = 0
    reader, encoder, hasher = (ThreadPoolExecutor(1, thread_name_prefix=f"mlc-score-{stage}")
                               for stage in ("read", "write", "hash"))
    stop_hashing = threading.Event()
    input_sha256 = hasher.submit(_input_sha256, src, stop_hashing)
    writes: deque[Future[None]] = deque()
    try:
        for batch in _ahead(reader, batches, AHEAD):
            if batch.num_rows == 0:
                continue
            frame = batch.select(features).to_pandas() if wanted else batch.to_pandas()
            try:
                pred = model.predict(frame)
            except MlcError:
                raise
            except Exception as exc:
                raise JobError(f"scoring {info.model_id} failed at row {rows}: {first_line(exc)}") from exc
            cols = _prediction_columns(pred, batch.num_rows)
            table = batch
            for name, values in cols.items():
                table = table.append_column(name, pa.array(values))
            writes.append(encoder.submit(writer.write, table))
            while len(writes) > AHEAD:
                writes.popleft().result()
            rows += batch.num_rows
            chunks += 1
        while writes:
            writes.popleft().result()
        require_rows(rows, src, "input file")
        writer.close()
    except BaseException as exc:
        stop_hashing.set()  # the hash thread ends at its next block
        hasher.shutdown(wait=False)
        for pool in (reader, encoder):  # the writer must be idle before its file goes
            pool.shutdown(cancel_futures=True)
        writer.abort()
        if isinstance(exc, MlcError) or not isinstance(exc, Exception):
            raise
        raise JobError(f"scoring {src.name} failed after {rows} rows: {first_line(exc)}") from exc
    finally:
        for pool in (reader, encoder):
            pool.shutdown(cancel_futures=True)
    digest = writer.sha256 or ""
    input_ref = data_ref(src, role="INPUT_FILE", rows=rows, sha256=input_sha256.result())
    hasher.shutdown()
    output_ref = DataRef(uri=str(out.resolve()), sha256=digest, role="OUTPUT_FILE", rows=rows)
    run_id = None
    if log_run:
        with registry.start_run(
            f"score-{info.name}-v{info.version}",
            {"mlc.kind": "score", "mlc.model_name": info.name, "mlc.model_version": info.version,
             **(run_tags or {})},
        ) as run:
            mlflow.log_params({"input": input_ref.uri[:500], "input_sha256": input_ref.sha256 or "",
                               "output": output_ref.uri[:500], "output_sha256": digest, "chunk_rows": chunk_rows})
            mlflow.log_metrics({"rows": rows, "chunks": chunks})
            run_id = run.info.run_id
    return ScoreResult(
        model_name=info.name,
        version=info.version,
        rows=rows,
        chunks=chunks,
        output_path=str(out),
        output_sha256=digest,
        extra_columns=extra,
        run_id=run_id,
        inputs=[DataRef(uri=info.uri, role="MODEL"), input_ref],
        outputs=[output_ref],
        duration_s=round(time.monotonic() - started, 3),
    )
