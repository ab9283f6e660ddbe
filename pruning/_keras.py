"""The one door to TensorFlow and Keras 2 (tf_keras) for the whole project.

tfmot only works with Keras 2, so the legacy flag is set before TensorFlow is imported.
"""
from __future__ import annotations

import contextlib
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _quiet_native_stderr():
    """TensorFlow's C++ logs (oneDNN, CUDA probing) bypass TF_CPP_MIN_LOG_LEVEL at import;
    silence fd 2 while importing so the CLI's stderr holds only our one-line messages."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _quiet_native_stderr():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.list_physical_devices("GPU")  # the CUDA probe logs on first use


def _enable_memory_growth() -> None:
    # Must run before the first op touches a GPU, or TensorFlow grabs all its memory.
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: nothing to do any more
            pass


_enable_memory_growth()


def device_name() -> str:
    """The device models run on: the first GPU's name, or the CPU."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    return f"CPU ({os.cpu_count()} cores)"


__all__ = ["tf", "keras", "device_name"]
