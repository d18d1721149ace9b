# syntax=docker/dockerfile:1
#
# The sparktest-k8s image: the release binary on a distroless base, running as the
# unprivileged user 65532, with no shell and no package manager.
#
#   docker build -t sparktest-k8s:0.1.0 .                    # glibc, distroless/cc (default)
#   docker build --target static -t sparktest-k8s:0.1.0-static .   # musl, distroless/static
#
# Default: glibc + gcr.io/distroless/cc-debian12, about 30 MiB (7 MiB binary + the
# ~23 MiB base), about 12 MiB to pull. The `static` target links with musl onto
# gcr.io/distroless/static-debian12, about 9 MiB, but musl's allocator served about
# half the log requests per second and two thirds of the status requests of the glibc
# build on the same 2-core machine (the benchmark of README "Performance"), so it is
# not the default.
#
# The crate uses rustls with ring: no OpenSSL, and ring needs only a C compiler.
# Builder and runtime are both Debian 12 (bookworm), so the binary's glibc symbols
# (up to GLIBC_2.34) exist at run time. For reproducible builds pin both FROM lines
# by digest (image@sha256:...).
ARG RUST_VERSION=1.95

# ---- build: glibc ------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /build
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cache mounts keep the crates.io downloads and the compiled dependencies between
# builds; the binary is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin sparktest-k8s \
    && install -D -m 0755 target/release/sparktest-k8s /out/sparktest-k8s

# ---- build: musl (static) ----------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS build-static
ARG TARGETARCH
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    case "${TARGETARCH:-amd64}" in \
        amd64) arch=x86_64 ;; \
        arm64) arch=aarch64 ;; \
        *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
    && rustup target add "${arch}-unknown-linux-musl" \
    && env "CC_${arch}_unknown_linux_musl=musl-gcc" cargo build --release --locked --bin sparktest-k8s \
        --target "${arch}-unknown-linux-musl" \
    && install -D -m 0755 "target/${arch}-unknown-linux-musl/release/sparktest-k8s" \
        /out/sparktest-k8s

# ---- runtime: static (docker build --target static) --------------------------------
FROM gcr.io/distroless/static-debian12:nonroot AS static
COPY --from=build-static /out/sparktest-k8s /usr/local/bin/sparktest-k8s
USER 65532:65532
EXPOSE 3001
ENTRYPOINT ["/usr/local/bin/sparktest-k8s"]

# ---- runtime: default (last stage) -------------------------------------------------
# distroless/cc: glibc, libgcc_s and libm, which the binary links; CA certificates
# (used only when no cluster CA is configured); /etc/passwd with nonroot = 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="sparktest-k8s" \
      org.opencontainers.image.description="Connects SparkTest to Kubernetes: job status, logs and deletion over a REST API" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /out/sparktest-k8s /usr/local/bin/sparktest-k8s
# Numeric, so runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 3001
# Kubernetes probes /livez and /readyz; there is no shell or curl for a HEALTHCHECK.
ENTRYPOINT ["/usr/local/bin/sparktest-k8s"]
