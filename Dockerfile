# sluice container image: one binary, several roles (controller, eventsource, sensor, ...).
# Node 24 runs the TypeScript sources directly (type stripping), so there is no compile stage;
# the first stage only installs production dependencies.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY crds ./crds
USER 65532:65532
ENTRYPOINT ["node", "--disable-warning=ExperimentalWarning", "/app/src/cli/main.ts"]
CMD ["--help"]
