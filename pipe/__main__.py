"""`python3 -m pipe`: the pipe, exactly as the image's ENTRYPOINT runs it."""

import sys

from pipe.cli import main

sys.exit(main())
