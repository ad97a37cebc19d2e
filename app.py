"""dockless: the registry API as one Chalice app. This file is the table of contents."""
from chalicelib.routes.dispatch import registry_routes
from chalicelib.routes.jobs import register_jobs
from chalicelib.runtime.application import create_app

app = create_app()
app.register_blueprint(registry_routes())
register_jobs(app)
