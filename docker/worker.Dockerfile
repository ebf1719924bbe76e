# modelops-mlc workers: `mlc worker start` against the engine named by MLC_ENGINE_URL.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY modelops_mlc ./modelops_mlc
COPY workers ./workers
RUN pip install --no-cache-dir . && useradd --create-home mlc
USER mlc
ENTRYPOINT []
CMD ["mlc", "worker", "start", "--log-format", "json"]
