"""Dtypes of the core, declared once (mirrors csrc/include/propensity/types.h)."""
import numpy as np

BIN_DTYPE = np.uint8          # binned feature codes
MAX_BINS = 256                # codes per feature, the missing bin included
MAX_VALUE_BINS = 255          # codes for non-missing values
MISSING_BIN = 255             # the code of NaN
X_DTYPES = (np.float64, np.float32, np.uint8)  # raw feature dtypes the core accepts
WEIGHT_DTYPE = np.float64     # sample weights, histogram sums, probabilities
INDEX_DTYPE = np.int64        # row counts and indices
