"""The server on loopback: the openai client gets encode's vectors; every bad request gets its 4xx."""

import base64
import threading

import httpx
import numpy as np
import openai
import pytest

from promptembedder.serving import ServeConfig, create_app, load_servable


def _client(url: str, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def _vectors(response) -> np.ndarray:
    return np.array([item.embedding for item in response.data], dtype=np.float32)


def test_the_openai_client_gets_the_vectors_of_encode_as_float_and_base64(bundle_server, saved, reference):
    client, texts = _client(bundle_server), saved["texts"]
    for task, instruction in saved["tasks"].items():
        expected = reference.encode(texts, instruction=instruction)
        floats = client.embeddings.create(model=task, input=texts, encoding_format="float")
        np.testing.assert_allclose(_vectors(floats), expected, atol=1e-6)
        assert [item.index for item in floats.data] == list(range(len(texts))) and floats.model == task
        assert floats.usage.prompt_tokens == sum(len(reference.embedding.tokenizer(t)["input_ids"]) for t in texts)
        # Asked for base64 explicitly, the client hands the string over as is: float32, little-endian.
        encoded = client.embeddings.create(model=task, input=texts, encoding_format="base64")
        decoded = np.stack([np.frombuffer(base64.b64decode(item.embedding), dtype="<f4") for item in encoded.data])
        np.testing.assert_array_equal(decoded, _vectors(floats))
        # Left to itself the client requests base64 and decodes it.
        np.testing.assert_array_equal(_vectors(client.embeddings.create(model=task, input=texts)), _vectors(floats))
    single = client.embeddings.create(model="animals", input=texts[0], encoding_format="float")
    np.testing.assert_allclose(
        _vectors(single)[0], reference.encode(texts[0], instruction=saved["tasks"]["animals"]), atol=1e-6
    )
    # The served model's own name: no soft prompt.
    plain = client.embeddings.create(model=saved["bundle"].name, input=texts, encoding_format="float")
    np.testing.assert_allclose(_vectors(plain), reference.encode(texts), atol=1e-6)


def test_a_model_with_its_prompting_llm_serves_any_instruction(model_server, saved, reference):
    client, texts = _client(model_server), saved["texts"]
    instruction = "retrieve the same topic"
    response = client.embeddings.create(
        model=saved["model"].name, input=texts, encoding_format="float", extra_body={"instruction": instruction}
    )
    np.testing.assert_allclose(_vectors(response), reference.encode(texts, instruction=instruction), atol=1e-6)
    named = client.embeddings.create(model="music", input=texts, encoding_format="float")
    np.testing.assert_allclose(_vectors(named), reference.encode(texts, instruction=saved["tasks"]["music"]), atol=1e-6)
    documents = client.embeddings.create(
        model="music", input=texts, encoding_format="float", extra_body={"input_type": "document"}
    )
    np.testing.assert_allclose(
        _vectors(documents), reference.encode(texts, instruction=saved["tasks"]["music"], documents=True), atol=1e-6
    )


def test_dimensions_keep_the_leading_ones_renormalised(bundle_server, saved, reference):
    response = _client(bundle_server).embeddings.create(
        model="animals", input=saved["texts"], dimensions=16, encoding_format="float"
    )
    full = reference.encode(saved["texts"], instruction=saved["tasks"]["animals"])[:, :16]
    np.testing.assert_allclose(_vectors(response), full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-6)


BIG = "cat " * 41  # 41 tokens + BOS: over the fixture's 40 per text
BAD_REQUESTS = {
    "malformed JSON": ({"content": b'{"input": "cat", "model": '}, 400, None, "invalid_json"),
    "body is not an object": ({"json": ["cat"]}, 400, None, None),
    "input of a wrong type": ({"json": {"input": 3.5, "model": "animals"}}, 400, "input", "invalid_value"),
    "token ids": ({"json": {"input": [[1, 2]], "model": "animals"}}, 400, "input", "invalid_value"),
    "a list item not a string": ({"json": {"input": ["a", None], "model": "animals"}}, 400, "input", "invalid_value"),
    "empty input": ({"json": {"input": [], "model": "animals"}}, 400, "input", "invalid_value"),
    "empty string": ({"json": {"input": "", "model": "animals"}}, 400, "input", "invalid_value"),
    "no model": ({"json": {"input": "cat"}}, 400, "model", "missing_required_parameter"),
    "model of a wrong type": ({"json": {"input": "cat", "model": 7}}, 400, "model", "invalid_value"),
    "unknown model": ({"json": {"input": "cat", "model": "nope"}}, 404, "model", "model_not_found"),
    "unknown argument": ({"json": {"input": "cat", "model": "animals", "tmp": 1}}, 400, "tmp", "unknown_parameter"),
    "bad encoding_format": (
        {"json": {"input": "cat", "model": "animals", "encoding_format": "int8"}},
        400,
        "encoding_format",
        "invalid_value",
    ),
    "dimensions 0": (
        {"json": {"input": "cat", "model": "animals", "dimensions": 0}},
        400,
        "dimensions",
        "invalid_value",
    ),
    "dimensions too many": ({"json": {"input": "cat", "model": "animals", "dimensions": 49}}, 400, "dimensions", None),
    "dimensions as a string": (
        {"json": {"input": "cat", "model": "animals", "dimensions": "8"}},
        400,
        "dimensions",
        "invalid_value",
    ),
    "too many texts": ({"json": {"input": ["cat"] * 65, "model": "animals"}}, 400, "input", "too_many_inputs"),
    "a text too long": ({"json": {"input": ["cat", BIG], "model": "animals"}}, 400, "input", "context_length_exceeded"),
    "body too large": ({"json": {"input": ["cat " * 20000], "model": "animals"}}, 413, None, "request_too_large"),
    "an instruction the bundle lacks": (
        {"json": {"input": "cat", "model": "bundle", "instruction": "find a fish"}},
        400,
        "instruction",
        "unknown_instruction",
    ),
    "a task and an instruction": (
        {"json": {"input": "cat", "model": "animals", "instruction": "find a fish"}},
        400,
        "instruction",
        None,
    ),
    "an empty instruction": (
        {"json": {"input": "cat", "model": "bundle", "instruction": " "}},
        400,
        "instruction",
        None,
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_each_bad_request_gets_its_4xx_and_the_server_keeps_serving(bundle_server, case):
    kwargs, status, param, code = BAD_REQUESTS[case]
    headers = {"content-type": "application/json"}
    response = httpx.post(f"{bundle_server}/v1/embeddings", headers=headers, timeout=60, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["message"] and error["param"] == param and error["code"] == code
    good = httpx.post(f"{bundle_server}/v1/embeddings", json={"input": ["cat"], "model": "animals"}, timeout=60)
    assert good.status_code == 200 and len(good.json()["data"]) == 1


def test_an_unknown_task_is_refused_with_how_to_add_it(bundle_server):
    response = httpx.post(f"{bundle_server}/v1/embeddings", json={"input": "cat", "model": "fish"}, timeout=60)
    message = response.json()["error"]["message"]
    assert response.status_code == 404
    assert "'animals', 'music'" in message and "promptembedder export" in message and "--prompting" in message
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        _client(bundle_server).embeddings.create(model="fish", input="cat")


def test_wrong_urls_and_methods_get_openai_style_errors(bundle_server):
    missing = httpx.get(f"{bundle_server}/v1/embed")
    assert missing.status_code == 404 and "Unknown request URL" in missing.json()["error"]["message"]
    assert httpx.get(f"{bundle_server}/v1/embeddings").status_code == 405
    assert httpx.get(f"{bundle_server}/v1/models/fish").json()["error"]["code"] == "model_not_found"


def test_models_health_and_metrics(bundle_server, saved):
    ids = [m.id for m in _client(bundle_server).models.list()]
    assert ids == [saved["bundle"].name, *saved["tasks"]]
    assert _client(bundle_server).models.retrieve("music").id == "music"
    health = httpx.get(f"{bundle_server}/health").json()
    assert health["status"] == "ok" and health["dimension"] == 48
    httpx.post(f"{bundle_server}/v1/embeddings", json={"input": ["cat", "dog"], "model": "animals"})
    text = httpx.get(f"{bundle_server}/metrics").text
    for name in (
        'promptembedder_requests_total{route="/v1/embeddings",status="200"}',
        'promptembedder_requests_total{route="/v1/embeddings",status="404"}',
        "promptembedder_texts_total",
        "promptembedder_batch_texts_count",
        'promptembedder_request_seconds_bucket{le="0.005",route="/v1/embeddings"}',
    ):
        assert name in text, name
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and line[0] != "#"}
    assert values["promptembedder_texts_total"] >= 2
    assert values["promptembedder_batch_texts_sum"] == values["promptembedder_texts_total"]


def test_an_api_key_is_required_when_set(saved, serve):
    app = create_app(load_servable(saved["bundle"], device="cpu"), ServeConfig(api_key="s3cret"))
    with serve(app) as url:
        body = {"input": "cat", "model": "animals"}
        missing = httpx.post(f"{url}/v1/embeddings", json=body)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
        wrong = httpx.post(f"{url}/v1/embeddings", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            _client(url, "nope").embeddings.create(model="animals", input="cat")
        assert len(_client(url, "s3cret").embeddings.create(model="animals", input="cat").data) == 1
        assert httpx.get(f"{url}/health").status_code == 200  # probes need no key


@pytest.mark.filterwarnings("ignore:Some texts are longer than")  # the Embedding LLM says it cut them: asked for
def test_long_texts_are_cut_with_truncate(saved, reference, serve):
    config = ServeConfig(max_tokens_per_text=8, truncate=True)
    with serve(create_app(load_servable(saved["bundle"], device="cpu"), config)) as url:
        long = "the red cat runs and the big dog eats bread in the old house"
        response = _client(url).embeddings.create(model="animals", input=[long], encoding_format="float")
        assert response.usage.prompt_tokens == 8
        cut = reference.embedding.tokenizer.decode(reference.embedding.tokenizer(long)["input_ids"][1:8])
        np.testing.assert_allclose(
            _vectors(response)[0], reference.encode(cut, instruction=saved["tasks"]["animals"]), atol=1e-6
        )


def test_32_concurrent_clients_x_20_requests_all_get_their_own_vectors(bundle_server, saved, reference):
    texts, tasks = saved["texts"], list(saved["tasks"])
    expected = {task: reference.encode(texts, instruction=saved["tasks"][task]) for task in tasks}
    failures: list[str] = []

    def client(c: int) -> None:
        with httpx.Client(base_url=bundle_server, timeout=120) as http:
            for r in range(20):
                task, pick = tasks[(c + r) % 2], [(c + r + k) % len(texts) for k in range(1 + (c * r) % 3)]
                response = http.post("/v1/embeddings", json={"input": [texts[i] for i in pick], "model": task})
                if response.status_code != 200:
                    failures.append(f"client {c} request {r}: {response.status_code} {response.text}")
                    continue
                got = np.array([d["embedding"] for d in response.json()["data"]], dtype=np.float32)
                if not np.allclose(got, expected[task][pick], atol=1e-5):
                    failures.append(f"client {c} request {r}: wrong vectors")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures[:3]
