# A fedsph node image: the package, with its templates, migrations and compiled catalogs inside
# it (setup.py's build puts them there). Data lives in /data.
FROM python:3.11-slim
WORKDIR /src
# Everything the build reads (tests/test_package.py installs from exactly these files).
COPY pyproject.toml setup.py MANIFEST.in README.md requirements.lock ./
COPY fedsph ./fedsph
COPY templates ./templates
COPY migrations ./migrations
# Versions come from the lock, as for `make run` and `make test`. A regular install, not an
# editable one: the sources are not needed afterwards.
# /etc/fedsph-image tells `fedsph` it runs in this image: an incomplete install is fixed by
# rebuilding it (fedsph/admin/package_data.py).
RUN pip install --no-cache-dir -c requirements.lock . && cd / && rm -rf /src \
    && echo "fedsph's Docker image (Dockerfile)" > /etc/fedsph-image
WORKDIR /data
ENV FEDSPH_DATA_DIR=/data FEDSPH_HOST=0.0.0.0 FEDSPH_PORT=8080
VOLUME /data
EXPOSE 8080
# Migrating on start is safe: Alembic does nothing when the schema is already at head.
CMD ["sh", "-c", "fedsph migrate && fedsph serve"]
