# The course-gpt service: `python -m course_utils.serving` on port 8000, CPU only.
#
#   docker build -t course-gpt-service .
#   docker run --rm -p 8000:8000 --cpus 2 course-gpt-service
#   curl -s localhost:8000/health
#
# Slim Debian base: the full python image carries compilers and headers a server never uses.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

WORKDIR /app

# Dependencies before code, so editing the code does not reinstall them (layer cache).
# The same pins as requirements.txt (tests/test_dockerfile.py checks), but only what serving
# needs: no Jupyter, no datasets. torch comes from PyTorch's CPU index: the default Linux wheel
# on PyPI pulls in about 3 GB of CUDA libraries that a CPU container never uses.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu \
        torch==2.13.0 \
        transformers==5.24.0 \
        tokenizers==0.23.3 \
        safetensors==0.8.0 \
        numpy==2.4.6 \
        fastapi==0.165.0 \
        pydantic==2.14.4 \
        uvicorn==0.54.0 \
        httpx==0.28.1 \
        fastapi-offline==1.7.7

# The code and the bundled model (course_utils/assets/course-gpt): the model is baked into the
# image, so a container starts without downloading anything.
COPY course_utils/ ./course_utils/

# Never run a network service as root: a compromised process then owns only this user's files.
RUN useradd --create-home --uid 10001 app
USER app

EXPOSE 8000

# The orchestrator restarts the container when /health stops answering. The slim image has no
# curl, so Python asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

# Exec form: uvicorn is PID 1 and receives SIGTERM from `docker stop` for a graceful shutdown.
# --engine-process: the model runs in a child process with its own GIL (it ignores SIGTERM;
# the server drains, then stops it), for throughput under load.
CMD ["python", "-m", "course_utils.serving", "--host", "0.0.0.0", "--port", "8000", "--engine-process"]
