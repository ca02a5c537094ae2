"""BitNet b1.58 ternary quantization-aware fine-tuning, packed 2-bit artifacts and a CPU kernel.

Modules, one job each:

* :mod:`trainers.bitnet.quant` — absmean ternary weights, per-token absmax int8
  activations, the straight-through ``BitLinear`` layer and model surgery;
* :mod:`trainers.bitnet.packing` — the 2-bit packed artifact format (save / load);
* :mod:`trainers.bitnet.kernel` — the batch-1 ternary GEMV (numba) and the
  inference layer that uses it;
* :mod:`trainers.bitnet.task` — the embedded synthetic arithmetic task and its tiny model;
* :mod:`trainers.bitnet.config` / :mod:`trainers.bitnet.trainer` — ``BitNetConfig`` and
  ``BitNetTrainer`` (staged QAT with per-stage dev validation and fallback);
* :mod:`trainers.bitnet.speed` — interleaved batch-1 greedy decode timing;
* :mod:`trainers.bitnet.pipeline` — the cached end-to-end run the phase gates decide on.
"""
