"""Console pages for a workspace's resources, under /o/<org>/w/<workspace>/: one module a
resource (projects and their runs, datasets and their examples, prompts, annotation queues),
sharing the list, form and delete pages of `pages.py`.

Each view declares the one permission it needs; every object is looked up inside the current
workspace, so another workspace's id is a 404. Reads and writes have separate URLs, writes go
through the services with the request's actor, and a destructive action is a confirmation page
(a dialog with htmx).
"""
