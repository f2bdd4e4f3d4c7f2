"""Run llama-cpp-python's OpenAI-compatible server with weight repacking off (same arguments as the server).

On this machine's CPUs llama.cpp's "extra buffer types" (runtime weight repacking, AMX) crash the process
with a segmentation fault on the first prompt longer than one token; ``use_extra_bufts = False`` avoids
that at little cost for a 135M model (set LLAMA_EXTRA_BUFTS=1 to keep it on where it works).
Usage: ``python -m deploy.llama_server --model … --port …``.
"""

import os

import llama_cpp
import llama_cpp.llama

_default_params = llama_cpp.llama_model_default_params


def _safe_params():
    params = _default_params()
    params.use_extra_bufts = os.environ.get("LLAMA_EXTRA_BUFTS") == "1"
    return params


llama_cpp.llama.llama_cpp.llama_model_default_params = _safe_params

if __name__ == "__main__":
    from llama_cpp.server.__main__ import main

    main()
