"""Write examples/digits.npz from scikit-learn's bundled 8x8 digits (1,797 images, BSD licence).

X holds the 64 pixel intensities scaled from 0..16 to [0, 1], T the one-hot digit. scikit-learn
is needed only here (`pip install scikit-learn`), never by chainrule or by the emitted trainer:
    python examples/make_digits.py
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits


def main() -> None:
    digits = load_digits()
    X = digits.data / 16.0
    T = np.eye(10)[digits.target]
    np.savez_compressed(Path(__file__).with_name("digits.npz"), X=X, T=T)


if __name__ == "__main__":
    main()
