# Runtime image of the screening service. Migrations run as a separate job:
#   docker run --rm -e SCREENING_DATABASE_URL=... IMAGE db upgrade
# Build stage: install the package (app/, and rules/ + migrations/ as data files) into a venv.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# The locked dependencies, each checked against its hash (a reproducible build), then the
# package itself with nothing resolved (--no-deps).
COPY pyproject.toml README.md requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements.lock
COPY app/ app/
COPY rules/ rules/
COPY migrations/ migrations/
RUN /opt/venv/bin/pip install --no-deps .

# Runtime stage: the venv only, run as an unprivileged user.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin screening \
    && mkdir /data && chown screening:screening /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    SCREENING_ENVIRONMENT=prod \
    SCREENING_DATABASE_URL=sqlite:////data/screening.db
WORKDIR /data
USER screening
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["screening"]
CMD ["serve", "--host", "0.0.0.0"]
