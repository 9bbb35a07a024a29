# syntax=docker/dockerfile:1
# hark: one image, three roles (ROLE=api | worker | all). Multi-stage: the build stage has the
# dev dependencies and the TypeScript compiler; the runtime stage has production dependencies only
# and runs as an unprivileged user.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
COPY workers ./workers
# The marketer console: npm run build also runs build:ui (vite into dist/console).
COPY ui ./ui
RUN npm run build

FROM node:20-bookworm-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    ROLE=all \
    PORT=3000
WORKDIR /app
# The node image ships an unprivileged "node" user (uid 1000); nothing here needs root.
COPY --chown=node:node package.json ./
COPY --from=prod-deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
# Starter templates are read at run time (src/automations/starter.ts walks up to templates/).
COPY --chown=node:node templates ./templates
USER node
EXPOSE 3000
# Liveness only: readiness (/readyz) depends on Postgres and Redis and belongs to the orchestrator.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# node as PID 1 receives SIGTERM directly (no npm wrapper), so shutdown is clean.
CMD ["node", "dist/src/main.js"]
