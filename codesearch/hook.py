"""The entry point that installed git hooks run: `from codesearch.hook import main`.

Hook scripts written into users' repositories name this module and check that this
file exists, so it stays here whatever moves inside the package.
"""

import sys

from codesearch.index.hooks import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
