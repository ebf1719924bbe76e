# modelops-mlc: `mlc worker start` against the engine named by MLC_ENGINE_URL by default; compose
# also runs the runtime, the ticket watcher and `mlflow server` from this image.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY modelops_mlc ./modelops_mlc
COPY workers ./workers
RUN pip install --no-cache-dir ".[postgres]" && useradd --create-home mlc \
    && mkdir -p /data /mlflow && chown mlc /data /mlflow
USER mlc
ENTRYPOINT []
CMD ["mlc", "worker", "start", "--log-format", "json"]
