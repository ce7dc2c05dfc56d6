# syntax=docker/dockerfile:1
# The base image is a build argument so a machine without Docker Hub can build on a Node base it
# made itself (the real-host tests do: test/real/packaging.test.ts). The default is a Node LTS
# (package.json's engines field is the floor): Node 20 reached its end of life in April 2026.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Not root: the bot holds the deploy key and needs no privilege in its container.
USER node
EXPOSE 3000
# `node dist/main.js` directly: npm would not pass SIGTERM on, and the bot needs it to stop cleanly.
ENTRYPOINT ["node", "dist/main.js"]
CMD ["--role", "all"]
