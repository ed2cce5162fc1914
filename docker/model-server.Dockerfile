# GPU model server for the perception node: vLLM's OpenAI-compatible server with Qwen3-VL
# (the `openai` model backend), plus the slot for RoboTracer's own server (the
# `robotracer_http` backend) once its weights are public.
#
#   docker build -f docker/model-server.Dockerfile -t robotracer-model-server:vllm docker
#   docker run --gpus all --ipc=host -p 8000:8000 \
#       -v ~/.cache/huggingface:/root/.cache/huggingface robotracer-model-server:vllm
#   # perception: model_backend:=openai model_url:=http://<host>:8000/v1 \
#   #             model_name:=Qwen/Qwen3-VL-8B-Instruct
#
# The build context is docker/ and nothing is copied from it. Never built on the development
# machines (no Docker daemon, no GPU driver there); see docker/README.md.

# vLLM >= 0.11.0 serves Qwen3-VL. A pinned tag, never `latest`: the server's flags change.
ARG VLLM_IMAGE=vllm/vllm-openai:v0.11.0

# ---------------------------------------------------------------------------------------------
# Slot: RoboTracer's own server (arXiv 2512.13660). Its weights are not public yet; its server
# code is (github.com/Zhoues/RoboTracer, API/: a Flask app on transformers, today serving
# Qwen3-VL as API/Qwen3VL.py): `POST <url>/query` with JSON {"text", "image_url": [raw base64
# PNG, ...]} -> {"result": 1, "answer": "[(x, y, d), ...]"}. Our `robotracer_http` backend sends
# exactly that (config/models/robotracer_server.yaml; the simulator's oracle speaks it too, on
# port 25547). This base image already has what that server needs from the GPU side: torch with
# CUDA and transformers (vLLM's own). When the weights are published, replace the CMD below:
#   1. the server:  RUN pip install --no-cache-dir flask termcolor, and COPY API/<server>.py
#      (from a pinned commit of the authors' repository) with model_name and UPLOAD_FOLDER set
#      to /models/robotracer and /tmp;
#   2. weights: mount them at run time (-v /models/robotracer:/models/robotracer) rather than
#      baking tens of GB into the image; point ROBOTRACER_WEIGHTS at them;
#   3. CMD ["python3", "/opt/robotracer/<server>.py", "--port", "25547"]
# Build it with --target robotracer. Until then the README's "Running RoboTracer locally" runs
# the authors' server in its own environment.
FROM ${VLLM_IMAGE} AS robotracer
ENV ROBOTRACER_WEIGHTS=/models/robotracer \
    PORT=25547
EXPOSE 25547
ENTRYPOINT []
CMD ["/bin/sh", "-c", "echo 'robotracer-model-server: RoboTracer weights and server are not public yet; see the slot in docker/model-server.Dockerfile. Use the vllm target (Qwen3-VL) meanwhile.' >&2; exit 64"]

# ---------------------------------------------------------------------------------------------
# Default target: Qwen3-VL behind vLLM's OpenAI-compatible API (POST /v1/chat/completions).
FROM ${VLLM_IMAGE} AS vllm
# Hugging Face model id (or a path to a mounted checkpoint) and the name clients send as
# "model"; the perception node's model_name must equal SERVED_MODEL_NAME.
ARG VLLM_MODEL=Qwen/Qwen3-VL-8B-Instruct
ENV VLLM_MODEL=${VLLM_MODEL} \
    SERVED_MODEL_NAME=${VLLM_MODEL} \
    PORT=8000 \
    MAX_MODEL_LEN=16384 \
    GPU_MEMORY_UTILIZATION=0.90 \
    VLLM_EXTRA_ARGS=""
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=900s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['PORT'], timeout=4)"]
# The base image's ENTRYPOINT is `vllm serve`; replace it so that the model, port and context
# length come from the environment (compose sets them) and extra `docker run` arguments are
# appended. VLLM_EXTRA_ARGS is split on spaces on purpose (e.g. "--tensor-parallel-size 2").
ENTRYPOINT ["/bin/sh", "-c", "exec vllm serve \"$VLLM_MODEL\" --served-model-name \"$SERVED_MODEL_NAME\" --host 0.0.0.0 --port \"$PORT\" --max-model-len \"$MAX_MODEL_LEN\" --gpu-memory-utilization \"$GPU_MEMORY_UTILIZATION\" $VLLM_EXTRA_ARGS \"$@\"", "vllm-serve"]
CMD []
