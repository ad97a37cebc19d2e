"""dockless: the registry API as one Chalice app. This file is the table of contents."""
from chalicelib.events import delivery
from chalicelib.metadata import audit
from chalicelib.routes.dispatch import registry_routes
from chalicelib.routes.jobs import register_jobs
from chalicelib.runtime.application import create_app

app = create_app()
app.register_blueprint(registry_routes())
globals().update(register_jobs(app))  # the scheduled jobs and queue consumers, as Lambda calls them
audit.tell_changes_to(delivery.emit)  # every committed change's event goes out (chalicelib/events)
