# PostgreSQL 15 from Debian's packages on the air-gapped base: for sites with no registry, and CI.
ARG BASE_IMAGE=siapnet-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data
# SIGINT is a fast shutdown: SIGTERM would wait for every client to disconnect.
STOPSIGNAL SIGINT
USER postgres
EXPOSE 5432
HEALTHCHECK --interval=2s --timeout=3s --retries=30 CMD pg_isready -h 127.0.0.1 -U postgres
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
