"""The model client: the inference server's client, its capacity (slots), query rewriting and the prompts."""
