"""The U-Net through OpenVINO on the CPU (issue 16): a drop-in for the torch network in `sample()`.

On the 2-core AVX-512/AMX Xeon of bench/bench_cpu_runtimes.py, OpenVINO's CPU plugin at its
default (bf16 on AMX / AVX512-BF16 CPUs) ran one forward of the shipped Σ5 U-Net 2.2-2.4x
faster than torch's bf16 autocast + channels-last path with the machine loaded; over a whole
idle generation (bench/bench_generation.py --runtime openvino) the gain was 1.1x. ONNX Runtime
(fp32 only) was slower than torch there, so only OpenVINO is wrapped.

    gen = GBGenerator.load(path, runtime="openvino")         # or gbsearch run --runtime openvino

Needs the ``openvino`` extra (pip install "gbsearch[openvino]"); not the default.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class OpenVINOModel(nn.Module):
    """A torch U-Net converted once with ``ov.convert_model`` and compiled for the CPU, one
    compiled graph per batch size (static shapes, compiled at first use of that size).

    Same call as the network: ``model(x [B, C, nx, ny, nz], t [B] or scalar) -> tensor`` (float32,
    on the CPU). For `sample()` it has one dummy float32 CPU parameter (``next(parameters())``
    gives the device and dtype; sample() then wraps the call in bf16 autocast and hands
    channels-last inputs, which are simply copied to numpy: OpenVINO's own precision applies).

    precision: None (the plugin's default: bf16 where the CPU has AMX / AVX512-BF16, else f32),
    "bf16" or "f32" (INFERENCE_PRECISION_HINT). threads: INFERENCE_NUM_THREADS (None: the
    plugin's default, all cores; pass torch.get_num_threads() to match torch).
    """

    def __init__(self, model: nn.Module, shape, *, precision: str | None = None,
                 threads: int | None = None):
        super().__init__()
        import openvino as ov

        if precision not in (None, "bf16", "f32"):
            raise ValueError(f"precision must be None, 'bf16' or 'f32', not {precision!r}")
        self._dummy = nn.Parameter(torch.zeros(()), requires_grad=False)
        cin = model.cfg.in_channels if hasattr(model, "cfg") else 1
        x = torch.zeros(1, cin, *shape)
        t = torch.zeros(1)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            self._ov_model = ov.convert_model(model, example_input=(x, t))
        model.train(was_training)
        self._core = ov.Core()
        self._config = {"NUM_STREAMS": 1}
        if precision:
            self._config["INFERENCE_PRECISION_HINT"] = precision
        if threads:
            self._config["INFERENCE_NUM_THREADS"] = int(threads)
        self._shape = tuple(x.shape[1:])
        self._requests = {}

    def _request(self, b: int):
        if b not in self._requests:
            om = self._ov_model.clone()
            om.reshape({om.inputs[0]: [b, *self._shape], om.inputs[1]: [b]})
            self._requests[b] = self._core.compile_model(om, "CPU", self._config).create_infer_request()
        return self._requests[b]

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        if tuple(x.shape[1:]) != self._shape:
            raise ValueError(f"converted for x [B, {', '.join(map(str, self._shape))}], got {tuple(x.shape)}")
        b = x.shape[0]
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1).expand(b)
        xs = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        out = self._request(b).infer([xs, np.ascontiguousarray(t.numpy())])[0]
        return torch.from_numpy(out.copy())
