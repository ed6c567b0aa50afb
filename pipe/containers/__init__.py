"""PACKAGE_TYPE=docker: build or take an image and push it over the distribution API or the engine.

The entry point is `pipe.containers.publish.publish`."""
