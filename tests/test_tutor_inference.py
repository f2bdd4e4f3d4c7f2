"""The inference client against a real HTTP stub server: streaming, JSON modes, retries, failover."""


import pytest

from tests.stub_llm import StubLLM
from tests.support import closed_port_url
from tutor.inference.client import (
    DONE,
    JSON_OBJECT_SCHEMA,
    JSON_SCHEMA,
    OLLAMA,
    OLLAMA_FORMAT,
    Endpoint,
    InferenceBadResponse,
    InferenceClient,
    InferenceInterrupted,
    InferenceTruncated,
    InferenceUnavailable,
    NoModelConfigured,
    build_payload,
    count_tokens,
    parse_sse_line,
    read_json,
)

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.fixture
def stub():
    with StubLLM(reply="Init ist der erste Prozess [1].") as server:
        yield server


def client_for(*urls, api="openai", retries=1, timeout=5):
    return InferenceClient(endpoints=[Endpoint(url=u, api=api) for u in urls], retries=retries, timeout=timeout)


def test_streams_openai_sse_piece_by_piece(stub):
    pieces = list(client_for(stub.url).stream_chat([{"role": "user", "content": "Was ist init?"}]))
    assert pieces == ["Init", " ist", " der", " erste", " Prozess", " [1]."]
    body = stub.requests[0]["body"]
    assert stub.requests[0]["path"] == "/v1/chat/completions"
    assert body["stream"] is True and body["model"] == "smollm2"


def test_streams_ollama_native_ndjson(stub):
    pieces = list(client_for(stub.base, api=OLLAMA).stream_chat([{"role": "user", "content": "Was?"}]))
    assert "".join(pieces) == "Init ist der erste Prozess [1]."
    assert stub.requests[0]["path"] == "/api/chat"
    assert "num_predict" in stub.requests[0]["body"]["options"]


def test_a_complete_answer_says_how_it_ended(stub):
    stream = client_for(stub.url).stream_chat([{"role": "user", "content": "x"}])
    assert "".join(stream) == "Init ist der erste Prozess [1]." and stream.finish_reason == "stop"
    assert not stream.cut_off
    short = client_for(stub.url).stream_chat([{"role": "user", "content": "x"}], max_tokens=3)
    assert "".join(short) == "Init ist der" and short.cut_off  # the token limit ended it: "length"
    assert client_for(stub.url).complete([{"role": "user", "content": "x"}], max_tokens=3) == ("Init ist der",
                                                                                               "length")
    ollama = client_for(stub.base, api=OLLAMA).stream_chat([{"role": "user", "content": "x"}], max_tokens=2)
    assert "".join(ollama) == "Init ist" and ollama.cut_off


def test_a_stream_that_stops_without_a_finish_reason_is_a_failure_not_an_answer(stub):
    """llama-cpp-python ends an interrupted stream with [DONE] and no finish reason; a dropped connection
    ends it with nothing: after part of the answer both are InferenceInterrupted, never a finished answer."""
    for mode in ("interrupt", "drop"):
        stub.fail = mode
        stream = client_for(stub.url, retries=2).stream_chat([{"role": "user", "content": "x"}])
        pieces = []
        with pytest.raises(InferenceInterrupted):
            for piece in stream:
                pieces.append(piece)
        assert pieces == ["Init", " ist", " der"] and stream.finish_reason is None
    assert len(stub.requests) == 2  # not retried once the person has seen part of the answer


def test_a_stream_cut_before_its_first_piece_is_retried(stub):
    stub.fail, stub.fail_requests = "interrupt_early", 1
    stream = client_for(stub.url, retries=1).stream_chat([{"role": "user", "content": "x"}])
    assert "".join(stream) == "Init ist der erste Prozess [1]." and stream.finish_reason == "stop"
    assert len(stub.requests) == 2


