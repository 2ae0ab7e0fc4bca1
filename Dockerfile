# sluice container image: one program, several roles (`sluice controller`, `sluice eventsource`,
# `sluice sensor`, `sluice lint`, ...). Node 24 runs the TypeScript sources directly (type
# stripping), so there is no compile stage: the first stage installs production dependencies
# only, the second copies them next to the sources and runs as an unprivileged user.
#   docker build -t sluice:$(node -p 'require("./package.json").version') .
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# npm install rather than npm ci: lockfiles from registry mirrors may lack other platforms'
# optional binaries, which npm ci rejects (see the Makefile's deps target).
RUN npm install --omit=dev --no-audit --no-fund --loglevel=error \
 && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    SLUICE_NODE=/usr/local/bin/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin/sluice ./bin/sluice
COPY scripts/node.sh ./scripts/node.sh
COPY src ./src
COPY crds ./crds
# `sluice` on PATH (also for `kubectl exec ... sluice lint`); files stay root-owned and read-only
# to the runtime user.
RUN ln -s /app/bin/sluice /usr/local/bin/sluice \
 && chmod 0755 /app/bin/sluice /app/scripts/node.sh
# 65532: the conventional "nonroot" uid; numeric so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 7777
ENTRYPOINT ["sluice"]
CMD ["--help"]
