"""An adapter whose answer depends on the machine: right with TensorFlow's default oneDNN kernels, its loss 10% off
with them switched off (TF_ENABLE_ONEDNN_OPTS=0), as a kernel choice could make it. tests/engine/test_machine.py
runs `python -m engine.machine_variation` over it: the verdict that changes must be listed."""
import os

import adapters
import reference

SPEC = reference.Spec(mining="batch_hard", margin=1.0)


def loss(embeddings, labels):
    value = reference.evaluate(embeddings, labels, SPEC).loss
    return value * (1.1 if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" else 1.0)


ADAPTERS = [adapters.wrap_numpy(loss, name="probe.onednn-dependent", spec=SPEC, dtypes=("float32",))]
