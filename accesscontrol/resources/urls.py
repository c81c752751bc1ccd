"""Console pages of a workspace's resources, under /o/<org>/w/<workspace>/."""

urlpatterns = []