def test_json_schema_in_each_servers_form():
    messages = [{"role": "user", "content": "x"}]
    vllm = build_payload(Endpoint(url="http://h/v1", json_mode=JSON_SCHEMA), messages, stream=False, json_schema=SCHEMA)
    assert vllm["response_format"]["type"] == "json_schema"
    assert vllm["response_format"]["json_schema"]["schema"] == SCHEMA
    llama_py = build_payload(Endpoint(url="http://h/v1", json_mode=JSON_OBJECT_SCHEMA), messages, stream=False,
                             json_schema=SCHEMA)
    assert llama_py["response_format"] == {"type": "json_object", "schema": SCHEMA}
    ollama_v1 = build_payload(Endpoint(url="http://h/v1", json_mode=OLLAMA_FORMAT), messages, stream=False,
                              json_schema=SCHEMA)
    assert ollama_v1["format"] == SCHEMA
    native = build_payload(Endpoint(url="http://h", api=OLLAMA), messages, stream=False, json_schema=SCHEMA)
    assert native["format"] == SCHEMA and "response_format" not in native


def test_chat_json_parses_the_answer(stub):
    stub.reply = '{"answer": "PID 1"}'
    assert client_for(stub.url).chat_json([{"role": "user", "content": "x"}], SCHEMA) == ({"answer": "PID 1"}, False)
    assert stub.requests[0]["body"]["response_format"]["type"] == "json_object"
    stub.reply = "kein JSON"
    with pytest.raises(InferenceBadResponse) as caught:
        client_for(stub.url).chat_json([{"role": "user", "content": "x"}], SCHEMA)
    assert caught.value.code == "bad_response"


def test_json_with_a_raw_line_break_in_a_string_is_read():
    """llama.cpp's schema grammar lets a raw line break into a JSON string (seen with llama-cpp-python 0.3.36):
    that is still the model's answer, not a broken one."""
    assert read_json('{"stem": "Was ist\nPID 1?", "n": 1}') == ({"stem": "Was ist\nPID 1?", "n": 1}, False)
    assert read_json('{"a": 1} und noch Text') == ({"a": 1}, False)
    with pytest.raises(ValueError):
        read_json('{"a": [1, 2')


def test_a_json_answer_cut_by_the_token_limit_keeps_its_complete_part(stub):
    cut = '{"questions": [{"stem": "A?", "options": ["x", "y"]}, {"stem": "B?", "options": ["x", "y"]}, {"stem": "C'
    assert read_json(cut, cut_off=True) == ({"questions": [{"stem": "A?", "options": ["x", "y"]},
                                                           {"stem": "B?", "options": ["x", "y"]}]}, True)
    stub.reply = '{"questions": [{"stem": "Was", "options": ["a", "b"]}, {"stem": "Wer", "options": ["c", "d"]}]}'
    data, cut_off = client_for(stub.url).chat_json([{"role": "user", "content": "x"}], SCHEMA, max_tokens=7)
    assert cut_off and data == {"questions": [{"stem": "Was", "options": ["a", "b"]}]}
    with pytest.raises(InferenceTruncated) as caught:  # nothing complete before the limit
        client_for(stub.url).chat_json([{"role": "user", "content": "x"}], SCHEMA, max_tokens=2)
    assert caught.value.code == "truncated"


def test_no_configured_server_is_said_plainly(settings):
    settings.INFERENCE_URLS = []
    with pytest.raises(NoModelConfigured) as caught:
        "".join(InferenceClient.from_settings().stream_chat([{"role": "user", "content": "x"}]))
    assert caught.value.code == "no_model"


def test_fails_over_to_the_next_endpoint(stub):
    client = client_for(closed_port_url(), stub.url, retries=0)
    assert client.chat([{"role": "user", "content": "x"}]) == "Init ist der erste Prozess [1]."


def test_retries_a_server_error_then_gives_a_readable_reason(stub):
    stub.fail = "500"
    with pytest.raises(InferenceUnavailable) as caught:
        list(client_for(stub.url, retries=1).stream_chat([{"role": "user", "content": "x"}]))
    assert len(stub.requests) == 2
    assert "not reachable" in caught.value.reason


