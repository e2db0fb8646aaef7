"""A tiny random model plus a tiny random LoRA adapter, served by a real uvicorn server on a free loopback port."""

from __future__ import annotations

import pytest

from support import save_random_adapter


@pytest.fixture(scope="session")
def tiny_lora_dir(tiny_model_dir, tmp_path_factory):
    return save_random_adapter(tiny_model_dir, tmp_path_factory.mktemp("lora") / "adapter", kind="lora")


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir, tiny_lora_dir):
    from alignline.rollout.engine import load_engine

    return load_engine(str(tiny_model_dir), backend="hf", adapters={"lora": str(tiny_lora_dir)})


@pytest.fixture
def start_server():
    """start_server(engine, **settings) -> (openai client, app); every server started is stopped after the test."""
    import openai

    from alignline.serve.app import ServeSettings, create_app, serve_in_thread

    servers = []

    def start(engine, **settings):
        settings.setdefault("served_name", "tiny")
        settings.setdefault("default_max_tokens", 8)
        app = create_app(engine, ServeSettings(**settings))
        server, port = serve_in_thread(app)
        servers.append(server)
        return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=60), app

    yield start
    for s in servers:
        s.should_exit = True
        s.thread.join(timeout=30)
