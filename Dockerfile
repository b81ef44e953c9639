# smserve container image: a static binary on an empty (scratch) base.
#
# Air-gapped build (no network, no registry pull: FROM scratch pulls nothing):
#
#   make static                      # ./smserve-static, stripped, musl or -static
#   docker build -t smserve .        # or: podman build / buildah bud --format docker
#
# The image holds exactly two things: /smserve and the bundled default model
# under /opt/ml/model. SageMaker mounts the model.tar.gz of CreateModel's
# ModelDataUrl (if any) over /opt/ml/model, so the bundled model is only used
# when no ModelDataUrl is given. To bundle another model, put its directory
# under models/ and build with --build-arg MODEL_DIR=models/<name>.
#
# SageMaker runs `docker run IMAGE serve`: the exec-form ENTRYPOINT gets
# "serve" as argv[1] and receives SIGTERM directly (no shell, no init: tini
# breaks `serve`). `docker run IMAGE` with no argument serves too (CMD).
# The server listens on SAGEMAKER_BIND_TO_PORT if set, else 8080, and runs
# as root, as SageMaker expects.

# Two stages so that the image has one layer whatever the builder: docker,
# and podman by default, commit a layer per COPY, and a second layer brings
# its own tar end blocks, digest and history (built with `buildah bud
# --layers`, one stage made two layers and 1,760 bytes more as `podman images`
# counts them). The first stage only gathers the files; the image copies its
# whole root in one step.
FROM scratch AS files
ARG MODEL_DIR=models/iris
COPY smserve-static /smserve
COPY ${MODEL_DIR}/ /opt/ml/model/

FROM scratch
COPY --from=files / /

EXPOSE 8080
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
# Multi-model endpoints (CreateModel Mode=MultiModel): SageMaker then sets
# SAGEMAKER_MULTI_MODEL=true and loads models through /models (docs/mme.md).
LABEL com.amazonaws.sagemaker.capabilities.multi-models=true

# For ECS, Kubernetes, `docker run`: the image has no shell and no curl, so the
# binary itself requests /ping on its own port and exits 0 (200) or 1.
# (Docker-format images only; OCI images drop HEALTHCHECK.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
	CMD ["/smserve", "--healthcheck"]

ENTRYPOINT ["/smserve"]
CMD ["serve"]
