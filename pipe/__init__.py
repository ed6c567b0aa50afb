"""bitbucket-packages-publish: publish container images, npm packages and Maven artifacts
to Bitbucket Packages (or any standards-following registry) from Bitbucket Pipelines."""

__version__ = "0.1.0"
