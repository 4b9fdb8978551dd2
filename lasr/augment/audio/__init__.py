"""Audio-side augmentation (AudioSetMix-style transforms, modifier captions, LLM-mix serving, hard negatives).

* :mod:`.transforms`: waveform ops (gain, pitch shift, speed, crop, concatenation, Wu et al. mixing).
* :mod:`.modifiers`: truthful template captions for applied ops and their counterfactual (flipped) captions.
* :mod:`.llm_mix`: the ``mix`` and ``modifiers`` rows of an exported caption table, as serving plans.
* :mod:`.dataset`: the training dataset, its collate function and the DataModule with an ``augment`` block.
* :mod:`.figures`: spectrogram images of transformed demo clips with their captions (docs/audio_augment.md).
"""
