"""The --device option of every command: auto falls back to the CPU, bad names get a clear error."""

import pytest
import torch

from artid.devices import resolve_device
from artid.errors import ArtidError


def test_auto_is_the_cpu_without_a_gpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_unknown_name_is_refused_with_the_choices():
    with pytest.raises(ArtidError, match="unknown device 'gpu0'.*auto, cpu, cuda"):
        resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_says_to_use_the_cpu():
    with pytest.raises(ArtidError, match="no CUDA GPU.*--device cpu"):
        resolve_device("cuda:0")