def test_dropped_connection_and_slow_server_are_unavailable(stub):
    stub.fail = "close"
    with pytest.raises(InferenceUnavailable):
        client_for(stub.url, retries=0).chat([{"role": "user", "content": "x"}])
    stub.fail = None
    stub.first_token_delay = 1.5
    with pytest.raises(InferenceUnavailable):
        list(client_for(stub.url, retries=0, timeout=0.5).stream_chat([{"role": "user", "content": "x"}]))


def test_rejects_a_prompt_that_cannot_fit_the_context_window(stub):
    client = InferenceClient(endpoints=[Endpoint(url=stub.url)], context_tokens=100)
    with pytest.raises(InferenceBadResponse):
        client.chat([{"role": "user", "content": "wort " * 400}], max_tokens=50)
    assert stub.requests == []


def test_token_count_and_sse_parsing():
    assert 25 <= count_tokens("x" * 100) <= 35
    assert parse_sse_line('data: {"choices":[{"delta":{"content":"Hal"}}]}') == ("Hal", None)
    assert parse_sse_line('data: {"choices":[{"delta":{},"finish_reason":"length"}]}') == ("", "length")
    assert parse_sse_line("data: [DONE]") is DONE
    assert parse_sse_line(": keep-alive") == ("", None)


def test_from_settings_uses_the_configured_endpoints(settings):
    settings.INFERENCE_URLS = ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]
    client = InferenceClient.from_settings(url="http://127.0.0.1:3/v1", model="other", timeout=7)
    assert [e.url for e in client.endpoints] == ["http://127.0.0.1:3/v1"]
    assert client.endpoints[0].model == "other" and client.timeout == 7
    assert len(InferenceClient.from_settings().endpoints) == 2


def test_only_allowed_inference_hosts_are_ever_contacted(settings):
    """A course's endpoint override on another host is refused before any request is made."""
    settings.INFERENCE_URLS = ["http://127.0.0.1:8089/v1"]
    settings.INFERENCE_ALLOWED_HOSTS = ["127.0.0.1", "gpu.uni.example"]
    assert InferenceClient.from_settings(url="https://gpu.uni.example/v1").endpoints[0].url == "https://gpu.uni.example/v1"
    with pytest.raises(InferenceBadResponse):
        InferenceClient.from_settings(url="https://api.elsewhere.example/v1")



def test_near_the_window_the_server_s_tokenizer_counts(stub):
    """The estimate (3.5 characters a token) undercounts for this server's tokenizer (2): fit() asks the server
    before refusing, and the route that answered is remembered."""
    from tutor.inference import client as inference

    inference._tokenize_routes.clear()
    client = InferenceClient(endpoints=[Endpoint(url=stub.url)], retries=0, context_tokens=1000)
    messages = [{"role": "user", "content": "Wort " * 500}]  # 2,500 characters
    assert inference.count_message_tokens(messages) == 719
    assert client.count_message_tokens_exactly(messages) == 1251 + 4
    with pytest.raises(InferenceBadResponse):  # 719 estimated + 300 > 1000: counted exactly, still too long
        client.fit(messages, 300)
    client.fit([{"role": "user", "content": "Wort " * 300}], 200)  # 433 + 200 estimated: no count needed
    assert len(stub.tokenize_requests) == 2 and stub.tokenize_requests[0]["model"] == "smollm2"
    assert inference._tokenize_routes[stub.url[:-3]][0] == "/tokenize"


def test_a_server_without_a_tokenizer_keeps_the_estimate(stub):
    """Ollama has no tokenize route: both routes are tried once, then the estimate is used without asking."""
    from tutor.inference import client as inference

    inference._tokenize_routes.clear()
    stub.tokenizer = False
    client = InferenceClient(endpoints=[Endpoint(url=stub.url)], retries=0, context_tokens=1000)
    messages = [{"role": "user", "content": "Wort " * 500}]
    assert client.count_message_tokens_exactly(messages) is None
    assert client.count_message_tokens_exactly(messages) is None
    assert len(stub.tokenize_requests) == 2 and stub.requests == []
    ollama = InferenceClient(endpoints=[Endpoint(url=stub.base, api=OLLAMA)], context_tokens=1000)
    assert ollama.count_message_tokens_exactly(messages) is None and len(stub.tokenize_requests) == 2
