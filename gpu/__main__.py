import sys

from gpu.command import main

sys.exit(main())
