# The `wasender` CLI in a small image: `docker run … wasender listen`.
#
#   docker build -t wasender .
#   docker run --rm -p 3000:3000 -e WASENDER_WEBHOOK_SECRET=… \
#       -v wasender-journal:/var/lib/wasender wasender listen --journal /var/lib/wasender
#
# `docker stop` sends SIGTERM: the listener stops accepting, finishes in-flight
# requests and drains its queue (up to --drain-timeout, 30 s by default), so give
# it longer than that to stop: `docker stop --time 40`, or `stop_grace_period: 40s`
# in compose. A second SIGTERM stops at once (durable mode keeps the rest on disk).

FROM rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock README.md ./
COPY src ./src
COPY examples ./examples
COPY benches ./benches
COPY tests ./tests
RUN cargo install --locked --path . --features cli --root /out

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/wasender wasender \
    && mkdir -p /var/lib/wasender && chown wasender /var/lib/wasender
COPY --from=build /out/bin/wasender /usr/local/bin/wasender
USER wasender
ENV RUST_LOG=info PORT=3000
EXPOSE 3000
VOLUME ["/var/lib/wasender"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s CMD ["wasender", "health", "--url", "http://127.0.0.1:3000/healthz"]
ENTRYPOINT ["wasender"]
CMD ["listen"]
