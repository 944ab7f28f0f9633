"""Hand calculations judged: claims files read, each claimed value, formula and chain compared with
the derivation, and the typical mistake named where one explains a wrong answer."""
