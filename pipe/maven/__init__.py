"""PACKAGE_TYPE=maven: deploy a POM and its files to a Maven repository over HTTP.

The entry point is `pipe.maven.publish.publish`."""
