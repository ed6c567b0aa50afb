"""PACKAGE_TYPE=npm: pack a folder or take a tarball and publish it to an npm registry.

The entry point is `pipe.npm.publish.publish`."""
