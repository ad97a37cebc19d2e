"""dockless: the registry API as one Chalice app. This file is the table of contents."""
from chalicelib.application import create_app
from chalicelib.jobs import register_jobs
from chalicelib.routes.dispatch import registry_routes

app = create_app()
app.register_blueprint(registry_routes())
register_jobs(app)
