# A fedsph node image: the package, its templates and migrations. Data lives in /data.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY fedsph ./fedsph
COPY templates ./templates
COPY migrations ./migrations
# Versions come from the lock, as for `make run` and `make test`.
RUN pip install --no-cache-dir -c requirements.lock -e . && pybabel compile -d fedsph/locale -D messages
ENV FEDSPH_DATA_DIR=/data FEDSPH_HOST=0.0.0.0 FEDSPH_PORT=8080
VOLUME /data
EXPOSE 8080
# Migrating on start is safe: Alembic does nothing when the schema is already at head.
CMD ["sh", "-c", "fedsph migrate && fedsph serve"]
