"""A vendor package for tests: the ``scripted`` resource type (tests/scripted.py).

The ``scripted`` fixture adds tests/vendors to ``qrmi_tasks.providers.__path__``: this
declaration is all it takes for the runner to know the type, as for any vendor package.
"""

from qrmi_tasks.config import ResourceType
from qrmi_tasks.providers.declaration import ProviderDeclaration

SCRIPTED = ProviderDeclaration(
    provider="scripted:ScriptedProvider",
    types=(ResourceType("scripted", "QRMI_SCRIPTED_"),),
)

DECLARATIONS = (SCRIPTED,)
