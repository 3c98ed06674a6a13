"""``python -m qrmi_tasks`` is ``qrmi-task-runner``."""

from qrmi_tasks.cli import main

main()
