# Read-only PostgreSQL MCP server, serving streamable HTTP on port 8000.
#   docker build -t postgres-mcp .
#   docker run -p 8000:8000 -e DATABASE_URL=postgresql://reader:...@db:5432/app -e MCP_API_TOKEN=... postgres-mcp
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
# pgserver (the embedded PostgreSQL behind --demo) is left out: the image serves a real database.
RUN grep -v '^pgserver' requirements.txt > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && useradd --system --uid 10001 --no-create-home mcp
COPY postgres_server.py .
# Bytecode compiled now: the unprivileged user cannot write it, and `-m` then starts without compiling.
RUN python -m compileall -q postgres_server.py

USER mcp
# Binding 0.0.0.0 requires MCP_API_TOKEN (or --allow-unauthenticated behind an authenticating proxy):
# the server refuses to start otherwise, with one line saying so.
ENV MCP_TRANSPORT=streamable-http \
    MCP_HOST=0.0.0.0 \
    MCP_PORT=8000
EXPOSE 8000
# The port the server listens on, wherever MCP_PORT (docker run -e MCP_PORT=...) moved it.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('MCP_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["python", "-m", "postgres_server"]
