"""What the tests of an installed or embedded nnc need to know about the build under test."""
import os
import re

from nnctest import sanitized


def instrumented(build):
    """Whether BUILD's runtime has the sanitizers: NNC_SANITIZE, or NNC_FUZZ, which implies
    it without setting the cache entry nnctest.sanitized reads (make asan-build uses it)."""
    try:
        with open(os.path.join(build or "", "CMakeCache.txt")) as f:
            return sanitized(build) or re.search(r"^NNC_FUZZ:BOOL=ON$", f.read(), re.M) is not None
    except OSError:
        return False
