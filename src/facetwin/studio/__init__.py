"""``facetwin studio``: a local web app over one project folder - jobs and face sets, live
training, the interactive merger, reports and a live swap (docs/studio.md).

Python API: :func:`serve` (what the command runs), or :func:`create_app` with a :class:`Studio`
for an ASGI server or a test client of your own. Needs the optional extra ``[studio]``.
"""

from facetwin.studio.app import Studio, create_app
from facetwin.studio.server import ServerConfig, serve

__all__ = ["ServerConfig", "Studio", "create_app", "serve"]
