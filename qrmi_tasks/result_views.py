"""What every loaded result object offers: its summary, a plot and a notebook view.

A mixin of :class:`~qrmi_tasks.result_objects.QrmiResult`,
:class:`~qrmi_tasks.result_objects.PulserCounts` and
:class:`~qrmi_tasks.circuit_counts.CircuitResults`; matplotlib and the HTML view are
imported on use.
"""

from __future__ import annotations

from qrmi_tasks.summary import DEFAULT_TOP, Summary, summarize_object


class SummaryViews:
    """What every loaded result offers (``PrimitiveResult``, Pulser counter, counts per
    circuit): its summary, a plot and a notebook view, all from :func:`summarize_object`."""

    def summary(self) -> Summary:
        """The summary ``qrmi-result summary`` prints (pubs, circuits, bindings apart)."""
        return summarize_object(self)

    def plot(self, top: int = DEFAULT_TOP):  # -> matplotlib.figure.Figure
        """A Figure: a histogram per pub, register and binding (or circuit), or the
        expectation values with their standard deviations."""
        from qrmi_tasks.plots import plot_summary

        return plot_summary(self.summary(), top)

    def _repr_html_(self) -> str:
        from qrmi_tasks.display import summary_html

        return summary_html(self.summary())
