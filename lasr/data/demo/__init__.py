"""A small, procedurally generated corpus in the Clotho / ESC-50 / separation-sources layouts.

``make_demo(out_dir, seed)`` synthesises every clip with numpy (tones, buzzes, chirps, noise bursts, click,
beep and knock trains, sirens) over faint background noise, writes 16-bit PCM wav files, captions that tell
the truth about each clip, a DCASE 2025 style relevance file and a JSON sidecar with the ground truth.
The same seed gives bit-identical files (on the same numpy build). Licence of the output: CC0 (generated).

Layout written under ``out_dir`` (see docs/demo_data.md)::

    clotho/clotho_audio_{development,validation,evaluation}/*.wav
    clotho/clotho_captions_{development,validation,evaluation}.csv
    clotho/metadata_eval.csv          query,audio_filenames (Python list literal)
    clotho/demo_metadata.json         events, attributes, onsets and per-caption mentions
    esc50/audio/{fold}-{src}-{take}-{target}.wav, esc50/meta/esc50.csv
    sources/*.wav, sources/sources.csv
    README.md

Times are in seconds, levels in dB relative to full scale, frequencies in Hz.
"""

from lasr.data.demo.captions import NOUNS, describes, make_captions, relevance
from lasr.data.demo.corpus import DemoSpec, event_labels, make_demo
from lasr.data.demo.events import EVENT_TYPES, plan_clip, render_clip, write_wav

__all__ = ["EVENT_TYPES", "NOUNS", "DemoSpec", "describes", "event_labels", "make_captions", "make_demo", "plan_clip",
           "relevance", "render_clip", "write_wav"]
