import sys

from lycoris_eval.cli.main import main

sys.exit(main())
