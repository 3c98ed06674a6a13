"""The :class:`Payload` the generators return, and the error they raise.

Imports neither qiskit nor pulser: ``qrmi-gen --help`` and ``qrmi-gen validate`` stay fast.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

from qrmi_tasks import output
from qrmi_tasks.errors import QrmiError
from qrmi_tasks.payload import IQM, PULSER, QIR, check_document, validate_sequence


class GeneratorError(QrmiError):
    """The input cannot become a payload (bad circuit, observable, sequence...): exit 2."""


class IsaWarning(UserWarning):
    """Circuits were emitted without transpiling them for a target."""


def warn_not_isa() -> None:
    """Tell the user that only the ``local`` resource runs circuits that are not ISA."""
    warnings.warn(
        "no target given (--target/--resource, or target=...): circuits are emitted as "
        "written; real QPUs only accept ISA circuits transpiled for the backend (the "
        "'local' resource does not need them)",
        IsaWarning,
        stacklevel=3,
    )


class Payload:
    """A QRMI payload document, validated like the runner validates payload files.

    ``kind`` is ``"sampler"``, ``"estimator"``, ``"pulser"``, ``"iqm"`` or ``"qir"`` (Alice &
    Bob Felis).
    """

    def __init__(self, kind: str, document: dict[str, Any], backend: str | None = None) -> None:
        # The runner's structural and schema checks: a payload we hand out is one it accepts.
        check_document(document, source=f"generated {kind} payload")
        self.kind = kind
        self.document = document
        #: name of the target the circuits were transpiled for (None: not transpiled)
        self.backend = backend

    # -- facts ----------------------------------------------------------------------------
    @property
    def parameters(self) -> dict[str, Any]:
        """The primitive's input (``parameters``); Qiskit payloads only."""
        if self.kind in (PULSER, QIR):
            raise AttributeError(f"a {self.kind} payload has no primitive parameters")
        if self.kind == IQM:  # what --params-only writes: the IQM job, as qrmi's tool does
            return self.document["iqmjson"]
        return self.document["parameters"]

    @property
    def num_pubs(self) -> int:
        """Number of pubs (0 for a Pulser payload)."""
        if self.kind == IQM:
            return len(self.document["iqmjson"]["circuits"])
        if self.kind in (PULSER, QIR):
            return 0
        return len(self.document["parameters"]["pubs"])

    @property
    def shots(self) -> int | None:
        """Shots (sampler), default shots (estimator) or runs (Pulser), if set."""
        if self.kind == PULSER:
            return self.document["job_runs"]
        if self.kind == IQM:
            return self.document["iqmjson"].get("shots", 1)
        if self.kind == QIR:
            return self.document["input_params"].get("nbShots")
        params = self.document["parameters"]
        return params.get("shots") or (params.get("options") or {}).get("default_shots")

    def default_filename(self, params_only: bool = False) -> str:
        """File name in the style of the reference runner's tools."""
        if self.kind == PULSER:
            return "sequence_input.json"
        if self.kind == IQM:  # qrmi's gen_iqm_json.py: iqm_json_{qc alias}[_params_only].json
            return f"iqm_json_{self.backend or 'local'}{'_params_only' if params_only else ''}.json"
        if self.kind == QIR:
            return "qir_input.json"
        suffix = "_params_only" if params_only else ""
        return f"{self.kind}_input_{self.backend or 'local'}{suffix}.json"

    # -- output ---------------------------------------------------------------------------
    def to_dict(self, params_only: bool = False) -> dict[str, Any]:
        """A deep copy of the document (or of its ``parameters`` with ``params_only``)."""
        if params_only:
            return copy.deepcopy(self.parameters)
        return copy.deepcopy(self.document)

    def to_json(self, indent: int | None = 2, params_only: bool = False) -> str:
        """The document (or its parameters) as JSON text."""
        document = self.parameters if params_only else self.document
        return json.dumps(document, indent=indent) + "\n"

    def save(
        self, path: str | os.PathLike[str] | None = None, params_only: bool = False
    ) -> Path | None:
        """Write the JSON atomically to ``path`` (default name if None; ``"-"``: stdout).

        Returns the path written, or None for stdout.
        """
        target = None if str(path) == "-" else Path(path or self.default_filename(params_only))
        if target is not None:
            output.check_target(target)
        sink = output.ResultSink(target)
        with sink.open() as stream:
            stream.write(self.to_json(params_only=params_only).encode())
        sink.publish()
        return target

    def validate(self) -> None:
        """Re-check the document, including Pulser's rebuild of the sequence."""
        validate_sequence(check_document(self.document, source=f"generated {self.kind} payload"))

    def describe(self) -> str:
        """One line: kind, pubs, shots or runs."""
        if self.kind == PULSER:
            return f"pulser sequence, runs={self.shots}"
        if self.kind == QIR:
            lines = len(self.document["human_qir"].splitlines())
            return f"QIR program ({lines} lines), input_params={self.document['input_params']}"
        target = f", target={self.backend}" if self.backend else ""
        shots = f", shots={self.shots}" if self.shots else ""
        if self.kind == IQM:
            return f"iqm {self.document['job_type']} job, {self.num_pubs} circuit(s){shots}{target}"
        return f"{self.kind}, {self.num_pubs} pub(s){shots}{target}"

    def __repr__(self) -> str:
        return f"<Payload {self.describe()}>"

    def _repr_html_(self) -> str:
        from qrmi_tasks.display import payload_html

        return payload_html(self.kind, self.document, self.backend)
