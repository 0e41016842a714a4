"""Adapters whose answer depends on the machine, as a kernel choice could make it: one right with TensorFlow's
default oneDNN kernels and 10% off with them switched off (TF_ENABLE_ONEDNN_OPTS=0), one right with the CPU's own
kernels and 10% off in ATen's narrowest (ATEN_CPU_CAPABILITY=default). tests/engine/test_machine.py runs
`python -m engine.machine_variation` over them: the verdict that changes must be listed."""
import os

import adapters
import reference

SPEC = reference.Spec(mining="batch_hard", margin=1.0)


def off_where(variable: str, value: str):
    def loss(embeddings, labels):
        return reference.evaluate(embeddings, labels, SPEC).loss * (1.1 if os.environ.get(variable) == value else 1.0)

    return loss


ADAPTERS = [adapters.wrap_numpy(off_where(variable, value), name=name, spec=SPEC, dtypes=("float32",))
            for name, variable, value in (("probe.onednn-dependent", "TF_ENABLE_ONEDNN_OPTS", "0"),
                                          ("probe.kernel-dependent", "ATEN_CPU_CAPABILITY", "default"))]
