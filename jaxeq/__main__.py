import sys

from jaxeq.cli import main

sys.exit(main())
